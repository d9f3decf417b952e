"""Triton Inference Server (`tritonserver`) running the model through its vLLM backend.

Clients speak the KServe v2 protocol under /v2: `POST /v2/models/<name>/generate` with
`{"text_input": ..., "parameters": {...}}`, where <name> is `model_name(spec.model.name)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from functions.common.api.inferenceservice import InferenceServiceSpec
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

# NGC tags are <yy.mm>: 26.08 is Triton 2.72.0 with vLLM 0.27.1 (server r26.08 TRITON_VERSION and
# docs/introduction/compatibility.md). The release-to-tag offset is not +1 per month: r25.07 was
# a patch (2.59.1), so tritonclient 2.73.0 pairs with 26.09.
IMAGE = "nvcr.io/nvidia/tritonserver:26.08-vllm-python-py3"
HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
# The NGC image creates `triton-server` with UID/GID 1000 (server build.py asserts the id) and
# leaves its files root-owned but world-readable, so it runs as 1000 with GID 0.
RUN_AS_USER = 1000

# Triton's own metrics (server docs/user_guide/metrics.md); it reports no time to first token.
METRICS = EngineMetrics(
    queue_depth="sum(nv_inference_pending_request_count{{{sel}}})",
    latency_ms=(
        "sum(rate(nv_inference_queue_duration_us{{{sel}}}[2m])) / 1000"
        " / clamp_min(sum(rate(nv_inference_request_success{{{sel}}}[2m])), 1e-9)"
    ),
    latency_meaning="average queue time (Triton reports no time to first token)",
    latency_is_ttft=False,
)
COMPONENT = "inference-server"  # same component as the Deployment beside it (fn.COMPONENT)
VOLUME = "model-repository"
# Not under /models: that is the model-cache volume, which may later be a shared or read-only
# PVC where kubelet cannot create a nested mount point.
REPOSITORY_PATH = "/etc/triton/model-repository"
VERSION = "1"  # Triton loads numbered version directories; one version is all we serve

EngineName = Literal["vllm"]


@dataclass(frozen=True)
class Engine:
    """A Triton backend that runs the model: its image and how it fills the model directory."""

    image: str
    files: Callable[[BackendInput], dict[str, str]]  # model-directory path -> file content


def engine(spec: InferenceServiceSpec) -> EngineName:
    """Which Triton backend runs the model.

    The spec has no field to choose yet, so always vLLM: it loads a Hugging Face id directly.
    Triton's TensorRT-LLM backend (`backend: "tensorrtllm"`, image `<yy.mm>-trtllm-python-py3`)
    needs engines built ahead of time; when a later issue adds the field, it returns
    "tensorrtllm" here and registers an Engine for it in ENGINES.
    """
    del spec  # nothing to choose from yet
    return "vllm"


def model_name(hf_id: str) -> str:
    """Triton model name for a Hugging Face id.

    Triton names a model after its directory, so the "/" of org/name cannot stay; "--" is the
    Hugging Face cache's own separator. The schema limits ids to [A-Za-z0-9._-] and one "/",
    starting alphanumeric, so the result is a safe path component and URL segment.
    """
    return hf_id.replace("/", "--")


def vllm_engine_args(inp: BackendInput) -> dict[str, Any]:
    """`model.json`: keyword arguments the backend passes unchanged to vLLM's AsyncEngineArgs."""
    spec = inp.spec
    out: dict[str, Any] = {
        "model": spec.model.name,
        "tensor_parallel_size": inp.placement.usable_gpus,
        "enable_prefix_caching": spec.cache.enabled,
        # The backend reports vllm:* metrics only when engine stats are on (and with
        # REPORT_CUSTOM_METRICS in config.pbtxt).
        "disable_log_stats": False,
    }
    # served_model_name is left out: the backend labels metrics and responses with the Triton
    # model name, so vLLM's own name would be unused.
    if spec.model.revision:
        out["revision"] = spec.model.revision
    if spec.cache.enabled and spec.cache.prefixCacheSize is not None:
        # KV-cache bytes per GPU; overrides gpu_memory_utilization's share (as in vllm.py).
        out["kv_cache_memory_bytes"] = to_bytes(spec.cache.prefixCacheSize)
    return out


# KIND_MODEL: the engine places itself on the GPUs it sees (KIND_GPU would pin one GPU per
# instance, which the backend rejects for tensor parallelism). REPORT_CUSTOM_METRICS re-exports
# vLLM's metrics on the metrics port.
VLLM_CONFIG_PBTXT = """\
backend: "vllm"
instance_group [
  {
    count: 1
    kind: KIND_MODEL
  }
]
parameters: {
  key: "REPORT_CUSTOM_METRICS"
  value: {
    string_value: "true"
  }
}
"""


def vllm_files(inp: BackendInput) -> dict[str, str]:
    return {
        "config.pbtxt": VLLM_CONFIG_PBTXT,
        # sort_keys + fixed indent: the same spec always renders byte-identical JSON.
        f"{VERSION}/model.json": json.dumps(vllm_engine_args(inp), sort_keys=True, indent=2) + "\n",
    }


ENGINES: dict[EngineName, Engine] = {"vllm": Engine(image=IMAGE, files=vllm_files)}


def config_map_key(path: str) -> str:
    # ConfigMap keys may not contain "/"; the volume's items put each key back at its path.
    return path.rsplit("/", 1)[-1]


def repository(inp: BackendInput, files: dict[str, str]) -> dict[str, Any]:
    data = {config_map_key(path): content for path, content in sorted(files.items())}
    return config_map(inp.owner, inp.owner.child("model-repository"), COMPONENT, data)


def repository_volume(cm: dict[str, Any], name: str, files: dict[str, str]) -> dict[str, Any]:
    items = [{"key": config_map_key(path), "path": f"{name}/{path}"} for path in sorted(files)]
    return {"name": VOLUME, "configMap": {"name": cm["metadata"]["name"], "items": items}}


def args(name: str) -> list[str]:
    return [
        f"--model-repository={REPOSITORY_PATH}",
        # A ConfigMap volume's root also holds `..data` and `..<timestamp>` directories; Triton
        # lists every subdirectory as a model (core LocalFileSystem skips only . and ..), so
        # the default mode would fail on them. Explicit mode loads just this one.
        "--model-control-mode=explicit",
        f"--load-model={name}",
        f"--http-port={HTTP_PORT}",
        f"--grpc-port={GRPC_PORT}",
        f"--metrics-port={METRICS_PORT}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
    ]


def plan(inp: BackendInput) -> BackendPlan:
    tp = inp.placement.usable_gpus
    chosen = ENGINES[engine(inp.spec)]
    name = model_name(inp.spec.model.name)
    files = chosen.files(inp)
    cm = repository(inp, files)
    container = {
        "name": "triton",
        "image": inp.spec.image or chosen.image,
        "command": ["tritonserver"],
        "args": args(name),
        "env": [
            *pod.hf_env(inp.spec),
        ],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        # live: the server process answers; ready: it and the loaded model are ready.
        **serving_probes("/v2/health/live", "/v2/health/ready", "http"),
        "volumeMounts": [
            *pod.SCRATCH_MOUNTS,
            {"name": VOLUME, "mountPath": REPOSITORY_PATH, "readOnly": True},
        ],
        "securityContext": pod.container_security(RUN_AS_USER),
    }
    return BackendPlan(
        metrics=METRICS,
        container=container,
        volumes=[*pod.volumes(pod.shm_size(tp)), repository_volume(cm, name, files)],
        resources={"model-repository": cm},
        service_ports=[
            {"name": p, "port": n, "targetPort": p, "protocol": "TCP"}
            for p, n in (("http", HTTP_PORT), ("grpc", GRPC_PORT), ("metrics", METRICS_PORT))
        ],
        pod_annotations=config_hash(cm),
        api_path="/v2",
        metrics_port="metrics",
        # Triton names models after repository directories, which cannot contain '/'.
        served_model=name,
    )


def tiers(inp: BackendInput, bound: BoundCache) -> TierPlan:
    """No knob for the TokenCache's tiers: say so instead of dropping them."""
    plan = TierPlan()
    used = [name for name, tier in (("local", bound.local), ("redis", bound.redis)) if tier]
    if used:
        plan.warnings.append(
            f"backend triton: the vLLM backend's model.json takes no KV connector; "
            f"TokenCache {bound.name} tiers "
            f"{', '.join(used)} are not used"
        )
    if bound.prefix_bytes and inp.spec.cache.prefixCacheSize is None:
        plan.warnings.append(
            f"backend triton: TokenCache {bound.name}'s prefix budget is not applied; set "
            "cache.prefixCacheSize"
        )
    return plan
