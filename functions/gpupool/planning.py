"""MIG planning for a pool: one layout per GPU model of its nodes, on the fewest GPUs.

`replan.replan` finds the layouts (`mig.solve`'s fewest GPUs, changing the fewest GPUs of the
pool's previous plan); this module applies the pool's spec to it (profile counts per node, the
leftover policy for unused GPUs, the preference between fewest GPUs and fewest changes), checks
that every node has GPUs enough, names each model's mig-parted configuration after its content
and reports the plan.

The previous plan comes from the pool's own status (`migPlans.<model>.configName` and the
layouts of that name in `migPartedConfigs`): it is exactly what this function rendered last,
content-addressed, in the same request. The shared ConfigMap is rewritten by every MIG pool and
node labels carry only a name, so neither says more; without status (a new pool, or status
lost) the plan is made from scratch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from functions.common.api.gpupool import GPUPoolSpec
from functions.common.composer import ComposeError
from functions.common.gpus import GPUModel, models_with_profiles
from functions.common.names import label_value
from functions.gpupool import deviceplugin, mig, replan
from functions.gpupool.nodes import Node, listed


def digest(obj: Any) -> str:
    """Six hex digits of the content: in a config name, a changed layout gets a new name, so
    the label changes and mig-manager / the device plugin's config-manager act on it (neither
    watches ConfigMap content)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:6]


@dataclass(frozen=True)
class ModelPlan:
    model: GPUModel
    plan: mig.Plan
    config_name: str
    gpus: tuple[dict[str, int], ...]
    """Layout per GPU index, leftover policy applied ({} = MIG disabled, whole GPU)."""
    nodes: tuple[Node, ...] = ()
    used: int = 0
    """GPUs per node hosting the request (more than len(plan) only with prefer fewestChanges)."""
    changed: tuple[int, ...] = ()
    """GPU indices whose layout differs from the previous plan's."""
    previous: str | None = None
    """Config name of the previous plan, when it was known."""


@dataclass(frozen=True)
class MigPlan:
    """The pool's MIG plan: per model, and what follows from it."""

    models: dict[GPUModel, ModelPlan]
    resources: list[str]
    """MIG resource names the planned GPUs expose (fill may add instances of any profile)."""
    node_config: dict[str, str]
    """Node name -> mig-parted config name it must select."""
    status: dict[str, Any] = field(default_factory=dict)
    """status.migPlans."""
    warnings: tuple[str, ...] = ()

    @property
    def layouts(self) -> dict[str, tuple[GPUModel, list[dict[str, int]]]]:
        """mig-parted config name -> (model, layout per GPU index)."""
        return {p.config_name: (p.model, list(p.gpus)) for p in self.models.values()}


def profile_counts(spec: GPUPoolSpec) -> dict[str, int]:
    counts = {p.name: p.count for p in spec.sharing.profiles}
    if len(counts) != len(spec.sharing.profiles):
        raise ComposeError("spec.sharing.profiles: each MIG profile may be listed once")
    return counts


def describe(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} x{c}" for n, c in sorted(counts.items()))


def leftover(spec: GPUPoolSpec, model: GPUModel) -> replan.Leftover:
    """spec.sharing.leftover as the planner applies it to unused GPUs and free slices."""
    policy = spec.sharing.leftover or "whole"
    if policy == "fill":
        names = [p.name for p in spec.sharing.profiles]
        return replan.Leftover(
            mig.fill(model, {}, names), frozenset(names), lambda x: mig.fill(model, x, names)
        )
    if policy == "balanced":
        return replan.Leftover(model.balanced)
    return replan.Leftover({})


def previous_configs(status: Mapping[str, Any]) -> dict[str, list[dict[str, int] | None]]:
    """Per-GPU layouts of the configs in the pool's status.migPartedConfigs, by name."""
    text = status.get("migPartedConfigs")
    if not isinstance(text, str):
        return {}
    return {n: [dict(x) if x is not None else None for x in v] for n, v in _parsed(text).items()}


@lru_cache(maxsize=64)
def _parsed(text: str) -> dict[str, list[dict[str, int] | None]]:
    # Parsed once per text (a plan and its disruption report both read it); libyaml when the
    # yaml package has it: a 1,000-node pool's status is parsed on every reconcile.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        configs = yaml.load(text, Loader=loader)
    except yaml.YAMLError:
        return {}
    if not isinstance(configs, dict):
        return {}
    out = {}
    for name, entries in configs.items():
        layouts = deviceplugin.layouts_of(entries)
        if layouts is not None:
            out[str(name)] = layouts
    return out


def previous_plan(
    status: Mapping[str, Any], model: GPUModel
) -> tuple[str | None, list[dict[str, int] | None]]:
    """The config name and per-GPU layouts of the model's previous plan ([] when unknown)."""
    plans = status.get("migPlans")
    entry = plans.get(model.key) if isinstance(plans, dict) else None
    name = entry.get("configName") if isinstance(entry, dict) else None
    if not isinstance(name, str):
        return None, []
    return name, previous_configs(status).get(name, [])


def plan_model(
    spec: GPUPoolSpec,
    name: str,
    model: GPUModel,
    nodes: tuple[Node, ...],
    status: Mapping[str, Any] | None = None,
) -> ModelPlan:
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
    before, layouts = previous_plan(status or {}, model)
    prefer: replan.Prefer = "changes" if spec.sharing.prefer == "fewestChanges" else "gpus"
    # Nodes of one model may differ in GPU count; fewestChanges may use at most the smallest.
    limit = min((n.gpus or 0 for n in nodes), default=per_node)
    stable = replan.replan(model, counts, layouts, per_node, leftover(spec, model), prefer, limit)
    gpus = stable.gpus
    config = label_value(name, model.key, digest([model.device_ids, gpus]))
    if before == config:
        # Unchanged plan: keep reporting the change that led to it.
        last = (status or {}).get("migPlans", {}).get(model.key, {})
        changed = tuple(last.get("changedGPUs") or ())
        before = last.get("previousConfigName")
    else:
        changed = stable.changed if before else ()
        before = before if before else None
    return ModelPlan(model, plan, config, gpus, nodes, stable.used, changed, before)


def model_plans(
    spec: GPUPoolSpec, name: str, nodes: list[Node], status: Mapping[str, Any] | None = None
) -> list[ModelPlan]:
    """One plan per GPU model of the nodes, or, before any node is known, per model that offers
    every requested profile."""
    counts = profile_counts(spec)
    if not nodes:
        models = models_with_profiles(tuple(counts))
        if not models:
            raise ComposeError(
                "spec.sharing.profiles: no MIG-capable GPU offers all of "
                f"{', '.join(sorted(counts))}; profile names are per GPU model (e.g. 3g.40gb "
                "on A100-80GB/H100-80GB, 3g.20gb on A100-40GB)"
            )
        return [plan_model(spec, name, m, (), status) for m in models]
    by_model: dict[GPUModel, list[Node]] = {}
    for node in nodes:
        if node.model is not None and node.gpus is not None:
            by_model.setdefault(node.model, []).append(node)
    # Checked per model, in the order models first appear: the node named is the first one
    # (in node order) that cannot be planned.
    for model, group in by_model.items():
        node = group[0]
        if not model.mig_capable:
            raise ComposeError(
                f"spec.sharing.mode: node {node.name} has {node.product} ({model.key}), "
                "which does not support MIG; narrow spec.nodeSelector to MIG-capable nodes "
                f"or use mode exclusive, mps or timeslice"
            )
        missing = sorted(n for n in counts if model.profile(n) is None)
        if missing:
            offered = ", ".join(p.name for p in model.profiles)
            raise ComposeError(
                f"spec.sharing.profiles: {', '.join(missing)} does not exist on node "
                f"{node.name}'s {model.key} (profiles there: {offered})"
            )
    return [
        plan_model(spec, name, model, tuple(group), status)
        for model, group in sorted(by_model.items(), key=lambda kv: kv[0].key)
    ]


def plan_mig(
    spec: GPUPoolSpec, name: str, wired: list[Node], status: Mapping[str, Any] | None = None
) -> MigPlan:
    """The MIG plan of pool `name` for its wired nodes, made from its previous plan in `status`
    (the composite's observed status); ComposeError naming the field when the request cannot be
    met."""
    plans = model_plans(spec, name, wired, status)
    by_model = {p.model: p for p in plans}
    status = {
        p.model.key: {
            "configName": p.config_name,
            "gpusUsed": p.used,
            "optimalGPUs": len(p.plan),
            "optimal": p.plan.optimal,
            **({"nodes": len(p.nodes), "gpusPerNode": len(p.gpus)} if p.nodes else {}),
            **({"previousConfigName": p.previous} if p.previous else {}),
            **({"changedGPUs": list(p.changed)} if p.previous else {}),
        }
        for p in plans
    }
    warnings = tuple(
        f"MIG plan for {p.model.key} uses {len(p.plan)} GPUs per node; the exact search hit its "
        f"step limit, so fewer may be possible (lower bound {p.plan.lower_bound})"
        for p in plans
        if not p.plan.optimal
    )
    resources = sorted(
        {
            profile.resource_name
            for p in plans
            for layout in p.gpus
            for profile in map(p.model.profile, layout)
            if profile is not None
        }
    )
    node_config = {x.name: by_model[x.model].config_name for x in wired if x.model}
    return MigPlan(by_model, resources, node_config, status, warnings)
