"""The Configuration brings provider-kubernetes, and deploy/provider-kubernetes/ gives it what the
GPUPool Objects need: the version the e2e suite runs, server-side apply through the runtime config
an ImageConfig attaches, the ProviderConfig the Objects name, and RBAC for every object a pool
composes through it (read from the golden renders, so a new kind fails here until it is granted).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.gpupool import wiring
from hack.e2e.controlplane import pinned_versions
from tests.toolchain import ROOT

CONFIGURATION = ROOT / "package" / "configuration" / "crossplane.yaml"
DEPLOY = ROOT / "deploy" / "provider-kubernetes"
PACKAGE = "xpkg.crossplane.io/crossplane-contrib/provider-kubernetes"
CROSSPLANE_NAMESPACE = "crossplane-system"
GOLDEN_POOLS = sorted(
    p
    for form in ("claims", "v2")
    for p in (ROOT / "tests" / "render" / "golden" / form).glob("*.yaml")
    # DRA pools (status allocation: dra) render no provider Objects (tests/unit/test_dra.py).
    if "kind: GPUPool" in p.read_text() and "allocation: dra" not in p.read_text()
)


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(path: Path, kind: str) -> dict[str, Any]:
    found = [d for d in docs(path) if d["kind"] == kind]
    assert len(found) == 1, f"{path.name}: {len(found)} {kind}"
    return found[0]


def provider_dependency() -> dict[str, Any]:
    meta = yaml.safe_load(CONFIGURATION.read_text())
    deps = [d for d in meta["spec"]["dependsOn"] if "provider" in d]
    assert len(deps) == 1, deps
    return dict(deps[0])


def test_configuration_depends_on_the_provider_version_the_e2e_suite_runs() -> None:
    # From the release tests/e2e installs (hack/versions.env) up to, not including, the next
    # major: a minor or patch release keeps the flags and the Object API we rely on.
    version = pinned_versions()["PROVIDER_KUBERNETES_VERSION"]
    major = int(re.fullmatch(r"v(\d+)\.\d+\.\d+", version).group(1))  # type: ignore[union-attr]
    assert provider_dependency() == {
        "provider": PACKAGE,
        "version": f">={version} <v{major + 1}.0.0",
    }


def test_image_config_attaches_the_runtime_config_to_the_dependency() -> None:
    image_config = one(DEPLOY / "runtime.yaml", "ImageConfig")
    runtime_config = one(DEPLOY / "runtime.yaml", "DeploymentRuntimeConfig")
    assert image_config["spec"]["matchImages"] == [
        {"type": "Prefix", "prefix": provider_dependency()["provider"]}
    ]
    assert image_config["spec"]["runtime"]["configRef"] == {
        "name": runtime_config["metadata"]["name"]
    }


def test_make_deploy_rewrites_the_image_config_prefix_it_holds() -> None:
    # `make deploy PROVIDER_KUBERNETES_PACKAGE=<mirror>` seds the canonical path out of
    # runtime.yaml: it must be the path written there.
    makefile = (ROOT / "Makefile").read_text()
    canonical = re.search(r"^PROVIDER_KUBERNETES_CANONICAL := (\S+)$", makefile, re.M)
    assert canonical is not None
    assert canonical.group(1) == PACKAGE


def test_runtime_config_enables_server_side_apply_in_the_runtime_container() -> None:
    runtime_config = one(DEPLOY / "runtime.yaml", "DeploymentRuntimeConfig")
    containers = runtime_config["spec"]["deploymentTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    # Crossplane merges the container named package-runtime into the provider's Deployment.
    assert [c["name"] for c in containers] == ["package-runtime"]
    assert "--enable-server-side-apply" in containers[0]["args"]


def test_provider_config_is_the_one_gpupool_objects_name() -> None:
    config = one(DEPLOY / "providerconfig.yaml", "ProviderConfig")
    assert config["apiVersion"] == "kubernetes.crossplane.io/v1alpha1"
    assert config["metadata"]["name"] == wiring.PROVIDER_CONFIG
    assert config["spec"]["credentials"] == {"source": "InjectedIdentity"}


def test_rbac_binds_the_runtime_configs_service_account() -> None:
    runtime_config = one(DEPLOY / "runtime.yaml", "DeploymentRuntimeConfig")
    account = runtime_config["spec"]["serviceAccountTemplate"]["metadata"]["name"]
    bindings = [d for d in docs(DEPLOY / "rbac.yaml") if d["kind"].endswith("Binding")]
    assert bindings
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": CROSSPLANE_NAMESPACE}
        ]


# Object kind -> (API group, resource) of what a GPUPool composes through the provider.
RESOURCES = {
    "Node": ("", "nodes"),
    "ConfigMap": ("", "configmaps"),
    "ServiceAccount": ("", "serviceaccounts"),
    "DaemonSet": ("apps", "daemonsets"),
    "PodMonitor": ("monitoring.coreos.com", "podmonitors"),
}
# What each management policy makes the provider do, server-side apply on (Create and Update are
# apply patches; a create by apply also needs `create`).
VERBS = {
    "Observe": {"get"},
    "Create": {"create", "patch"},
    "Update": {"patch"},
    "Delete": {"delete"},
    "LateInitialize": set(),
}


def granted(namespace: str | None) -> set[tuple[str, str, str]]:
    """(group, resource, verb) that rbac.yaml grants in `namespace` (None: cluster-scoped)."""
    out = set()
    bound = {
        (d["roleRef"]["kind"], d["roleRef"]["name"], d["metadata"].get("namespace"))
        for d in docs(DEPLOY / "rbac.yaml")
        if d["kind"].endswith("Binding")
    }
    for role in docs(DEPLOY / "rbac.yaml"):
        if role["kind"] not in ("Role", "ClusterRole"):
            continue
        role_ns = role["metadata"].get("namespace")
        binding_ns = role_ns if role["kind"] == "Role" else None
        if (role["kind"], role["metadata"]["name"], binding_ns) not in bound:
            continue
        if role["kind"] == "Role" and role_ns != namespace:
            continue
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out |= {(group, resource, verb) for verb in rule["verbs"]}
    return out


def test_every_golden_pool_renders_provider_objects() -> None:
    assert len(GOLDEN_POOLS) >= 10, GOLDEN_POOLS


@pytest.mark.parametrize("golden", GOLDEN_POOLS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rbac_grants_what_every_pool_object_does(golden: Path) -> None:
    objects = [d for d in docs(golden) if d["kind"] == "Object"]
    assert objects
    for obj in objects:
        # Per-node Objects leave it to the Object CRD's default, {"name": "default"}.
        config = obj["spec"].get("providerConfigRef", {"name": "default"})
        assert config == {"name": wiring.PROVIDER_CONFIG}
        manifest = obj["spec"]["forProvider"]["manifest"]
        kind = manifest["kind"]
        assert kind in RESOURCES, f"{golden.name}: grant {kind} in rbac.yaml and list it here"
        group, resource = RESOURCES[kind]
        # No managementPolicies: the CRD's default ["*"], every policy.
        policies = obj["spec"].get("managementPolicies", ["*"])
        if "*" in policies:
            policies = list(VERBS)
        needed = set().union(*(VERBS[p] for p in policies))
        have = granted(manifest["metadata"].get("namespace"))
        missing = {v for v in needed if (group, resource, v) not in have}
        assert not missing, f"{golden.name}: {kind} needs {sorted(missing)}"


def test_rbac_grants_no_wildcards_and_nothing_cluster_wide_but_nodes() -> None:
    assert {(g, r) for g, r, _ in granted(None)} == {("", "nodes")}
    assert granted("default") == granted(None)  # no Role outside the GPU Operator's namespace
    for role in docs(DEPLOY / "rbac.yaml"):
        for rule in role.get("rules", []):
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
