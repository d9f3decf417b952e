"""Metric catalogue and the one prometheus_client Collector that serves every source.

Each source (GPU, engine, local directory, Redis, kubelet PodResources) reads its live values
when Prometheus scrapes and returns plain samples; `SidecarCollector` groups them into metric
families with the HELP text, type and label names declared here. One collector for all
sources keeps every family in one block of the exposition, even where several sources feed
the same metric (inference_cache_hits_total from the engine and from Redis).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sidecar import log


@dataclass(frozen=True)
class Spec:
    name: str  # exposition name; counters end in _total
    kind: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...] = ()


GPU_DEVICE_LABELS = (
    "gpu",
    "uuid",
    "gpu_model",
    "mig_profile",
    "gpu_instance_id",
    "compute_instance_id",
)
CACHE_LABELS = ("tier", "source", "model_name")

SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        # GPU (NVML)
        Spec(
            "inference_gpu_up",
            "gauge",
            "1 when NVML answered this scrape; 0 without GPU, driver or NVML library.",
        ),
        Spec(
            "inference_gpu_info",
            "gauge",
            "GPUs NVML reports (value 1); mig_mode is 'enabled' for MIG-enabled GPUs.",
            ("gpu", "uuid", "gpu_model", "driver_version", "mig_mode"),
        ),
        Spec(
            "inference_gpu_utilization",
            "gauge",
            "Ratio 0-1 of the last NVML sample period in which a kernel ran on the GPU "
            "(nvmlDeviceGetUtilizationRates().gpu/100). Absent where NVML does not support it: "
            "MIG-enabled GPUs and MIG devices.",
            GPU_DEVICE_LABELS,
        ),
        Spec(
            "inference_gpu_memory_used_bytes",
            "gauge",
            "GPU memory in use (nvmlMemory_v2 used, driver-reserved memory excluded), per whole "
            "GPU (MIG labels empty) and per MIG device of a MIG-enabled GPU.",
            GPU_DEVICE_LABELS,
        ),
        Spec(
            "inference_gpu_memory_total_bytes",
            "gauge",
            "GPU memory size, per whole GPU and per MIG device.",
            GPU_DEVICE_LABELS,
        ),
        # Engine and cache tiers
        Spec("inference_engine_up", "gauge", "1 when the engine's /metrics answered this scrape."),
        Spec("inference_redis_up", "gauge", "1 when Redis answered INFO this scrape."),
        Spec(
            "inference_local_cache_up",
            "gauge",
            "1 when the local cache directory could be read this scrape.",
        ),
        Spec(
            "inference_cache_hits_total",
            "counter",
            "Cache hits per tier. Units follow the source: tokens (vllm), KV blocks (trtllm), "
            "key lookups (redis keyspace_hits).",
            CACHE_LABELS,
        ),
        Spec(
            "inference_cache_queries_total",
            "counter",
            "Cache lookups per tier, in the same units as inference_cache_hits_total "
            "(redis: keyspace_hits + keyspace_misses).",
            CACHE_LABELS,
        ),
        Spec(
            "inference_cache_size_bytes",
            "gauge",
            "Bytes held per tier: local = apparent size of the files in the cache directory, "
            "redis = used_memory, prefix = KV-cache usage ratio x configured prefix-cache "
            "capacity (only when the capacity is configured).",
            CACHE_LABELS,
        ),
        Spec(
            "inference_cache_capacity_bytes",
            "gauge",
            "Configured capacity per tier: prefix = --prefix-cache-capacity, redis = maxmemory "
            "(absent when 0, i.e. unlimited).",
            CACHE_LABELS,
        ),
        Spec(
            "inference_cache_usage_ratio",
            "gauge",
            "Ratio 0-1 of a tier in use: prefix = engine KV-cache usage "
            "(vllm:kv_cache_usage_perc, trtllm_kv_cache_utilization, ...), redis = used_memory"
            " / maxmemory.",
            CACHE_LABELS,
        ),
        Spec(
            "inference_cache_entries",
            "gauge",
            "Entries per tier: files in the local cache directory, keys in Redis.",
            CACHE_LABELS,
        ),
        Spec(
            "inference_cache_evictions_total",
            "counter",
            "Entries evicted for lack of memory (redis evicted_keys).",
            CACHE_LABELS,
        ),
        # Node mode (kubelet PodResources)
        Spec(
            "inference_pod_resources_up",
            "gauge",
            "1 when the kubelet PodResources API answered List this scrape.",
        ),
        Spec(
            "inference_gpu_allocations_total",
            "counter",
            "GPU devices handed to pods, per resource name: each (pod, container, device) "
            "assignment seen in the kubelet PodResources API counts once, from when this "
            "process first sees it.",
            ("resource",),
        ),
        Spec(
            "inference_gpu_allocated_devices",
            "gauge",
            "GPU devices assigned to running pods now, per resource name.",
            ("resource",),
        ),
        Spec(
            "inference_gpu_allocatable_devices",
            "gauge",
            "GPU devices the kubelet can assign on this node, per resource name "
            "(PodResources GetAllocatableResources).",
            ("resource",),
        ),
        Spec(
            "inference_gpu_allocation_info",
            "gauge",
            "Which pod container holds which device (value 1); uuid is the GPU or MIG UUID "
            "behind the device id, for joins with the GPU metrics.",
            ("resource", "device_id", "uuid", "namespace", "pod", "container"),
        ),
        # The sidecar itself
        Spec(
            "inference_sidecar_source_duration_seconds",
            "gauge",
            "Time this scrape spent reading each source.",
            ("source",),
        ),
    )
}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def sample(name: str, value: float, **labels: str) -> Sample:
    spec = SPECS[name]  # KeyError: a metric missing from the catalogue
    unknown = set(labels) - set(spec.labels)
    if unknown:
        raise ValueError(f"{name}: unknown labels {sorted(unknown)}")
    return Sample(name, labels, float(value))


class Source(Protocol):
    name: str

    def read(self) -> list[Sample]:
        """Live values; must not raise for an unreachable backend (report `_up` 0 instead)."""

    def close(self) -> None:
        """Release connections and libraries."""


class SidecarCollector(Collector):
    """Reads every source at scrape time, one after the other in the scrape's own thread, and
    groups the samples into families.

    One after the other, not in a thread pool: each source bounds its own wait (ENGINE_TIMEOUT,
    REDIS_TIMEOUT, the kubelet call's 2 s), so a scrape waits about the sum of those at most,
    under Prometheus' default 10 s scrape timeout. Reads that answer take a millisecond or two
    each; overlapping them made no measurable difference to scrape latency and the pool's
    threads cost memory (sidecar/BENCHMARK.md). Two concurrent scrapes read a source
    concurrently, as before: sources are thread-safe.
    """

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = list(sources)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families depend on the configured sources; nothing to pre-declare

    def _read(self, source: Source) -> tuple[list[Sample], float]:
        start = time.perf_counter()
        try:
            samples = source.read()
        except Exception as err:  # a bug in a source must not take /metrics down
            log.warning(source.name, f"reading {source.name} failed: {err!r}")
            samples = []
        return samples, time.perf_counter() - start

    def collect(self) -> Iterator[Metric]:
        samples: list[Sample] = []
        for source in self.sources:
            got, seconds = self._read(source)
            samples.extend(got)
            samples.append(
                sample("inference_sidecar_source_duration_seconds", seconds, source=source.name)
            )
        return iter(families(samples))

    def close(self) -> None:
        for source in self.sources:
            source.close()


def families(samples: Sequence[Sample]) -> list[Metric]:
    """Metric families for the samples, in catalogue order; a family per name seen."""
    by_name: dict[str, list[Sample]] = {}
    for s in samples:
        by_name.setdefault(s.name, []).append(s)
    out: list[Metric] = []
    for name, spec in SPECS.items():
        if name not in by_name:
            continue
        family: GaugeMetricFamily | CounterMetricFamily
        if spec.kind == "counter":
            family = CounterMetricFamily(name.removesuffix("_total"), spec.help, labels=spec.labels)
        else:
            family = GaugeMetricFamily(name, spec.help, labels=spec.labels)
        for s in by_name[name]:
            family.add_metric([s.labels.get(label, "") for label in spec.labels], s.value)
        out.append(family)
    return out
