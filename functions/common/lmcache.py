"""LMCache, the KV-cache layer vLLM uses for a TokenCache's local and redis tiers.

The one place that knows LMCache's configuration keys (lmcache 0.5.6, `lmcache/v1/config.py`):
the TokenCache function renders one configuration file per combination of its tiers an engine
can use, and the InferenceService function mounts the one its strategy selects.

The file never holds the Redis password. LMCache reads `LMCACHE_CONFIG_FILE` and then lets every
`LMCACHE_<KEY>` environment variable override the file's key (`lmcache_get_or_create_config`:
`from_file` then `update_config_from_env`), and its `redis://` client takes the password only in
the URL (`redis.ConnectionPool.from_url`). So the engine gets the password from the Secret
(`secretKeyRef`) and an `LMCACHE_REMOTE_URL` that embeds it through Kubernetes' `$(VAR)`
expansion; the file's `remote_url` is the same endpoint without it.
"""

from __future__ import annotations

from typing import Any

import yaml

from functions.common.api.tokencache import EvictionPolicy, Tier
from functions.common.quantity import to_bytes

VERSION = "0.5.6"  # the release whose keys and behaviour this module follows
CONFIG_KEY = "lmcache.yaml"
CONFIG_DIR = "/etc/lmcache"
CONFIG_FILE = f"{CONFIG_DIR}/{CONFIG_KEY}"
DISK_DIR = "/var/cache/lmcache"
PASSWORD_ENV = "LMCACHE_REDIS_PASSWORD"
CHUNK_SIZE = 256  # tokens per chunk, LMCache's default
# Pinned host RAM per GPU rank (LMCache's default): the staging buffer every disk or Redis
# transfer goes through, and with local_cpu its hot cache. Allocated up front.
CPU_BUFFER_GIB = 5
# The disk tier's limit leaves room on its volume for filesystem metadata and ext4's 5%
# root-reserved blocks, which the non-root engine cannot write into.
DISK_USABLE = 0.9

# InferenceService cache.strategy -> the TokenCache tiers the engine uses through LMCache.
STRATEGY_TIERS: dict[str, frozenset[str]] = {
    "local": frozenset({"local"}),
    "distributed": frozenset({"redis"}),
    "hybrid": frozenset({"local", "redis"}),
}
# LMCache's cache_policy (LRU, LFU, FIFO, MRU: storage_backend/cache_policy) orders the local
# CPU and disk tiers; the other eviction policies have no LMCache equivalent.
CACHE_POLICY: dict[str, str] = {"lru": "LRU", "lfu": "LFU"}
DEFAULT_CACHE_POLICY = "LRU"
# remote_serde (naive, kivi, cachegen) is how chunks are encoded for the remote tier only.
REMOTE_SERDE: dict[str, str] = {"none": "naive", "cachegen": "cachegen"}


def strategy_for(tiers: frozenset[str] | set[str]) -> str | None:
    """The strategy whose engine uses exactly these tiers (None for none)."""
    for strategy, wanted in STRATEGY_TIERS.items():
        if wanted == tiers:
            return strategy
    return None


def disk_bytes(tier: Tier) -> int:
    """What LMCache may store on the local tier's volume (see DISK_USABLE)."""
    return int(to_bytes(tier.size) * DISK_USABLE)


def gib(n: int) -> float:
    """LMCache's sizes are GiB floats (it multiplies by 1024**3)."""
    return round(n / 2**30, 6)


def config(
    policy: EvictionPolicy,
    local: Tier | None = None,
    redis: Tier | None = None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """The LMCache configuration for an engine using `local` and/or `redis`."""
    cfg: dict[str, Any] = {
        "chunk_size": CHUNK_SIZE,
        "local_cpu": True,
        "max_local_cpu_size": CPU_BUFFER_GIB,
        "cache_policy": CACHE_POLICY.get(policy, DEFAULT_CACHE_POLICY),
        # Only prompt (prefill) KV is shared: decode KV is request-specific.
        "save_decode_cache": False,
        # Whole chunks only (LMCache's default): a partial tail's key matches only a prompt that
        # ends at the same token, so storing it costs space for almost no hits.
        "save_unfull_chunk": False,
    }
    if local is not None:
        cfg["local_disk"] = f"file://{DISK_DIR}/"
        cfg["max_local_disk_size"] = gib(disk_bytes(local))
    if redis is not None:
        if redis_url is None:
            raise ValueError("a redis tier needs its URL")
        cfg["remote_url"] = redis_url
        cfg["remote_serde"] = REMOTE_SERDE.get(redis.compression, "naive")
    return cfg


def document(cfg: dict[str, Any], secret: str | None = None) -> str:
    header = f"# LMCache {VERSION} configuration (LMCACHE_CONFIG_FILE) from the TokenCache.\n"
    if secret is not None:
        header += (
            "# remote_url carries no password: engines override it with LMCACHE_REMOTE_URL,\n"
            f"# which adds {PASSWORD_ENV} from Secret {secret} (environment beats file).\n"
        )
    return header + yaml.safe_dump(cfg, sort_keys=False)


# Pod-template annotation of engines bound to a TokenCache: its LMCache configuration's hash.
CONFIG_HASH_ANNOTATION = "inference.ai/lmcache-config-hash"


def config_name(base: str, strategy: str) -> str:
    """`<base>-<strategy>`: a stable name, updated in place. A name per content would be deleted
    by Crossplane as soon as the content changes, before the engines bound to it re-render, and
    their new pods could not mount it meanwhile; engines roll over through its content digest
    (status.lmcacheConfigHashes, pod annotation CONFIG_HASH_ANNOTATION)."""
    return f"{base}-{strategy}"


def authenticated_url(url: str) -> str:
    """`redis://host:port` with the password from PASSWORD_ENV, expanded by Kubernetes."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a URL: {url}")
    return f"{scheme}://:$({PASSWORD_ENV})@{rest}"


def warnings(policy: EvictionPolicy, tiers: list[Tier]) -> list[str]:
    """What the spec asks of LMCache's tiers that LMCache has no setting for."""
    out = []
    types = {t.type for t in tiers}
    if "local" in types and policy not in CACHE_POLICY:
        out.append(
            f"evictionPolicy {policy}: LMCache orders its host-RAM and local disk tiers by "
            f"LRU, LFU, FIFO or MRU only, so they use {DEFAULT_CACHE_POLICY} (the redis tier "
            "applies the policy itself)"
        )
    for tier in tiers:
        if tier.compression == "none":
            continue
        if tier.type == "redis" and tier.compression not in REMOTE_SERDE:
            out.append(
                f"tier {tier.name}: compression {tier.compression} is not applied: LMCache "
                "encodes Redis chunks as naive (raw) or cachegen only (remote_serde)"
            )
        elif tier.type == "local":
            out.append(
                f"tier {tier.name}: compression {tier.compression} is not applied: LMCache "
                "writes local disk chunks raw and has no compression setting for them"
            )
        elif tier.type == "prefix":
            out.append(
                f"tier {tier.name}: compression {tier.compression} is not applied: the GPU "
                "prefix cache holds KV blocks uncompressed"
            )
    return out
