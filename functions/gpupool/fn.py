"""GPUPool composition: device-plugin sharing config and mig-parted layout for the pool's nodes."""

from __future__ import annotations

from typing import Any

import yaml

from functions.common.api.gpupool import GPUPoolSpec
from functions.common.composer import Composed, ComposeError, CompositionFunction, Request
from functions.common.gpus import GPUModel, models_with_profiles
from functions.common.kinds import GPU_POOL
from functions.common.objects import config_map
from functions.gpupool import mig
from functions.gpupool.deviceplugin import device_plugin_config, mig_parted_config, replicas

GPU_OPERATOR_NAMESPACE = "gpu-operator"
COMPONENT = "gpu-sharing"


def operator_config(req: Request[GPUPoolSpec], name: str, data: dict[str, str]) -> dict[str, Any]:
    return config_map(req.owner, name, COMPONENT, data, namespace=GPU_OPERATOR_NAMESPACE)


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=1000)


def mig_layouts(spec: GPUPoolSpec) -> dict[GPUModel, list[dict[str, int]]]:
    counts = {p.name: p.count for p in spec.sharing.profiles}
    if len(counts) != len(spec.sharing.profiles):
        raise ComposeError("spec.sharing.profiles: each MIG profile may be listed once")
    models = models_with_profiles(tuple(counts))
    if not models:
        raise ComposeError(
            "spec.sharing.profiles: no MIG-capable GPU offers all of "
            f"{', '.join(sorted(counts))}; profile names are per GPU model (e.g. 3g.40gb on "
            "A100-80GB/H100-80GB, 3g.20gb on A100-40GB)"
        )
    try:
        return {m: mig.plan(m, counts) for m in models}
    except ValueError as err:
        raise ComposeError(f"spec.sharing.profiles: {err}") from err


def compose(req: Request[GPUPoolSpec]) -> Composed:
    spec, name = req.spec, req.owner.name
    try:
        n, warnings = replicas(spec)
    except ValueError as err:
        raise ComposeError(str(err)) from err
    resources: dict[str, dict[str, Any]] = {}
    status: dict[str, Any] = {"mode": spec.sharing.mode, "devicePluginConfig": name}
    mig_resources: list[str] = []
    if spec.sharing.mode == "mig":
        layouts = mig_layouts(spec)
        first = next(iter(layouts))
        mig_resources = sorted({first.profile(p.name).resource_name for p in spec.sharing.profiles})  # type: ignore[union-attr]
        suffix = ".shared" if spec.oversubscription.enabled else ""
        per_device = n if spec.oversubscription.enabled else 1
        status["resources"] = {
            f"{first.profile(p.name).resource_name}{suffix}": p.count * per_device  # type: ignore[union-attr]
            for p in spec.sharing.profiles
        }
        status["migConfig"] = name
        resources["mig-parted-config"] = operator_config(
            req,
            f"{name}-mig-parted-config",
            {"config.yaml": to_yaml(mig_parted_config(name, layouts))},
        )
    plugin = device_plugin_config(spec, mig_resources, n)
    resources["device-plugin-config"] = operator_config(
        req, f"{name}-device-plugin-config", {name: to_yaml(plugin)}
    )
    warnings.append(
        "node wiring is not rendered yet: label the pool's nodes with "
        f"nvidia.com/device-plugin.config={name}"
        + (f" and nvidia.com/mig.config={name}" if spec.sharing.mode == "mig" else "")
        + " and point the ClusterPolicy at these ConfigMaps"
    )
    return Composed(resources=resources, status=status, warnings=warnings)


def runner() -> CompositionFunction[GPUPoolSpec]:
    return CompositionFunction(GPU_POOL, compose)
