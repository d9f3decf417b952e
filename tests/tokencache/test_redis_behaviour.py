"""The rendered Redis configuration in a real redis-server: fill it past maxmemory and watch
what each evictionPolicy evicts, and that the password is required.

The tier is 16Mi (the schema's minimum) and values are 256KiB, so about 60 fit; Redis itself
takes about 1MiB of that. Redis approximates LRU and LFU by sampling, so the cold sets are large
and the hot sets small: a hot key is evicted only if a sample of 5 holds no colder key.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.tokencache.rendered import PASSWORD, client, redis_pod, render, spec

VALUE = b"x" * (256 * 1024)
MAXMEMORY = 16 * 2**20


def fill(c: redis.Redis, prefix: str, n: int, **kwargs: int) -> None:
    for i in range(n):
        c.set(f"{prefix}{i}", VALUE, **kwargs)


def fill_until_refused(c: redis.Redis, n: int) -> tuple[int, str]:
    """Write up to n values to k0, k1, ...; how many were stored and Redis's refusal."""
    for i in range(n):
        try:
            c.set(f"k{i}", VALUE)
        except redis.exceptions.OutOfMemoryError as err:
            return i, str(err)
    return n, ""


def present(c: redis.Redis, prefix: str, n: int) -> int:
    return sum(c.exists(f"{prefix}{i}") for i in range(n))


def test_rendered_config_is_what_redis_runs(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("lru"))) as r:
        c = client(r)
        cfg = c.config_get("*")
        assert cfg["maxmemory"] == str(MAXMEMORY)
        assert cfg["maxmemory-policy"] == "allkeys-lru"
        assert cfg["save"] == ""
        assert cfg["appendonly"] == "no"
        assert cfg["notify-keyspace-events"] == ""  # no ttl, no expirer, no events


def test_password_is_required(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("lru"))) as r:
        with pytest.raises(redis.AuthenticationError, match="Authentication required"):
            client(r, password=None, protocol=2).set("k", "v")  # RESP3's HELLO fails earlier
        with pytest.raises(redis.AuthenticationError, match="invalid username-password"):
            client(r, password="wrong").ping()
        assert client(r).set("k", "v")


def test_lru_evicts_the_least_recently_used_keys(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("lru"))) as r:
        c = client(r)
        fill(c, "cold", 40)
        fill(c, "hot", 5)
        time.sleep(1.5)  # Redis's LRU clock ticks in seconds
        c.touch(*(f"hot{i}" for i in range(5)))  # an access, without 256KiB replies
        fill(c, "new", 30)  # 75 values: far past maxmemory
        assert int(c.info("memory")["used_memory"]) <= MAXMEMORY
        assert present(c, "hot", 5) == 5
        assert present(c, "cold", 40) < 40
        assert int(c.info("stats")["evicted_keys"]) >= 10


def test_lfu_keeps_frequently_used_keys(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("lfu"))) as r:
        c = client(r)
        fill(c, "hot", 5)
        pipe = c.pipeline(transaction=False)
        for _ in range(200):
            # TOUCH counts as an access; GET's replies would sit in the client's output buffer,
            # which counts towards maxmemory and would evict everything.
            pipe.touch(*(f"hot{i}" for i in range(5)))
        pipe.execute()
        fill(c, "cold", 70)  # new keys start with a low frequency; they are evicted first
        assert present(c, "hot", 5) == 5
        assert present(c, "cold", 70) < 70
        assert int(c.info("stats")["evicted_keys"]) >= 10


def test_random_evicts_and_keeps_accepting_writes(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("random"))) as r:
        c = client(r)
        fill(c, "k", 80)
        assert int(c.info("memory")["used_memory"]) <= MAXMEMORY
        assert int(c.info("stats")["evicted_keys"]) >= 15


def test_ttl_policy_evicts_the_keys_nearest_expiry(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("ttl", ttl="1h"))) as r:
        c = client(r)
        fill(c, "far", 5, ex=3000)
        fill(c, "near", 40, ex=100)
        fill(c, "new", 30, ex=2000)
        assert present(c, "far", 5) == 5
        assert present(c, "new", 30) == 30
        assert present(c, "near", 40) < 40


def test_ttl_policy_refuses_writes_when_no_key_expires(tmp_path: Path) -> None:
    # What volatile-ttl does to LMCache's keys (written without an expiry) when nothing gives
    # them one: why evictionPolicy ttl requires the tier's ttl, which the expirer enforces
    # (test_expirer.py shows the same fill succeeding with it).
    with redis_pod(tmp_path, render(spec("ttl", ttl="1h"))) as r:
        c = client(r)
        with pytest.raises(
            redis.exceptions.OutOfMemoryError, match="command not allowed when used memory"
        ):
            fill(c, "k", 80)
        assert int(c.info("stats")["evicted_keys"]) == 0


def test_noeviction_refuses_writes_past_maxmemory_and_keeps_every_key(tmp_path: Path) -> None:
    with redis_pod(tmp_path, render(spec("noeviction"))) as r:
        c = client(r)
        stored, refused = fill_until_refused(c, 80)
        assert "command not allowed when used memory > 'maxmemory'" in refused
        assert 40 <= stored < 64
        assert present(c, "k", stored) == stored
        assert int(c.info("stats")["evicted_keys"]) == 0
        assert c.get("k0") == VALUE  # reads still work


def test_auth_include_is_written_by_the_start_script_not_the_config(tmp_path: Path) -> None:
    pod = render(spec("lru"))
    assert PASSWORD not in pod.conf
    assert "requirepass" not in pod.conf
    with redis_pod(tmp_path, pod):
        auth = (tmp_path / "auth" / "auth.conf").read_text()
    assert auth == f"requirepass {PASSWORD}\nmasterauth {PASSWORD}\n"
    assert (tmp_path / "auth" / "auth.conf").stat().st_mode & 0o077 == 0  # umask 077
