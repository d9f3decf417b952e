"""Scrape latency and resident memory of the sidecar process (`make bench-sidecar`).

Starts redis-server and llm-d-inference-sim (as the tests do), puts some traffic through both,
fills a local cache directory, starts the sidecar with every pod-mode source configured (NVML
from a recorded fixture unless --real-nvml), then scrapes /metrics N times one after another
and reports client-side latency (median, p90, p99, max), the sidecar's own per-source read
times and its RSS (VmRSS, VmHWM from /proc) before and after. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from sidecar.localdir import directory_usage
from tests.sidecar import procs


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


def measure(sidecar: procs.Sidecar, scrapes: int) -> dict[str, object]:
    assert sidecar.proc.popen is not None
    pid = sidecar.proc.popen.pid
    before = rss_kib(pid)
    cpu_before = cpu_seconds(pid)
    latencies = []
    source_times: dict[str, list[float]] = {}
    body = b""
    for _ in range(scrapes):
        start = time.perf_counter()
        with urllib.request.urlopen(sidecar.metrics_url, timeout=10) as resp:
            body = resp.read()
        latencies.append((time.perf_counter() - start) * 1000)
        m = procs.Metrics.parse(body.decode())
        for labels, value in m.all("inference_sidecar_source_duration_seconds"):
            source_times.setdefault(labels["source"], []).append(value * 1000)
    return {
        "before": before,
        "after": rss_kib(pid),
        "cpu_ms_per_scrape": (cpu_seconds(pid) - cpu_before) * 1000 / scrapes,
        "latencies": latencies,
        "sources": source_times,
        "body": body,
    }


def report(args: argparse.Namespace, result: dict[str, Any], walk_ms: float) -> None:
    ms: list[float] = result["latencies"]
    body: bytes = result["body"]
    before, after = result["before"], result["after"]
    lines = body.count(b"\n")
    print(f"# sidecar benchmark: {args.scrapes} sequential scrapes of /metrics")
    print(f"exposition: {len(body)} bytes, {lines} lines")
    print(
        f"scrape latency ms: median {statistics.median(ms):.2f}, p90 {quantile(ms, 0.9):.2f},"
        f" p99 {quantile(ms, 0.99):.2f}, max {max(ms):.2f}"
    )
    print(f"sidecar CPU per scrape: {result['cpu_ms_per_scrape']:.2f} ms (utime+stime)")
    for source, t in result["sources"].items():
        print(
            f"  source {source:8s} read ms: median {statistics.median(t):.2f},"
            f" p99 {quantile(t, 0.99):.2f}"
        )
    print(
        f"  local directory walk ({args.files} files, uncached, in-process): {walk_ms:.2f} ms"
        " (the sidecar reuses a walk for LOCAL_CACHE_MIN_INTERVAL=10s)"
    )
    print(
        f"RSS KiB: before {before['VmRSS']}, after {after['VmRSS']}, peak {after['VmHWM']}"
        f" ({after['VmRSS'] / 1024:.1f} MiB)"
    )
    final = procs.Metrics.parse(body.decode())
    up = {
        name: final.get(name)
        for name in (
            "inference_gpu_up",
            "inference_engine_up",
            "inference_redis_up",
            "inference_local_cache_up",
        )
    }
    print(f"up gauges: {up}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--files", type=int, default=2000, help="files in the local cache dir")
    parser.add_argument("--real-nvml", action="store_true", help="use the real NVML library")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmpdir:
        tmp = Path(tmpdir)
        r = procs.redis_proc(tmp, procs.free_port(), password="bench-password")
        sim = procs.sim_proc(tmp)
        with procs.running(r.proc), procs.running(sim.proc):
            procs.wait_redis(r)
            procs.wait_sim(sim)
            cache = tmp / "cache"
            traffic(r, sim, cache, args.files)
            start = time.perf_counter()
            directory_usage(str(cache))
            walk_ms = (time.perf_counter() - start) * 1000
            pw = tmp / "pw"
            pw.write_text(r.password)
            env = {
                "ENGINE_METRICS_URL": f"{sim.base}/metrics",
                "PREFIX_CACHE_CAPACITY": "8Gi",
                "REDIS_URL": r.url,
                "REDIS_PASSWORD_FILE": str(pw),
                "LOCAL_CACHE_DIR": str(cache),
            }
            if not args.real_nvml:
                env["NVML_FIXTURE"] = str(procs.FIXTURES / "h100-whole.json")
            sidecar = procs.sidecar_proc(tmp, env)
            if args.real_nvml:
                sidecar.proc.env.pop("NVML_FIXTURE")  # the real library
            with procs.running(sidecar.proc):
                procs.wait_sidecar(sidecar)
                result = measure(sidecar, args.scrapes)
    report(args, result, walk_ms)


if __name__ == "__main__":
    main()
