"""TokenCache composition: the Redis tier (with its TTL enforced), the LMCache configuration
engines mount for the local and redis tiers, and the budgets engines read from status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from itertools import combinations
from typing import Any

from crossplane.function import resource

from functions.common import lmcache, peers
from functions.common.api.tokencache import Tier, TokenCacheSpec
from functions.common.composer import Composed, CompositionFunction, Request
from functions.common.kinds import TOKEN_CACHE
from functions.common.meta import Owner
from functions.common.objects import config_map, content_digest
from functions.common.quantity import to_bytes
from functions.common.readiness import is_ready
from functions.tokencache import redis_tier, warmupjob
from sidecar.contract import Plan

# Tiers whose engine has no expiry; the redis tier's ttl is enforced by the expirer container.
UNENFORCED_TTL = {
    "prefix": "vLLM's GPU prefix cache evicts least recently used blocks and has no TTL",
    "local": (
        "LMCache's local disk tier evicts by size only and keeps its index in memory; deleting "
        "its chunk files from outside would break its eviction (LocalDiskBackend.remove expects "
        "each indexed file to exist)"
    ),
}
PREFIX_POLICY = "LRU"  # vLLM's prefix cache frees least recently used blocks
LMCACHE_COMPONENT = "lmcache"


def lmcache_configs(
    owner: Owner,
    spec: TokenCacheSpec,
    tiers: Mapping[str, Tier],
    redis_url: str | None,
    secret: str | None,
) -> dict[str, dict[str, Any]]:
    """One LMCache ConfigMap per strategy this cache can serve, keyed by strategy."""
    have = sorted(t for t in ("local", "redis") if t in tiers)
    out = {}
    for n in range(1, len(have) + 1):
        for used in combinations(have, n):
            strategy = lmcache.strategy_for(frozenset(used))
            assert strategy is not None
            cfg = lmcache.config(
                spec.evictionPolicy,
                local=tiers["local"] if "local" in used else None,
                redis=tiers["redis"] if "redis" in used else None,
                redis_url=redis_url,
            )
            text = lmcache.document(cfg, secret if "redis" in used else None)
            name = lmcache.config_name(owner.child(LMCACHE_COMPONENT), strategy)
            out[strategy] = config_map(owner, name, LMCACHE_COMPONENT, {lmcache.CONFIG_KEY: text})
    return out


def tier_status(
    tier: Tier, spec: TokenCacheSpec, status: dict[str, Any], observed: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": tier.name, "type": tier.type}
    if tier.type == "prefix":
        entry.update(capacityBytes=to_bytes(tier.size), policy=PREFIX_POLICY, compression="none")
    elif tier.type == "local":
        entry.update(
            capacityBytes=lmcache.disk_bytes(tier),
            endpoint=f"file://{lmcache.DISK_DIR}/",
            policy=lmcache.CACHE_POLICY.get(spec.evictionPolicy, lmcache.DEFAULT_CACHE_POLICY),
            compression="none",
        )
    else:
        entry.update(
            capacityBytes=to_bytes(tier.size),
            endpoint=status["redisURL"],
            ready=is_ready(observed.get("redis")),
            policy=redis_tier.MAXMEMORY_POLICY[spec.evictionPolicy],
            compression=lmcache.REMOTE_SERDE.get(tier.compression, "naive"),
        )
    if tier.ttl is not None:
        entry["ttlEnforced"] = tier.type not in UNENFORCED_TTL
    return entry


def capacity(tiers: Mapping[str, Tier]) -> dict[str, int]:
    out = {}
    if "prefix" in tiers:
        out["gpuBytesPerGPU"] = to_bytes(tiers["prefix"].size)
    if "local" in tiers or "redis" in tiers:
        out["hostMemoryBytesPerGPU"] = lmcache.CPU_BUFFER_GIB * 2**30
    if "local" in tiers:
        out["diskBytesPerReplica"] = lmcache.disk_bytes(tiers["local"])
    if "redis" in tiers:
        out["redisBytes"] = to_bytes(tiers["redis"].size)
    return out


def tiers_ready(entries: list[dict[str, Any]]) -> resource.Condition:
    """Redis is the only tier with a workload of its own; the others live in the engines."""
    waiting = [e["name"] for e in entries if e.get("ready") is False]
    if waiting:
        return resource.Condition(
            "TiersReady",
            "False",
            "RedisUnavailable",
            f"tier {', '.join(waiting)}: the Redis StatefulSet is not available yet",
        )
    names = ", ".join(e["name"] for e in entries)
    return resource.Condition("TiersReady", "True", "Available", f"tiers {names} rendered")


def compose(req: Request[TokenCacheSpec]) -> Composed:
    spec, owner = req.spec, req.owner
    tiers: dict[str, Tier] = {t.type: t for t in spec.tiers}
    resources: dict[str, dict[str, Any]] = {}
    status: dict[str, Any] = {}
    warnings: list[str] = []
    secret = None
    if "prefix" in tiers:
        status["prefixCacheBytes"] = to_bytes(tiers["prefix"].size)
    if "redis" in tiers:
        tier = tiers["redis"]
        resources.update(redis_tier.resources(owner, tier, spec.evictionPolicy))
        names = redis_tier.names(owner)
        password = redis_tier.password_ref(owner, tier)
        status["redisURL"] = (
            f"redis://{names['svc']}.{owner.namespace}.svc.cluster.local:{redis_tier.PORT}"
        )
        status["redisSecret"] = secret = password.name
        status["redisSecretKey"] = password.key
        if tier.passwordSecretRef is None:
            # No generated password: it would have to be random, and the output deterministic.
            warnings.append(
                f"Redis authenticates with the password in Secret {password.name} (key: "
                "password), which you create (or name one in passwordSecretRef); the Redis "
                "pods wait for it"
            )
    configs = lmcache_configs(owner, spec, tiers, status.get("redisURL"), secret)
    for strategy, cm in configs.items():
        resources[f"lmcache-{strategy}"] = cm
    status["lmcacheConfigs"] = {s: cm["metadata"]["name"] for s, cm in configs.items()}
    status["lmcacheConfigHashes"] = {s: content_digest(cm) for s, cm in configs.items()}
    warnings += lmcache.warnings(spec.evictionPolicy, spec.tiers)
    if "local" in tiers and tiers["local"].hostPath is not None:
        warnings.append(
            f"tier {tiers['local'].name}: hostPath {tiers['local'].hostPath} must exist on the "
            "nodes and be writable by the engines (vLLM runs as UID 2000, GID 0); files under "
            "it outlive their pod (one subdirectory per pod): LMCache keeps its disk index in "
            "memory, so later pods neither reuse nor remove them; clear the directory on the "
            "node, or use a volume (storageClassName), which goes with the pod"
        )
    status["tiers"] = [tier_status(t, spec, status, req.observed) for t in spec.tiers]
    status["capacity"] = capacity(tiers)
    for tier in spec.tiers:
        if tier.ttl is not None and tier.type in UNENFORCED_TTL:
            warnings.append(
                f"tier {tier.name}: ttl {tier.ttl} is not enforced: {UNENFORCED_TTL[tier.type]}"
            )
    requirements = []
    if spec.warmup.enabled:
        requirements.append(warmupjob.requirement(req))
        found = peers.inference_services(req.required.get(warmupjob.SERVICES, []))
        warnings += found.warnings
        ready, waiting = warmupjob.targets(owner, found.found)
        status["warmupTargets"] = [t.url for t in ready]
        status["warmupWaitingFor"] = waiting
        if ready:
            plan = Plan(tuple(ready), tuple(spec.warmup.commonPrefixes), spec.warmup.api)
            jobs = warmupjob.resources(owner, plan)
            resources.update(jobs)
            status["warmupJob"] = jobs["warmup"]["metadata"]["name"]
            for svc in warmupjob.bound(owner, found.found):
                if warning := warmupjob.one_replica_warned(svc):
                    warnings.append(warning)
    return Composed(
        resources=resources,
        status=status,
        warnings=warnings,
        requirements=requirements,
        conditions=[tiers_ready(status["tiers"])],
    )


TTL = timedelta(minutes=1)
"""Response TTL: few caches; the warmup Job follows the bound services (docs/performance.md)."""


def runner() -> CompositionFunction[TokenCacheSpec]:
    return CompositionFunction(TOKEN_CACHE, compose, ttl=TTL)
