"""provider-kubernetes, installed by Crossplane as our Configuration's dependency, applies the
Objects our GPUPool function composes, with the runtime config and RBAC of deploy/.

The provider is the session's (hack/e2e/crossplane.py `platform`): Crossplane resolved it from the
local registry and rendered its Deployment through the ImageConfig and DeploymentRuntimeConfig of
deploy/provider-kubernetes/runtime.yaml; the harness runs the controller with that Deployment's
args and env (hack/e2e/provider.py), and the ProviderConfig `default` acts as the provider's own
ServiceAccount, with the permissions of deploy/provider-kubernetes/rbac.yaml.

The Objects are taken from a golden render (tests/render/golden/v2/l4-timeslice-pool.yaml): the
`node-*` Object labels a Node with its device-plugin config (management policies Observe, Update)
and `device-plugin-config` server-side applies a key into the shared ConfigMap in gpu-operator
(Observe, Create, Update). Neither has Delete, so deleting the Object orphans what it applied:
the Node keeps its label and the ConfigMap stays (crossplane-runtime's
LegacyManagementPoliciesResolver.ShouldDelete: a non-default policy set without Delete wins over
the default deletionPolicy Delete).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.e2e import provider as kubernetes_provider
from hack.e2e.controlplane import (
    DEFAULT_NODES,
    ControlPlane,
    condition,
    pinned_versions,
    wait_until,
)
from hack.e2e.crossplane import Crossplane
from hack.e2e.provider import GROUP, OBJECT_API, get_json, wait_object_ready
from tests.e2e import requires_e2e

pytestmark = [pytest.mark.e2e, requires_e2e]

GOLDEN = Path(__file__).resolve().parents[1] / "render" / "golden" / "v2" / "l4-timeslice-pool.yaml"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "provider-kubernetes"
# The fake node standing in for the render's `l4-0` (any fake node would do: only a label is set).
NODE = next((n for n in DEFAULT_NODES if n.product == "NVIDIA-L4"), DEFAULT_NODES[0])
GPU_OPERATOR_NAMESPACE = "gpu-operator"


@pytest.fixture(scope="module")
def provider(platform: Crossplane) -> ControlPlane:
    """The session's control plane, with provider-kubernetes installed and running."""
    assert platform.provider is not None
    assert platform.provider.proc.alive()
    return platform.cp


def runtime_config() -> dict[str, Any]:
    docs = yaml.safe_load_all((DEPLOY / "runtime.yaml").read_text())
    return next(d for d in docs if d["kind"] == "DeploymentRuntimeConfig")


def test_crossplane_installs_the_provider_as_the_configurations_dependency(
    platform: Crossplane,
) -> None:
    cp = platform.cp
    providers = (get_json(cp, "providers.pkg.crossplane.io") or {})["items"]
    assert len(providers) == 1, providers
    got = providers[0]
    # Resolved by Crossplane from the Configuration's dependsOn, at the version the e2e pins,
    # pulled from the local registry through the mirror ImageConfig (rewriteImage).
    version = pinned_versions()["PROVIDER_KUBERNETES_VERSION"]
    assert got["spec"]["package"] == f"{kubernetes_provider.PACKAGE}:{version}"
    assert got["status"]["resolvedPackage"].endswith(f"/{kubernetes_provider.REPOSITORY}:{version}")
    assert got["status"]["resolvedPackage"].startswith("127.0.0.1:")
    assert condition(got, "Healthy")["status"] == "True"
    lock = get_json(cp, "locks.pkg.crossplane.io", "lock") or {}
    parents = [
        p
        for p in lock.get("packages", [])
        if p["source"].endswith("/configuration") and p.get("dependencies")
    ]
    assert any(
        d["package"] == kubernetes_provider.PACKAGE for p in parents for d in p["dependencies"]
    ), lock


def test_runtime_config_reaches_the_deployment_and_the_running_provider(
    platform: Crossplane,
) -> None:
    running = platform.provider
    assert running is not None
    drc = runtime_config()
    wanted = drc["spec"]["deploymentTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "--enable-server-side-apply" in wanted["args"]
    # The ImageConfig attached the DeploymentRuntimeConfig to the dependency: its args are the
    # Deployment's, and its ServiceAccount name the pod's.
    revisions = (get_json(platform.cp, "providerrevisions.pkg.crossplane.io") or {})["items"]
    active = [r for r in revisions if r["spec"]["desiredState"] == "Active"]
    assert len(active) == 1, revisions
    applied = active[0]["status"].get("appliedImageConfigRefs", [])
    assert {"name": "provider-kubernetes", "reason": "ConfigureRuntime"} in applied, applied
    assert {"name": "e2e-provider-kubernetes-mirror", "reason": "RewriteImage"} in applied, applied
    assert running.container["args"] == wanted["args"]
    pod = running.deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == kubernetes_provider.SERVICE_ACCOUNT
    # The harness ran exactly those args (plus the probe address a pod would not need).
    assert running.args[1 : 1 + len(wanted["args"])] == wanted["args"]
    assert [a for a in running.args[1:] if a not in wanted["args"]] == [
        f"--health-probe-bind-addr=127.0.0.1:{running.health_port}"
    ]


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
    ns = GPU_OPERATOR_NAMESPACE  # where rbac.yaml lets the provider delete ConfigMaps
    provider.kubectl("create", "configmap", name, "-n", ns, "--from-literal=k=v")
    obj = observe_configmap(name, ns, ["Observe", "Delete"])

    apply(provider, obj)
    got = wait_object_ready(provider, name, provider.procs)
    assert got["spec"]["deletionPolicy"] == "Delete"  # the CRD's default
    assert got["status"]["atProvider"]["manifest"]["data"] == {"k": "v"}

    delete_object(provider, name)
    assert get_json(provider, "configmap", "-n", ns, name) is None


def observe_configmap(name: str, namespace: str, policies: list[str]) -> dict[str, Any]:
    obj = golden_object("device-plugin-config")
    obj["metadata"] = {"name": name}
    obj["spec"]["managementPolicies"] = policies
    obj["spec"]["forProvider"]["manifest"] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
    }
    return obj


def test_object_outside_the_providers_rbac_is_refused(provider: ControlPlane) -> None:
    """Least privilege: the provider acts as its ServiceAccount, which rbac.yaml lets touch
    ConfigMaps in the GPU Operator's namespace only; one in `default` is forbidden, and the
    Object says so instead of becoming Ready."""
    name = "e2e-outside-rbac"
    provider.kubectl("create", "configmap", name, "-n", "default", "--from-literal=k=v")
    apply(provider, observe_configmap(name, "default", ["Observe"]))
    seen: dict[str, Any] = {}

    def refused() -> bool:
        nonlocal seen
        seen = get_json(provider, f"objects.{GROUP}", name) or {}
        synced = condition(seen, "Synced")
        return synced.get("status") == "False" and "forbidden" in synced.get("message", "")

    try:
        wait_until(refused, f"Object {name} refused", provider.procs, 60)
        assert condition(seen, "Ready").get("status") != "True", json.dumps(seen["status"])
        assert (
            f'system:serviceaccount:crossplane-system:{kubernetes_provider.SERVICE_ACCOUNT}"'
            in (condition(seen, "Synced")["message"])
        )
    finally:
        delete_object(provider, name)
        provider.kubectl("delete", "configmap", name, "-n", "default")
