"""Scrape latency, CPU and resident memory of the sidecar against a bare prometheus-client
exporter measured in the same run (`make bench-sidecar`). Not part of `make test`.

Starts redis-server and llm-d-inference-sim (as the tests do), puts some traffic through both,
fills a local cache directory and serves a fake kubelet PodResources socket (the node-mode
tests' fake, tests/sidecar/test_allocations.py). Then, for each repeat, starts one process per
configuration, all at once, waits until each answers, scrapes each /metrics a few times
unmeasured, then N times measured, in turn (bare, pod-engine, pod, node, bare, ...: on a shared
machine every configuration sees the same load at the same moments; one request at a time,
client-side latency with urllib), and reads each process's CPU time (/proc/<pid>/stat) and RSS
(VmRSS, VmHWM in /proc/<pid>/status):

- `bare`: prometheus-client's own `start_http_server` with its default registry (process,
  platform and GC collectors) and nothing else: the baseline every ratio is taken against;
- `pod-engine`: the pod sidecar as the InferenceService function renders it (GPU_METRICS=off,
  the engine's /metrics, PREFIX_CACHE_CAPACITY);
- `pod`: every pod-mode source (NVML from the recorded H100 fixture unless --real-nvml, the
  engine, Redis with a password file, the local cache directory);
- `node`: SIDECAR_MODE=node (NVML from the recorded MIG A100 fixture unless --real-nvml, the
  fake kubelet).

Bytecode (--bytecode): `all` (default) runs every process with compiled bytecode for the
standard library, the venv and the project, as the image has it (uv compiles the venv, the
Dockerfile the runtime image's standard library); `venv` without it for the standard library;
`none` without any (what a container pays on a read-only root filesystem where nothing was
compiled). Each is set up through PYTHONPYCACHEPREFIX in the benchmark's temporary directory
(primed by one unmeasured run of every configuration), so nothing outside it is written.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sidecar.localdir import directory_usage
from tests.procs import import_rss
from tests.sidecar import procs
from tests.sidecar.kubelet import FakeKubelet

MODES = ("pod-engine", "pod", "node")
BASELINE = "bare"
ENGINE = "engine-direct"

# A bare prometheus-client exporter: the library's own HTTP server and default registry.
BARE_EXPORTER = """
import signal, sys, threading
from prometheus_client import start_http_server
start_http_server(int(sys.argv[1]), addr="127.0.0.1")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
"""

# What each configuration imports beyond the interpreter, in import order (the lazily imported
# sources last), for the RSS breakdown.
MODULES = {
    BASELINE: ["prometheus_client"],
    "pod-engine": ["prometheus_client", "click", "sidecar.main"],
    "pod": ["prometheus_client", "click", "sidecar.main", "sidecar.gpu", "sidecar.redisinfo"],
    "node": ["prometheus_client", "click", "sidecar.main", "sidecar.gpu", "sidecar.allocations"],
}


def rss_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Result:
    mode: str
    latencies: list[float]
    cpu_ms_per_scrape: float
    rss_before: int
    rss_after: int
    hwm: int
    start_s: float
    sources: dict[str, list[float]] = field(default_factory=dict)
    body: bytes = b""

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return quantile(self.latencies, 0.99)

    @property
    def rss_mib(self) -> float:
        return self.rss_after / 1024


@dataclass
class Started:
    pid: int
    url: str
    start_s: float  # process start to ready (/readyz 200; bare: /metrics 200)


@dataclass
class Setup:
    """The backends every configuration reads, started once."""

    tmp: Path
    redis: procs.Redis
    sim: procs.Sim
    cache: Path
    password_file: Path
    kubelet: FakeKubelet
    real_nvml: bool


def traffic(r: procs.Redis, sim: procs.Sim, cache: Path, files: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=r.port, password=r.password)
    for i in range(1000):
        client.set(f"kv:{i}", b"x" * 512)
        client.get(f"kv:{i // 2}")
    client.close()
    for n in range(20):
        sim.complete(f"A shared system prompt for the benchmark. Request {n % 4}.")
    for i in range(files):
        path = cache / f"{i % 16:02x}" / f"{i:06d}.kv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 4096)


def sidecar_env(mode: str, s: Setup) -> dict[str, str]:
    fixture = {"pod": "h100-whole.json", "node": "a100-mig.json"}
    env: dict[str, str]
    if mode == "pod-engine":  # functions/inferenceservice/sidecar_container.py
        env = {
            "GPU_METRICS": "off",
            "ENGINE_METRICS_URL": f"{s.sim.base}/metrics",
            "PREFIX_CACHE_CAPACITY": "8Gi",
        }
    elif mode == "pod":
        env = {
            "ENGINE_METRICS_URL": f"{s.sim.base}/metrics",
            "PREFIX_CACHE_CAPACITY": "8Gi",
            "REDIS_URL": s.redis.url,
            "REDIS_PASSWORD_FILE": str(s.password_file),
            "LOCAL_CACHE_DIR": str(s.cache),
        }
    else:
        env = {"SIDECAR_MODE": "node", "POD_RESOURCES_SOCKET": str(s.kubelet.socket)}
    if mode in fixture:
        env["NVML_FIXTURE"] = str(procs.FIXTURES / fixture[mode])
    return env


def wait_ready(url: str, proc: procs.Proc) -> float:
    """Seconds from the process's start until `url` answers 200 (polled every 10 ms)."""
    begin = time.monotonic()
    while time.monotonic() - begin < 20:
        with suppress(OSError):
            if procs.http_get(url, timeout=1)[0] == 200:
                return time.monotonic() - begin
        if not proc.alive():
            break
        time.sleep(0.01)
    raise AssertionError(f"{proc.args[0]} not ready at {url}:\n{proc.tail()}")


@contextmanager
def started(mode: str, s: Setup, python_env: dict[str, str]) -> Iterator[Started]:
    """The configuration's process, answering."""
    if mode == BASELINE:
        port = procs.free_port()
        proc = procs.Proc(
            [sys.executable, "-c", BARE_EXPORTER, str(port)],
            s.tmp / f"bare-{port}.log",
            env=python_env,
        )
        url = ready = f"http://127.0.0.1:{port}/metrics"
    else:
        sidecar = procs.sidecar_proc(s.tmp, {**sidecar_env(mode, s), **python_env})
        if s.real_nvml:
            sidecar.proc.env.pop("NVML_FIXTURE", None)  # the real library
        proc, url = sidecar.proc, sidecar.metrics_url
        ready = f"http://127.0.0.1:{sidecar.health_port}/readyz"
    with procs.running(proc):
        seconds = wait_ready(ready, proc)
        assert proc.popen is not None
        yield Started(proc.popen.pid, url, seconds)


def scrape(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
    return (time.perf_counter() - start) * 1000, body


def measure(
    configs: list[str], s: Setup, python_env: dict[str, str], scrapes: int, warmup: int
) -> dict[str, Result]:
    """One round: every configuration running at once, scraped in turn (bare, pod-engine, ...,
    bare, ...), so that on a shared machine each sees the same load at the same moments."""
    with ExitStack() as stack:
        running = {mode: stack.enter_context(started(mode, s, python_env)) for mode in configs}
        engine = f"{s.sim.base}/metrics"
        for _ in range(warmup):  # first-use imports and connections, not measured
            for p in running.values():
                scrape(p.url)
        before = {mode: rss_kib(p.pid) for mode, p in running.items()}
        cpu_before = {mode: cpu_seconds(p.pid) for mode, p in running.items()}
        latencies: dict[str, list[float]] = {mode: [] for mode in [*configs, ENGINE]}
        bodies: dict[str, list[bytes]] = {mode: [] for mode in configs}
        for _ in range(scrapes):
            for mode, p in running.items():
                ms, body = scrape(p.url)
                latencies[mode].append(ms)
                bodies[mode].append(body)
            latencies[ENGINE].append(scrape(engine)[0])
        cpu_ms = {
            mode: (cpu_seconds(p.pid) - cpu_before[mode]) * 1000 / scrapes
            for mode, p in running.items()
        }
        after = {mode: rss_kib(p.pid) for mode, p in running.items()}
    results = {}
    for mode in configs:
        # Per-source read times, from the sidecar's own gauge in each exposition.
        source_times: dict[str, list[float]] = {}
        for body in bodies[mode] if mode != BASELINE else []:
            for labels, value in procs.Metrics.parse(body.decode()).all(
                "inference_sidecar_source_duration_seconds"
            ):
                source_times.setdefault(labels["source"], []).append(value * 1000)
        results[mode] = Result(
            mode,
            latencies[mode],
            cpu_ms[mode],
            before[mode]["VmRSS"],
            after[mode]["VmRSS"],
            after[mode]["VmHWM"],
            running[mode].start_s,
            source_times,
            bodies[mode][-1],
        )
    # The simulator's own /metrics, fetched directly in the same rotation: the part of the
    # sidecar's latency that is the engine's.
    results[ENGINE] = Result(ENGINE, latencies[ENGINE], 0, 0, 0, 0, 0)
    return results


def python_env(bytecode: str, tmp: Path, prime: Callable[[dict[str, str]], None]) -> dict[str, str]:
    """Environment of every measured Python process for the bytecode condition (module doc)."""
    prefix = tmp / f"pycache-{bytecode}"
    prefix.mkdir()
    env = {"PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}
    if bytecode == "none":
        return env
    prime({**env, "PYTHONDONTWRITEBYTECODE": ""})  # one run that writes the bytecode
    if bytecode == "venv":
        stdlib = (
            Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        )
        shutil.rmtree(prefix / stdlib.relative_to("/"), ignore_errors=True)
    return env


def span(values: list[float], fmt: str = ".1f") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}-{hi:{fmt}}"


def report(runs: list[dict[str, Result]], imports: dict[str, list[tuple[str, int]]]) -> None:
    modes = [mode for mode in runs[0] if mode != ENGINE]
    print("\n## per repeat (ratios against `bare` of the same repeat)\n")
    print(
        "| repeat | config | median ms | p99 ms | max ms | CPU ms/scrape | RSS MiB | start s"
        " | p99 ratio | RSS ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, run in enumerate(runs, 1):
        bare = run[BASELINE]
        for mode in modes:
            r = run[mode]
            print(
                f"| {i} | {mode} | {r.p50:.2f} | {r.p99:.2f} | {max(r.latencies):.2f}"
                f" | {r.cpu_ms_per_scrape:.2f} | {r.rss_mib:.1f} | {r.start_s:.2f}"
                f" | {r.p99 / bare.p99:.2f} | {r.rss_after / bare.rss_after:.2f} |"
            )
        e = run[ENGINE]
        print(
            f"| {i} | {ENGINE} | {e.p50:.2f} | {e.p99:.2f} | {max(e.latencies):.2f} | | | |"
            f" {e.p99 / bare.p99:.2f} | |"
        )
    print(f"\n## summary over {len(runs)} repeats (ranges)\n")
    print(
        "| config | median ms | p99 ms | CPU ms/scrape | RSS MiB (peak) | start s | p99 ratio"
        " | RSS ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    bases = [run[BASELINE] for run in runs]
    for mode in modes:
        rs = [run[mode] for run in runs]
        print(
            f"| {mode} | {span([r.p50 for r in rs], '.2f')} | {span([r.p99 for r in rs], '.2f')}"
            f" | {span([r.cpu_ms_per_scrape for r in rs], '.2f')}"
            f" | {span([r.rss_mib for r in rs])} ({span([r.hwm / 1024 for r in rs])})"
            f" | {span([r.start_s for r in rs], '.2f')}"
            f" | {span([r.p99 / b.p99 for r, b in zip(rs, bases, strict=True)], '.2f')}"
            f" | {span([r.rss_after / b.rss_after for r, b in zip(rs, bases, strict=True)], '.2f')}"
            " |"
        )
    es = [run[ENGINE] for run in runs]
    print(
        f"| {ENGINE} | {span([e.p50 for e in es], '.2f')} | {span([e.p99 for e in es], '.2f')}"
        f" | | | | {span([e.p99 / b.p99 for e, b in zip(es, bases, strict=True)], '.2f')} | |"
    )
    print("\n## per-source read ms, median (p99), all repeats\n")
    for mode in modes:
        merged: dict[str, list[float]] = {}
        for run in runs:
            for source, t in run[mode].sources.items():
                merged.setdefault(source, []).extend(t)
        if merged:
            parts = [
                f"{src} {statistics.median(t):.2f} ({quantile(t, 0.99):.2f})"
                for src, t in merged.items()
            ]
            print(f"- {mode}: " + ", ".join(parts))
    print(
        "\n## RSS breakdown, MiB (imports in a fresh interpreter; the rest = measured - imports)\n"
    )
    for mode, steps in imports.items():
        rss = statistics.median(run[mode].rss_after for run in runs) / 1024
        parts = [f"interpreter {steps[0][1] / 1024:.1f}"]
        parts += [
            f"{name} +{(kib - prev) / 1024:.1f}"
            for (_, prev), (name, kib) in itertools.pairwise(steps)
        ]
        rest = rss - steps[-1][1] / 1024
        print(f"- {mode}: " + ", ".join(parts) + f"; the rest +{rest:.1f}; measured {rss:.1f}")
    print()
    for mode in modes:
        body = runs[-1][mode].body
        lines = body.count(b"\n")
        print(f"exposition {mode}: {len(body)} bytes, {lines} lines")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=200, help="measured scrapes per process")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured scrapes first")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of all configurations")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES)
    )
    parser.add_argument("--bytecode", choices=("all", "venv", "none"), default="all")
    parser.add_argument("--files", type=int, default=2000, help="files in the local cache dir")
    parser.add_argument("--real-nvml", action="store_true", help="use the real NVML library")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"--modes: unknown {sorted(unknown)}; allowed: {', '.join(MODES)}")
    configs = [BASELINE, *modes]

    with tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmpdir:
        tmp = Path(tmpdir)
        r = procs.redis_proc(tmp, procs.free_port(), password="bench-password")
        sim = procs.sim_proc(tmp)
        kubelet = FakeKubelet(tmp / "kubelet.sock")
        kubelet.node = {
            "nvidia.com/mig-3g.20gb": ["MIG-8e2f4a61-0b7d-5c39-a1e4-27f6d8b3c905"],
            "nvidia.com/mig-2g.10gb": ["MIG-3b9c7e15-d4a2-5f86-9e0b-c1a7f5d2e438"],
            "nvidia.com/mig-1g.5gb": ["MIG-f05d2c83-7a1e-5b94-8c6f-4e3b0a9d2716"],
        }
        kubelet.pods = [
            ("llm", pod, "vllm", resource, kubelet.node[resource])
            for pod, resource in (
                ("llama-0", "nvidia.com/mig-3g.20gb"),
                ("qwen-0", "nvidia.com/mig-1g.5gb"),
            )
        ]
        with procs.running(r.proc), procs.running(sim.proc):
            kubelet.start()
            try:
                procs.wait_redis(r)
                procs.wait_sim(sim)
                cache = tmp / "cache"
                traffic(r, sim, cache, args.files)
                start = time.perf_counter()
                directory_usage(str(cache))
                walk_ms = (time.perf_counter() - start) * 1000
                pw = tmp / "pw"
                pw.write_text(r.password)
                setup = Setup(tmp, r, sim, cache, pw, kubelet, args.real_nvml)

                def prime(env: dict[str, str]) -> None:
                    measure(configs, setup, env, scrapes=1, warmup=args.warmup)
                    for mode in configs:
                        import_rss(MODULES[mode], env)

                env = python_env(args.bytecode, tmp, prime)
                load_before = os.getloadavg()
                runs = [
                    measure(configs, setup, env, args.scrapes, args.warmup)
                    for _ in range(args.repeat)
                ]
                load_after = os.getloadavg()
                imports = {mode: import_rss(MODULES[mode], env) for mode in configs}
            finally:
                kubelet.stop()
    print(
        f"# sidecar benchmark: {args.repeat} repeats x {args.scrapes} sequential scrapes per"
        f" configuration (after {args.warmup} unmeasured), bytecode={args.bytecode},"
        f" {'real NVML' if args.real_nvml else 'NVML from recorded fixtures'}"
    )
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average"
        f" {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    report(runs, imports)
    print(
        f"local directory walk ({args.files} files, uncached, in-process): {walk_ms:.2f} ms"
        " (the sidecar reuses a walk for LOCAL_CACHE_MIN_INTERVAL=10s)"
    )


if __name__ == "__main__":
    main()
