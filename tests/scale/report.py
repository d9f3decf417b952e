"""The scale benchmark's runs as markdown tables (docs/performance.md quotes them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.scale.bench import Phase, Run

FUNCTIONS = {
    "function-inferenceservice": "IS",
    "function-gpupool": "pool",
    "function-tokencache": "cache",
}


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.0f}"


def per_function(values: dict[str, float], fmt: str = "{:.0f}") -> str:
    return " / ".join(fmt.format(values.get(fn, 0.0)) for fn in FUNCTIONS)


def calls(phase: Phase) -> str:
    return per_function(phase.calls.get("calls", {}))


def hits(run: Run, phase: Phase) -> str:
    return per_function(phase.calls.get("hits", {})) if run.cache else "-"


def cpu(phase: Phase, *names: str) -> str:
    return f"{sum(phase.cpu_s.get(n, 0.0) for n in names):.1f}"


def fn_cpu(phase: Phase) -> str:
    return per_function(phase.cpu_s, "{:.1f}")


def per_call(phase: Phase, fn: str = "function-inferenceservice") -> str:
    """CPU ms per call in the function's process / mean call latency ms as core saw it."""
    n = phase.calls.get("calls", {}).get(fn, 0.0)
    if not n:
        return "-"
    cpu_ms = phase.cpu_s.get(fn, 0.0) / n * 1000
    latency_ms = phase.calls.get("seconds", {}).get(fn, 0.0) / n * 1000
    return f"{cpu_ms:.1f} / {latency_ms:.0f}"


def load(phase: Phase) -> str:
    return f"{phase.load[0]:.1f}"


def breakers(phase: Phase) -> str:
    found = phase.extra.get("breakers_open") or {}
    return f"{found.get('pools', '-')} / {found.get('services', '-')}"


def label(run: Run) -> str:
    return f"| {run.services} | {'on' if run.cache else 'off'} "


def ramp(runs: Sequence[Run]) -> str:
    head = (
        "| services | cache | all Synced s | all Ready s | create s | Ready after last create s "
        "| core CPU s "
        "| fn CPU s IS / pool / cache | calls IS / pool / cache | cache hits "
        "| IS CPU ms / latency ms per call | kube-apiserver + etcd CPU s "
        "| circuit open pools / services | load (1 min) start / end |\n"
        "|---:|---|---:|---:|---:|---:|---:|---|---|---|---|---:|---|---|\n"
    )
    rows = []
    for r in runs:
        ph = r.ramp
        synced = ph.extra.get("synced_s")
        rows.append(
            label(r) + f"| {seconds(synced)} | {seconds(ph.done_s)} | {r.apply_s:.0f} "
            f"| {seconds(None if ph.done_s is None else ph.done_s - r.apply_s)} "
            f"| {cpu(ph, 'crossplane-core')} | {fn_cpu(ph)} | {calls(ph)} | {hits(r, ph)} "
            f"| {per_call(ph)} | {cpu(ph, 'kube-apiserver', 'etcd')} | {breakers(ph)} "
            f"| {r.load_start[0]:.1f} / {load(ph)} |"
        )
    return head + "\n".join(rows) + "\n"


def memory(runs: Sequence[Run]) -> str:
    head = (
        "| services | cache | RSS MiB IS / pool / cache (end of ramp) | peak RSS MiB IS / pool / "
        "cache | core RSS / peak MiB |\n|---:|---|---|---|---|\n"
    )
    rows = []
    for r in runs:
        ph = r.change  # the end of the pool change: the largest state
        rows.append(
            label(r) + f"| {per_function(r.ramp.rss_mib)} | {per_function(ph.peak_rss_mib)} "
            f"| {ph.rss_mib.get('crossplane-core', 0):.0f} / "
            f"{ph.peak_rss_mib.get('crossplane-core', 0):.0f} |"
        )
    return head + "\n".join(rows) + "\n"


def change(runs: Sequence[Run]) -> str:
    head = (
        "| services | cache | bound to the pool | all bound re-rendered s | all Ready again s "
        "| calls IS / pool / cache | cache hits | core CPU s | fn CPU s IS / pool / cache "
        "| IS CPU ms / latency ms per call | circuit open pools / services | load (1 min) |\n"
        "|---:|---|---:|---:|---:|---|---|---:|---|---|---|---:|\n"
    )
    rows = []
    for r in runs:
        ph = r.change
        x = ph.extra
        rows.append(
            label(r) + f"| {x.get('bound')} | {seconds(ph.done_s)} "
            f"| {seconds(x.get('ready_again_s'))} | {calls(ph)} | {hits(r, ph)} "
            f"| {cpu(ph, 'crossplane-core')} | {fn_cpu(ph)} | {per_call(ph)} | {breakers(ph)} "
            f"| {load(ph)} |"
        )
    return head + "\n".join(rows) + "\n"


def steady(runs: Sequence[Run]) -> str:
    head = (
        "| services | cache | window s | calls IS / pool / cache | cache hits | core CPU s "
        "| fn CPU s IS / pool / cache | load (1 min) |\n|---:|---|---:|---|---|---:|---|---:|\n"
    )
    rows = []
    for r in runs:
        ph = r.steady
        rows.append(
            label(r) + f"| {ph.wall_s:.0f} | {calls(ph)} | {hits(r, ph)} "
            f"| {cpu(ph, 'crossplane-core')} | {fn_cpu(ph)} | {load(ph)} |"
        )
    return head + "\n".join(rows) + "\n"


def render(runs: Sequence[Run]) -> str:
    form = runs[0].form if runs else "v2"
    return (
        f"Ramp (XRD form {form}): create the services, wait until all are Ready and Synced\n\n"
        + ramp(runs)
        + "\nMemory\n\n"
        + memory(runs)
        + "\nPool change: one pool's nodeSelector edited\n\n"
        + change(runs)
        + "\nSteady state (TTL requeues only)\n\n"
        + steady(runs)
    )
