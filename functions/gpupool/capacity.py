"""What a pool offers and what its bound InferenceServices take: capacity, node state, status.

Capacity is counted per advertised extended resource name: physical devices (GPUs or MIG
instances) on the pool's nodes, schedulable ones (times the time-slicing/MPS shares per device),
what bound services request (replicas x devices per replica) and what is left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crossplane.function import resource

from functions.common import sharing
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.gpus import GPUModel, base_product
from functions.common.peers import InferenceServicePeer
from functions.gpupool.nodes import MIG_CONFIG_LABEL, Node, listed
from functions.gpupool.planning import MigPlan, ModelPlan

GPU = sharing.GPU


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


def devices_by_node(
    spec: GPUPoolSpec, nodes: Iterable[Node], plans: Mapping[GPUModel, ModelPlan]
) -> dict[str, Counter[str]]:
    """node_devices of each node, computed once per GPU model and GPU count: a pool's nodes
    are a few kinds of server, however many there are."""
    kinds: dict[tuple[str | None, int | None], Counter[str]] = {}
    out = {}
    for node in nodes:
        kind = (node.model.key if node.model else None, node.gpus)
        if kind not in kinds:
            kinds[kind] = node_devices(spec, node, plans)
        out[node.name] = kinds[kind]
    return out


def shared_resources(spec: GPUPoolSpec, devices: Iterable[str]) -> set[str]:
    """Resource names the device plugin replicates (time-slicing or MPS)."""
    mode, over = spec.sharing.mode, spec.oversubscription.enabled
    return {d for d in devices if sharing.replicated(d, mode, over)}


def bound_requests(pool: str, services: Iterable[InferenceServicePeer]) -> Counter[str]:
    """What InferenceServices bound to `pool` request, keyed by resource name."""
    out: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    for svc in services:
        spec, status = svc.spec, svc.status
        # The pool the InferenceService function bound it to, else the one it names.
        pool_ref = status.pool or (spec.gpu.poolRef.name if spec.gpu.poolRef else None)
        ident = (svc.namespace or "", svc.name)
        if pool_ref != pool or not status.gpuResource or ident in seen:
            continue
        seen.add(ident)
        replicas = status.desiredReplicas if status.desiredReplicas is not None else spec.replicas
        out[status.gpuResource] += replicas * (status.gpusPerReplica or 1)
    return out


def capacity(
    spec: GPUPoolSpec,
    nodes: list[Node],
    plans: Mapping[GPUModel, ModelPlan],
    shares: int,
    requested: Counter[str],
) -> dict[str, dict[str, int]]:
    """status.capacity: per advertised resource name, `shares` per replicated device."""
    physical: Counter[str] = Counter()
    for devices in devices_by_node(spec, nodes, plans).values():
        physical.update(devices)
    shared = shared_resources(spec, physical)
    out: dict[str, dict[str, int]] = {}
    for base, count in sorted(physical.items()):
        name = f"{base}.shared" if base in shared else base
        schedulable = count * (shares if base in shared else 1)
        out[name] = {"physical": count, "schedulable": schedulable}
    for name in requested:
        out.setdefault(name, {"physical": 0, "schedulable": 0})
    for name, cap in out.items():
        cap["requested"] = requested.get(name, 0)
        cap["available"] = cap["schedulable"] - cap["requested"]
    return dict(sorted(out.items()))


def per_node_resources(
    spec: GPUPoolSpec, wired: list[Node], mig_plan: MigPlan | None, shares: int
) -> dict[str, int]:
    """status.resources: schedulable devices of the pool's largest node (or, before any node is
    known, what one node must expose)."""
    plans = mig_plan.models if mig_plan else {}
    if wired:
        found = devices_by_node(spec, wired, plans)
        biggest = max(found, key=lambda name: (found[name].total(), name))
        devices = found[biggest]
    elif mig_plan:
        first = next(iter(plans.values()))
        devices = Counter(
            {
                first.model.profile(p.name).resource_name: p.count  # type: ignore[union-attr]
                for p in spec.sharing.profiles
            }
        )
    else:
        devices = Counter()
    shared = shared_resources(spec, [*(mig_plan.resources if mig_plan else []), GPU])
    return {
        (f"{r}.shared" if r in shared else r): c * (shares if r in shared else 1)
        for r, c in sorted(devices.items())
    }


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


@dataclass
class Report:
    """What the pool's nodes and bound services say, for status and conditions."""

    status: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    conditions: list[resource.Condition] = field(default_factory=list)


def report(
    pool: str,
    spec: GPUPoolSpec,
    nodes: list[Node],
    wired: list[Node],
    mig_plan: MigPlan | None,
    node_config: Mapping[str, str],
    shares: int,
    services: Iterable[InferenceServicePeer],
) -> Report:
    """Capacity and node state of pool `pool` from its nodes and the services bound to it."""
    out = Report()
    out.status["nodes"] = len(nodes)
    out.status["gpuProducts"] = sorted({base_product(x.product) for x in wired if x.product})
    if not nodes:
        # Sorted: the selector arrives in protobuf map order, which differs between processes.
        selector = dict(sorted(spec.nodeSelector.items()))
        out.warnings.append(
            f"no Node matches spec.nodeSelector {selector}; nothing is labelled and the pool "
            "has no capacity"
        )
    requested = bound_requests(pool, services)
    cap = capacity(spec, wired, mig_plan.models if mig_plan else {}, shares, requested)
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
    return out
