"""Binding an InferenceService to the TokenCache that provides its local and distributed tiers.

The TokenCache composite is read as a required resource: by `cache.tokenCacheRef`, or, for the
strategies that need more than the GPU prefix cache, the one TokenCache in the namespace. Its
spec says which tiers exist and how large they are; its status carries the Redis URL, the Secret
with the password, the GPU prefix-cache budget and the LMCache ConfigMap per strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from functions.common import lmcache, peers
from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.composer import ComposeError, Request
from functions.common.kinds import TOKEN_CACHE
from functions.common.peers import Requirement, TokenCachePeer
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
    """The TokenCache composites of the service's namespace (or the one it names)."""
    if not wanted(req.spec):
        return None
    ref = req.spec.cache.tokenCacheRef
    return peers.composites(
        TOKEN_CACHES,
        TOKEN_CACHE,
        req.form,
        namespace=req.owner.namespace or "default",
        name=ref.name if ref else None,
    )


def bind(
    spec: InferenceServiceSpec, namespace: str | None, found: tuple[TokenCachePeer, ...]
) -> BoundCache:
    ref = spec.cache.tokenCacheRef
    if ref is not None:
        found = tuple(c for c in found if c.name == ref.name)
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
        names = ", ".join(sorted(c.name for c in found))
        raise ComposeError(
            f"spec.cache.tokenCacheRef: namespace {namespace} has several TokenCaches ({names}); "
            "name one"
        )
    return describe(spec, found[0])


def describe(spec: InferenceServiceSpec, cache: TokenCachePeer) -> BoundCache:
    name, status = cache.name, cache.status
    tiers = {t.type: t for t in cache.spec.tiers}
    want = STRATEGY_TIERS[spec.cache.strategy]
    warnings = [
        f"cache.strategy {spec.cache.strategy}: TokenCache {name} has no {tier} tier"
        for tier in sorted(want - set(tiers))
    ]
    local = redis = None
    waiting = None
    if "local" in want and "local" in tiers:
        t = tiers["local"]
        local = LocalTier(to_bytes(t.size), t.storageClassName, t.hostPath)
    if "redis" in want and "redis" in tiers:
        url, secret = status.redisURL, status.redisSecret
        if url and secret:
            host, _, port = url.removeprefix("redis://").partition(":")
            key = status.redisSecretKey or "password"  # older caches report no key
            redis = RedisTier(host, int(port or 6379), secret, key)
        else:
            waiting = f"TokenCache {name} has not reported its Redis endpoint yet"
    config = config_hash = None
    used = lmcache.strategy_for(want & set(tiers))
    if used is not None:
        config = status.lmcacheConfigs.get(used)
        config_hash = status.lmcacheConfigHashes.get(used)
        if config is None:
            waiting = waiting or (
                f"TokenCache {name} has not reported its LMCache configuration for {used} yet"
            )
    return BoundCache(
        name,
        status.prefixCacheBytes or None,
        local,
        redis,
        config,
        config_hash,
        tuple(warnings),
        waiting,
    )
