"""The real API server accepts our XRDs' schemas as CRD schemas.

Crossplane turns each XRD into a CRD; kube-apiserver then checks structural schemas, CEL rule
costs and that every `default` satisfies the rules around it, which `crossplane resource
validate` does not. Crossplane core itself establishes the XRDs of the session's form in
tests/e2e/test_claims.py, where a rejected schema shows up only as an XRD that never becomes
Established; here the CRD of each XRD of that form is built the way Crossplane does for our part
of it (group, names, scope, version schema) and dry-run applied, so the server's own message is
the failure. Crossplane's additions (spec.crossplane, status.conditions, ...) are not included.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hack.e2e.controlplane import ControlPlane
from tests.e2e import requires_e2e
from tests.toolchain import ROOT

pytestmark = [pytest.mark.e2e, requires_e2e]

# One XRD per kind in each form: xrds/<form>/<name>.yaml.
XRDS = sorted({p.stem for p in (ROOT / "xrds").glob("*/*.yaml")})


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


@pytest.mark.parametrize("name", XRDS)
def test_api_server_accepts_the_crd_schema_of_each_xrd(
    cluster: ControlPlane, form: str, name: str
) -> None:
    crd = crd_for(yaml.safe_load((ROOT / "xrds" / form / f"{name}.yaml").read_text()))
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(crd), check=False
    )
    assert result.returncode == 0, result.stderr
