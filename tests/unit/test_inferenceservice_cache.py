"""InferenceService and TokenCache: which tiers each engine uses, and how it is told."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fnharness import example, run, with_spec

SAMPLE = example("llama-70b.yaml")  # strategy hybrid, namespace default
CACHE_SPEC = example("shared-cache.yaml")["spec"]


def token_cache(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """The XTokenCache Crossplane hands over for the claim default/shared-cache."""
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "XTokenCache",
        "metadata": {
            "name": "shared-cache-tjcw2",
            "labels": {
                "crossplane.io/claim-name": "shared-cache",
                "crossplane.io/claim-namespace": "default",
            },
        },
        "spec": {**CACHE_SPEC, **spec},
        "status": status
        if status is not None
        else {
            "redisURL": "redis://shared-cache-redis.default.svc.cluster.local:6379",
            "redisSecret": "shared-cache-redis-auth",
            "prefixCacheBytes": 16 * 2**30,
        },
    }


def claim_xr(doc: dict[str, Any]) -> dict[str, Any]:
    """The claim as Crossplane's v1 composite (cluster-scoped XInferenceService)."""
    name = doc["metadata"]["name"]
    return {
        **doc,
        "kind": "XInferenceService",
        "metadata": {
            "name": f"{name}-x1y2z",
            "labels": {
                "crossplane.io/claim-name": name,
                "crossplane.io/claim-namespace": doc["metadata"].get("namespace", "default"),
            },
        },
    }


def wired(doc: dict[str, Any], caches: list[dict[str, Any]], **kw: Any) -> Any:
    return run(claim_xr(doc), required={"tokencaches": caches}, **kw)


def engine(res: Any) -> dict[str, Any]:
    return dict(res.resources["deployment"]["spec"]["template"]["spec"]["containers"][0])


def test_vllm_reads_the_redis_password_from_the_key_the_cache_reports() -> None:
    status = {
        "redisURL": "redis://shared-cache-redis.default.svc.cluster.local:6379",
        "redisSecret": "team-redis",
        "redisSecretKey": "redis-password",
    }
    env = {e["name"]: e for e in engine(wired(SAMPLE, [token_cache(status)]))["env"]}
    assert env["LMCACHE_REDIS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "team-redis", "key": "redis-password"}
    }


def test_hybrid_vllm_uses_lmcache_with_local_disk_and_redis() -> None:
    res = wired(SAMPLE, [token_cache()])
    assert res.fatal == []
    c = engine(res)
    assert (
        '--kv-transfer-config={"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'
        in (c["args"])
    )
    env = {e["name"]: e for e in c["env"]}
    assert env["LMCACHE_LOCAL_DISK"]["value"] == "file:///var/cache/lmcache/"
    assert env["LMCACHE_MAX_LOCAL_DISK_SIZE"]["value"] == "100"
    assert env["LMCACHE_REDIS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "shared-cache-redis-auth", "key": "password"}
    }
    assert env["LMCACHE_REMOTE_URL"]["value"] == (
        "redis://:$(LMCACHE_REDIS_PASSWORD)@shared-cache-redis.default.svc.cluster.local:6379"
    )
    names = [e["name"] for e in c["env"]]
    assert names.index("LMCACHE_REDIS_PASSWORD") < names.index("LMCACHE_REMOTE_URL")
    pod = res.resources["deployment"]["spec"]["template"]["spec"]
    disk = next(v for v in pod["volumes"] if v["name"] == "lmcache-disk")
    template = disk["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert template["resources"]["requests"]["storage"] == "100Gi"
    assert {"name": "lmcache-disk", "mountPath": "/var/cache/lmcache"} in c["volumeMounts"]
    assert res.status["tokenCache"] == "shared-cache"


def test_the_caches_prefix_budget_applies_when_the_service_sets_none() -> None:
    doc = with_spec(SAMPLE, **{"cache.prefixCacheSize": None})
    args = engine(wired(doc, [token_cache()]))["args"]
    assert f"--kv-cache-memory-bytes={16 * 2**30}" in args
    args = engine(wired(SAMPLE, [token_cache()]))["args"]
    assert f"--kv-cache-memory-bytes={8 * 2**30}" in args
    assert f"--kv-cache-memory-bytes={16 * 2**30}" not in args


@pytest.mark.parametrize(
    ("strategy", "disk", "remote"),
    [("local", True, False), ("distributed", False, True), ("hybrid", True, True)],
)
def test_strategy_picks_the_tiers(strategy: str, disk: bool, remote: bool) -> None:
    env = {e["name"] for e in engine(wired(with_spec(SAMPLE, **{"cache.strategy": strategy}),
                                             [token_cache()]))["env"]}  # fmt: skip
    assert ("LMCACHE_LOCAL_DISK" in env) is disk
    assert ("LMCACHE_REMOTE_URL" in env) is remote


def test_a_cache_without_redis_endpoint_yet_is_waited_for() -> None:
    res = wired(SAMPLE, [token_cache(status={})], capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    env = {e["name"] for e in engine(res)["env"]}
    assert "LMCACHE_REMOTE_URL" not in env
    assert "LMCACHE_LOCAL_DISK" in env
    (cond,) = [c for c in res.raw.conditions if c.type == "CacheReady"]
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "WaitingForTokenCache")


def test_bound_cache_reports_cache_ready() -> None:
    res = wired(SAMPLE, [token_cache()], capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    (cond,) = [c for c in res.raw.conditions if c.type == "CacheReady"]
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_TRUE, "Bound")
    assert cond.message == "TokenCache shared-cache: local, redis tiers"


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("triton", "backend triton: the vLLM backend's model.json takes no KV connector"),
        ("tensorrt-llm", "backend tensorrt-llm: TensorRT-LLM has no Redis KV tier"),
    ],
)
def test_engines_without_tier_knobs_say_so(backend: str, message: str) -> None:
    res = wired(with_spec(SAMPLE, backend=backend), [token_cache()])
    assert any(w.startswith(message) for w in res.warnings)
    assert not any(e["name"].startswith("LMCACHE_") for e in engine(res)["env"])


def test_requested_compression_without_an_engine_knob_is_reported() -> None:
    tiers = [dict(t) for t in CACHE_SPEC["tiers"]]
    tiers[1]["compression"] = "zstd"
    res = wired(SAMPLE, [token_cache(tiers=tiers)])
    assert any("compression zstd is not applied" in w for w in res.warnings)


def test_a_missing_tier_is_reported() -> None:
    res = wired(SAMPLE, [token_cache(tiers=[CACHE_SPEC["tiers"][2]])])
    assert any("TokenCache shared-cache has no local tier" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("changes", "caches", "message"),
    [
        pytest.param({}, [], "spec.cache.strategy: hybrid needs a TokenCache in namespace default",
                     id="none"),
        pytest.param({"cache.tokenCacheRef": {"name": "other"}}, [token_cache()],
                     "spec.cache.tokenCacheRef: TokenCache other does not exist", id="missing-ref"),
        pytest.param({}, [token_cache(), {**token_cache(), "metadata": {"name": "b-1", "labels": {
            "crossplane.io/claim-name": "b", "crossplane.io/claim-namespace": "default"}}}],
            "spec.cache.tokenCacheRef: namespace default has several TokenCaches (b, shared-cache)",
            id="ambiguous"),
    ],
)  # fmt: skip
def test_unservable_cache_requests_are_fatal(
    changes: dict[str, Any], caches: list[dict[str, Any]], message: str
) -> None:
    res = wired(with_spec(SAMPLE, **changes), caches)
    assert len(res.fatal) == 1
    assert res.fatal[0].startswith(message)


@pytest.mark.parametrize(
    ("xr", "kind", "labels", "namespace"),
    [
        (claim_xr(SAMPLE), "XTokenCache", {"crossplane.io/claim-namespace": "default"}, ""),
        (SAMPLE, "TokenCache", {}, "default"),
    ],
)
def test_the_token_cache_is_requested_in_the_composites_own_form(
    xr: dict[str, Any], kind: str, labels: dict[str, str], namespace: str
) -> None:
    selector = run(xr).raw.requirements.resources["tokencaches"]
    assert selector.kind == kind
    assert dict(selector.match_labels.labels) == labels
    assert selector.namespace == namespace


def test_prefix_only_services_need_no_token_cache() -> None:
    doc = with_spec(SAMPLE, **{"cache.strategy": "prefix"})
    assert "tokencaches" not in run(doc).raw.requirements.resources


def test_tensorrt_llm_offloads_the_local_tier_to_host_ram() -> None:
    res = wired(with_spec(SAMPLE, backend="tensorrt-llm"), [token_cache()])
    options = yaml.safe_load(res.resources["engine-config"]["data"]["config.yaml"])
    # 100Gi local tier, 32Gi replica memory: half the memory.
    assert options["kv_cache_config"]["host_cache_size"] == 16 * 2**30
    assert any("served from host RAM" in w for w in res.warnings)
