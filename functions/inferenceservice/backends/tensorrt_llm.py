"""TensorRT-LLM's OpenAI-compatible server (`trtllm-serve`) on its PyTorch backend.

The PyTorch backend loads a Hugging Face id directly, with no engine build step.
"""

from __future__ import annotations

from typing import Any

import yaml

from functions.common.objects import config_hash, config_map
from functions.common.probes import serving_probes
from functions.common.quantity import to_bytes
from functions.inferenceservice import pod
from functions.inferenceservice.backends.base import (
    BackendInput,
    BackendPlan,
    EngineMetrics,
    TierPlan,
)
from functions.inferenceservice.tokencache import BoundCache

# NGC release images are tagged with the bare package version (PyPI tensorrt-llm 1.2.1).
IMAGE = "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
PORT = 8000
COMPONENT = "inference-server"  # same component as the Deployment beside it (fn.COMPONENT)
VOLUME = "engine-config"
CONFIG_DIR = "/etc/trtllm"
CONFIG_KEY = "config.yaml"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"
# trtllm-serve's default share of the GPU memory left after weights that goes to KV cache.
FREE_GPU_MEMORY_FRACTION = 0.9
# The release image sets no USER (docker/Dockerfile.multi), so it would run as root, which the
# pod's runAsNonRoot forbids. Nothing needs root: NVIDIA device nodes are world-accessible, the
# installed files are world-readable, and every write goes to $HOME=/tmp, /tmp, /dev/shm or the
# model cache. UID 1000 matches the first user of the Ubuntu base images.
RUN_AS_USER = 1000

# trtllm-serve's Prometheus names (tensorrt_llm/metrics/collector.py, `trtllm_` prefix).
METRICS = EngineMetrics(
    queue_depth="sum(trtllm_num_requests_waiting{{{sel}}})",
    latency_ms=(
        "1000 * histogram_quantile(0.9, "
        "sum by (le) (rate(trtllm_time_to_first_token_seconds_bucket{{{sel}}}[2m])))"
    ),
    latency_meaning="p90 time to first token",
)


def engine_config(inp: BackendInput) -> dict[str, Any]:
    """LLM API options file: fields of LlmArgs, which rejects unknown keys."""
    spec = inp.spec
    config: dict[str, Any] = {
        # The PyTorch backend collects iteration stats (KV-cache use, queue) only when asked;
        # without them /metrics is empty and the Prometheus KV gauges never update.
        "enable_iter_perf_stats": True,
        # Mounts /prometheus/metrics at all; without it only the JSON /metrics exists.
        "return_perf_metrics": True,
        "kv_cache_config": {
            "enable_block_reuse": spec.cache.enabled,
            "free_gpu_memory_fraction": FREE_GPU_MEMORY_FRACTION,
        },
    }
    host = host_cache_bytes(inp)
    if host:
        config["kv_cache_config"]["host_cache_size"] = host
    if spec.model.revision:
        config["revision"] = spec.model.revision
    return config


def host_cache_bytes(inp: BackendInput) -> int:
    """TensorRT-LLM's one offload tier is host RAM: used for a TokenCache's local tier, sized to
    the tier but at most half the replica's memory (the rest holds the engine itself)."""
    if inp.cache is None or inp.cache.local is None:
        return 0
    return min(inp.cache.local.size_bytes, to_bytes(inp.spec.resources.memory) // 2)


def options_file(inp: BackendInput) -> dict[str, Any]:
    data = {CONFIG_KEY: yaml.safe_dump(engine_config(inp), sort_keys=True)}
    return config_map(inp.owner, inp.owner.child("trtllm-config"), COMPONENT, data)


def args(inp: BackendInput) -> list[str]:
    return [
        inp.spec.model.name,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--backend",
        "pytorch",
        "--tp_size",
        str(inp.placement.usable_gpus),
        # Newer releases also accept --config (an alias added by NVIDIA/TensorRT-LLM#9104);
        # this long name is the option's own name, so 1.2.1 takes it either way.
        "--extra_llm_api_options",
        CONFIG_PATH,
    ]


def warnings(inp: BackendInput) -> list[str]:
    cache = inp.spec.cache
    out = []
    if cache.enabled and cache.prefixCacheSize is not None:
        out.append(
            f"cache.prefixCacheSize {cache.prefixCacheSize} is not applied by backend "
            "tensorrt-llm: trtllm-serve sizes the KV cache as a fraction of free GPU memory "
            f"(kv_cache_config.free_gpu_memory_fraction, {FREE_GPU_MEMORY_FRACTION}) or in "
            "tokens (max_tokens), and bytes cannot be turned into tokens without the model's "
            "layer geometry"
        )
    return out


def plan(inp: BackendInput) -> BackendPlan:
    tp = inp.placement.usable_gpus
    cm = options_file(inp)
    container = {
        "name": "trtllm",
        "image": inp.spec.image or IMAGE,
        "command": ["trtllm-serve"],
        "args": args(inp),
        "env": [
            *pod.hf_env(inp.spec),
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        **serving_probes("/health", "/health", "http"),
        "volumeMounts": [
            *pod.SCRATCH_MOUNTS,
            {"name": VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
        ],
        "securityContext": pod.container_security(RUN_AS_USER),
    }
    return BackendPlan(
        metrics=METRICS,
        container=container,
        volumes=[
            *pod.volumes(pod.shm_size(tp)),
            {"name": VOLUME, "configMap": {"name": cm["metadata"]["name"]}},
        ],
        resources={"engine-config": cm},
        pod_annotations=config_hash(cm),
        service_ports=[{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        api_path="/v1",
        # /metrics is JSON iteration stats; the Prometheus text format is served here.
        metrics_path="/prometheus/metrics",
        warnings=warnings(inp),
    )


def tiers(inp: BackendInput, bound: BoundCache) -> TierPlan:
    """The local tier becomes host-RAM offload (see host_cache_bytes); Redis has no knob."""
    plan = TierPlan()
    if bound.local is not None:
        plan.warnings.append(
            f"backend tensorrt-llm: TokenCache {bound.name}'s local tier is served from host RAM "
            f"(kv_cache_config.host_cache_size {host_cache_bytes(inp)} bytes), not NVMe: "
            "TensorRT-LLM has no disk tier"
        )
    if bound.redis is not None:
        plan.warnings.append(
            f"backend tensorrt-llm: TensorRT-LLM has no Redis KV tier; TokenCache {bound.name}'s "
            "redis tier is not used"
        )
    if bound.prefix_bytes and inp.spec.cache.prefixCacheSize is None:
        plan.warnings.append(
            f"backend tensorrt-llm: TokenCache {bound.name}'s prefix budget is not applied; "
            "TensorRT-LLM sizes its KV cache by free_gpu_memory_fraction"
        )
    return plan
