"""TokenCache function: the Redis tier and honest reports on what is not enforced."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fnharness import example, run, with_spec

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
    }
    sts = res.resources["redis"]
    assert sts["kind"] == "StatefulSet"
    assert sts["spec"]["replicas"] == 3
    assert sts["metadata"]["namespace"] == "default"
    assert res.status["redisURL"] == "redis://shared-cache-redis.default.svc.cluster.local:6379"
    assert res.status["prefixCacheBytes"] == 16 * 2**30


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
    assert (
        "tier local-nvme: ttl 24h is not enforced: LMCache's local disk tier evicts by "
        "size and has no TTL" in warnings
    )
    assert not any(w.startswith("tier distributed: ttl") for w in warnings)


def test_redis_ttl_is_enforced_by_an_expirer_beside_redis() -> None:
    res = run(SAMPLE)
    pod = res.resources["redis"]["spec"]["template"]["spec"]
    expirer = {c["name"]: c for c in pod["containers"]}["expirer"]
    assert expirer["command"] == ["/venv/bin/inference-cache-expirer", "--ttl=168h", "--port=6379"]
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


def test_unrendered_tiers_are_reported() -> None:
    warnings = run(SAMPLE).warnings
    assert any("local NVMe tier is not rendered yet" in w for w in warnings)
    assert any(w.startswith("warmup is not rendered yet") for w in warnings)


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
    ],
)
def test_invalid_caches_fail_with_the_field(changes: dict[str, Any], message: str) -> None:
    res = run(with_spec(SAMPLE, **changes))
    assert len(res.fatal) == 1
    assert message in res.fatal[0]
    assert res.resources == {}


def test_same_request_same_bytes() -> None:
    assert run(SAMPLE).wire() == run(SAMPLE).wire()
