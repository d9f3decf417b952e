"""Pure helpers of `make bench-functions`: /proc readings, ghz summaries, aggregation, tables."""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crossplane.function.proto.v1 import run_function_pb2 as fnv1

SECTION = "## Function cost against the Go reference (`make bench-functions`)"
"""The heading of this benchmark's section of docs/performance.md; other sections are kept."""


def cpu_ticks(stat: str) -> int:
    """utime + stime (clock ticks) from /proc/<pid>/stat. The command name, in parentheses,
    may hold spaces and parentheses itself, so fields are counted from the last `)`."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # Fields 14 and 15 of proc(5); fields[0] here is field 3 (state).
    return int(fields[11]) + int(fields[12])


def memory_kib(status: str) -> dict[str, int]:
    """VmRSS and VmHWM (KiB) from /proc/<pid>/status."""
    out = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


@dataclass(frozen=True)
class Load:
    """One ghz run: calls answered OK of `calls`, latency percentiles (ms), calls per second."""

    calls: int
    ok: int
    p50_ms: float
    p99_ms: float
    rps: float


def ghz_summary(report: Mapping[str, object]) -> Load:
    """A ghz `-O json` report (its latencies in nanoseconds)."""
    dist = {
        int(d["percentage"]): float(d["latency"]) / 1e6
        for d in report.get("latencyDistribution") or []  # type: ignore[attr-defined]
    }
    codes = report.get("statusCodeDistribution") or {}
    assert isinstance(codes, Mapping)
    return Load(
        calls=int(report["count"]),  # type: ignore[call-overload]
        ok=int(codes.get("OK", 0)),
        p50_ms=dist.get(50, float("nan")),
        p99_ms=dist.get(99, float("nan")),
        rps=float(report["rps"]),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Run:
    """One repetition of one workload: what the table reports."""

    workload: str
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    """CPU time of the server per call over the single-client calls (utime + stime)."""
    rps: Mapping[int, float]
    """Calls per second by client concurrency."""
    rss_mib: float
    """VmRSS after the warm-up."""
    hwm_mib: float
    """The peak: the largest VmHWM or VmRSS read, concurrency included."""
    work: str = ""
    """What the request holds and the answer composed (the same in every repetition)."""


def work(request: bytes, response: bytes) -> str:
    """`9,436 B: 7 observed, 12 required -> 7 resources, 31,822 B`."""
    req = fnv1.RunFunctionRequest.FromString(request)
    rsp = fnv1.RunFunctionResponse.FromString(response)
    required = sum(len(r.items) for r in req.required_resources.values())
    return (
        f"{len(request):,} B: {len(req.observed.resources)} observed, {required} required "
        f"-> {len(rsp.desired.resources)} resources, {len(response):,} B"
    )


def cpu_ms_per_call(ticks: int, calls: int, hz: int) -> float:
    return ticks * 1000.0 / hz / calls


def span(values: Sequence[float], fmt: str = ".2f") -> str:
    """`median (min-max)` of the repetitions; the median alone when there is one."""
    med = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return f"{med:{fmt}}"
    return f"{med:{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "n/a"


METRICS: tuple[tuple[str, str, str], ...] = (
    ("p50_ms", "p50 ms (1 client)", ".2f"),
    ("p99_ms", "p99 ms (1 client)", ".2f"),
    ("cpu_ms", "CPU ms/call", ".2f"),
    ("rss_mib", "RSS MiB", ".1f"),
    ("hwm_mib", "peak RSS MiB", ".1f"),
)


def value(run: Run, metric: str) -> float:
    if metric.startswith("rps"):
        return run.rps[int(metric.removeprefix("rps"))]
    return float(getattr(run, metric))


def table(
    runs: Sequence[Run],
    order: Sequence[str],
    reference: str,
    concurrency: Sequence[int],
    notes: Mapping[str, str] | None = None,
) -> str:
    """Markdown: one row per workload, medians (ranges) over repetitions, and each metric's
    ratio of medians to the reference's."""
    metrics = [
        *METRICS[:3],
        *((f"rps{c}", f"calls/s at {c}", ".0f") for c in concurrency),
        *METRICS[3:],
    ]
    head = ["workload", "request -> response", *(m[1] for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {w: [r for r in runs if r.workload == w] for w in order}
    ref = {m: statistics.median(value(r, m) for r in by[reference]) for m, _, _ in metrics}
    for w in order:
        cells = [w, (notes or {}).get(w) or by[w][0].work]
        for m, _, fmt in metrics:
            vals = [value(r, m) for r in by[w]]
            cell = span(vals, fmt)
            if w != reference:
                cell += f" **{ratio(statistics.median(vals), ref[m])}**"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_section(doc: str, heading: str, body: str) -> str:
    """`doc` with the section under `heading` (up to the next `## ` heading) replaced by
    `body`, or the section appended; every other section is kept byte for byte."""
    section = f"{heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        return pattern.sub(lambda _: section + "\n", doc, count=1).rstrip("\n") + "\n"
    base = doc.rstrip("\n")
    return (base + "\n\n" if base else "") + section
