"""inference-sidecar: GPU and cache metrics for an inference pod (or, in node mode, a node).

Every option has an environment variable (shown by --help); the container needs no
arguments. `inference-sidecar` alone serves; `inference-sidecar record-nvml` saves this
machine's NVML answers as a fixture.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import click
from prometheus_client import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from sidecar import log
from sidecar.engine import EngineSource
from sidecar.localdir import LocalDirSource
from sidecar.metrics import SidecarCollector, Source
from sidecar.server import Servers

# Byte quantities only, parsed here rather than with kubernetes.utils.parse_quantity (what the
# functions use): importing the kubernetes client costs ~50 MiB RSS and 0.5 s, as much as the
# whole sidecar.
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|Pi|K|k|M|G|T|P)?\s*$")
_FACTORS = {
    None: 1,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
}


def parse_quantity(value: str) -> int:
    """Kubernetes-style byte quantity ("8Gi", "500M", "1073741824") -> bytes."""
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"not a byte quantity: {value!r} (e.g. 8Gi, 500M, 1073741824)")
    return int(float(match.group(1)) * _FACTORS[match.group(2)])


def _quantity(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_quantity(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx, param) from err


def build_sources(
    *,
    mode: str,
    gpu: str,
    nvml_fixture: str | None,
    nvml_retry_interval: float,
    engine_metrics_url: str | None,
    engine_timeout: float,
    prefix_cache_capacity: int | None,
    local_cache_dir: str | None,
    local_cache_min_interval: float,
    redis_url: str | None,
    redis_password: str | None,
    redis_password_file: str | None,
    redis_timeout: float,
    pod_resources_socket: str,
    resource_prefixes: tuple[str, ...],
) -> list[Source]:
    # The sources' client libraries are imported only where configured: each costs resident
    # memory for the life of the process (pynvml 2.4 MiB, redis-py 8 MiB, grpc 13 MiB with
    # bytecode; sidecar/BENCHMARK.md), and the pod sidecar as rendered needs none of them.
    sources: list[Source] = []
    if gpu != "off":
        from sidecar.gpu import GpuSource  # noqa: PLC0415
        from sidecar.nvml import Nvml, PynvmlNvml, RecordedNvml  # noqa: PLC0415

        nvml: Nvml = RecordedNvml.load(nvml_fixture) if nvml_fixture else PynvmlNvml()
        sources.append(GpuSource(nvml, retry_interval=nvml_retry_interval))
    if engine_metrics_url:
        sources.append(EngineSource(engine_metrics_url, engine_timeout, prefix_cache_capacity))
    if local_cache_dir:
        sources.append(LocalDirSource(local_cache_dir, local_cache_min_interval))
    if redis_url:
        from sidecar.redisinfo import RedisSource  # noqa: PLC0415

        sources.append(RedisSource(redis_url, redis_password, redis_password_file, redis_timeout))
    if mode == "node":
        from sidecar.allocations import AllocationsSource  # noqa: PLC0415

        sources.append(AllocationsSource(pod_resources_socket, resource_prefixes))
    return sources


class _Group(click.Group):
    """`inference-sidecar [serve options]` serves; subcommands for the rest."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """GPU and cache metrics sidecar (Prometheus /metrics, /healthz, /readyz).

    Without a subcommand, `serve` runs.
    """


@cli.command()
@click.option(
    "--metrics-bind-address",
    envvar="METRICS_BIND_ADDRESS",
    default=":8080",
    show_default=True,
    show_envvar=True,
    help="[host]:port of /metrics.",
)
@click.option(
    "--health-probe-bind-address",
    envvar="HEALTH_PROBE_BIND_ADDRESS",
    default=":8081",
    show_default=True,
    show_envvar=True,
    help="[host]:port of /healthz and /readyz.",
)
@click.option(
    "--mode",
    envvar="SIDECAR_MODE",
    type=click.Choice(["pod", "node"]),
    default="pod",
    show_default=True,
    show_envvar=True,
    help="pod: beside an inference server. node: one per GPU node, adds kubelet PodResources "
    "allocations.",
)
@click.option(
    "--gpu",
    envvar="GPU_METRICS",
    type=click.Choice(["auto", "off"]),
    default="auto",
    show_default=True,
    show_envvar=True,
    help="auto: NVML when present (inference_gpu_up 0 otherwise); off: no GPU metrics.",
)
@click.option(
    "--nvml-fixture",
    envvar="NVML_FIXTURE",
    type=click.Path(exists=True, dir_okay=False),
    show_envvar=True,
    help="Replay recorded NVML answers instead of the real library (tests, demos).",
)
@click.option(
    "--nvml-retry-interval",
    envvar="NVML_RETRY_INTERVAL",
    type=float,
    default=60.0,
    show_default=True,
    show_envvar=True,
    help="Seconds between NVML initialisation attempts while it is unavailable.",
)
@click.option(
    "--engine-metrics-url",
    envvar="ENGINE_METRICS_URL",
    show_envvar=True,
    help="The engine's Prometheus endpoint, e.g. http://127.0.0.1:8000/metrics (vLLM), "
    ":8002/metrics (Triton), :8000/prometheus/metrics (trtllm-serve).",
)
@click.option(
    "--engine-timeout",
    envvar="ENGINE_TIMEOUT",
    type=float,
    default=2.0,
    show_default=True,
    show_envvar=True,
    help="Seconds to wait for the engine's /metrics.",
)
@click.option(
    "--prefix-cache-capacity",
    envvar="PREFIX_CACHE_CAPACITY",
    callback=_quantity,
    show_envvar=True,
    help="Bytes of the engine's KV/prefix cache (e.g. 8Gi); with it, "
    "inference_cache_size_bytes{tier=prefix} = usage ratio x capacity.",
)
@click.option(
    "--local-cache-dir",
    envvar="LOCAL_CACHE_DIR",
    show_envvar=True,
    help="Local cache directory to measure (mounted read-only).",
)
@click.option(
    "--local-cache-min-interval",
    envvar="LOCAL_CACHE_MIN_INTERVAL",
    type=float,
    default=10.0,
    show_default=True,
    show_envvar=True,
    help="Reuse a directory walk younger than this many seconds.",
)
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    show_envvar=True,
    help="redis:// or rediss:// URL of the distributed tier.",
)
@click.option(
    "--redis-password-file",
    envvar="REDIS_PASSWORD_FILE",
    show_envvar=True,
    help="File holding the Redis password (a mounted Secret key). REDIS_PASSWORD also works.",
)
@click.option(
    "--redis-timeout",
    envvar="REDIS_TIMEOUT",
    type=float,
    default=1.0,
    show_default=True,
    show_envvar=True,
    help="Seconds to wait for Redis.",
)
@click.option(
    "--pod-resources-socket",
    envvar="POD_RESOURCES_SOCKET",
    default="/var/lib/kubelet/pod-resources/kubelet.sock",
    show_default=True,
    show_envvar=True,
    help="kubelet PodResources socket (node mode).",
)
@click.option(
    "--resource-prefix",
    "resource_prefixes",
    envvar="GPU_RESOURCE_PREFIXES",
    multiple=True,
    default=["nvidia.com/"],
    show_default=True,
    show_envvar=True,
    help="Resource names counted as GPU devices (node mode); repeat, or space-separated in the "
    "variable.",
)
@click.option(
    "--log-level",
    envvar="LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    show_envvar=True,
)
def serve(
    metrics_bind_address: str,
    health_probe_bind_address: str,
    mode: str,
    gpu: str,
    nvml_fixture: str | None,
    nvml_retry_interval: float,
    engine_metrics_url: str | None,
    engine_timeout: float,
    prefix_cache_capacity: int | None,
    local_cache_dir: str | None,
    local_cache_min_interval: float,
    redis_url: str | None,
    redis_password_file: str | None,
    redis_timeout: float,
    pod_resources_socket: str,
    resource_prefixes: tuple[str, ...],
    log_level: str,
) -> None:
    """Serve /metrics, /healthz and /readyz until SIGTERM or SIGINT."""
    log.setup(log_level)
    sources = build_sources(
        mode=mode,
        gpu=gpu,
        nvml_fixture=nvml_fixture,
        nvml_retry_interval=nvml_retry_interval,
        engine_metrics_url=engine_metrics_url,
        engine_timeout=engine_timeout,
        prefix_cache_capacity=prefix_cache_capacity,
        local_cache_dir=local_cache_dir,
        local_cache_min_interval=local_cache_min_interval,
        redis_url=redis_url,
        redis_password=os.environ.get("REDIS_PASSWORD"),
        redis_password_file=redis_password_file,
        redis_timeout=redis_timeout,
        pod_resources_socket=pod_resources_socket,
        resource_prefixes=tuple(resource_prefixes),
    )
    collector = SidecarCollector(sources)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    registry.register(ProcessCollector(registry=None))
    try:
        servers = Servers(metrics_bind_address, health_probe_bind_address, registry)
    except (OSError, ValueError) as err:
        log.error("main", f"cannot listen: {err}")
        collector.close()
        sys.exit(1)
    names = [s.name for s in sources]
    servers.health.details = {"mode": mode, "sources": names}
    # One read before reporting ready: each source logs its state (NVML present or not,
    # engine/Redis reachable or not) at start-up instead of at the first scrape.
    list(collector.collect())
    servers.start()
    log.info(
        "main",
        "serving",
        metrics=f"{metrics_bind_address} (port {servers.metrics_port})",
        health=f"{health_probe_bind_address} (port {servers.health_port})",
        mode=mode,
        sources=",".join(names) or "none",
    )

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop.wait(3600):
        pass
    log.info("main", "shutting down")
    servers.stop()
    collector.close()


@cli.command("record-nvml")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="Fixture file to write (JSON).",
)
@click.option("--description", default="", help="What was recorded (GPU, driver, MIG layout).")
def record_nvml(out_path: str, description: str) -> None:
    """Record this machine's NVML answers (read-only calls) as a test fixture."""
    from sidecar.gpu import GpuSource  # noqa: PLC0415
    from sidecar.nvml import PynvmlNvml, RecordingNvml  # noqa: PLC0415

    log.setup("info")
    recorder = RecordingNvml(PynvmlNvml())
    source = GpuSource(recorder)
    reading = source.reading()
    source.close()
    desc = description or (
        f"recorded {time.strftime('%Y-%m-%d', time.gmtime())} by inference-sidecar record-nvml: "
        + (", ".join(name for _, _, name, _ in reading.gpus) or "no GPU")
        + (f", driver {reading.driver_version}" if reading.driver_version else "")
    )
    Path(out_path).write_text(json.dumps(recorder.fixture(desc), indent=2) + "\n")
    click.echo(f"wrote {out_path}: {len(recorder.answers)} answers, up={reading.up}")
