"""The Crossplane versions our packages claim are the ones the end-to-end suite runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hack.e2e.controlplane import pinned_versions
from tests.toolchain import ROOT

PACKAGES = sorted((ROOT / "package").glob("*/crossplane.yaml"))


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: p.parent.name)
def test_package_requires_the_crossplane_core_the_e2e_suite_runs(path: Path) -> None:
    # tests/e2e runs core CROSSPLANE_CORE_VERSION (both XRD forms) and nothing older, so that is
    # the floor: a package must not promise an older Crossplane than was tested.
    core = pinned_versions()["CROSSPLANE_CORE_VERSION"]
    meta = yaml.safe_load(path.read_text())
    assert meta["spec"]["crossplane"]["version"] == f">={core}-0"


def test_every_package_is_checked() -> None:
    assert [p.parent.name for p in PACKAGES] == [
        "configuration",
        "function-gpupool",
        "function-inferenceservice",
        "function-tokencache",
    ]
