"""The real kube-apiserver accepts every object our functions compose for the examples.

`hack.render` renders examples/claims with the real crossplane CLI in the session's XRD form
(tests/e2e/conftest.py `form`); every composed object of a kind the server serves is then applied
with server-side apply in dry-run mode and strict field validation, so an unknown or misplaced
field, a bad quantity or an invalid name fails here even though the offline render accepted it.
provider-kubernetes Objects are unwrapped: their `spec.forProvider.manifest` is what would reach
the server. The tests take the session's `platform`: the Object CRD is served once Crossplane has
installed provider-kubernetes, our Configuration's dependency.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hack.e2e.controlplane import ControlPlane
from hack.e2e.crossplane import Crossplane
from tests.e2e import requires_e2e
from tests.toolchain import ROOT

pytestmark = [pytest.mark.e2e, requires_e2e]

XR_GROUP = "inference.ai"
PROVIDER_KUBERNETES_OBJECT = ("kubernetes.crossplane.io", "Object")


def free_port_range(count: int) -> int:
    """The first of `count` consecutive free loopback ports (render serves the three functions on
    FN_PORT_BASE and the next two; the e2e provider holds the default 9443)."""
    for base in range(20000, 40000, 16):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {count} consecutive free ports")


def render(form: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "hack.render", "--form", form],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "FN_PORT_BASE": str(free_port_range(3))},
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def group_kind(doc: dict[str, Any]) -> tuple[str, str]:
    api_version: str = doc["apiVersion"]
    return (api_version.rpartition("/")[0], doc["kind"])


def composed(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Composed resources, with provider-kubernetes Objects replaced by the manifest they carry."""
    for doc in docs:
        if group_kind(doc)[0] == XR_GROUP:
            continue  # the XRs themselves: tests/e2e/test_claims.py applies them through Crossplane
        yield doc
        if group_kind(doc) == PROVIDER_KUBERNETES_OBJECT:
            yield doc["spec"]["forProvider"]["manifest"]


def served_kinds(cluster: ControlPlane) -> set[tuple[str, str]]:
    out = cluster.kubectl("api-resources", "--no-headers", "-o", "wide").stdout
    kinds = set()
    for line in out.splitlines():
        fields = line.split()
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND VERBS...
        i = next(i for i, f in enumerate(fields) if f in ("true", "false"))
        kinds.add((fields[i - 1].rpartition("/")[0], fields[i + 1]))
    return kinds


@pytest.fixture(scope="module")
def rendered(form: str) -> list[dict[str, Any]]:
    """What the functions compose for the examples in the session's XRD form."""
    return list(composed(render(form)))


def test_server_accepts_every_composed_object_of_a_served_kind(
    platform: Crossplane, rendered: list[dict[str, Any]]
) -> None:
    served = served_kinds(platform.cp)
    docs = [d for d in rendered if group_kind(d) in served]
    for doc in docs:
        # The render's owner is a composite that does not exist here, while Crossplane may have
        # composed the same objects for real (tests/e2e/test_claims.py) with their own owner:
        # a second controller reference would be rejected for that reason alone.
        doc["metadata"].pop("ownerReferences", None)
    assert docs, "the render produced no object of a kind the API server serves"
    for ns in sorted({d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}):
        if platform.cp.kubectl("get", "namespace", ns, check=False).returncode != 0:
            platform.cp.kubectl("create", "namespace", ns)
    result = platform.cp.kubectl(
        "apply",
        "--server-side",
        "--field-manager=e2e",
        "--dry-run=server",
        "--validate=strict",
        # Crossplane may have composed the same objects for real (tests/e2e/test_claims.py); the
        # dry run checks schemas, not who owns which field.
        "--force-conflicts",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs, sort_keys=False),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # One "serverside-applied (server dry run)" line per object: none was silently dropped.
    assert result.stdout.count("(server dry run)") == len(docs), result.stdout


def test_every_composed_kind_is_served(
    platform: Crossplane, rendered: list[dict[str, Any]]
) -> None:
    missing = {group_kind(d) for d in rendered} - served_kinds(platform.cp)
    assert not missing, f"composed kinds without a CRD on the server: {sorted(missing)}"
