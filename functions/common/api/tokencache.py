"""TokenCache: tiered token/KV cache (GPU prefix, local NVMe, distributed Redis)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from functions.common.api.base import DNS_LABEL, DNS_SUBDOMAIN, Rule, SpecModel
from functions.common.quantity import Duration, Quantity, to_bytes

TierType = Literal["prefix", "local", "redis"]
EvictionPolicy = Literal["lru", "lfu", "ttl", "random", "noeviction"]
Compression = Literal["none", "zstd", "lz4", "cachegen"]
WarmupApi = Literal["chat", "completions"]
NAME_PATTERN = DNS_LABEL
# Absolute, no trailing slash, no `.`/`..` segments (the API server rejects `..` in hostPath).
HOST_PATH = r"^(/[-_a-zA-Z0-9][-._a-zA-Z0-9]*)+$"
# Below this a tier holds barely two LMCache chunks (one 256-token Llama-3.1-8B chunk is ~7MB).
MIN_TIER_SIZE = "16Mi"


class PasswordSecretRef(SpecModel):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=253)]
    """Secret in the TokenCache's namespace."""
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "password"
    """Key of the Secret that holds the Redis password."""


class Tier(SpecModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=40)]
    """Tier name, used in the names of its resources."""
    type: TierType
    """prefix: GPU prefix cache; local: node-local NVMe; redis: distributed Redis."""
    size: Quantity
    """Capacity of the tier: per GPU for prefix (the KV-cache budget), per engine replica for
    local, in total for redis (maxmemory)."""
    ttl: Duration | None = None
    """How long entries should live; enforced on the redis tier only (warned on the others)."""
    replicas: Annotated[int, Field(ge=1, le=16)] = 1
    """Redis pods (redis tier only)."""
    storageClassName: Annotated[str | None, Field(max_length=253)] = None
    """Storage class of the local tier's per-replica generic ephemeral volume (e.g. a local-PV
    class); default the cluster's."""
    hostPath: Annotated[str | None, Field(pattern=HOST_PATH, max_length=1024)] = None
    """Node directory for the local tier instead of a volume (one subdirectory per pod)."""
    compression: Compression = "none"
    """Compression of stored KV blocks, where the engine supports it."""
    passwordSecretRef: PasswordSecretRef | None = None
    """Secret with the Redis password (redis tier only); default <cache>-redis-auth."""

    rules = (
        Rule(
            f"!quantity(string(self.size)).isLessThan(quantity('{MIN_TIER_SIZE}'))",
            f"size must be at least {MIN_TIER_SIZE}",
            lambda s: to_bytes(s.size) >= to_bytes(MIN_TIER_SIZE),
        ),
        Rule(
            "self.type == 'redis' || self.replicas == 1",
            "replicas is only meaningful for the redis tier",
            lambda s: s.type == "redis" or s.replicas == 1,
        ),
        Rule(
            "self.type == 'redis' || !has(self.passwordSecretRef)",
            "passwordSecretRef is only meaningful for the redis tier",
            lambda s: s.type == "redis" or s.passwordSecretRef is None,
        ),
        Rule(
            "self.type == 'local' || (!has(self.hostPath) && !has(self.storageClassName))",
            "hostPath and storageClassName are only meaningful for the local tier",
            lambda s: s.type == "local" or (s.hostPath is None and s.storageClassName is None),
        ),
        Rule(
            "!has(self.hostPath) || !has(self.storageClassName)",
            "set either hostPath or storageClassName, not both",
            lambda s: s.hostPath is None or s.storageClassName is None,
        ),
    )


class Warmup(SpecModel):
    enabled: bool = False
    """Send the common prefixes to bound InferenceServices before traffic arrives."""
    commonPrefixes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=32768)]], Field(max_length=64)
    ] = Field(default_factory=list)
    """Prompt prefixes (system prompts, few-shot headers) to pre-fill."""
    api: WarmupApi = "chat"
    """How clients send them, so the warmed tokens are the ones their requests start with:
    chat (each prefix as the system message of a chat completion) or completions (as the raw
    prompt of a completion)."""

    rules = (
        Rule(
            "!self.enabled || (has(self.commonPrefixes) && size(self.commonPrefixes) > 0)",
            "commonPrefixes must not be empty when warmup is enabled",
            lambda s: not s.enabled or len(s.commonPrefixes) > 0,
        ),
    )


class TokenCacheSpec(SpecModel):
    tiers: Annotated[list[Tier], Field(min_length=1, max_length=3)]
    """Cache tiers, at most one of each type."""
    evictionPolicy: EvictionPolicy = "lru"
    """What is evicted when a tier is full."""
    warmup: Warmup = Field(default_factory=Warmup)
    """Prefix-cache warmup."""

    rules = (
        Rule(
            "self.tiers.all(t, self.tiers.exists_one(u, u.type == t.type))",
            "at most one tier of each type (prefix, local, redis)",
            lambda s: len({t.type for t in s.tiers}) == len(s.tiers),
        ),
        Rule(
            "self.tiers.all(t, self.tiers.exists_one(u, u.name == t.name))",
            "tier names must be unique",
            lambda s: len({t.name for t in s.tiers}) == len(s.tiers),
        ),
        Rule(
            "self.evictionPolicy != 'ttl' || self.tiers.all(t, t.type != 'redis' || has(t.ttl))",
            "evictionPolicy ttl needs a ttl on the redis tier (Redis evicts only keys that expire, "
            "and only the tier's ttl gives LMCache's keys one)",
            lambda s: (
                s.evictionPolicy != "ttl"
                or all(t.ttl is not None for t in s.tiers if t.type == "redis")
            ),
        ),
    )
