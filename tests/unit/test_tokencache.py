"""TokenCache function: the Redis tier and honest reports on what is not enforced."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fnharness import claim_composite, claim_metadata, example, run, with_spec

SAMPLE = example("shared-cache.yaml")


def redis_conf(doc: dict[str, Any]) -> dict[str, str]:
    text = run(doc).resources["redis-config"]["data"]["redis.conf"]
    return {k: v for k, _, v in (line.partition(" ") for line in text.splitlines())}


def test_sample_renders_redis_statefulset_services_config_and_pdb() -> None:
    res = run(SAMPLE)
    assert res.fatal == []
    assert set(res.resources) == {
        "redis",
        "redis-config",
        "redis-headless",
        "redis-service",
        "redis-pdb",
        "lmcache-local",
        "lmcache-distributed",
        "lmcache-hybrid",
    }
    sts = res.resources["redis"]
    assert sts["kind"] == "StatefulSet"
    assert sts["spec"]["replicas"] == 3
    assert sts["metadata"]["namespace"] == "default"
    assert res.status["redisURL"] == "redis://shared-cache-redis.default.svc.cluster.local:6379"
    assert res.status["prefixCacheBytes"] == 16 * 2**30


def test_status_reports_each_tier() -> None:
    assert run(SAMPLE).status["tiers"] == [
        {
            "name": "gpu-prefix",
            "type": "prefix",
            "capacityBytes": 16 * 2**30,
            "ttlEnforced": False,
            "policy": "LRU",
            "compression": "none",
        },
        # LMCache's limit: 90% of the 100Gi volume.
        {
            "name": "local-nvme",
            "type": "local",
            "capacityBytes": 90 * 2**30,
            "ttlEnforced": False,
            "endpoint": "file:///var/cache/lmcache/",
            "policy": "LRU",
            "compression": "none",
        },
        {
            "name": "distributed",
            "type": "redis",
            "capacityBytes": 500 * 2**30,
            "ttlEnforced": True,
            "endpoint": "redis://shared-cache-redis.default.svc.cluster.local:6379",
            "ready": False,
            "policy": "allkeys-lru",
            "compression": "naive",
        },
    ]


def test_status_sums_capacity_per_medium_in_its_scope() -> None:
    assert run(SAMPLE).status["capacity"] == {
        "gpuBytesPerGPU": 16 * 2**30,
        "hostMemoryBytesPerGPU": 5 * 2**30,
        "diskBytesPerReplica": 90 * 2**30,
        "redisBytes": 500 * 2**30,
    }
    prefix_only = with_spec(SAMPLE, tiers=[SAMPLE["spec"]["tiers"][0]])
    assert run(prefix_only).status["capacity"] == {"gpuBytesPerGPU": 16 * 2**30}


def test_tiers_ready_condition_follows_the_redis_statefulset() -> None:
    res = run(SAMPLE, capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    (cond,) = [c for c in res.raw.conditions if c.type == "TiersReady"]
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "RedisUnavailable")
    prefix_only = with_spec(SAMPLE, tiers=[SAMPLE["spec"]["tiers"][0]])
    res = run(prefix_only, capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    (cond,) = [c for c in res.raw.conditions if c.type == "TiersReady"]
    assert (cond.status, cond.message) == (fnv1.STATUS_CONDITION_TRUE, "tiers gpu-prefix rendered")


def test_redis_tier_is_ready_when_its_statefulset_is() -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"generation": 1},
        "spec": {"replicas": 3},
        "status": {
            "observedGeneration": 1,
            "replicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "updatedReplicas": 3,
        },
    }
    res = run(SAMPLE, observed={"redis": sts})
    assert res.ready["redis"] is True
    assert res.status["tiers"][2]["ready"] is True


def test_client_service_reaches_the_primary_only() -> None:
    svc = run(SAMPLE).resources["redis-service"]
    assert svc["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == "shared-cache-redis-0"


@pytest.mark.parametrize(
    ("policy", "redis_policy"),
    [
        ("lru", "allkeys-lru"),
        ("lfu", "allkeys-lfu"),
        ("ttl", "volatile-ttl"),
        ("random", "allkeys-random"),
        ("noeviction", "noeviction"),
    ],
)
def test_eviction_policy_maps_to_maxmemory_policy(policy: str, redis_policy: str) -> None:
    conf = redis_conf(with_spec(SAMPLE, evictionPolicy=policy))
    assert conf["maxmemory-policy"] == redis_policy


def test_maxmemory_is_the_tier_size_and_persistence_is_off() -> None:
    conf = redis_conf(SAMPLE)
    assert conf["maxmemory"] == str(500 * 2**30)
    assert conf["save"] == '""'
    assert conf["appendonly"] == "no"


def test_password_comes_from_a_secret_never_from_args_or_config() -> None:
    res = run(SAMPLE)
    c = res.resources["redis"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "shared-cache-redis-auth", "key": "password"}
    }
    assert "requirepass" not in res.resources["redis-config"]["data"]["redis.conf"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_ttls_nothing_enforces_are_reported_and_the_redis_ttl_is_not() -> None:
    warnings = run(SAMPLE).warnings
    assert (
        "tier gpu-prefix: ttl 1h is not enforced: vLLM's GPU prefix cache evicts least "
        "recently used blocks and has no TTL" in warnings
    )
    assert any(
        w.startswith(
            "tier local-nvme: ttl 24h is not enforced: LMCache's local disk tier evicts "
            "by size only"
        )
        for w in warnings
    )
    assert not any(w.startswith("tier distributed: ttl") for w in warnings)


def test_redis_ttl_is_enforced_by_an_expirer_beside_redis() -> None:
    res = run(SAMPLE)
    pod = res.resources["redis"]["spec"]["template"]["spec"]
    expirer = {c["name"]: c for c in pod["containers"]}["expirer"]
    assert expirer["command"] == [
        "/venv/bin/inference-cache-expirer",
        "--ttl-seconds=604800",
        "--port=6379",
        "--metrics-bind-address=:8080",
        "--health-bind-address=:8081",
    ]
    assert {p["name"]: p["containerPort"] for p in expirer["ports"]} == {
        "metrics": 8080,
        "health": 8081,
    }
    assert expirer["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert expirer["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert expirer["image"] == "ghcr.io/inference-platform/inference-sidecar:v0.1.0"
    assert expirer["env"] == [
        {
            "name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "shared-cache-redis-auth", "key": "password"}},
        }
    ]
    assert expirer["securityContext"]["runAsNonRoot"] is True
    assert expirer["securityContext"]["readOnlyRootFilesystem"] is True
    assert redis_conf(SAMPLE)["notify-keyspace-events"] == "E$n"


def test_a_referenced_password_secret_reaches_redis_the_expirer_and_status() -> None:
    ref = {"name": "team-b-redis", "key": "redis-password"}
    tier = {"name": "r", "type": "redis", "size": "1Gi", "ttl": "1h", "passwordSecretRef": ref}
    res = run(with_spec(SAMPLE, tiers=[tier]))
    for c in res.resources["redis"]["spec"]["template"]["spec"]["containers"]:
        env = {e["name"]: e for e in c["env"]}
        assert env["REDIS_PASSWORD"]["valueFrom"] == {"secretKeyRef": ref}, c["name"]
    assert (res.status["redisSecret"], res.status["redisSecretKey"]) == (ref["name"], ref["key"])
    assert not any("which you create" in w for w in res.warnings)


def test_without_a_reference_the_user_creates_the_default_secret() -> None:
    res = run(SAMPLE)
    assert (res.status["redisSecret"], res.status["redisSecretKey"]) == (
        "shared-cache-redis-auth",
        "password",
    )
    assert any(
        w.startswith("Redis authenticates with the password in Secret shared-cache-redis-auth")
        for w in res.warnings
    )


def test_redis_without_ttl_has_no_expirer() -> None:
    res = run(example("session-cache-lfu.yaml"))
    containers = res.resources["redis"]["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["redis"]
    assert "notify-keyspace-events" not in res.resources["redis-config"]["data"]["redis.conf"]


def lmcache_config(doc: dict[str, Any], strategy: str = "hybrid") -> dict[str, Any]:
    res = run(doc)
    cm = res.resources[f"lmcache-{strategy}"]
    assert cm["metadata"]["name"] == res.status["lmcacheConfigs"][strategy]
    return dict(yaml.safe_load(cm["data"]["lmcache.yaml"]))


LOCAL = {"name": "disk", "type": "local", "size": "10Gi"}
REDIS = {"name": "remote", "type": "redis", "size": "1Gi"}
PREFIX = {"name": "gpu", "type": "prefix", "size": "1Gi"}


@pytest.mark.parametrize(
    ("tiers", "strategies"),
    [
        ([PREFIX], set()),
        ([PREFIX, LOCAL], {"local"}),
        ([REDIS], {"distributed"}),
        ([LOCAL, REDIS], {"local", "distributed", "hybrid"}),
    ],
)
def test_one_lmcache_config_per_strategy_the_tiers_can_serve(
    tiers: list[dict[str, Any]], strategies: set[str]
) -> None:
    res = run(with_spec(SAMPLE, tiers=tiers))
    assert set(res.status["lmcacheConfigs"]) == strategies
    assert {k.removeprefix("lmcache-") for k in res.resources if k.startswith("lmcache-")} == (
        strategies
    )


def test_lmcache_config_matches_each_tier() -> None:
    doc = with_spec(SAMPLE, tiers=[LOCAL, REDIS])
    assert lmcache_config(doc) == {
        "chunk_size": 256,
        "local_cpu": True,
        "max_local_cpu_size": 5,
        "cache_policy": "LRU",
        "save_decode_cache": False,
        "save_unfull_chunk": False,
        "local_disk": "file:///var/cache/lmcache/",
        "max_local_disk_size": 9.0,
        "remote_url": "redis://shared-cache-redis.default.svc.cluster.local:6379",
        "remote_serde": "naive",
    }
    assert set(lmcache_config(doc, "local")) == {
        "chunk_size",
        "local_cpu",
        "max_local_cpu_size",
        "cache_policy",
        "save_decode_cache",
        "save_unfull_chunk",
        "local_disk",
        "max_local_disk_size",
    }
    assert "local_disk" not in lmcache_config(doc, "distributed")


def test_lmcache_config_keeps_its_name_and_reports_a_new_hash_when_its_content_changes() -> None:
    # A stable name is updated in place (a renamed one would be deleted before the bound engines
    # re-render); the hash in status is what rolls them.
    small = run(with_spec(SAMPLE, tiers=[LOCAL])).status
    large = run(with_spec(SAMPLE, tiers=[{**LOCAL, "size": "20Gi"}])).status
    assert small["lmcacheConfigs"]["local"] == large["lmcacheConfigs"]["local"]
    assert small["lmcacheConfigs"]["local"] == "shared-cache-lmcache-local"
    assert small["lmcacheConfigHashes"]["local"] != large["lmcacheConfigHashes"]["local"]


def test_lmcache_config_never_holds_the_password() -> None:
    res = run(SAMPLE)
    for strategy in ("distributed", "hybrid"):
        text = res.resources[f"lmcache-{strategy}"]["data"]["lmcache.yaml"]
        assert "@" not in yaml.safe_load(text)["remote_url"]
        assert "LMCACHE_REMOTE_URL" in text  # the header says where the password comes from


@pytest.mark.parametrize(
    ("policy", "cache_policy", "warned"),
    [
        ("lru", "LRU", False),
        ("lfu", "LFU", False),
        ("ttl", "LRU", True),
        ("random", "LRU", True),
        ("noeviction", "LRU", True),
    ],
)
def test_eviction_policy_maps_to_lmcache_cache_policy(
    policy: str, cache_policy: str, warned: bool
) -> None:
    redis = {**REDIS, "ttl": "1h"}
    doc = with_spec(SAMPLE, tiers=[LOCAL, redis], evictionPolicy=policy)
    assert lmcache_config(doc)["cache_policy"] == cache_policy
    warnings = run(doc).warnings
    assert any(w.startswith(f"evictionPolicy {policy}: LMCache orders") for w in warnings) is warned
    assert run(doc).status["tiers"][0]["policy"] == cache_policy


@pytest.mark.parametrize(
    ("tier", "compression", "serde", "warning"),
    [
        (REDIS, "cachegen", "cachegen", None),
        (REDIS, "zstd", "naive", "LMCache encodes Redis chunks as naive (raw) or cachegen only"),
        (REDIS, "lz4", "naive", "LMCache encodes Redis chunks as naive (raw) or cachegen only"),
        (LOCAL, "zstd", None, "LMCache writes local disk chunks raw"),
        (LOCAL, "cachegen", None, "LMCache writes local disk chunks raw"),
        (PREFIX, "lz4", None, "the GPU prefix cache holds KV blocks uncompressed"),
    ],
)
def test_compression_renders_what_lmcache_supports_and_reports_the_rest(
    tier: dict[str, Any], compression: str, serde: str | None, warning: str | None
) -> None:
    doc = with_spec(SAMPLE, tiers=[{**tier, "compression": compression}])
    res = run(doc)
    if serde is not None:
        assert lmcache_config(doc, "distributed")["remote_serde"] == serde
        assert res.status["tiers"][0]["compression"] == serde
    found = [w for w in res.warnings if f"compression {compression} is not applied" in w]
    if warning is None:
        assert found == []
    else:
        assert len(found) == 1
        assert warning in found[0]


def test_host_path_leftovers_are_reported() -> None:
    res = run(with_spec(SAMPLE, tiers=[{**LOCAL, "hostPath": "/mnt/nvme/lmcache"}]))
    (warning,) = [w for w in res.warnings if w.startswith("tier disk: hostPath")]
    assert "/mnt/nvme/lmcache must exist on the nodes and be writable by the engines" in warning
    assert "files under it outlive their pod" in warning


def test_single_replica_has_no_disruption_budget() -> None:
    res = run(example("session-cache-lfu.yaml"))
    assert "redis-pdb" not in res.resources
    assert res.resources["redis"]["metadata"]["namespace"] == "team-a"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {
                "tiers": [
                    {"name": "a", "type": "redis", "size": "1Gi"},
                    {"name": "b", "type": "redis", "size": "1Gi"},
                ]
            },
            "at most one tier of each type",
            id="duplicate-type",
        ),
        pytest.param(
            {"tiers": [{"name": "a", "type": "local", "size": "1Gi", "replicas": 2}]},
            "replicas is only meaningful for the redis tier",
            id="replicas-on-local",
        ),
        pytest.param(
            {"tiers": [{"name": "a", "type": "redis", "size": "1Gi", "ttl": "1d"}]},
            "invalid duration '1d'",
            id="days-are-not-go-durations",
        ),
        pytest.param(
            {"evictionPolicy": "mru"},
            "spec.evictionPolicy: Input should be 'lru', 'lfu', 'ttl', 'random' or 'noeviction'",
            id="unknown-policy",
        ),
        pytest.param(
            {"tiers": [{"name": "a", "type": "redis", "size": "15Mi"}]},
            "spec.tiers[0]: size must be at least 16Mi",
            id="size-below-minimum",
        ),
        pytest.param(
            {"tiers": [{"name": "a", "type": "cpu", "size": "1Gi"}]},
            "spec.tiers[0].type: Input should be 'prefix', 'local' or 'redis'",
            id="unknown-tier-type",
        ),
        pytest.param(
            {"evictionPolicy": "ttl", "tiers": [{"name": "a", "type": "redis", "size": "1Gi"}]},
            "evictionPolicy ttl needs a ttl on the redis tier",
            id="ttl-policy-without-ttl",
        ),
        pytest.param(
            {
                "tiers": [
                    {
                        "name": "a",
                        "type": "local",
                        "size": "1Gi",
                        "passwordSecretRef": {"name": "s"},
                    }
                ]
            },
            "passwordSecretRef is only meaningful for the redis tier",
            id="password-on-local",
        ),
        pytest.param(
            {"warmup": {"enabled": True}},
            "commonPrefixes must not be empty when warmup is enabled",
            id="empty-warmup",
        ),
        pytest.param(
            {"tiers": [{"name": "a", "type": "redis", "size": "1Gi", "hostPath": "/mnt/a"}]},
            "hostPath and storageClassName are only meaningful for the local tier",
            id="host-path-on-redis",
        ),
        pytest.param(
            {
                "tiers": [
                    {
                        "name": "a",
                        "type": "local",
                        "size": "1Gi",
                        "hostPath": "/mnt/a",
                        "storageClassName": "local",
                    }
                ]
            },
            "set either hostPath or storageClassName, not both",
            id="host-path-and-storage-class",
        ),
        pytest.param(
            {"tiers": [{"name": "a", "type": "local", "size": "1Gi", "hostPath": "/mnt/../etc"}]},
            "spec.tiers[0].hostPath: String should match pattern",
            id="host-path-with-dotdot",
        ),
    ],
)
def test_invalid_caches_fail_with_the_field(changes: dict[str, Any], message: str) -> None:
    res = run(with_spec(SAMPLE, **changes))
    assert len(res.fatal) == 1
    assert message in res.fatal[0]
    assert res.resources == {}


def test_same_request_same_bytes() -> None:
    assert run(SAMPLE).wire() == run(SAMPLE).wire()


# -- warmup -----------------------------------------------------------------------------------


def service(
    name: str, cache: str | None, ready: int, endpoint: str | None = None
) -> dict[str, Any]:
    """An XInferenceService of namespace default as Crossplane hands it over (claim form)."""
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "XInferenceService",
        "metadata": claim_metadata(name, "default"),
        "spec": {"model": {"name": f"org/{name}"}},
        "status": {
            "endpoint": endpoint or f"http://{name}.default.svc.cluster.local:8000",
            "servedModel": f"org/{name}",
            "tokenCache": cache,
            "readyReplicas": ready,
        },
    }


def warm(services: list[dict[str, Any]], doc: dict[str, Any] = SAMPLE) -> Any:
    return run(claim_composite(doc, "tjcw2"), required={"inferenceservices": services})


def plan_of(res: Any) -> dict[str, Any]:
    return dict(json.loads(res.resources["warmup-plan"]["data"]["plan.json"]))


def test_warmup_asks_for_the_namespaces_inference_services() -> None:
    want = warm([]).raw.requirements.resources["inferenceservices"]
    assert want.kind == "XInferenceService"
    assert dict(want.match_labels.labels) == {"crossplane.io/claim-namespace": "default"}


def test_warmup_job_sends_the_prefixes_to_ready_bound_services_only() -> None:
    res = warm(
        [
            service("llama", "shared-cache", ready=1),
            service("qwen", "other-cache", ready=2),
            service("phi", "shared-cache", ready=0),
        ]
    )
    assert res.fatal == []
    assert plan_of(res) == {
        "api": "chat",  # warmup.api's default: the prefixes are system prompts of chats
        "prefixes": ["You are a helpful assistant"],
        "targets": [{"model": "org/llama", "url": "http://llama.default.svc.cluster.local:8000"}],
    }
    job = res.resources["warmup"]
    assert job["metadata"]["name"] == res.status["warmupJob"]
    assert res.resources["warmup-plan"]["metadata"]["name"] == job["metadata"]["name"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][0] == "/venv/bin/inference-cache-warmup"
    assert c["securityContext"]["runAsNonRoot"] is True
    assert res.status["warmupTargets"] == ["http://llama.default.svc.cluster.local:8000"]
    assert res.status["warmupWaitingFor"] == ["phi"]


def test_no_ready_bound_service_no_job() -> None:
    res = warm([service("phi", "shared-cache", ready=0)])
    assert "warmup" not in res.resources
    assert res.status["warmupWaitingFor"] == ["phi"]


@pytest.mark.parametrize(
    ("change", "reruns"),
    [
        pytest.param({"warmup.commonPrefixes": ["You are a pirate"]}, True, id="new-prefixes"),
        pytest.param({"services": ["llama", "gemma"]}, True, id="another-service-ready"),
        pytest.param({"replicas": 3}, False, id="same-services-more-replicas"),
    ],
)
def test_job_name_changes_exactly_when_the_work_changes(
    change: dict[str, Any], reruns: bool
) -> None:
    base = warm([service("llama", "shared-cache", ready=1)]).status["warmupJob"]
    doc = with_spec(SAMPLE, **{k: v for k, v in change.items() if "." in k})
    names = change.get("services", ["llama"])
    services = [service(n, "shared-cache", ready=change.get("replicas", 1)) for n in names]
    assert (warm(services, doc).status["warmupJob"] != base) is reruns


def test_warmup_of_a_multi_replica_service_says_one_replica_is_warmed() -> None:
    res = warm([service("llama", "shared-cache", ready=3)])
    assert any(w.startswith("warmup: InferenceService llama has 3 replicas") for w in res.warnings)


def routed(endpoint: str | None) -> dict[str, Any]:
    svc = service("llama", "shared-cache", ready=3)
    svc["status"]["routing"] = {"mode": "prefix-aware", "inferencePool": "llama"}
    if endpoint:
        svc["status"]["routing"]["endpoint"] = endpoint
    return svc


def test_warmup_goes_through_the_prefix_aware_router_to_the_replica_that_will_serve() -> None:
    res = warm([routed("http://10.0.0.20/v1")])
    assert [t["url"] for t in plan_of(res)["targets"]] == ["http://10.0.0.20/v1"]
    assert res.status["warmupTargets"] == ["http://10.0.0.20/v1"]
    assert not any(w.startswith("warmup: InferenceService") for w in res.warnings)


def test_a_router_without_a_gateway_endpoint_is_warmed_through_the_service() -> None:
    res = warm([routed(None)])
    assert res.status["warmupTargets"] == ["http://llama.default.svc.cluster.local:8000"]
    assert (
        "warmup: InferenceService llama has 3 replicas; each prefix warms the one its Service "
        "(its router is reached through a Gateway that reports no endpoint yet) picks (the "
        "others reuse it through LMCache's shared tiers, if any, in whole 256-token chunks)"
    ) in res.warnings


def test_integer_sizes_survive_the_wire() -> None:
    """YAML `size: 1073741824` arrives as the double 1073741824.0 (protobuf Struct)."""
    tiers = [{"name": "r", "type": "redis", "size": 1073741824}]
    doc = with_spec(SAMPLE, tiers=tiers, warmup={"enabled": False})
    assert redis_conf(doc)["maxmemory"] == "1073741824"
