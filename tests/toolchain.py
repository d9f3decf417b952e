"""Locate the crossplane CLI, core, endpoint picker and device plugin built by `make tools`
(hack/tools.sh)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _versions() -> dict[str, str]:
    out = {}
    for line in (ROOT / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class Tools:
    dir: Path
    crossplane: Path
    core: Path
    core_version: str
    epp: Path
    """The Gateway API Inference Extension's endpoint picker (make tools)."""
    device_plugin: Path
    """The NVIDIA device plugin, cmd/nvidia-device-plugin (make tools)."""
    nvml_root: Path
    """A driver root whose libnvidia-ml.so.1 loads and reports the driver not loaded."""

    @property
    def validate_args(self) -> list[str]:
        """Offline validate: core CRDs come from the pre-seeded image cache, nothing is pulled."""
        return [
            "--cache-dir",
            str(self.dir / "xpkg-cache"),
            f"--crossplane-image=xpkg.crossplane.io/crossplane/crossplane:{self.core_version}",
        ]


def find_tools() -> Tools:
    tools_dir = Path(
        os.environ.get("TOOLS_DIR")
        or subprocess.run(
            ["bash", str(ROOT / "hack" / "tools.sh"), "dir"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    found = Tools(
        tools_dir,
        tools_dir / "bin" / "crossplane",
        tools_dir / "bin" / "crossplane-core",
        _versions()["CROSSPLANE_CORE_VERSION"],
        tools_dir / "bin" / "epp",
        tools_dir / "bin" / "nvidia-device-plugin",
        tools_dir / "nvml-driver-not-loaded-v1",
    )
    needed = (found.crossplane, found.core, found.epp, found.device_plugin, found.nvml_root)
    missing = [p for p in needed if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(map(str, missing))}: run `make tools`")
    return found
