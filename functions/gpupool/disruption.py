"""What a pending MIG change disrupts: per node, the GPUs mig-manager reconfigures and the bound
InferenceServices that use them.

From mig-parted v0.15.0, which the mig-manager of GPU Operator v26.7.0 runs:

- a GPU whose instances already match its entry is skipped (`cmd/nvidia-mig-parted/apply/
  config.go:85-95`); any other GPU loses all its instances before the entry's are created
  (`pkg/mig/config/config.go:125-148`);
- when any GPU's MIG mode must flip, every selected GPU with MIG enabled is cleared and then all
  GPUs are reset (`cmd/nvidia-mig-parted/apply/mode.go:56-129`): the whole node is disrupted.

A node is listed from the render that relabels it until it reports `success` on the new config.
The function does not read Pods, so the services listed are the bound ones requesting a resource
the affected GPUs expose, whose replicas may run there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crossplane.function import resource

from functions.common import sharing
from functions.common.gpus import GPUModel
from functions.common.peers import InferenceServicePeer
from functions.gpupool.nodes import MIG_CONFIG_LABEL, Node, listed
from functions.gpupool.planning import ModelPlan, previous_configs
from functions.gpupool.wiring import ALL_DISABLED_CONFIG

Layout = dict[str, int]
CONDITION = "ReplicasUndisturbed"


def _resources(model: GPUModel, layouts: Iterable[Layout | None]) -> set[str]:
    out: set[str] = set()
    for layout in layouts:
        if layout is None:
            out.update(p.resource_name for p in model.profiles)
            out.add(sharing.GPU)
        elif not layout:
            out.add(sharing.GPU)
        else:
            out.update(p.resource_name for p in map(model.profile, layout) if p is not None)
    return out


def _users(pool: str, services: Iterable[InferenceServicePeer], resources: set[str]) -> list[str]:
    out = set()
    for svc in services:
        spec, status = svc.spec, svc.status
        pool_ref = status.pool or (spec.gpu.poolRef.name if spec.gpu.poolRef else None)
        replicas = status.desiredReplicas if status.desiredReplicas is not None else spec.replicas
        wanted = (status.gpuResource or "").removesuffix(".shared")
        if pool_ref == pool and replicas and wanted in resources:
            out.add(f"{svc.namespace}/{svc.name}" if svc.namespace else svc.name)
    return sorted(out)


def node_change(
    node: Node, plan: ModelPlan, configs: Mapping[str, list[Layout | None]]
) -> tuple[list[int], list[int], set[str]] | None:
    """GPUs of `node` the relabelling to `plan` reconfigures, the MIG mode flips among them and
    the resources they exposed; None when the node already selects the plan."""
    label = node.labels.get(MIG_CONFIG_LABEL)
    if label == plan.config_name:
        return None
    count = node.gpus or 0
    new = plan.gpus[:count]
    if label is None or label == ALL_DISABLED_CONFIG:
        # mig-manager's default for unlabelled nodes is all-disabled (ClusterPolicy
        # migManager.config.default, docs/gpupool.md "Cluster setup").
        old: list[Layout | None] = [{}] * count
    else:
        known = configs.get(label, [])
        old = [known[i] if i < len(known) else None for i in range(count)]
    changed = [i for i in range(count) if old[i] != new[i]]
    flips = [i for i in changed if old[i] is not None and bool(old[i]) != bool(new[i])]
    if flips:
        changed = list(range(count))
    return changed, flips, _resources(plan.model, (old[i] for i in changed))


Change = dict[str, Any]
"""One pending change: config, gpus, migModeFlips, services (status.migChanges, less nodes)."""


def _change(
    pool: str,
    node: Node,
    plan: ModelPlan,
    configs: Mapping[str, list[Layout | None]],
    services: list[InferenceServicePeer],
) -> Change | None:
    found = node_change(node, plan, configs)
    if found is None or not found[0]:
        return None
    gpus, flips, exposed = found
    return {
        "config": plan.config_name,
        "gpus": gpus,
        "migModeFlips": flips,
        "services": _users(pool, services, exposed),
    }


def _ints(value: Any) -> list[int] | None:
    # Struct numbers arrive as doubles (2.0): whole numbers only, written back as ints.
    if not isinstance(value, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) and x == int(x) for x in value
    ):
        return None
    return [int(x) for x in value]


def pending_changes(last: Mapping[str, Any]) -> dict[str, Change]:
    """Node -> the change the previous status listed for it (entries of another shape skipped:
    the change is then reported again only where the node's label still differs)."""
    out: dict[str, Change] = {}
    entries = last.get("migChanges")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        nodes, config, services = entry.get("nodes"), entry.get("config"), entry.get("services")
        gpus, flips = _ints(entry.get("gpus")), _ints(entry.get("migModeFlips"))
        if (
            not isinstance(nodes, list)
            or not isinstance(config, str)
            or gpus is None
            or flips is None
            or not isinstance(services, list)
            or not all(isinstance(x, str) for x in services)
        ):
            continue
        change = {"config": config, "gpus": gpus, "migModeFlips": flips, "services": services}
        out.update((n, change) for n in nodes if isinstance(n, str))
    return out


def report(
    pool: str,
    plans: Mapping[GPUModel, ModelPlan],
    nodes: Iterable[Node],
    last: Mapping[str, Any],
    services: Iterable[InferenceServicePeer],
) -> tuple[dict[str, list[dict[str, Any]]], resource.Condition]:
    """{"migChanges": ...} for status (nothing when no change is pending: Crossplane's status
    apply turned an emptied field into null, which the XRD's schema rejected in the e2e
    cluster) and the ReplicasUndisturbed condition; `last` is the pool's previous status (the
    layouts of its previous configs, and changes still pending).

    Nodes whose change is the same share one entry: a pool of 1,000 nodes of two models
    changing alike lists two changes, not 1,000 (status is converted and sent on every
    reconcile, and read back on the next)."""
    configs = previous_configs(last)
    pending: dict[str, Change] | None = None
    services = list(services)
    # Nodes of one model, label and GPU count change alike: one computation each.
    seen: dict[tuple[str, str | None, int | None], Change | None] = {}
    groups: dict[tuple[Any, ...], tuple[Change, list[str]]] = {}
    idents: dict[int, tuple[Any, ...]] = {}  # id of a change -> its content, once per change
    for node in nodes:
        plan = plans.get(node.model) if node.model else None
        if plan is None:
            continue
        label = node.labels.get(MIG_CONFIG_LABEL)
        if label != plan.config_name:
            key = (plan.config_name, label, node.gpus)
            if key not in seen:
                seen[key] = _change(pool, node, plan, configs, services)
            change = seen[key]
        elif node.mig_state != "success":
            # Relabelled, mig-manager still at work: the change listed when it was relabelled.
            pending = pending_changes(last) if pending is None else pending
            change = pending.get(node.name)
            if change is not None and change["config"] != plan.config_name:
                change = None
        else:
            change = None
        if change is not None:
            # Keyed by content: a pending change read back joins the same change made now.
            ident = idents.get(id(change))
            if ident is None:
                ident = idents[id(change)] = _ident(change)
            groups.setdefault(ident, (change, []))[1].append(node.name)
    out = sorted(({"nodes": sorted(n), **c} for c, n in groups.values()), key=_first_node)
    changed = [n for entry in out for n in entry["nodes"]]
    hit = [n for entry in out if entry["services"] for n in entry["nodes"]]
    if hit:
        users = sorted({s for entry in out for s in entry["services"]})
        condition = resource.Condition(
            CONDITION,
            "False",
            "MigChangeDisruptsReplicas",
            f"the MIG change reconfigures GPUs on {listed(hit)} that InferenceServices "
            f"{listed(users)} may use; mig-manager does not wait for their pods: drain those "
            "nodes (or scale the services away) until they report success",
        )
    else:
        condition = resource.Condition(
            CONDITION,
            "True",
            "NoReplicasAffected" if out else "NoPendingChange",
            f"the pending MIG change reconfigures GPUs on {listed(changed)}, which no bound "
            "InferenceService uses"
            if out
            else "no node has a pending MIG change",
        )
    return ({"migChanges": out} if out else {}), condition


def _ident(change: Change) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in change.values())


def _first_node(entry: dict[str, Any]) -> str:
    first: str = entry["nodes"][0]
    return first
