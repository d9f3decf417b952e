"""TokenCache composition: the Redis tier (with its TTL enforced) and the budgets engines read
from status."""

from __future__ import annotations

from typing import Any

from functions.common.api.tokencache import TokenCacheSpec
from functions.common.composer import Composed, CompositionFunction, Request
from functions.common.kinds import TOKEN_CACHE
from functions.common.quantity import to_bytes
from functions.common.readiness import is_ready
from functions.tokencache import redis, warmupjob
from functions.tokencache.warmup import Plan

# Tiers whose engine has no expiry; the redis tier's ttl is enforced by the expirer container.
UNENFORCED_TTL = {
    "prefix": "vLLM's GPU prefix cache evicts least recently used blocks and has no TTL",
    "local": "LMCache's local disk tier evicts by size and has no TTL",
}


def compose(req: Request[TokenCacheSpec]) -> Composed:
    spec, owner = req.spec, req.owner
    tiers = {t.type: t for t in spec.tiers}
    resources: dict[str, dict[str, Any]] = {}
    status: dict[str, Any] = {}
    warnings: list[str] = []
    if "prefix" in tiers:
        status["prefixCacheBytes"] = to_bytes(tiers["prefix"].size)
    if "redis" in tiers:
        tier = tiers["redis"]
        resources.update(redis.resources(owner, tier, spec.evictionPolicy))
        n = redis.names(owner)
        password = redis.password_ref(owner, tier)
        status["redisURL"] = f"redis://{n['svc']}.{owner.namespace}.svc.cluster.local:{redis.PORT}"
        status["redisSecret"] = password.name
        status["redisSecretKey"] = password.key
        if tier.passwordSecretRef is None:
            # No generated password: it would have to be random, and the output deterministic.
            warnings.append(
                f"Redis authenticates with the password in Secret {password.name} (key: "
                "password), which you create (or name one in passwordSecretRef); the Redis "
                "pods wait for it"
            )
    if "local" in tiers:
        warnings.append(f"tier {tiers['local'].name}: the local NVMe tier is not rendered yet")
    status["tiers"] = []
    for tier in spec.tiers:
        entry: dict[str, Any] = {
            "name": tier.name,
            "type": tier.type,
            "capacityBytes": to_bytes(tier.size),
        }
        if tier.ttl is not None:
            entry["ttlEnforced"] = tier.type not in UNENFORCED_TTL
        if tier.type == "redis":
            entry["endpoint"] = status["redisURL"]
            entry["ready"] = is_ready(req.observed.get("redis"))
        status["tiers"].append(entry)
        if tier.ttl is not None and tier.type in UNENFORCED_TTL:
            warnings.append(
                f"tier {tier.name}: ttl {tier.ttl} is not enforced: {UNENFORCED_TTL[tier.type]}"
            )
        if tier.compression != "none":
            warnings.append(f"tier {tier.name}: compression {tier.compression} is not rendered yet")
    requirements = []
    if spec.warmup.enabled:
        requirements.append(warmupjob.requirement(req))
        services = list(req.required.get(warmupjob.SERVICES, []))
        ready, waiting = warmupjob.targets(owner, services)
        status["warmupTargets"] = [t.url for t in ready]
        status["warmupWaitingFor"] = waiting
        if ready:
            jobs = warmupjob.resources(owner, Plan(tuple(ready), tuple(spec.warmup.commonPrefixes)))
            resources.update(jobs)
            status["warmupJob"] = jobs["warmup"]["metadata"]["name"]
            # Through each service's Service: one replica per request gets the prefix.
            for svc in services:
                st = svc.get("status") or {}
                if st.get("tokenCache") == owner.name and int(st.get("readyReplicas") or 0) > 1:
                    replicas = int(st["readyReplicas"])
                    warnings.append(
                        f"warmup: InferenceService {warmupjob.display_name(svc)} has {replicas} "
                        "replicas; each prefix warms the one its Service picks (the others "
                        "reuse it through LMCache's shared tiers, if any)"
                    )
    return Composed(
        resources=resources, status=status, warnings=warnings, requirements=requirements
    )


def runner() -> CompositionFunction[TokenCacheSpec]:
    return CompositionFunction(TOKEN_CACHE, compose)
