"""TokenCache function: the Redis tier and honest reports on what is not enforced."""

from __future__ import annotations

import json
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


def test_status_reports_each_tier() -> None:
    assert run(SAMPLE).status["tiers"] == [
        {"name": "gpu-prefix", "type": "prefix", "capacityBytes": 16 * 2**30, "ttlEnforced": False},
        {"name": "local-nvme", "type": "local", "capacityBytes": 100 * 2**30, "ttlEnforced": False},
        {
            "name": "distributed",
            "type": "redis",
            "capacityBytes": 500 * 2**30,
            "ttlEnforced": True,
            "endpoint": "redis://shared-cache-redis.default.svc.cluster.local:6379",
            "ready": False,
        },
    ]


def test_redis_tier_is_ready_when_its_statefulset_is() -> None:
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"generation": 1},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3,
                   "availableReplicas": 3, "updatedReplicas": 3},
    }  # fmt: skip
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


# -- warmup -----------------------------------------------------------------------------------


def service(
    name: str, cache: str | None, ready: int, endpoint: str | None = None
) -> dict[str, Any]:
    """An XInferenceService of namespace default as Crossplane hands it over (claim form)."""
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "XInferenceService",
        "metadata": {
            "name": f"{name}-x1y2z",
            "labels": {
                "crossplane.io/claim-name": name,
                "crossplane.io/claim-namespace": "default",
            },
        },
        "status": {
            "endpoint": endpoint or f"http://{name}.default.svc.cluster.local:8000",
            "servedModel": f"org/{name}",
            "tokenCache": cache,
            "readyReplicas": ready,
        },
    }


def claim_xr(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        **doc,
        "kind": "XTokenCache",
        "metadata": {
            "name": "shared-cache-tjcw2",
            "labels": {
                "crossplane.io/claim-name": "shared-cache",
                "crossplane.io/claim-namespace": "default",
            },
        },
    }


def warm(services: list[dict[str, Any]], doc: dict[str, Any] = SAMPLE) -> Any:
    return run(claim_xr(doc), required={"inferenceservices": services})


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


def test_integer_sizes_survive_the_wire() -> None:
    """YAML `size: 1073741824` arrives as the double 1073741824.0 (protobuf Struct)."""
    tiers = [{"name": "r", "type": "redis", "size": 1073741824}]
    doc = with_spec(SAMPLE, tiers=tiers, warmup={"enabled": False})
    assert redis_conf(doc)["maxmemory"] == "1073741824"
