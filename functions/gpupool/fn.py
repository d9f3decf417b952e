"""GPUPool composition: device-plugin and mig-parted configs, node wiring, capacity.

The function asks Crossplane for the pool's Nodes (label selector = spec.nodeSelector) and for
the InferenceServices that may be bound to it (required resources). From GPU feature
discovery's labels on each Node (`nvidia.com/gpu.product`, `nvidia.com/gpu.count`) it plans one
MIG layout per GPU model, renders:

- `mig-parted-config`: a provider-kubernetes `Object` that server-side applies `config.yaml` of
  the ConfigMap `inference-platform-mig-parted` (the one mig-parted ConfigMap the ClusterPolicy
  can name): every MIG pool's layouts (`<pool>-<model>-<digest>`) merged with `all-disabled`.
  Each pool publishes its own layouts in `status.migPartedConfigs` and reads the other pools'
  (required resources), so whichever pool applies last writes the same merged document;
  whole-GPU pools with MIG-capable nodes apply it too and select `all-disabled`;
- `device-plugin-config`: a provider-kubernetes `Object` that server-side applies one key
  (`<pool>-<digest>`) into the ConfigMap `inference-platform-device-plugin` that all pools
  share; its management policies leave out `Delete`, so no pool ever deletes the shared
  ConfigMap;
- `node-<name>`: one `Object` per Node that applies only the `nvidia.com/device-plugin.config`
  and `nvidia.com/mig.config` labels, with management policies `Observe` and `Update`: the Node
  is never created, adopted for deletion or otherwise written.

Config names end in a digest of their content, so a changed layout or sharing config changes
the node labels, which is what mig-manager and the device plugin's config-manager act on.
The function reports capacity (physical, schedulable, requested, available per resource name)
and the nodes' `nvidia.com/mig.config.state` in status and conditions.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from crossplane.function import resource

from functions.common import sharing
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.composer import (
    Composed,
    ComposeError,
    CompositionFunction,
    Request,
    Requirement,
)
from functions.common.gpus import (
    GPUModel,
    base_product,
    model_for_product,
    models_with_profiles,
)
from functions.common.kinds import API_VERSION, GPU_POOL, INFERENCE_SERVICE
from functions.gpupool import mig
from functions.gpupool.deviceplugin import GPU, device_plugin_config, mig_parted_config, replicas

GPU_OPERATOR_NAMESPACE = "gpu-operator"
COMPONENT = "gpu-sharing"
SHARED_DEVICE_PLUGIN_CONFIGMAP = "inference-platform-device-plugin"
SHARED_MIG_PARTED_CONFIGMAP = "inference-platform-mig-parted"
# mig-manager selects all-disabled for MIG-enabled nodes without a nvidia.com/mig.config label
# (ClusterPolicy migManager.config.default), so the shared ConfigMap must offer it.
ALL_DISABLED = {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
PROVIDER_KUBERNETES = "kubernetes.crossplane.io/v1alpha2"
PROVIDER_CONFIG = "default"

PRODUCT_LABEL = "nvidia.com/gpu.product"
COUNT_LABEL = "nvidia.com/gpu.count"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
MIG_STATE_LABEL = "nvidia.com/mig.config.state"
PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"

NODES = "nodes"
SERVICES = "inferenceservices"
POOLS = "gpupools"
MAX_LISTED = 5


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=1000)


@dataclass(frozen=True)
class Node:
    name: str
    model: GPUModel | None
    product: str | None
    gpus: int | None
    labels: Mapping[str, str]

    @property
    def mig_state(self) -> str:
        return self.labels.get(MIG_STATE_LABEL, "unknown")


def read_nodes(objs: Iterable[dict[str, Any]]) -> list[Node]:
    out = []
    for obj in objs:
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        product = labels.get(PRODUCT_LABEL)
        try:
            gpus: int | None = int(labels[COUNT_LABEL])
        except (KeyError, ValueError):
            gpus = None
        model = model_for_product(product) if product else None
        out.append(Node(meta.get("name", ""), model, product, gpus, labels))
    return sorted(out, key=lambda n: n.name)


def digest(obj: Any) -> str:
    """Six hex digits of the content: in a config name, a changed layout gets a new name, so
    the label changes and mig-manager / the device plugin's config-manager act on it (neither
    watches ConfigMap content)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:6]


def label_value(*parts: str) -> str:
    """`a-b` as a label value (at most 63 characters; longer ones end in a hash)."""
    joined = "-".join(parts)
    return joined if len(joined) <= 63 else resource.child_name(*parts)


def listed(names: Iterable[str]) -> str:
    names = sorted(names)
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


# --- MIG planning --------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPlan:
    model: GPUModel
    plan: mig.Plan
    config_name: str
    gpus: tuple[dict[str, int], ...]
    """Layout per GPU index, leftover policy applied ({} = MIG disabled, whole GPU)."""
    nodes: tuple[Node, ...] = ()


def profile_counts(spec: GPUPoolSpec) -> dict[str, int]:
    counts = {p.name: p.count for p in spec.sharing.profiles}
    if len(counts) != len(spec.sharing.profiles):
        raise ComposeError("spec.sharing.profiles: each MIG profile may be listed once")
    return counts


def describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} x{c}" for n, c in sorted(counts.items()))


def with_leftover(
    spec: GPUPoolSpec, model: GPUModel, plan: mig.Plan, gpus: int
) -> tuple[dict[str, int], ...]:
    policy = spec.sharing.leftover or "whole"
    used = list(plan.gpus)
    if policy == "fill":
        names = [p.name for p in spec.sharing.profiles]
        used = [mig.fill(model, layout, names) for layout in used]
        spare = mig.fill(model, {}, names)
    elif policy == "balanced":
        spare = model.balanced
    else:
        spare = {}
    return (*used, *[spare] * max(0, gpus - len(used)))


def plan_model(spec: GPUPoolSpec, name: str, model: GPUModel, nodes: tuple[Node, ...]) -> ModelPlan:
    counts = profile_counts(spec)
    try:
        plan = mig.solve(model, counts)
    except ValueError as err:
        where = f" (nodes {listed(n.name for n in nodes)})" if nodes else ""
        raise ComposeError(f"spec.sharing.profiles: {err}{where}") from err
    per_node = max((n.gpus or 0 for n in nodes), default=len(plan))
    too_small = [n for n in nodes if n.gpus is not None and n.gpus < len(plan)]
    if too_small:
        smallest = min(n.gpus or 0 for n in too_small)
        fit = mig.max_counts(model, counts, smallest)
        instead = ", ".join(f"{p} x{c}" for p, c in fit.items() if c < counts[p])
        raise ComposeError(
            f"spec.sharing.profiles: {describe(counts)} per node needs {len(plan)} "
            f"{model.key} GPUs, but node(s) {listed(n.name for n in too_small)} have "
            f"{smallest}; what fits on {smallest} (each profile alone reduced, the others "
            f"kept): {instead}"
        )
    gpus = with_leftover(spec, model, plan, per_node)
    return ModelPlan(
        model, plan, label_value(name, model.key, digest([model.device_ids, gpus])), gpus, nodes
    )


def mig_plans(spec: GPUPoolSpec, name: str, nodes: list[Node]) -> list[ModelPlan]:
    counts = profile_counts(spec)
    if not nodes:
        models = models_with_profiles(tuple(counts))
        if not models:
            raise ComposeError(
                "spec.sharing.profiles: no MIG-capable GPU offers all of "
                f"{', '.join(sorted(counts))}; profile names are per GPU model (e.g. 3g.40gb "
                "on A100-80GB/H100-80GB, 3g.20gb on A100-40GB)"
            )
        return [plan_model(spec, name, m, ()) for m in models]
    by_model: dict[GPUModel, list[Node]] = {}
    for node in nodes:
        if node.model is None or node.gpus is None:
            continue
        if not node.model.mig_capable:
            raise ComposeError(
                f"spec.sharing.mode: node {node.name} has {node.product} ({node.model.key}), "
                "which does not support MIG; narrow spec.nodeSelector to MIG-capable nodes "
                f"or use mode exclusive, mps or timeslice"
            )
        missing = sorted(n for n in counts if node.model.profile(n) is None)
        if missing:
            offered = ", ".join(p.name for p in node.model.profiles)
            raise ComposeError(
                f"spec.sharing.profiles: {', '.join(missing)} does not exist on node "
                f"{node.name}'s {node.model.key} (profiles there: {offered})"
            )
        by_model.setdefault(node.model, []).append(node)
    return [
        plan_model(spec, name, model, tuple(group))
        for model, group in sorted(by_model.items(), key=lambda kv: kv[0].key)
    ]


def mig_parted(plans: list[ModelPlan]) -> dict[str, Any]:
    return mig_parted_config({p.config_name: (p.model, list(p.gpus)) for p in plans})


# --- node wiring ---------------------------------------------------------------------------


def provider_object(
    req: Request[GPUPoolSpec],
    name: str,
    manifest: dict[str, Any],
    policies: list[str],
    readiness: dict[str, str] | None = None,
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
        "metadata": req.owner.metadata(name, COMPONENT),
        "spec": spec,
    }


def shared_config_map(
    req: Request[GPUPoolSpec], name: str, configmap: str, data: dict[str, str]
) -> dict[str, Any]:
    """An Object applying `data` keys of a ConfigMap several pools share."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap, "namespace": GPU_OPERATOR_NAMESPACE},
        "data": data,
    }
    # Create the shared ConfigMap if no pool has yet; never delete it (other pools use it).
    return provider_object(req, name, manifest, ["Observe", "Create", "Update"])


def shared_plugin_config(
    req: Request[GPUPoolSpec], key: str, plugin: dict[str, Any]
) -> dict[str, Any]:
    return shared_config_map(
        req,
        f"{req.owner.name}-device-plugin-config",
        SHARED_DEVICE_PLUGIN_CONFIGMAP,
        {key: to_yaml(plugin)},
    )


def other_pools_mig_configs(req: Request[GPUPoolSpec]) -> dict[str, Any]:
    """mig-parted layouts other MIG pools published in status.migPartedConfigs."""
    out: dict[str, Any] = {}
    for pool in sorted(req.required.get(POOLS, []), key=lambda p: p["metadata"]["name"]):
        if pool["metadata"]["name"] == req.owner.name:
            continue
        if ((pool.get("spec") or {}).get("sharing") or {}).get("mode") != "mig":
            continue
        text = (pool.get("status") or {}).get("migPartedConfigs")
        try:
            configs = yaml.safe_load(text) if text else None
        except yaml.YAMLError:
            configs = None
        if isinstance(configs, dict):
            out.update({k: v for k, v in configs.items() if k not in ALL_DISABLED})
    return out


def node_labeller(req: Request[GPUPoolSpec], node: Node, labels: dict[str, str]) -> dict[str, Any]:
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
    return provider_object(
        req,
        resource.child_name(req.owner.name, node.name),
        manifest,
        ["Observe", "Update"],
        readiness,
    )


# --- capacity ------------------------------------------------------------------------------


def node_devices(
    spec: GPUPoolSpec, node: Node, plans: Mapping[GPUModel, ModelPlan]
) -> Counter[str]:
    """Physical devices one node exposes, by resource name (before time-slicing/MPS)."""
    gpus = node.gpus or 0
    if spec.sharing.mode != "mig":
        return Counter({GPU: gpus})
    plan = plans.get(node.model) if node.model else None
    out: Counter[str] = Counter()
    if plan is None:
        return out
    for layout in plan.gpus[:gpus]:
        if not layout:
            out[GPU] += 1
        for profile_name, count in layout.items():
            profile = plan.model.profile(profile_name)
            assert profile is not None
            out[profile.resource_name] += count
    return out


def shared_resources(spec: GPUPoolSpec, devices: Iterable[str]) -> set[str]:
    """Resource names the device plugin replicates (time-slicing or MPS)."""
    mode, over = spec.sharing.mode, spec.oversubscription.enabled
    return {d for d in devices if sharing.replicated(d, mode, over)}


def bound_requests(name: str, objs: Iterable[dict[str, Any]]) -> Counter[str]:
    """What InferenceServices bound to the pool request, keyed by resource name."""
    out: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for obj in sorted(
        objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"].get("name", ""))
    ):
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        ident = (
            labels.get("crossplane.io/claim-namespace") or meta.get("namespace") or "",
            labels.get("crossplane.io/claim-name") or meta.get("name", ""),
        )
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        # The pool the InferenceService function bound it to, else the one it names.
        pool_ref = status.get("pool") or ((spec.get("gpu") or {}).get("poolRef") or {}).get("name")
        gpu_resource = status.get("gpuResource")
        if pool_ref != name or not gpu_resource or ident in seen:
            continue
        seen.add(ident)
        replicas_ = status.get("desiredReplicas", spec.get("replicas", 1))
        out[gpu_resource] += int(replicas_) * int(status.get("gpusPerReplica") or 1)
    return out


def capacity(
    spec: GPUPoolSpec,
    nodes: list[Node],
    plans: Mapping[GPUModel, ModelPlan],
    n: int,
    requested: Counter[str],
) -> dict[str, dict[str, int]]:
    physical: Counter[str] = Counter()
    for node in nodes:
        physical.update(node_devices(spec, node, plans))
    shared = shared_resources(spec, physical)
    out: dict[str, dict[str, int]] = {}
    for base, count in sorted(physical.items()):
        name = f"{base}.shared" if base in shared else base
        schedulable = count * (n if base in shared else 1)
        out[name] = {"physical": count, "schedulable": schedulable}
    for name in requested:
        out.setdefault(name, {"physical": 0, "schedulable": 0})
    for name, cap in out.items():
        cap["requested"] = requested.get(name, 0)
        cap["available"] = cap["schedulable"] - cap["requested"]
    return dict(sorted(out.items()))


def capacity_condition(cap: Mapping[str, Mapping[str, int]]) -> resource.Condition:
    short = sorted(r for r, c in cap.items() if c["available"] < 0)
    if short:
        return resource.Condition(
            "CapacityAvailable",
            "False",
            "Overcommitted",
            "bound InferenceServices request more than the pool advertises: "
            + ", ".join(f"{r} {cap[r]['requested']}/{cap[r]['schedulable']}" for r in short),
        )
    return resource.Condition(
        "CapacityAvailable", "True", "WithinCapacity", "bound requests fit the advertised capacity"
    )


def mig_condition(nodes: list[Node], wanted: Mapping[str, str]) -> resource.Condition:
    """nvidia.com/mig.config.state of the pool's nodes, as one condition."""
    failed = [n.name for n in nodes if n.mig_state == "failed"]
    waiting = [
        n.name
        for n in nodes
        if n.name in wanted
        and (n.mig_state != "success" or n.labels.get(MIG_CONFIG_LABEL) != wanted[n.name])
    ]
    if failed:
        return resource.Condition(
            "MigConfigApplied",
            "False",
            "Failed",
            f"mig-manager failed on {listed(failed)} (nvidia.com/mig.config.state=failed); "
            "see the nvidia-mig-manager logs on those nodes",
        )
    if waiting:
        return resource.Condition(
            "MigConfigApplied",
            "False",
            "Pending",
            f"waiting for mig-manager on {listed(waiting)}",
        )
    return resource.Condition(
        "MigConfigApplied", "True", "Success", f"{len(wanted)} node(s) report success"
    )


def _seniority(pool: Mapping[str, Any]) -> tuple[str, str]:
    meta = pool.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def _selects(pool: Mapping[str, Any], node: Node) -> bool:
    selector = (pool.get("spec") or {}).get("nodeSelector") or {}
    return all(node.labels.get(k) == v for k, v in selector.items())


def unclaimed(req: Request[GPUPoolSpec], nodes: list[Node], out: Composed) -> list[Node]:
    """The nodes this pool may configure. A node that other pools' selectors match too would get
    conflicting labels (the provider Objects would overwrite each other's device-plugin and MIG
    configs on every poll, and mig-manager would repartition it each time), so it belongs to the
    oldest of them (name breaks ties): the others leave it alone, and each of them warns."""
    me = {"metadata": req.composite.get("metadata") or {}}
    others = [p for p in req.required.get(POOLS, []) if p["metadata"]["name"] != req.owner.name]
    mine = []
    for node in nodes:
        rivals = [p for p in others if _selects(p, node)]
        owner = min([me, *rivals], key=_seniority)
        if owner is me:
            mine.append(node)
        if not rivals:
            continue
        names = listed(str(p["metadata"]["name"]) for p in rivals)
        verdict = (
            "it stays with this pool, the oldest"
            if owner is me
            else f"it is left to the oldest, {owner['metadata']['name']}, and not configured here"
        )
        out.warnings.append(
            f"node {node.name} is also selected by GPUPool {names}; {verdict}; make the pools' "
            "nodeSelectors disjoint"
        )
    return mine


# --- compose -------------------------------------------------------------------------------


def requirements(req: Request[GPUPoolSpec]) -> list[Requirement]:
    v2 = "crossplane" in (req.composite.get("spec") or {})
    services = INFERENCE_SERVICE.kind if v2 else INFERENCE_SERVICE.composite_kind
    return [
        Requirement(NODES, "v1", "Node", match_labels=dict(req.spec.nodeSelector)),
        Requirement(SERVICES, API_VERSION, services),
        Requirement(POOLS, API_VERSION, GPU_POOL.kind),
    ]


@dataclass
class MigOutput:
    plans: dict[GPUModel, ModelPlan]
    resources: list[str]
    """MIG resource names the planned GPUs expose (fill may add instances of any profile)."""
    node_config: dict[str, str]
    """Node name -> mig-parted config name it must select."""


def compose_mig(req: Request[GPUPoolSpec], wired: list[Node], out: Composed) -> MigOutput:
    spec, name = req.spec, req.owner.name
    plan_list = mig_plans(spec, name, wired)
    plans = {p.model: p for p in plan_list}
    own = mig_parted(plan_list)["mig-configs"]
    out.status["migPartedConfigs"] = to_yaml(own)
    apply_mig_parted(req, own, out)
    out.status["migPlans"] = {
        p.model.key: {
            "configName": p.config_name,
            "gpusUsed": len(p.plan),
            "optimal": p.plan.optimal,
            **({"nodes": len(p.nodes), "gpusPerNode": len(p.gpus)} if p.nodes else {}),
        }
        for p in plan_list
    }
    for p in plan_list:
        if not p.plan.optimal:
            out.warnings.append(
                f"MIG plan for {p.model.key} uses {len(p.plan)} GPUs per node; the exact "
                f"search hit its step limit, so fewer may be possible (lower bound "
                f"{p.plan.lower_bound})"
            )
    resources = sorted(
        {
            p.model.profile(profile).resource_name  # type: ignore[union-attr]
            for p in plan_list
            for layout in p.gpus
            for profile in layout
        }
    )
    node_config = {x.name: plans[x.model].config_name for x in wired if x.model}
    return MigOutput(plans, resources, node_config)


def apply_mig_parted(req: Request[GPUPoolSpec], own: dict[str, Any], out: Composed) -> None:
    """The shared mig-parted ConfigMap: all-disabled, the other MIG pools' layouts, ours."""
    merged = {**other_pools_mig_configs(req), **own}
    document = {"version": "v1", "mig-configs": {**ALL_DISABLED, **dict(sorted(merged.items()))}}
    out.resources["mig-parted-config"] = shared_config_map(
        req,
        f"{req.owner.name}-mig-parted-config",
        SHARED_MIG_PARTED_CONFIGMAP,
        {"config.yaml": to_yaml(document)},
    )
    out.status["migConfigMap"] = SHARED_MIG_PARTED_CONFIGMAP


def disable_mig(req: Request[GPUPoolSpec], wired: list[Node], out: Composed) -> dict[str, str]:
    """Whole-GPU modes: MIG-capable nodes select all-disabled (MPS and time-slicing of whole
    GPUs need MIG off; a node a MIG pool used before would otherwise keep its instances)."""
    capable = [x.name for x in wired if x.model is not None and x.model.mig_capable]
    if capable:
        apply_mig_parted(req, {}, out)
    return dict.fromkeys(capable, next(iter(ALL_DISABLED)))


def per_node_resources(
    spec: GPUPoolSpec, wired: list[Node], mig_out: MigOutput | None
) -> Counter[str]:
    """Physical devices of the pool's largest node (or what one node must expose)."""
    plans = mig_out.plans if mig_out else {}
    if wired:
        biggest = max(wired, key=lambda x: (sum(node_devices(spec, x, plans).values()), x.name))
        return node_devices(spec, biggest, plans)
    if mig_out:
        first = next(iter(plans.values()))
        return Counter(
            {
                first.model.profile(p.name).resource_name: p.count  # type: ignore[union-attr]
                for p in spec.sharing.profiles
            }
        )
    return Counter()


def observe(
    req: Request[GPUPoolSpec],
    nodes: list[Node],
    wired: list[Node],
    mig_out: MigOutput | None,
    node_config: dict[str, str],
    n: int,
    out: Composed,
) -> None:
    """Capacity and node state from the required resources, into status and conditions."""
    spec, name = req.spec, req.owner.name
    out.status["nodes"] = len(nodes)
    out.status["gpuProducts"] = sorted({base_product(x.product) for x in wired if x.product})
    if not nodes:
        out.warnings.append(
            f"no Node matches spec.nodeSelector {dict(spec.nodeSelector)}; nothing is "
            "labelled and the pool has no capacity"
        )
    requested = bound_requests(name, req.required.get(SERVICES, []))
    cap = capacity(spec, wired, mig_out.plans if mig_out else {}, n, requested)
    out.status["capacity"] = cap
    offered = {r for r, c in cap.items() if c["schedulable"]}
    for r in sorted(set(requested) - offered):
        out.warnings.append(
            f"InferenceServices bound to this pool request {r}, which its nodes do not "
            "advertise; they cannot schedule here"
        )
    out.conditions.append(capacity_condition(cap))
    if node_config:
        configured = [x for x in wired if x.name in node_config]
        out.status["nodeStates"] = dict(sorted(Counter(x.mig_state for x in configured).items()))
        out.conditions.append(mig_condition(configured, node_config))


def compose(req: Request[GPUPoolSpec]) -> Composed:
    spec, name = req.spec, req.owner.name
    try:
        n, warnings = replicas(spec)
    except ValueError as err:
        raise ComposeError(str(err)) from err
    out = Composed(
        resources={},
        status={
            "mode": spec.sharing.mode,
            "devicePluginConfigMap": SHARED_DEVICE_PLUGIN_CONFIGMAP,
        },
        warnings=warnings,
        requirements=requirements(req),
    )
    nodes = unclaimed(req, read_nodes(req.required.get(NODES, [])), out)
    wired = [x for x in nodes if x.model is not None and x.gpus is not None]
    if len(wired) < len(nodes):
        out.warnings.append(
            f"nodes {listed(x.name for x in nodes if x not in wired)} have no known "
            f"{PRODUCT_LABEL}/{COUNT_LABEL} labels (GPU feature discovery not run yet, or a "
            "GPU not in the catalog); they are not planned or labelled"
        )
    mig_out = compose_mig(req, wired, out) if spec.sharing.mode == "mig" else None
    shared = shared_resources(spec, [*(mig_out.resources if mig_out else []), GPU])
    out.status["resources"] = {
        (f"{r}.shared" if r in shared else r): c * (n if r in shared else 1)
        for r, c in sorted(per_node_resources(spec, wired, mig_out).items())
    }
    plugin = device_plugin_config(spec, mig_out.resources if mig_out else [], n)
    key = label_value(name, digest(plugin))
    out.status["devicePluginConfig"] = key
    out.resources["device-plugin-config"] = shared_plugin_config(req, key, plugin)
    node_config = mig_out.node_config if mig_out else disable_mig(req, wired, out)
    for node in wired:
        labels = {PLUGIN_CONFIG_LABEL: key}
        if node.name in node_config:
            labels[MIG_CONFIG_LABEL] = node_config[node.name]
        out.resources[f"node-{node.name}"] = node_labeller(req, node, labels)
    if NODES in req.required:
        observe(req, nodes, wired, mig_out, node_config, n, out)
    else:
        out.warnings.append(
            "the pool's Nodes have not been read yet (required resources): layouts are planned "
            "for every GPU model offering the profiles and no node is labelled yet"
        )
    return out


def runner() -> CompositionFunction[GPUPoolSpec]:
    return CompositionFunction(GPU_POOL, compose)
