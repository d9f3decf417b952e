"""GPUPool composition: device-plugin and mig-parted configs, node wiring, capacity.

The function asks Crossplane for the pool's Nodes (label selector = spec.nodeSelector), the
InferenceServices that may be bound to it and the other GPUPools (required resources). From GPU
feature discovery's labels on each Node it plans one MIG layout per GPU model (planning.py),
renders the GPU Operator's device-plugin and mig-parted configs and the node labels that select
them (wiring.py), and reports capacity and the nodes' `nvidia.com/mig.config.state`
(capacity.py); it also runs the node metrics agent on the nodes it owns (metricsagent.py).

Of the request it reads only what it needs of each Node (reads.py), and a pool too large for
one response is a fatal result naming its ceiling (PoolFunction.oversized; docs/gpupool.md
"Scale").

Config names end in a digest of their content, so a changed layout or sharing config changes
the node labels, which is what mig-manager and the device plugin's config-manager act on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common import peers
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.composer import (
    Composed,
    ComposeError,
    CompositionFunction,
    Request,
)
from functions.common.kinds import GPU_POOL, INFERENCE_SERVICE
from functions.common.meta import Owner
from functions.common.names import label_value
from functions.common.peers import Requirement
from functions.gpupool import (
    budget,
    capacity,
    deviceplugin,
    disruption,
    dra,
    metricsagent,
    reads,
    wiring,
)
from functions.gpupool.nodes import (
    COUNT_LABEL,
    MIG_CONFIG_LABEL,
    PLUGIN_CONFIG_LABEL,
    PRODUCT_LABEL,
    Node,
    listed,
    owned,
    parse_nodes,
)
from functions.gpupool.planning import MigPlan, digest, plan_mig

NODES = "nodes"
SERVICES = "inferenceservices"
POOLS = "gpupools"


def requirements(req: Request[GPUPoolSpec]) -> list[Requirement]:
    return [
        Requirement(NODES, "v1", "Node", match_labels=dict(req.spec.nodeSelector)),
        peers.composites(SERVICES, INFERENCE_SERVICE, req.form),
        peers.composites(POOLS, GPU_POOL, req.form),
    ]


def whole_gpus(wired: list[Node]) -> dict[str, str]:
    """Whole-GPU modes: MIG-capable nodes select all-disabled (MPS and time-slicing of whole
    GPUs need MIG off; a node a MIG pool used before would otherwise keep its instances)."""
    capable = [x.name for x in wired if x.model is not None and x.model.mig_capable]
    return dict.fromkeys(capable, wiring.ALL_DISABLED_CONFIG)


def node_objects(
    owner: Owner, wired: list[Node], plugin_key: str, node_config: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The per-Node Objects: the device-plugin config, the MIG config where the pool sets one,
    and the owner label (which pool configures the node; its metrics agent selects it)."""
    out = {}
    for node in wired:
        labels = {PLUGIN_CONFIG_LABEL: plugin_key, metricsagent.POOL_LABEL: owner.child()}
        if node.name in node_config:
            labels[MIG_CONFIG_LABEL] = node_config[node.name]
        out[f"{reads.NODE_OBJECT_PREFIX}{node.name}"] = wiring.node_labels(owner, node, labels)
    return out


def unlabelled(nodes: list[Node], wired: list[Node]) -> list[str]:
    """A warning naming the pool's nodes that cannot be planned or labelled."""
    if len(wired) == len(nodes):
        return []
    return [
        f"nodes {listed(x.name for x in nodes if x not in wired)} have no known "
        f"{PRODUCT_LABEL}/{COUNT_LABEL} labels (GPU feature discovery not run yet, or a "
        "GPU not in the catalog); they are not planned or labelled"
    ]


def pool_nodes(req: Request[GPUPoolSpec]) -> tuple[list[Node], list[str]]:
    """The Nodes Crossplane sent for the pool's selector. How many a pool can configure is
    bounded by the bytes of its response, not by a count (PoolFunction.oversized)."""
    return parse_nodes(req.required.get(NODES, []))


def compose_dra(req: Request[GPUPoolSpec]) -> Composed:
    """allocation dra: nothing for the GPU Operator to read; status and warnings only."""
    spec = req.spec
    matched, unreadable = pool_nodes(req)
    nodes = matched if NODES in req.required else None
    slices = req.required.get(dra.SLICES)
    pools = peers.gpu_pools(req.required.get(POOLS, []))
    services = peers.inference_services(req.required.get(SERVICES, []))
    status, found, conditions = dra.report(req.owner.name, spec, nodes, slices, services.found)
    agent_warnings, agent = metricsagent.report_dra(spec)
    warnings = [*unreadable, *pools.warnings, *services.warnings, *found, *agent_warnings]
    return Composed(
        {}, status, warnings, [agent, *conditions], [*requirements(req), dra.REQUIREMENT]
    )


def compose(req: Request[GPUPoolSpec]) -> Composed:
    spec, owner = req.spec, req.owner
    if spec.allocation == "dra":
        return compose_dra(req)
    try:
        shares, warnings = deviceplugin.replicas(spec)
    except ValueError as err:
        raise ComposeError(str(err)) from err
    pools = peers.gpu_pools(req.required.get(POOLS, []))
    services = peers.inference_services(req.required.get(SERVICES, []))
    matched, unreadable = pool_nodes(req)
    nodes, overlaps = owned(owner.name, req.created, matched, pools.found)
    warnings += [*unreadable, *pools.warnings, *services.warnings, *overlaps]
    wired = [x for x in nodes if x.wired]
    warnings += unlabelled(nodes, wired)
    status: dict[str, Any] = {
        "mode": spec.sharing.mode,
        "devicePluginConfigMap": wiring.SHARED_DEVICE_PLUGIN_CONFIGMAP,
    }
    resources: dict[str, dict[str, Any]] = {}
    mig_plan: MigPlan | None = None
    if spec.sharing.mode == "mig":
        mig_plan = plan_mig(spec, owner.name, wired, req.status)
        own = deviceplugin.mig_parted_config(mig_plan.layouts)["mig-configs"]
        status["migPartedConfigs"] = wiring.to_yaml(own)
        resources["mig-parted-config"] = wiring.mig_parted_config(owner, own, pools.found)
        status["migConfigMap"] = wiring.SHARED_MIG_PARTED_CONFIGMAP
        status["migPlans"] = mig_plan.status
        warnings += mig_plan.warnings
        node_config = mig_plan.node_config
    else:
        node_config = whole_gpus(wired)
        if node_config:
            resources["mig-parted-config"] = wiring.mig_parted_config(owner, {}, pools.found)
            status["migConfigMap"] = wiring.SHARED_MIG_PARTED_CONFIGMAP
    status["resources"] = capacity.per_node_resources(spec, wired, mig_plan, shares)
    plugin = deviceplugin.device_plugin_config(spec, mig_plan.resources if mig_plan else [], shares)
    key = label_value(owner.name, digest(plugin))
    status["devicePluginConfig"] = key
    resources["device-plugin-config"] = wiring.device_plugin_config(owner, key, plugin)
    resources |= {
        **node_objects(owner, wired, key, node_config),
        **metricsagent.resources(owner, spec),
    }
    agent = metricsagent.report(owner, spec, req.observed.get(metricsagent.DAEMONSET))
    status.update(agent.fields())
    conditions = [agent.condition]
    if NODES in req.required:
        found = capacity.report(
            owner.name, spec, nodes, wired, mig_plan, node_config, shares, services.found
        )
        status.update(found.status)
        warnings += found.warnings
        conditions += found.conditions
        if mig_plan is not None:
            changes, condition = disruption.report(
                owner.name, mig_plan.models, wired, req.status, services.found
            )
            status.update(changes)
            conditions.append(condition)
    else:
        warnings.append(
            "the pool's Nodes have not been read yet (required resources): layouts are planned "
            "for every GPU model offering the profiles and no node is labelled yet"
        )
    return Composed(resources, status, warnings, conditions, requirements(req))


TTL = timedelta(minutes=1)
"""Response TTL: the pool reads Nodes, which change outside Crossplane, and at scale Crossplane's
circuit breaker drops its watch events, so this requeue is what keeps its status current
(docs/performance.md)."""


class PoolFunction(CompositionFunction[GPUPoolSpec]):
    """The GPUPool function: reads only what it needs of the Nodes (reads.py), and refuses a
    pool whose response would not fit Crossplane's gRPC limit in some state (budget.py)."""

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        return super().run(reads.trimmed(req, NODES, POOLS))

    def fits(self, rsp: fnv1.RunFunctionResponse, size: int) -> bool:
        return budget.fits(rsp, size)

    def oversized(self, rsp: fnv1.RunFunctionResponse, size: int) -> str:
        found = budget.measure(rsp, size)
        return budget.message(found) if found.nodes else super().oversized(rsp, size)


def runner() -> CompositionFunction[GPUPoolSpec]:
    # reads.trimmed drops what the pool never reads of a Node in protobuf; of what is left only
    # metadata (name, labels) is converted to dicts.
    return PoolFunction(GPU_POOL, compose, reads={NODES: ("metadata",)}, ttl=TTL)
