"""Where things are: the repository, the crossplane binaries, the function console scripts."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class RenderError(Exception):
    """An input, environment or setup problem; message is printed as is, exit status 2."""


def tools_dir() -> Path:
    """Same resolution as hack/tools.sh."""
    if os.environ.get("TOOLS_DIR"):
        return Path(os.environ["TOOLS_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "inference-platform" / "tools"


def find_binary(env: str, name: str) -> Path:
    """`$env`, else TOOLS_DIR/bin/`name`; it must be an executable file."""
    path = Path(os.environ.get(env) or tools_dir() / "bin" / name)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RenderError(
            f"error: {path} not found or not executable; run `make tools` "
            f"(or set {env} / TOOLS_DIR)"
        )
    return path


def find_function(name: str) -> Path:
    """Console script in $FUNCTIONS_BIN_DIR, next to this interpreter, or in .venv/bin."""
    dirs = [Path(sys.executable).parent, REPO / ".venv" / "bin"]
    if os.environ.get("FUNCTIONS_BIN_DIR"):
        dirs.insert(0, Path(os.environ["FUNCTIONS_BIN_DIR"]))
    for directory in dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RenderError(
        f"error: console script {name!r} not found next to {sys.executable} or in .venv/bin; "
        "run `make venv`"
    )


def package_version() -> str:
    """pyproject.toml's version, which the packages of a release carry."""
    try:
        with (REPO / "pyproject.toml").open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"


def core_image() -> str:
    """The Crossplane core image `make tools` pre-seeds the CRD cache for (hack/versions.env)."""
    version = "v2.4.0"
    env = REPO / "hack" / "versions.env"
    if env.is_file():
        for line in env.read_text().splitlines():
            if line.startswith("CROSSPLANE_CORE_VERSION="):
                version = line.split("=", 1)[1].strip()
    return f"xpkg.crossplane.io/crossplane/crossplane:{version}"


def display(path: Path) -> str:
    """`path` relative to the repository when inside it, for messages and `# Source:` lines."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
