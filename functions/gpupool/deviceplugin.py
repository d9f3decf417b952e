"""NVIDIA device-plugin configuration (`version: v1`) and mig-parted configuration."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from functions.common import sharing
from functions.common.api.gpupool import GPUPoolSpec
from functions.common.gpus import GPUModel

GPU = sharing.GPU
MPS_MAX_REPLICAS = 48  # device plugin limit for compute capability >= 7.5


def replicas(spec: GPUPoolSpec) -> tuple[int, list[str]]:
    """Shares per device (the plugin's `replicas`) from the oversubscription ratio (>= 2)."""
    if not spec.oversubscription.enabled:
        return 2, []
    ratio = Decimal(spec.oversubscription.ratio)
    shares = max(2, int(ratio.to_integral_value(rounding=ROUND_HALF_UP)))
    warnings = []
    if Decimal(shares) != ratio:
        warnings.append(
            f"oversubscription.ratio {spec.oversubscription.ratio}: the device plugin shares "
            f"each device a whole number of times (at least 2), so it advertises {shares} "
            f"replicas per device (effective ratio {shares})"
        )
    if spec.sharing.mode == "mps" and shares > MPS_MAX_REPLICAS:
        raise ValueError(
            f"spec.oversubscription.ratio: MPS allows at most {MPS_MAX_REPLICAS} clients per GPU; "
            f"{spec.oversubscription.ratio} asks for {shares}"
        )
    return shares, warnings


def device_plugin_config(
    spec: GPUPoolSpec, mig_resources: list[str], shares: int
) -> dict[str, Any]:
    """The device plugin's config: MIG strategy, and `shares` replicas per shared device.

    Under the GPU Operator every flag also set in the plugin's environment is overridden by it
    (env > config file). `flags.migStrategy` takes effect because the documented ClusterPolicy
    leaves `spec.mig.strategy` unset, so the operator sets no `MIG_STRATEGY` (docs/gpupool.md
    "Cluster setup"): MIG pools need `mixed`, and the plugin refuses MPS with `mixed`. The
    operator always sets `MPS_ROOT` (`spec.devicePlugin.mps.root`), so no `mpsRoot` is written.
    """
    mode = spec.sharing.mode
    flags: dict[str, Any] = {"migStrategy": "mixed" if mode == "mig" else "none"}
    config: dict[str, Any] = {"version": "v1", "flags": flags}
    shared = {
        # Shared devices get their own resource name (`<name>.shared`) so a pod asking for a
        # dedicated GPU or MIG instance is never handed a slice of one.
        "renameByDefault": True,
        # Two replicas of one device are not two devices; refuse such requests up front.
        "failRequestsGreaterThanOne": True,
    }
    if mode == "timeslice":
        config["sharing"] = {
            "timeSlicing": {**shared, "resources": [{"name": GPU, "replicas": shares}]}
        }
    elif mode == "mps":
        config["sharing"] = {"mps": {**shared, "resources": [{"name": GPU, "replicas": shares}]}}
    elif mode == "mig" and spec.oversubscription.enabled:
        # MPS is not supported on MIG devices; time-slicing is.
        config["sharing"] = {
            "timeSlicing": {
                **shared,
                "resources": [{"name": r, "replicas": shares} for r in sorted(mig_resources)],
            }
        }
    return config


def mig_parted_config(configs: dict[str, tuple[GPUModel, list[dict[str, int]]]]) -> dict[str, Any]:
    """mig-parted `version: v1` config: one named layout per pool and GPU model.

    `configs` maps a config name to the model and the layout of each GPU index ({} = MIG
    disabled). Each GPU gets its own entry (`devices: [i]`), so a GPU whose layout a new plan
    keeps has a byte-identical entry; mig-parted compares each GPU's instances with its entry
    and leaves a GPU that matches alone. Every entry is filtered to the model's PCI device ids,
    so a node of another model is never reconfigured.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for config_name, (model, gpus) in sorted(configs.items()):
        entries: list[dict[str, Any]] = []
        for index, devices in enumerate(gpus):
            entry: dict[str, Any] = {
                "device-filter": list(model.device_ids),
                "devices": [index],
                "mig-enabled": bool(devices),
            }
            if devices:
                entry["mig-devices"] = dict(devices)
            entries.append(entry)
        out[config_name] = entries
    return {"version": "v1", "mig-configs": out}


def layouts_of(entries: Any) -> list[dict[str, int] | None] | None:
    """Per-GPU layouts of a config `mig_parted_config` wrote (None for an index no entry names);
    None when `entries` is not such a config."""
    if not isinstance(entries, list):
        return None
    out: dict[int, dict[str, int]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("devices"), list):
            return None
        devices = entry.get("mig-devices") or {}
        if not isinstance(devices, dict) or not all(
            isinstance(n, str) and isinstance(c, int) and c > 0 for n, c in devices.items()
        ):
            return None
        layout = dict(sorted(devices.items())) if entry.get("mig-enabled") else {}
        for index in entry["devices"]:
            if not isinstance(index, int) or index < 0 or index in out:
                return None
            out[index] = layout
    return [out.get(i) for i in range(max(out, default=-1) + 1)]
