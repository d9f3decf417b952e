"""LMCache's own configuration loader, from the released wheel, without torch.

`lmcache/v1/config.py`, `config_base.py` and `logging.py` import only
the standard library, PyYAML and requests; the package `__init__`s import torch for device
detection. So the wheel's files are unpacked as they are, beside empty `__init__`s,
and the loader runs in a subprocess exactly as vLLM's connector calls it
(`lmcache.integration.vllm.utils.lmcache_get_or_create_config`: `from_file`, then
`update_config_from_env`). The wheel is downloaded once (pip, no dependencies) into the tools
cache beside the crossplane binaries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, NoReturn

import pytest

from functions.common import lmcache
from tests.toolchain import ROOT

FILES = (
    "lmcache/logging.py",
    "lmcache/v1/config.py",
    "lmcache/v1/config_base.py",
    # Read as text: the values get_cache_policy and CreateSerde accept (their modules need torch).
    "lmcache/v1/storage_backend/cache_policy/__init__.py",
    "lmcache/v1/storage_backend/naive_serde/__init__.py",
)
EMPTY_INITS = ("lmcache", "lmcache/v1", "lmcache/v1/storage_backend")

LOAD = """
import json, os, sys
from lmcache.v1.config import LMCacheEngineConfig
config = LMCacheEngineConfig.from_file(os.environ["LMCACHE_CONFIG_FILE"])
config.update_config_from_env()
json.dump(config.to_dict(), sys.stdout, default=str)
"""


def tools_dir() -> Path:
    env = os.environ.get("TOOLS_DIR")
    if env:
        return Path(env)
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "tools.sh"), "dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def wheel() -> Path:
    cache = tools_dir() / f"lmcache-{lmcache.VERSION}"
    found = sorted(cache.glob("lmcache-*.whl"))
    if found:
        return found[0]
    # `make venv` bootstraps uv with the pip of $TOOLS_DIR/uv-venv; a fresh machine has no other.
    bootstrap = tools_dir() / "uv-venv" / "bin" / "pip"
    pip = str(bootstrap) if bootstrap.exists() else shutil.which("pip3") or shutil.which("pip")
    if pip is None:
        unavailable("no pip to download the lmcache wheel with")
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            pip,
            "download",
            f"lmcache=={lmcache.VERSION}",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version=3.11",
            "--platform=manylinux_2_28_x86_64",
            "-d",
            str(cache),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = sorted(cache.glob("lmcache-*.whl"))
    if done.returncode != 0 or not found:
        unavailable(f"cannot download lmcache {lmcache.VERSION}: {done.stderr[-500:]}")
    return found[0]


def unavailable(why: str) -> NoReturn:
    # CI has PyPI: there a missing wheel is a failure, not a silent skip.
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def unpack(dest: Path) -> Path:
    with zipfile.ZipFile(wheel()) as whl:
        for name in whl.namelist():
            if name in FILES:
                whl.extract(name, dest)
    for pkg in EMPTY_INITS:
        (dest / pkg / "__init__.py").write_text("")
    return dest


def serde_names(src: Path) -> set[str]:
    """The remote_serde values LMCache's CreateSerde accepts, read from its source."""
    text = (src / "lmcache/v1/storage_backend/naive_serde/__init__.py").read_text()
    return {part.split('"')[1] for part in text.split("serde_type == ")[1:]}


def cache_policies(src: Path) -> set[str]:
    """The cache_policy names in get_cache_policy's POLICY_MAPPING, read from its source."""
    text = (src / "lmcache/v1/storage_backend/cache_policy/__init__.py").read_text()
    return set(re.findall(r'"(\w+)": \w+CachePolicy', text))


def load(src: Path, config_file: Path, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """LMCache's resolved configuration, and what it logged."""
    run_env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(src),
        "LMCACHE_CONFIG_FILE": str(config_file),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", LOAD],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr
