"""The real provider-kubernetes applies the Objects our GPUPool function composes.

The Objects are taken from a golden render (tests/render/golden/v2/l4-timeslice-pool.yaml): the
`node-*` Object labels a Node with its device-plugin config (management policies Observe, Update)
and `device-plugin-config` server-side applies a key into the shared ConfigMap in gpu-operator
(Observe, Create, Update). Neither has Delete, so deleting the Object orphans what it applied:
the Node keeps its label and the ConfigMap stays (crossplane-runtime's
LegacyManagementPoliciesResolver.ShouldDelete: a non-default policy set without Delete wins over
the default deletionPolicy Delete).

The `provider` fixture starts provider-kubernetes for this module unless the session already
runs it (hack/e2e/provider.py `provider_kubernetes`, meant for the session fixture: a provider
reconciles every Object in the cluster, Crossplane's too, and only one can run per machine).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.e2e.controlplane import DEFAULT_NODES, ControlPlane
from hack.e2e.provider import GROUP, OBJECT_API, get_json, provider_kubernetes, wait_object_ready
from tests.e2e import requires_e2e

pytestmark = [pytest.mark.e2e, requires_e2e]

GOLDEN = Path(__file__).resolve().parents[1] / "render" / "golden" / "v2" / "l4-timeslice-pool.yaml"
# The fake node standing in for the render's `l4-0` (any fake node would do: only a label is set).
NODE = next((n for n in DEFAULT_NODES if n.product == "NVIDIA-L4"), DEFAULT_NODES[0])
GPU_OPERATOR_NAMESPACE = "gpu-operator"


@pytest.fixture(scope="module")
def provider(cluster: ControlPlane) -> Iterator[ControlPlane]:
    """provider-kubernetes on the session's control plane, unless the session already runs it."""
    if any(p.name == "provider-kubernetes" and p.alive() for p in cluster.procs):
        yield cluster
        return
    with provider_kubernetes(cluster):
        yield cluster


def golden_object(resource_name: str) -> dict[str, Any]:
    """The golden render's Object for composition resource `resource_name`, spec unchanged. Not
    Crossplane's: renamed `e2e-provider-…` (a session running Crossplane composes the example
    pools' own Objects under the golden names) and without the owner reference to its GPUPool
    (none exists here: the garbage collector would delete it) or the composite label."""
    for doc in yaml.safe_load_all(GOLDEN.read_text()):
        if not doc or doc.get("kind") != "Object":
            continue
        annotations = doc["metadata"].get("annotations", {})
        name = annotations.get("crossplane.io/composition-resource-name", "")
        if name == resource_name or (resource_name == "node-*" and name.startswith("node-")):
            obj: dict[str, Any] = copy.deepcopy(doc)
            obj["metadata"].pop("ownerReferences", None)
            obj["metadata"]["labels"].pop("crossplane.io/composite", None)
            obj["metadata"]["name"] = f"e2e-provider-{obj['metadata']['name']}"
            assert obj["apiVersion"] == OBJECT_API
            return obj
    raise AssertionError(f"no Object {resource_name} in {GOLDEN}")


def apply(cp: ControlPlane, obj: dict[str, Any]) -> None:
    cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(obj))


FINALIZER = "finalizer.managedresource.crossplane.io"


def assert_managed_by_provider(cp: ControlPlane, obj: dict[str, Any]) -> None:
    """The provider holds the Object with its finalizer and records its use of the
    ProviderConfig `default` in a ProviderConfigUsage."""
    assert FINALIZER in obj["metadata"].get("finalizers", [])
    usages = get_json(cp, f"providerconfigusages.{GROUP}") or {}
    used = {
        (u["providerConfigRef"]["name"], u["resourceRef"]["kind"], u["resourceRef"]["name"])
        for u in usages.get("items", [])
    }
    assert ("default", "Object", obj["metadata"]["name"]) in used


def delete_object(cp: ControlPlane, name: str) -> None:
    """Delete the Object and wait until it is gone: the provider removes its finalizer."""
    cp.kubectl("delete", f"objects.{GROUP}", name, "--wait=true", "--timeout=60s")
    assert get_json(cp, f"objects.{GROUP}", name) is None


def test_node_object_labels_the_node_and_deletion_leaves_node_and_label(
    provider: ControlPlane,
) -> None:
    obj = golden_object("node-*")
    assert obj["spec"]["managementPolicies"] == ["Observe", "Update"]
    assert "deletionPolicy" not in obj["spec"]
    manifest = obj["spec"]["forProvider"]["manifest"]
    assert manifest["kind"] == "Node"
    labels = manifest["metadata"]["labels"]
    manifest["metadata"]["name"] = NODE.name  # the render's node is `l4-0`; ours is fake
    name = obj["metadata"]["name"]

    apply(provider, obj)
    got = wait_object_ready(provider, name, provider.procs)
    assert_managed_by_provider(provider, got)

    node = get_json(provider, "node", NODE.name, "--show-managed-fields")
    assert node is not None
    for key, value in labels.items():
        assert node["metadata"]["labels"][key] == value
    # Server-side applied under the provider's field manager for this Object.
    managers = {m["manager"] for m in node["metadata"]["managedFields"]}
    assert f"provider-kubernetes/{name}" in managers
    # The observed Node is reported back in the Object's status.
    assert got["status"]["atProvider"]["manifest"]["metadata"]["name"] == NODE.name

    delete_object(provider, name)
    # No Delete policy: the Node is not deleted, and its label stays (orphaned, not reverted).
    node = get_json(provider, "node", NODE.name)
    assert node is not None
    assert node["metadata"].get("deletionTimestamp") is None
    for key, value in labels.items():
        assert node["metadata"]["labels"][key] == value
    # The rest of the fake node's labels were never touched.
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == NODE.product


def test_configmap_object_creates_the_configmap_and_deletion_leaves_it(
    provider: ControlPlane,
) -> None:
    obj = golden_object("device-plugin-config")
    assert obj["spec"]["managementPolicies"] == ["Observe", "Create", "Update"]
    assert "deletionPolicy" not in obj["spec"]
    manifest = obj["spec"]["forProvider"]["manifest"]
    assert manifest["kind"] == "ConfigMap"
    namespace = manifest["metadata"]["namespace"]
    assert namespace == GPU_OPERATOR_NAMESPACE
    cm_name = manifest["metadata"]["name"]
    name = obj["metadata"]["name"]
    # The GPU operator's namespace; the Object creates only the ConfigMap. Every pool applies
    # its own key into this one ConfigMap, so it may hold other pools' keys (a session running
    # Crossplane composes the example pools): ours must be there, as we rendered them.
    provider.kubectl("create", "namespace", namespace, check=False)

    apply(provider, obj)
    assert_managed_by_provider(provider, wait_object_ready(provider, name, provider.procs))
    cm = get_json(provider, "configmap", "-n", namespace, cm_name, "--show-managed-fields")
    assert cm is not None
    assert manifest["data"].items() <= cm["data"].items()
    managers = {m["manager"] for m in cm["metadata"]["managedFields"]}
    assert f"provider-kubernetes/{name}" in managers

    delete_object(provider, name)
    # No Delete policy: the shared ConfigMap stays with the key this pool applied.
    cm = get_json(provider, "configmap", "-n", namespace, cm_name)
    assert cm is not None
    assert cm["metadata"].get("deletionTimestamp") is None
    assert manifest["data"].items() <= cm["data"].items()


def test_object_with_delete_policy_deletes_its_resource(provider: ControlPlane) -> None:
    """The contrast: with Delete in its management policies (and the default deletionPolicy
    Delete) the provider deletes the resource with its Object; without it (above) it must not.

    Observe + Delete on a ConfigMap made beforehand: had the provider created it, deleting the
    Object within crossplane-runtime's creation grace period (30 s) would wait that long
    ("Waiting for external resource existence to be confirmed") before the finalizer goes."""
    name = "e2e-observe-delete"
    provider.kubectl("create", "configmap", name, "-n", "default", "--from-literal=k=v")
    obj = golden_object("device-plugin-config")
    obj["metadata"] = {"name": name}
    obj["spec"]["managementPolicies"] = ["Observe", "Delete"]
    obj["spec"]["forProvider"]["manifest"] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
    }

    apply(provider, obj)
    got = wait_object_ready(provider, name, provider.procs)
    assert got["spec"]["deletionPolicy"] == "Delete"  # the CRD's default
    assert got["status"]["atProvider"]["manifest"]["data"] == {"k": "v"}

    delete_object(provider, name)
    assert get_json(provider, "configmap", "-n", "default", name) is None
