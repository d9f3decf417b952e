"""The real API server accepts our XRDs' schemas as CRD schemas.

Crossplane turns each XRD into a CRD; kube-apiserver then checks structural schemas, CEL rule
costs and that every `default` satisfies the rules around it, which `crossplane resource
validate` does not. Crossplane core itself establishes the claims-form XRDs in
tests/e2e/test_claims.py; the v2 form cannot be installed beside them (same kinds), so here the
CRD of every XRD of both forms is built the way Crossplane does for our part of it (group, names,
scope, version schema) and dry-run applied; Crossplane's own additions (spec.crossplane,
status.conditions, ...) are not included.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hack.e2e.controlplane import ControlPlane
from tests.e2e import requires_e2e
from tests.toolchain import ROOT

pytestmark = [pytest.mark.e2e, requires_e2e]

XRDS = sorted((ROOT / "xrds").glob("*/*.yaml"))


def crd_for(xrd: dict[str, Any]) -> dict[str, Any]:
    spec = xrd["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{spec['names']['plural']}.{spec['group']}"},
        "spec": {
            "group": spec["group"],
            "names": {k: v for k, v in spec["names"].items() if k != "categories"},
            "scope": spec.get("scope", "Cluster"),
            "versions": [
                {
                    "name": v["name"],
                    "served": v["served"],
                    "storage": v.get("referenceable", False),
                    "schema": v["schema"],
                    "subresources": {"status": {}},
                }
                for v in spec["versions"]
            ],
        },
    }


@pytest.mark.parametrize("path", XRDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_api_server_accepts_the_crd_schema_of_each_xrd(cluster: ControlPlane, path: Any) -> None:
    crd = crd_for(yaml.safe_load(path.read_text()))
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(crd), check=False
    )
    assert result.returncode == 0, result.stderr
