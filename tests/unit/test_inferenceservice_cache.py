"""InferenceService and TokenCache: which tiers each engine uses, and how it is told."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fnharness import claim_composite, claim_metadata, example, run, with_spec
from tests.toolchain import ROOT

SAMPLE = example("llama-70b.yaml")  # strategy hybrid, namespace default
CACHE_SPEC = example("shared-cache.yaml")["spec"]


def cache_status(**spec: Any) -> dict[str, Any]:
    """What the TokenCache function reports for shared-cache with `spec` changes."""
    res = run(with_spec(example("shared-cache.yaml"), **spec))
    assert res.fatal == [], res.fatal
    return res.status


def token_cache(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """The XTokenCache Crossplane hands over for the claim default/shared-cache, with the status
    the TokenCache function reports for that spec unless `status` is given."""
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "XTokenCache",
        "metadata": claim_metadata("shared-cache", "default", "tjcw2"),
        "spec": {**CACHE_SPEC, **spec},
        "status": status if status is not None else cache_status(**spec),
    }


def test_the_example_clusters_token_caches_report_what_the_function_does() -> None:
    docs = yaml.safe_load_all((ROOT / "examples" / "required" / "cluster.yaml").read_text())
    caches = [d for d in docs if d and d["kind"] in ("TokenCache", "XTokenCache")]
    assert len(caches) == 4  # two caches, each in both forms
    for cache in caches:
        name = cache["metadata"].get("labels", {}).get("crossplane.io/claim-name")
        claim = example(f"{name or cache['metadata']['name']}.yaml")
        assert cache["spec"] == {k: v for k, v in claim["spec"].items() if k != "warmup"}
        reported = run(claim).status
        assert cache["status"] == {k: reported[k] for k in cache["status"]}


def wired(doc: dict[str, Any], caches: list[dict[str, Any]], **kw: Any) -> Any:
    return run(claim_composite(doc), required={"tokencaches": caches}, **kw)


def engine(res: Any) -> dict[str, Any]:
    return dict(res.resources["deployment"]["spec"]["template"]["spec"]["containers"][0])


def test_vllm_reads_the_redis_password_from_the_key_the_cache_reports() -> None:
    status = {**cache_status(), "redisSecret": "team-redis", "redisSecretKey": "redis-password"}
    env = {e["name"]: e for e in engine(wired(SAMPLE, [token_cache(status)]))["env"]}
    assert env["LMCACHE_REDIS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "team-redis", "key": "redis-password"}
    }


def volumes(res: Any) -> dict[str, dict[str, Any]]:
    pod = res.resources["deployment"]["spec"]["template"]["spec"]
    return {v["name"]: v for v in pod["volumes"]}


def test_hybrid_vllm_mounts_the_caches_lmcache_config_and_gets_only_the_password_by_env() -> None:
    res = wired(SAMPLE, [token_cache()])
    assert res.fatal == []
    c = engine(res)
    assert (
        '--kv-transfer-config={"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}'
        in (c["args"])
    )
    env = {e["name"]: e for e in c["env"]}
    assert env["LMCACHE_CONFIG_FILE"]["value"] == "/etc/lmcache/lmcache.yaml"
    assert (
        volumes(res)["lmcache-config"]["configMap"]["name"]
        == (cache_status()["lmcacheConfigs"]["hybrid"])
    )
    assert {"name": "lmcache-config", "mountPath": "/etc/lmcache", "readOnly": True} in (
        c["volumeMounts"]
    )
    assert env["LMCACHE_REDIS_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "shared-cache-redis-auth", "key": "password"}
    }
    # The only other LMCache variable: the file's remote_url plus the password.
    assert env["LMCACHE_REMOTE_URL"]["value"] == (
        "redis://:$(LMCACHE_REDIS_PASSWORD)@shared-cache-redis.default.svc.cluster.local:6379"
    )
    assert {n for n in env if n.startswith("LMCACHE_")} == {
        "LMCACHE_CONFIG_FILE",
        "LMCACHE_REDIS_PASSWORD",
        "LMCACHE_REMOTE_URL",
    }
    names = [e["name"] for e in c["env"]]
    assert names.index("LMCACHE_REDIS_PASSWORD") < names.index("LMCACHE_REMOTE_URL")
    template = volumes(res)["lmcache-disk"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert template["resources"]["requests"]["storage"] == "100Gi"
    assert {"name": "lmcache-disk", "mountPath": "/var/cache/lmcache"} in c["volumeMounts"]
    assert res.status["tokenCache"] == "shared-cache"


def test_local_tier_on_a_storage_class_is_a_generic_ephemeral_volume_of_that_class() -> None:
    tiers = [dict(t) for t in CACHE_SPEC["tiers"]]
    tiers[1]["storageClassName"] = "local-nvme"
    res = wired(SAMPLE, [token_cache(tiers=tiers)])
    claim = volumes(res)["lmcache-disk"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "local-nvme"
    assert claim["accessModes"] == ["ReadWriteOnce"]


def test_local_tier_on_a_host_path_gives_each_pod_its_own_directory() -> None:
    tiers = [dict(t) for t in CACHE_SPEC["tiers"]]
    tiers[1]["hostPath"] = "/mnt/nvme/lmcache"
    res = wired(SAMPLE, [token_cache(tiers=tiers)])
    assert volumes(res)["lmcache-disk"]["hostPath"] == {
        "path": "/mnt/nvme/lmcache",
        "type": "Directory",
    }
    c = engine(res)
    assert {
        "name": "lmcache-disk",
        "mountPath": "/var/cache/lmcache",
        "subPathExpr": "$(POD_NAME)",
    } in c["volumeMounts"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_lmcache_pinning_more_than_half_the_replica_memory_is_reported() -> None:
    # One GPU per replica: 5Gi pinned, more than half of 8Gi.
    res = wired(with_spec(SAMPLE, **{"resources.memory": "8Gi"}), [token_cache()])
    assert any("LMCache pins 5Gi of host RAM per GPU" in w for w in res.warnings)
    assert not any("LMCache pins" in w for w in wired(SAMPLE, [token_cache()]).warnings)


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
def test_strategy_picks_the_tiers_and_their_lmcache_config(
    strategy: str, disk: bool, remote: bool
) -> None:
    res = wired(with_spec(SAMPLE, **{"cache.strategy": strategy}), [token_cache()])
    env = {e["name"] for e in engine(res)["env"]}
    # With a disk tier the engine first clears what a previous container left there.
    assert engine(res)["command"][-2:] == ["vllm", "serve"]
    assert (engine(res)["command"][:2] == ["/bin/sh", "-c"]) is disk
    assert (
        volumes(res)["lmcache-config"]["configMap"]["name"]
        == (cache_status()["lmcacheConfigs"][strategy])
    )
    assert ("lmcache-disk" in volumes(res)) is disk
    assert ("LMCACHE_REMOTE_URL" in env) is remote


def test_a_hybrid_service_on_a_local_only_cache_uses_its_local_config() -> None:
    local_only = {"tiers": CACHE_SPEC["tiers"][:2]}
    res = wired(SAMPLE, [token_cache(**local_only)])
    assert (
        volumes(res)["lmcache-config"]["configMap"]["name"]
        == (cache_status(**local_only)["lmcacheConfigs"]["local"])
    )
    assert any("TokenCache shared-cache has no redis tier" in w for w in res.warnings)


def test_a_cache_that_has_not_reported_yet_is_waited_for() -> None:
    res = wired(SAMPLE, [token_cache(status={})], capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    env = {e["name"] for e in engine(res)["env"]}
    assert not any(n.startswith("LMCACHE_") for n in env)
    assert "lmcache-disk" not in volumes(res)
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


def test_a_missing_tier_is_reported() -> None:
    res = wired(SAMPLE, [token_cache(tiers=[CACHE_SPEC["tiers"][2]])])
    assert any("TokenCache shared-cache has no local tier" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("changes", "caches", "message"),
    [
        pytest.param(
            {}, [], "spec.cache.strategy: hybrid needs a TokenCache in namespace default", id="none"
        ),
        pytest.param(
            {"cache.tokenCacheRef": {"name": "other"}},
            [token_cache()],
            "spec.cache.tokenCacheRef: TokenCache other does not exist",
            id="missing-ref",
        ),
        pytest.param(
            {},
            [
                token_cache(),
                {
                    **token_cache(),
                    "metadata": {
                        "name": "b-1",
                        "labels": {
                            "crossplane.io/claim-name": "b",
                            "crossplane.io/claim-namespace": "default",
                        },
                    },
                },
            ],
            "spec.cache.tokenCacheRef: namespace default has several TokenCaches (b, shared-cache)",
            id="ambiguous",
        ),
    ],
)
def test_unservable_cache_requests_are_fatal(
    changes: dict[str, Any], caches: list[dict[str, Any]], message: str
) -> None:
    res = wired(with_spec(SAMPLE, **changes), caches)
    assert len(res.fatal) == 1
    assert res.fatal[0].startswith(message)


@pytest.mark.parametrize(
    ("xr", "kind", "labels", "namespace"),
    [
        (claim_composite(SAMPLE), "XTokenCache", {"crossplane.io/claim-namespace": "default"}, ""),
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


def test_a_changed_lmcache_config_rolls_the_bound_engines() -> None:
    # The ConfigMap keeps its name (updated in place); its content hash in the pod template is
    # what starts a rollout, since LMCache reads its file once.
    def template(**spec: Any) -> dict[str, Any]:
        res = wired(SAMPLE, [token_cache(**spec)])
        return dict(res.resources["deployment"]["spec"]["template"])

    before, after = template(), template(evictionPolicy="lfu")
    annotation = "inference.ai/lmcache-config-hash"
    assert (
        before["metadata"]["annotations"][annotation]
        == cache_status()["lmcacheConfigHashes"]["hybrid"]
    )
    assert (
        after["metadata"]["annotations"][annotation]
        != before["metadata"]["annotations"][annotation]
    )
    config = [v for v in before["spec"]["volumes"] if v["name"] == "lmcache-config"]
    assert config == [
        {"name": "lmcache-config", "configMap": {"name": "shared-cache-lmcache-hybrid"}}
    ]
