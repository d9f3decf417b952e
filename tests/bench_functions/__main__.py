"""`make bench-functions`: our three functions against function-patch-and-transform, served.

    python -m tests.bench_functions [--repeat 3] [--calls 500] [--port-base 19500] [--no-doc]

1. Capture (capture.py): the exact RunFunctionRequests `crossplane composition render` sends to
   each function for the benchmark's claims, through a recording proxy; for the Go reference,
   the llama-70b composite through an equivalent patch-and-transform Composition.
2. Measure (load.py), in repetitions interleaved A, B, C, D, A, B, ...: each server started
   fresh, pinned to one core (`taskset`), ghz pinned to another; one checked call, a warm-up,
   then single-client calls (p50/p99 and the server's CPU per call from /proc/<pid>/stat),
   calls per second at each concurrency (one connection, as Crossplane keeps), VmRSS after the
   warm-up and VmHWM at the end.
3. Report: medians (ranges) over the repetitions and ratios to the Go reference, what each
   function's RSS consists of (floor.py), into docs/performance.md under its own heading.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hack.render.env import REPO, find_binary
from tests.bench_functions import floor
from tests.bench_functions.capture import GO_REFERENCE, Captured, Ports, capture, with_nodes
from tests.bench_functions.load import Settings, Workload, measure, protoset
from tests.bench_functions.report import SECTION, Run, replace_section, table
from tests.bench_functions.servers import go_reference, ours
from tests.gpupool import realnodes

CLAIMS = REPO / "examples" / "claims"
# One claim per function, each with its observed/required side files as `make render` has them;
# the Go reference composes the core of llama-70b (tests/bench_functions/patch-and-transform.yaml).
DEFAULT_CLAIMS = ("llama-70b.yaml", "a100-pool.yaml", "shared-cache.yaml")
GO_CLAIM = "llama-70b.yaml"
GO_REFERENCE_VERSION = next(
    line.split("=", 1)[1]
    for line in (REPO / "hack" / "versions.env").read_text().splitlines()
    if line.startswith("FUNCTION_PATCH_AND_TRANSFORM_VERSION=")
)
POOL = "a100-pool"  # the pool whose captured request carries N Nodes in --pool-nodes rows
ENTRIES = {
    "function-inferenceservice": "functions.inferenceservice.main",
    "function-gpupool": "functions.gpupool.main",
    "function-tokencache": "functions.tokencache.main",
}


def pool_node_factory() -> Callable[[int], list[dict[str, Any]]] | None:
    """The GPUPool-by-node-count rows' Nodes (issue 15 item 1): N realistic GPU Nodes (GFD and
    NFD labels, extended resources, conditions, images; tests/gpupool/realnodes.py) that
    a100-pool's nodeSelector selects (`gpu-type: nvidia-a100`), A100-SXM4-80GB with 8 GPUs."""

    def make(count: int) -> list[dict[str, Any]]:
        return realnodes.pool_nodes(
            count, {"gpu-type": "nvidia-a100"}, products=("NVIDIA-A100-SXM4-80GB",)
        )

    return make


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench_functions", description=__doc__)
    p.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--warmup", type=int, default=100, help="unmeasured calls per server start")
    p.add_argument("--calls", type=int, default=400, help="single-client calls measured")
    p.add_argument("--concurrent-calls", type=int, default=400, help="calls per concurrency")
    p.add_argument("--concurrency", default="4,16", help="client concurrencies, comma-separated")
    p.add_argument("--claims", nargs="+", default=DEFAULT_CLAIMS, help="example claims (ours)")
    p.add_argument("--server-cpu", type=int, default=1, help="the core servers are pinned to")
    p.add_argument("--client-cpu", type=int, default=0, help="the core ghz is pinned to")
    p.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("BENCH_PORT_BASE", "19500")),
        help="first of ~20 local ports (BENCH_PORT_BASE)",
    )
    p.add_argument(
        "--baseline",
        metavar="REF",
        help="also serve our functions as of this git commit (same venv, same requests)",
    )
    p.add_argument(
        "--pool-nodes",
        default="",
        metavar="N,N",
        help="also GPUPool a100-pool with N realistic Nodes each (e.g. 10,100,1000,5000)",
    )
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "performance.md")
    p.add_argument("--no-doc", action="store_true", help="print only; leave --doc alone")
    p.add_argument("--keep", type=Path, help="keep the captured requests and logs here")
    args = p.parse_args(argv)
    if args.pool_nodes and pool_node_factory() is None:
        p.error("--pool-nodes needs realistic GPU Nodes: pool_node_factory() is not wired yet")
    return args


def workloads(
    captured: Sequence[Captured],
    claims: Sequence[str],
    requests: Path,
    baseline: tuple[str, Path] | None = None,
) -> list[Workload]:
    """One per benchmark claim (the function it reaches), each after its baseline (another
    commit's code) when asked, and the Go reference first: every repetition starts with it."""
    wanted = {Path(c).stem for c in claims} | {Path(GO_CLAIM).stem}
    out = []
    for c in captured:
        if c.composite not in wanted:
            continue
        path = requests / f"{c.function}-{c.composite}.bin"
        path.write_bytes(c.request)
        if c.function == GO_REFERENCE:
            out.append(Workload(f"{c.function} {c.composite}", go_reference(c.function), path))
            continue
        if baseline is not None:
            ref, tree = baseline
            out.append(Workload(f"{c.function} {c.composite} @{ref}", ours(c.function, tree), path))
        out.append(Workload(f"{c.function} {c.composite}", ours(c.function), path))
    return sorted(out, key=lambda w: w.server.name != GO_REFERENCE)


def pool_workloads(captured: Sequence[Captured], counts: str, requests: Path) -> list[Workload]:
    """GPUPool at each node count: the captured pool request with that many realistic Nodes."""
    make = pool_node_factory()
    if not counts or make is None:
        return []
    (pool,) = [c for c in captured if c.function == "function-gpupool" and c.composite == POOL]
    out = []
    for n in (int(c) for c in counts.split(",")):
        path = requests / f"function-gpupool-{n}-nodes.bin"
        path.write_bytes(with_nodes(pool.request, make(n)))
        out.append(Workload(f"function-gpupool {POOL}, {n:,} nodes", ours(pool.function), path))
    return out


def export(ref: str, into: Path) -> Path:
    """The tracked files of commit `ref`, for serving its code."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def command(argv: Sequence[str] | None) -> str:
    args = " ".join(sys.argv[1:] if argv is None else argv)
    return "make bench-functions" + (f" FUNCTIONS_BENCH_ARGS='{args}'" if args else "")


def conditions() -> str:
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    concurrency = [int(c) for c in args.concurrency.split(",") if c]
    ghz_bin = find_binary("GHZ_BIN", "ghz")
    go_server = go_reference(GO_REFERENCE)
    with tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f">> capturing requests ({', '.join(args.claims)}; {GO_REFERENCE}: {GO_CLAIM})")
        captured = capture(
            [CLAIMS / c for c in args.claims],
            Ports(args.port_base),
            work,
            go=(CLAIMS / GO_CLAIM, go_server),
        )
        baseline = (
            (args.baseline, export(args.baseline, work / "baseline")) if args.baseline else None
        )
        runs_of = workloads(captured, args.claims, work, baseline)
        runs_of += pool_workloads(captured, args.pool_nodes, work)
        (work / "runfunction.protoset").write_bytes(protoset())
        settings = Settings(
            ghz=ghz_bin,
            protoset=work / "runfunction.protoset",
            port=args.port_base + 19,
            server_cpu=args.server_cpu,
            client_cpu=args.client_cpu,
            warmup=args.warmup,
            calls=args.calls,
            concurrent_calls=args.concurrent_calls,
            concurrency=concurrency,
            logs=work,
        )
        loads = [os.getloadavg()[0]]
        runs: list[Run] = []
        for rep in range(args.repeat):
            for w in runs_of:
                print(f">> repetition {rep + 1}/{args.repeat}: {w.name}", flush=True)
                runs.append(measure(w, settings))
            loads.append(os.getloadavg()[0])
        order = [w.name for w in runs_of]
        reference = order[0]
        cost = table(runs, order, reference, concurrency)
        memory = floor_table(order)
    body = "\n\n".join(
        [
            f"Measured {conditions()}; load average (1 min) {min(loads):.1f}-{max(loads):.1f} "
            f"during the run. Each server pinned to core {args.server_cpu}, ghz to core "
            f"{args.client_cpu}; {args.repeat} interleaved repetitions, each on a fresh server: "
            f"{args.warmup} warm-up calls, {args.calls} single-client calls, "
            f"{args.concurrent_calls} calls at each concurrency over one connection. Cells: "
            "median (min-max) of the repetitions; **bold**: ratio of medians to "
            f"{reference}. Command: `{command(argv)}`.",
            "Requests: what `crossplane composition render` sent each function for the example "
            "claim named (captured on the wire; the last call, with the required resources the "
            "function asked for). The same work: the InferenceService function and "
            f"{GO_REFERENCE} {GO_REFERENCE_VERSION} compose llama-70b's Deployment, Service, "
            "autoscaler and PodDisruptionBudget from the same composite and observed resources "
            "(its Composition, `tests/bench_functions/patch-and-transform.yaml`, has 16 "
            "patches and travels in its request); for llama-70b the InferenceService function "
            "also composes a Job, a PersistentVolumeClaim and a PodMonitor, reads the required "
            "resources it asked for and reports status. The GPUPool and TokenCache rows compose "
            "other work "
            f"and are set beside the same reference for scale. {GO_REFERENCE} logs a JSON line "
            "per call at its default level; ours log none.",
            cost,
            *(
                []
                if args.pool_nodes
                else [
                    "GPUPool by node count: `--pool-nodes 10,100,1000,5000` adds a row per count, "
                    f"{POOL}'s captured request with that many realistic Nodes "
                    "(tests/gpupool/realnodes.py); `make bench-pool` measures the same pools in "
                    "their steady state, with the observed Objects that carry each Node again."
                ]
            ),
            "What each function's RSS consists of before it serves (MiB added by each import, "
            "in a fresh interpreter; `tests/bench_functions/floor.py`):",
            memory,
        ]
    )
    print(f"\n{SECTION}\n\n{body}\n")
    if not args.no_doc:
        doc = args.doc.read_text() if args.doc.exists() else "# Performance\n"
        args.doc.write_text(replace_section(doc, SECTION, body))
        print(f">> wrote {args.doc}")
    return 0


def floor_table(order: Sequence[str]) -> str:
    functions = [f for f in ENTRIES if any(o.startswith(f + " ") for o in order)]
    cols = {f: floor.steps(ENTRIES[f], dict(os.environ)) for f in functions}
    names = [n for n, _ in next(iter(cols.values()))]
    lines = [
        "| component | " + " | ".join(functions) + " |",
        "|---|" + "---|" * len(functions),
    ]
    for i, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(f"{cols[f][i][1]:.1f}" for f in functions) + " |")
    lines.append(
        "| **total before serving** | "
        + " | ".join(f"**{sum(m for _, m in cols[f]):.1f}**" for f in functions)
        + " |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
