"""Our function packages round-trip through the local OCI registry the e2e suite will install
them from: `crossplane xpkg build`, `crossplane xpkg push` over plain HTTP to localhost, and the
registry serves back a manifest whose base layer holds our package metadata."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hack.e2e.controlplane import Registry, binary, registry
from tests.e2e import requires_e2e
from tests.toolchain import ROOT

pytestmark = [pytest.mark.e2e, requires_e2e]

FUNCTIONS = ["function-inferenceservice", "function-gpupool", "function-tokencache"]
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with registry(tmp_path_factory.mktemp("registry")) as r:
        yield r


def crossplane(*args: str) -> None:
    result = subprocess.run(
        [str(binary("crossplane")), *args], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_package_is_pushed_to_and_served_by_the_local_registry(
    local_registry: Registry, tmp_path: Path, name: str
) -> None:
    root = ROOT / "package" / name
    xpkg = tmp_path / f"{name}.xpkg"
    # No runtime image: none can be built without Docker; the e2e suite serves functions itself.
    crossplane(
        "xpkg",
        "build",
        f"--package-root={root}",
        f"--package-file={xpkg}",
        f"--examples-root={root / 'examples'}",
    )
    crossplane(
        "xpkg", "push", f"--package-files={xpkg}", f"{local_registry.host}/e2e/{name}:v0.0.1"
    )

    manifest = json.loads(local_registry.get(f"/v2/e2e/{name}/manifests/v0.0.1", MANIFEST))
    base = [
        layer
        for layer in manifest["layers"]
        if layer.get("annotations", {}).get("io.crossplane.xpkg") == "base"
    ]
    assert len(base) == 1, manifest
    blob = local_registry.get(f"/v2/e2e/{name}/blobs/{base[0]['digest']}")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        member = tar.extractfile("package.yaml")
        assert member is not None
        docs = list(yaml.safe_load_all(member.read()))
    meta = docs[0]
    assert (meta["kind"], meta["metadata"]["name"]) == ("Function", name)
