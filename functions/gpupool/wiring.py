"""Node wiring: the provider-kubernetes Objects through which a pool configures the GPU Operator.

- the shared device-plugin ConfigMap `inference-platform-device-plugin` (gpu-operator): one key
  per pool config (`<pool>-<digest>`), server-side applied by each pool; never deleted, since
  every pool uses it;
- the shared mig-parted ConfigMap `inference-platform-mig-parted` (the one the ClusterPolicy
  can name): `config.yaml` with every MIG pool's layouts merged with `all-disabled`. Each pool
  publishes its own layouts in `status.migPartedConfigs` and reads the other pools', so whichever
  pool applies last writes the same merged document;
- per Node, an Object that applies only the `nvidia.com/device-plugin.config` and
  `nvidia.com/mig.config` labels with management policies `Observe` and `Update`: the Node is
  never created, adopted for deletion or otherwise written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from crossplane.function import resource

from functions.common import names
from functions.common.meta import Owner
from functions.common.peers import GPUPoolPeer
from functions.gpupool.nodes import MIG_CONFIG_LABEL, MIG_STATE_LABEL, Node

GPU_OPERATOR_NAMESPACE = "gpu-operator"
COMPONENT = "gpu-sharing"
SHARED_DEVICE_PLUGIN_CONFIGMAP = "inference-platform-device-plugin"
SHARED_MIG_PARTED_CONFIGMAP = "inference-platform-mig-parted"
# mig-manager selects all-disabled for MIG-enabled nodes without a nvidia.com/mig.config label
# (ClusterPolicy migManager.config.default), so the shared ConfigMap must offer it.
ALL_DISABLED_CONFIG = "all-disabled"
ALL_DISABLED = {ALL_DISABLED_CONFIG: [{"devices": "all", "mig-enabled": False}]}
PROVIDER_KUBERNETES = "kubernetes.crossplane.io/v1alpha2"
PROVIDER_CONFIG = "default"


# libyaml's emitter where the yaml package has it: the same text (tests/unit/test_deviceplugin.py),
# about 4x faster on a pool's per-GPU mig-parted entries, rendered on every reconcile.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.dump(obj, Dumper=_DUMPER, sort_keys=False, width=1000)


def provider_object(
    owner: Owner,
    name: str,
    manifest: dict[str, Any],
    policies: list[str],
    readiness: dict[str, str] | None = None,
    *,
    component: str = COMPONENT,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "managementPolicies": policies,
        "forProvider": {"manifest": manifest},
        "providerConfigRef": {"name": PROVIDER_CONFIG},
    }
    if readiness:
        spec["readiness"] = readiness
    return {
        "apiVersion": PROVIDER_KUBERNETES,
        "kind": "Object",
        "metadata": owner.metadata(name, component),
        "spec": spec,
    }


def node_object(
    name: str, manifest: dict[str, Any], readiness: dict[str, str] | None
) -> dict[str, Any]:
    """A per-node Object, as small as it can be: a pool renders one per Node and the response
    carries them all within Crossplane's 4 MiB (a 5,000-node pool's first render, every node
    with a pending MIG change, is then about 3.8 MB). No labels: Crossplane labels it with
    `crossplane.io/composite` (the pool), and the recommended labels would be a third of its
    bytes. No providerConfigRef: the Object CRD defaults it to `default`, PROVIDER_CONFIG."""
    spec: dict[str, Any] = {"managementPolicies": ["Observe", "Update"]}
    spec["forProvider"] = {"manifest": manifest}
    if readiness:
        spec["readiness"] = readiness
    return {
        "apiVersion": PROVIDER_KUBERNETES,
        "kind": "Object",
        "metadata": {"name": name},
        "spec": spec,
    }


def object_name(owner: Owner, suffix: str) -> str:
    """A cluster-scoped Object's name: `<pool>-<suffix>`, hashed only beyond 253 characters."""
    return names.derived(owner.name, suffix, limit=names.MAX_SUBDOMAIN, dns_1035=False)


def shared_config_map(
    owner: Owner, name: str, configmap: str, data: dict[str, str]
) -> dict[str, Any]:
    """An Object applying `data` keys of a ConfigMap several pools share."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap, "namespace": GPU_OPERATOR_NAMESPACE},
        "data": data,
    }
    # Create the shared ConfigMap if no pool has yet; never delete it (other pools use it).
    return provider_object(owner, name, manifest, ["Observe", "Create", "Update"])


def device_plugin_config(owner: Owner, key: str, plugin: dict[str, Any]) -> dict[str, Any]:
    """The pool's device-plugin config as key `key` of the shared ConfigMap."""
    return shared_config_map(
        owner,
        names.derived(
            owner.name, "device-plugin-config", limit=names.MAX_SUBDOMAIN, dns_1035=False
        ),
        SHARED_DEVICE_PLUGIN_CONFIGMAP,
        {key: to_yaml(plugin)},
    )


def other_pools_mig_configs(name: str, pools: Iterable[GPUPoolPeer]) -> dict[str, Any]:
    """mig-parted layouts other MIG pools published in status.migPartedConfigs."""
    out: dict[str, Any] = {}
    for pool in sorted(pools, key=lambda p: p.name):
        if pool.name == name or pool.spec.sharing.mode != "mig":
            continue
        text = pool.status.migPartedConfigs
        try:
            configs = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            configs = None
        if isinstance(configs, dict):
            out.update({k: v for k, v in configs.items() if k not in ALL_DISABLED})
    return out


def mig_parted_config(
    owner: Owner, own: dict[str, Any], pools: Iterable[GPUPoolPeer]
) -> dict[str, Any]:
    """The shared mig-parted ConfigMap: all-disabled, the other MIG pools' layouts, ours."""
    merged = {**other_pools_mig_configs(owner.name, pools), **own}
    document = {"version": "v1", "mig-configs": {**ALL_DISABLED, **dict(sorted(merged.items()))}}
    return shared_config_map(
        owner,
        object_name(owner, "mig-parted-config"),
        SHARED_MIG_PARTED_CONFIGMAP,
        {"config.yaml": to_yaml(document)},
    )


def node_object_name(pool: str, node: str) -> str:
    """The name of the Object that labels `node` (always hashed: node names are long)."""
    name = resource.child_name(pool, node)
    return name if names.is_dns_subdomain(name) else names.derived(f"{pool}-{node}", dns_1035=False)


def node_labels(owner: Owner, node: Node, labels: dict[str, str]) -> dict[str, Any]:
    """An Object that applies `labels` to an existing Node; with a MIG config it is ready once
    mig-manager reports success."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": labels},
    }
    readiness = None
    if MIG_CONFIG_LABEL in labels:
        readiness = {
            "policy": "DeriveFromCelQuery",
            "celQuery": f"'{MIG_STATE_LABEL}' in object.metadata.labels && "
            f"object.metadata.labels['{MIG_STATE_LABEL}'] == 'success'",
        }
    # Observe + Update only: never create a Node, never delete one.
    return node_object(node_object_name(owner.name, node.name), manifest, readiness)
