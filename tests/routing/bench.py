"""Cache-aware routing on a simulated fleet (`make bench-cache`); a benchmark, not a test.

For N replicas (default 1, 4 and 8) and three modes side by side on one seeded workload:

- round-robin: the Service's behaviour (a client-side round robin stands for kube-proxy);
- prefix-aware: every request goes through the real endpoint picker (GIE `epp`), asked over
  ext-proc by a client standing for Envoy, on the configuration our function renders;
- prefix-aware + warmup: the same, after each shared system prompt was sent once through the
  picker as the TokenCache's warmup Job sends it (a one-token `/v1/completions`).

The simulators (and the picker) restart between modes, so each mode starts cold. Figures: the
prefix-cache hit rate and TTFT from the engines' own metrics (cross-checked with our metrics
sidecar), TTFT as the client measured it, request throughput. Prints a markdown table and
writes docs/routing-benchmark.md (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hack.e2e.controlplane import ControlPlane, control_plane, pinned_versions
from tests.procs import ROOT, running
from tests.routing import client, extproc, fleet, metrics, report
from tests.routing.render import EXAMPLE, Rendered, render
from tests.routing.workload import Spec, Workload, build
from tests.sidecar import procs as sidecar_procs


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def sidecars(engines: list[fleet.Engine], workdir: Path) -> Iterator[list[sidecar_procs.Sidecar]]:
    """One metrics sidecar per engine, as in each engine pod (GPU source off)."""
    cars = [
        sidecar_procs.sidecar_proc(
            workdir, {"ENGINE_METRICS_URL": f"{e.base}/metrics", "GPU_METRICS": "off"}
        )
        for e in engines
    ]
    with contextlib.ExitStack() as stack:
        for car in cars:
            stack.enter_context(running(car.proc))
        for car in cars:
            sidecar_procs.wait_sidecar(car)
        yield cars


def sidecar_snapshot(cars: list[sidecar_procs.Sidecar]) -> metrics.SidecarView:
    hits = queries = 0.0
    for car in cars:
        m = car.scrape()
        hits += sum(v for _, v in m.all("inference_cache_hits_total", tier="prefix"))
        queries += sum(v for _, v in m.all("inference_cache_queries_total", tier="prefix"))
    return metrics.SidecarView(hits, queries)


def engines_snapshot(engines: list[fleet.Engine]) -> metrics.Snapshot:
    """The engines' counters once they stop moving: the simulator updates them from a channel,
    a moment after the response."""
    last = metrics.scrape([e.metrics_text() for e in engines])
    for _ in range(50):
        time.sleep(0.1)
        now = metrics.scrape([e.metrics_text() for e in engines])
        if now == last:
            return now
        last = now
    return last


def run_mode(
    mode: str,
    pool: fleet.Pool,
    engines: list[fleet.Engine],
    cars: list[sidecar_procs.Sidecar],
    workload: Workload,
    model: str,
    workers: int,
    workdir: Path,
) -> report.ModeResult:
    fleet.restart(engines)
    epp: fleet.EndpointPicker | None = None
    picker: extproc.Picker | None = None
    try:
        router: client.Router
        if mode == report.ROUND_ROBIN:
            router = client.RoundRobin([e.endpoint for e in engines])
        else:
            epp = fleet.EndpointPicker(pool, workdir)
            epp.start()
            picker = extproc.Picker(epp.address)
            router = client.ViaPicker(picker)
        warmed = 0
        if mode == report.WARMED:
            conns = client.Connections()
            for prefix in workload.system_prompts:
                # The workload sends completions, so warmup does too (TokenCache warmup.api).
                client.warm(router, conns, model, prefix, "completions")
                warmed += 1
        sim0, car0 = engines_snapshot(engines), sidecar_snapshot(cars)
        run = client.play(workload, router, model, workers)
        sim1, car1 = engines_snapshot(engines), sidecar_snapshot(cars)
    finally:
        if picker is not None:
            picker.close()
        if epp is not None:
            epp.stop()
    return report.ModeResult(
        replicas=len(engines),
        mode=mode,
        sim=sim1 - sim0,
        sidecar=metrics.SidecarView(car1.hits - car0.hits, car1.queries - car0.queries),
        results=run.results,
        errors=run.errors,
        wall_s=run.wall_s,
        warmup_requests=warmed,
    )


def run_replicas(
    cp: ControlPlane,
    rendered: Rendered,
    settings: fleet.EngineSettings,
    workload: Workload,
    n: int,
    modes: list[str],
    workers: int,
    workdir: Path,
) -> list[report.ModeResult]:
    out = []
    nd = workdir / f"n{n}"
    nd.mkdir()
    with fleet.engines(settings, n, nd) as engines:
        pool = fleet.Pool(cp, rendered, f"bench-n{n}", engines)
        pool.apply()
        with sidecars(engines, nd) as cars:
            for mode in modes:
                start = time.monotonic()
                r = run_mode(mode, pool, engines, cars, workload, settings.model, workers, nd)
                log(
                    f"N={n} {mode}: {r.requests} requests in {r.wall_s:.1f}s, hit rate "
                    f"{report.pct(r.sim.hit_rate)} ({time.monotonic() - start:.0f}s with restarts)"
                )
                for e in r.errors[:5]:
                    log(f"  error: {e}")
                out.append(r)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.routing.bench", description=__doc__)
    p.add_argument("--replicas", default="1,4,8", help="comma-separated N (at most 8)")
    p.add_argument("--modes", default=",".join(report.MODES))
    p.add_argument("--requests", type=int, default=Spec.requests)
    p.add_argument("--workers", type=int, default=8, help="concurrent client users")
    p.add_argument("--seed", type=int, default=Spec.seed)
    p.add_argument("--example", default=EXAMPLE, help="example claim to render (examples/claims)")
    p.add_argument(
        "--out",
        default=str(ROOT / "docs" / "routing-benchmark.md"),
        help="page to write ('-': none)",
    )
    p.add_argument(
        "--kv-cache-blocks",
        type=int,
        default=0,
        help="KV-cache blocks per replica instead of the rendered size (cache pressure)",
    )
    p.add_argument(
        "--max-num-seqs",
        type=int,
        default=fleet.EngineSettings.max_num_seqs,
        help="requests a replica runs at once; more wait in its queue",
    )
    p.add_argument(
        "--time-factor-under-load",
        type=float,
        default=fleet.EngineSettings.time_factor_under_load,
        help="simulator latency factor with --max-num-seqs requests running (1: none)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir with every log")
    p.add_argument("--command", default="", help="the command to quote in the page")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw_argv = argv if argv is not None else sys.argv[1:]
    args = parse_args(raw_argv)
    replicas = [int(x) for x in args.replicas.split(",")]
    modes = args.modes.split(",")
    if any(not 1 <= n <= fleet.MAX_ENDPOINTS for n in replicas):
        raise SystemExit(f"--replicas: 1 to {fleet.MAX_ENDPOINTS} (an InferencePool's ports)")
    if unknown := set(modes) - set(report.MODES):
        raise SystemExit(f"--modes: unknown {sorted(unknown)}; known {list(report.MODES)}")
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    rendered = render(args.example)
    overrides: dict[str, Any] = {
        "max_num_seqs": args.max_num_seqs,
        "time_factor_under_load": args.time_factor_under_load,
    }
    if args.kv_cache_blocks:
        overrides["kv_cache_blocks"] = args.kv_cache_blocks
    settings = fleet.EngineSettings.from_render(rendered, **overrides)
    workload = build(Spec(seed=args.seed, requests=args.requests))
    log(
        f"{rendered.example}: {settings.kv_cache_blocks} KV blocks of {settings.block_size} "
        "tokens per replica"
    )
    log(
        f"workload: {workload.requests} requests ({workload.unique_requests} unique), "
        f"{len(workload.sessions)} sessions, {len(workload.system_prompts)} system prompts"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    results: list[report.ModeResult] = []
    try:
        with control_plane(keep=args.keep) as cp:
            fleet.install_gie_crds(cp)
            for n in replicas:
                results += run_replicas(
                    cp, rendered, settings, workload, n, modes, args.workers, workdir
                )
    finally:
        if args.keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    duration = time.monotonic() - started
    page = report.page(
        results,
        rendered=rendered,
        settings=settings,
        workload=workload,
        workers=args.workers,
        command=args.command or " ".join(["python -m tests.routing.bench", *raw_argv]),
        duration_s=duration,
        versions=pinned_versions(),
        load=(load_start, os.getloadavg()[0]),
    )
    print(page)
    if args.out != "-":
        Path(args.out).write_text(page)
        log(f"wrote {args.out}")
    log(f"done in {duration:.0f}s")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
