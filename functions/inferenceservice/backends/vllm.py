"""vLLM's OpenAI-compatible server (`vllm serve`)."""

from __future__ import annotations

from typing import Any

from functions.common import lmcache
from functions.common.probes import serving_probes
from functions.common.quantity import format_bytes, to_bytes
from functions.inferenceservice import pod
from functions.inferenceservice.backends.base import (
    BackendInput,
    BackendPlan,
    EngineMetrics,
    TierPlan,
)
from functions.inferenceservice.tokencache import BoundCache, LocalTier

IMAGE = "vllm/vllm-openai:v0.33.0"
PORT = 8000
# The image ships a `vllm` user (UID 2000, GID 0) for non-root runs.
RUN_AS_USER = 2000
COMMAND = ["vllm", "serve"]
# KV-cache block size in tokens (vLLM's default, made explicit where a router mirrors it).
BLOCK_SIZE = 16
# LMCache indexes its disk tier in memory only, so chunk files a previous engine container of
# this pod wrote would never be read again yet fill the volume uncounted: clear them, then run
# the engine. The directory is this pod's own (its volume, or its subdirectory of a hostPath).
DISK_RESET = f'rm -rf {lmcache.DISK_DIR}/*; exec "$@"'

# vLLM >= 0.12 names (vllm/v1/metrics/loggers.py); counters and histograms as scraped.
METRICS = EngineMetrics(
    queue_depth="sum(vllm:num_requests_waiting{{{sel}}})",
    latency_ms=(
        "1000 * histogram_quantile(0.9, "
        "sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{{sel}}}[2m])))"
    ),
    latency_meaning="p90 time to first token",
)


def args(inp: BackendInput) -> list[str]:
    spec = inp.spec
    out = [
        spec.model.name,
        "--host=0.0.0.0",
        f"--port={PORT}",
        f"--served-model-name={spec.model.name}",
        f"--tensor-parallel-size={inp.placement.usable_gpus}",
    ]
    if spec.model.revision:
        out.append(f"--revision={spec.model.revision}")
    if spec.routing.mode == "prefix-aware":
        # The endpoint picker's prefix index falls back to this block size (picker.py).
        out.append(f"--block-size={BLOCK_SIZE}")
    if spec.cache.enabled:
        out.append("--enable-prefix-caching")
        if spec.cache.prefixCacheSize is not None:
            # KV-cache bytes per GPU; overrides --gpu-memory-utilization's share.
            out.append(f"--kv-cache-memory-bytes={to_bytes(spec.cache.prefixCacheSize)}")
    else:
        out.append("--no-enable-prefix-caching")
    return out


def plan(inp: BackendInput) -> BackendPlan:
    tp = inp.placement.usable_gpus
    container = {
        "name": "vllm",
        "image": inp.spec.image or IMAGE,
        "command": COMMAND,
        "args": args(inp),
        "env": [
            *pod.hf_env(inp.spec),
            {"name": "VLLM_CACHE_ROOT", "value": "/tmp/vllm"},
            # A fixed hash seed keeps prefix-block hashes stable across restarts, which
            # external KV caches (LMCache) key on.
            {"name": "PYTHONHASHSEED", "value": "0"},
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        **serving_probes("/health", "/health", "http"),
        "volumeMounts": pod.SCRATCH_MOUNTS,
        "securityContext": pod.container_security(RUN_AS_USER),
    }
    warnings = []
    cache = inp.spec.cache
    if inp.placement.shared and (cache.prefixCacheSize is None or not cache.enabled):
        # --gpu-memory-utilization is a share of the whole GPU per process, so two replicas on
        # one time-sliced or MPS GPU would each try to reserve 90% of it.
        warnings.append(
            f"gpu.sharing {inp.spec.gpu.sharing}: vLLM reserves 90% of the GPU's memory per "
            "replica by default, which co-located replicas cannot all get; set "
            "cache.enabled and cache.prefixCacheSize to bound each replica's KV cache"
        )
    return BackendPlan(
        metrics=METRICS,
        warnings=warnings,
        container=container,
        volumes=pod.volumes(pod.shm_size(tp)),
        service_ports=[{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
    )


# vLLM's KV connector for LMCache (V1 engine); LMCache reads the TokenCache's configuration file
# (functions/common/lmcache.py) and the LMCACHE_* overrides below.
KV_TRANSFER = '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'


def disk_volume(local: LocalTier) -> tuple[dict[str, Any], dict[str, Any]]:
    """The local tier's volume and mount: a per-replica generic ephemeral volume (node-local on
    a local-PV storage class), or one directory per pod under the node's hostPath."""
    mount: dict[str, Any] = {"name": "lmcache-disk", "mountPath": lmcache.DISK_DIR}
    if local.host_path is not None:
        # Replicas on one node would otherwise write (and evict) the same chunk files. The
        # kubelet creates each pod's subdirectory as root with the mode of the directory, so
        # that must exist and be writable by the non-root engine (a created one would not be).
        mount["subPathExpr"] = "$(POD_NAME)"
        volume = {
            "name": "lmcache-disk",
            "hostPath": {"path": local.host_path, "type": "Directory"},
        }
        return volume, mount
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": format_bytes(local.size_bytes)}},
    }
    if local.storage_class:
        claim["storageClassName"] = local.storage_class
    return {"name": "lmcache-disk", "ephemeral": {"volumeClaimTemplate": {"spec": claim}}}, mount


def tiers(inp: BackendInput, bound: BoundCache) -> TierPlan:
    plan = TierPlan()
    if bound.prefix_bytes and inp.spec.cache.prefixCacheSize is None:
        plan.args.append(f"--kv-cache-memory-bytes={bound.prefix_bytes}")
    if bound.lmcache_config is None or (bound.local is None and bound.redis is None):
        return plan
    plan.args.append(f"--kv-transfer-config={KV_TRANSFER}")
    plan.env.append({"name": "LMCACHE_CONFIG_FILE", "value": lmcache.CONFIG_FILE})
    plan.volumes.append({"name": "lmcache-config", "configMap": {"name": bound.lmcache_config}})
    if bound.lmcache_config_hash:
        plan.pod_annotations[lmcache.CONFIG_HASH_ANNOTATION] = bound.lmcache_config_hash
    plan.mounts.append(
        {"name": "lmcache-config", "mountPath": lmcache.CONFIG_DIR, "readOnly": True}
    )
    if bound.local is not None:
        volume, mount = disk_volume(bound.local)
        if "subPathExpr" in mount:
            pod_name = {"fieldRef": {"fieldPath": "metadata.name"}}
            plan.env.insert(0, {"name": "POD_NAME", "valueFrom": pod_name})
        plan.volumes.append(volume)
        plan.mounts.append(mount)
        plan.command = ["/bin/sh", "-c", DISK_RESET, "lmcache-disk-reset", *COMMAND]
    if bound.redis is not None:
        redis = bound.redis
        plan.env += [
            {
                "name": lmcache.PASSWORD_ENV,
                "valueFrom": {"secretKeyRef": {"name": redis.secret, "key": redis.secret_key}},
            },
            # Overrides the file's remote_url; Kubernetes expands $(LMCACHE_REDIS_PASSWORD) at
            # container start, so the password itself stays in the Secret.
            {
                "name": "LMCACHE_REMOTE_URL",
                "value": lmcache.authenticated_url(f"redis://{redis.host}:{redis.port}"),
            },
        ]
    pinned = lmcache.CPU_BUFFER_GIB * 2**30 * inp.placement.usable_gpus
    memory = to_bytes(inp.spec.resources.memory)
    if pinned > memory // 2:
        plan.warnings.append(
            f"TokenCache {bound.name}: LMCache pins {lmcache.CPU_BUFFER_GIB}Gi of host RAM per "
            f"GPU ({format_bytes(pinned)} for {inp.placement.usable_gpus}), more than half of "
            f"resources.memory {inp.spec.resources.memory}; raise it"
        )
    return plan
