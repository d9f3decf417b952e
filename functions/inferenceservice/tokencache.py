"""Binding an InferenceService to the TokenCache that provides its local and distributed tiers.

The TokenCache composite is read as a required resource: by `cache.tokenCacheRef`, or, for the
strategies that need more than the GPU prefix cache, the one TokenCache in the namespace. Its
spec says which tiers exist and how large they are; its status carries the Redis URL, the Secret
with the password, the GPU prefix-cache budget and the LMCache ConfigMap per strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from functions.common import lmcache
from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.api.tokencache import Tier
from functions.common.composer import ComposeError, Request, Requirement
from functions.common.kinds import API_VERSION, TOKEN_CACHE
from functions.common.meta import CLAIM_NAME, CLAIM_NAMESPACE
from functions.common.quantity import to_bytes

TOKEN_CACHES = "tokencaches"
# Which tiers each strategy asks the engine to use, besides the GPU prefix cache.
STRATEGY_TIERS: dict[str, frozenset[str]] = {"prefix": frozenset(), **lmcache.STRATEGY_TIERS}


@dataclass(frozen=True)
class LocalTier:
    size_bytes: int
    storage_class: str | None
    host_path: str | None = None


@dataclass(frozen=True)
class RedisTier:
    host: str
    port: int
    secret: str
    secret_key: str = "password"


@dataclass(frozen=True)
class BoundCache:
    name: str
    prefix_bytes: int | None = None
    local: LocalTier | None = None
    redis: RedisTier | None = None
    lmcache_config: str | None = None  # the TokenCache's LMCache ConfigMap for these tiers
    lmcache_config_hash: str | None = None  # its content hash, from the cache's status
    warnings: tuple[str, ...] = field(default=())
    waiting: str | None = None  # why a wanted tier is not usable yet


def wanted(spec: InferenceServiceSpec) -> bool:
    cache = spec.cache
    return cache.enabled and (cache.tokenCacheRef is not None or cache.strategy != "prefix")


def requirement(req: Request[InferenceServiceSpec]) -> Requirement | None:
    """Which TokenCache composites to fetch; the claim form's composites are cluster-scoped."""
    spec, owner = req.spec, req.owner
    if not wanted(spec):
        return None
    ref = spec.cache.tokenCacheRef
    if str(req.composite.get("kind", "")).startswith("X"):  # Crossplane v1 claim form
        labels = {CLAIM_NAMESPACE: owner.namespace or "default"}
        if ref is not None:
            labels[CLAIM_NAME] = ref.name
        return Requirement(TOKEN_CACHES, API_VERSION, TOKEN_CACHE.composite_kind, labels)
    return Requirement(
        TOKEN_CACHES, API_VERSION, TOKEN_CACHE.kind,
        match_name=ref.name if ref else None, namespace=owner.namespace,
    )  # fmt: skip


def display_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return str((meta.get("labels") or {}).get(CLAIM_NAME) or meta.get("name"))


def bind(
    spec: InferenceServiceSpec, namespace: str | None, found: list[dict[str, Any]]
) -> BoundCache:
    ref = spec.cache.tokenCacheRef
    if ref is not None:
        found = [c for c in found if display_name(c) == ref.name]
        if not found:
            raise ComposeError(
                f"spec.cache.tokenCacheRef: TokenCache {ref.name} does not exist in namespace "
                f"{namespace}"
            )
    if not found:
        raise ComposeError(
            f"spec.cache.strategy: {spec.cache.strategy} needs a TokenCache in namespace "
            f"{namespace}; create one or set strategy prefix"
        )
    if len(found) > 1:
        names = ", ".join(sorted(display_name(c) for c in found))
        raise ComposeError(
            f"spec.cache.tokenCacheRef: namespace {namespace} has several TokenCaches ({names}); "
            "name one"
        )
    return describe(spec, found[0])


def describe(spec: InferenceServiceSpec, cache: dict[str, Any]) -> BoundCache:
    name = display_name(cache)
    tiers = {t.get("type"): t for t in cache.get("spec", {}).get("tiers", [])}
    status = cache.get("status", {})
    want = STRATEGY_TIERS[spec.cache.strategy]
    warnings = [
        f"cache.strategy {spec.cache.strategy}: TokenCache {name} has no {tier} tier"
        for tier in sorted(want - set(tiers))
    ]
    local = redis = None
    waiting = None
    if "local" in want and "local" in tiers:
        try:
            t = Tier.model_validate(tiers["local"])
        except ValueError as err:
            raise ComposeError(f"TokenCache {name}: its local tier is invalid: {err}") from err
        local = LocalTier(to_bytes(t.size), t.storageClassName, t.hostPath)
    if "redis" in want and "redis" in tiers:
        url, secret = status.get("redisURL"), status.get("redisSecret")
        if url and secret:
            host, _, port = url.removeprefix("redis://").partition(":")
            key = status.get("redisSecretKey") or "password"  # older caches report no key
            redis = RedisTier(host, int(port or 6379), secret, key)
        else:
            waiting = f"TokenCache {name} has not reported its Redis endpoint yet"
    config = config_hash = None
    used = lmcache.strategy_for(want & set(tiers))
    if used is not None:
        config = (status.get("lmcacheConfigs") or {}).get(used)
        config_hash = (status.get("lmcacheConfigHashes") or {}).get(used)
        if config is None:
            waiting = waiting or (
                f"TokenCache {name} has not reported its LMCache configuration for {used} yet"
            )
    prefix = status.get("prefixCacheBytes")
    return BoundCache(
        name,
        int(prefix) if prefix else None,
        local,
        redis,
        config,
        config_hash,
        tuple(warnings),
        waiting,
    )
