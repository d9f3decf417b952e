"""The LMCache configuration as LMCache itself reads it.

The TokenCache's rendered ConfigMap and the bound InferenceService's rendered engine environment
(with `$(VAR)` expanded as the kubelet does) go through LMCache 0.5.6's own loader; the Redis URL
it resolves then authenticates, through redis-py's `from_url` as LMCache's Redis connector calls
it, against the TokenCache's rendered Redis started by the test harness.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from functions.common import lmcache
from tests.fnharness import claim_composite, example, run, with_spec
from tests.tokencache import rendered, upstream_lmcache
from tests.unit.test_inferenceservice_cache import token_cache

SERVICE = example("llama-70b.yaml")


@pytest.fixture(scope="module")
def lmcache_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return upstream_lmcache.unpack(tmp_path_factory.mktemp("lmcache"))


def engine_env(strategy: str, secrets: dict[str, str]) -> dict[str, str]:
    """The engine container's environment for `strategy`, as the kubelet resolves it."""
    res = run(
        claim_composite(with_spec(SERVICE, **{"cache.strategy": strategy})),
        required={"tokencaches": [token_cache()]},
    )
    assert res.fatal == [], res.fatal
    container = res.resources["deployment"]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], entry["value"])
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = secrets[entry["valueFrom"]["secretKeyRef"]["name"]]
    return {k: v for k, v in env.items() if k.startswith("LMCACHE_")}


def mounted_config(tmp: Path, strategy: str) -> Path:
    """The TokenCache's ConfigMap for `strategy`, written where the engine would read it."""
    cache = run(example("shared-cache.yaml"))
    path = tmp / lmcache.CONFIG_KEY
    path.write_text(cache.resources[f"lmcache-{strategy}"]["data"][lmcache.CONFIG_KEY])
    return path


def resolve(src: Path, tmp: Path, strategy: str, password: str) -> tuple[dict[str, Any], str]:
    env = engine_env(strategy, {"shared-cache-redis-auth": password})
    assert env.pop("LMCACHE_CONFIG_FILE") == lmcache.CONFIG_FILE
    return upstream_lmcache.load(src, mounted_config(tmp, strategy), env)


@pytest.mark.parametrize("strategy", ["local", "distributed", "hybrid"])
def test_lmcache_reads_every_rendered_key_and_the_password_only_from_the_secret(
    lmcache_src: Path, tmp_path: Path, strategy: str
) -> None:
    config, log = resolve(lmcache_src, tmp_path, strategy, "s3cret")
    assert "Unknown configuration key" not in log
    assert config["chunk_size"] == 256
    assert config["local_cpu"] is True
    assert config["max_local_cpu_size"] == 5.0
    assert config["save_decode_cache"] is False
    assert config["save_unfull_chunk"] is False
    assert config["cache_policy"] in upstream_lmcache.cache_policies(lmcache_src)
    if strategy in ("local", "hybrid"):
        assert config["local_disk"] == "/var/cache/lmcache/"  # LMCache strips file://
        assert config["max_local_disk_size"] == 90.0  # GiB: 90% of the 100Gi volume
    else:
        assert config["local_disk"] is None
    if strategy in ("distributed", "hybrid"):
        assert config["remote_url"] == (
            "redis://:s3cret@shared-cache-redis.default.svc.cluster.local:6379"
        )
        assert config["remote_serde"] in upstream_lmcache.serde_names(lmcache_src)
    else:
        assert config["remote_url"] is None


@pytest.mark.parametrize(("policy", "expected"), [("lru", "LRU"), ("lfu", "LFU"), ("ttl", "LRU")])
def test_lmcache_accepts_the_rendered_cache_policy(
    lmcache_src: Path, tmp_path: Path, policy: str, expected: str
) -> None:
    doc = with_spec(example("shared-cache.yaml"), evictionPolicy=policy)
    text = run(doc).resources["lmcache-local"]["data"][lmcache.CONFIG_KEY]
    (tmp_path / "c.yaml").write_text(text)
    config, _ = upstream_lmcache.load(lmcache_src, tmp_path / "c.yaml", {})
    assert config["cache_policy"] == expected
    assert expected in upstream_lmcache.cache_policies(lmcache_src)


def test_the_resolved_redis_url_authenticates_against_the_rendered_redis(
    lmcache_src: Path, tmp_path: Path
) -> None:
    pod = rendered.render(rendered.spec("lru"))
    with rendered.redis_pod(tmp_path, pod) as r:
        config, _ = resolve(lmcache_src, tmp_path, "distributed", rendered.PASSWORD)
        url = config["remote_url"].replace(
            "shared-cache-redis.default.svc.cluster.local:6379", f"127.0.0.1:{r.port}"
        )
        # How LMCache's RedisConnector connects (redis.ConnectionPool.from_url), synchronously.
        client = redis.Redis.from_pool(redis.ConnectionPool.from_url(url))
        assert client.ping() is True
        client.set("chunk", b"kv")
        assert client.get("chunk") == b"kv"
        wrong = url.replace(rendered.PASSWORD, "wrong")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_pool(redis.ConnectionPool.from_url(wrong)).ping()


def test_the_engine_command_clears_its_disk_tier_then_runs_the_engine(tmp_path: Path) -> None:
    """LMCache never reads back chunk files of a previous engine container; the rendered command
    removes them and execs vLLM with its arguments (a stand-in `vllm` on PATH records them)."""
    res = run(claim_composite(SERVICE), required={"tokencaches": [token_cache()]})
    container = res.resources["deployment"]["spec"]["template"]["spec"]["containers"][0]
    disk = tmp_path / "disk"
    (disk / "sub").mkdir(parents=True)
    for name in ("model@1@0@abc.pt", "sub/x.pt"):
        (disk / name).write_bytes(b"kv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    (bin_dir / "vllm").chmod(0o755)
    command = [c.replace(lmcache.DISK_DIR, str(disk)) for c in container["command"]]
    out = tmp_path / "args"
    done = subprocess.run(
        [*command, *container["args"]],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGS_OUT": str(out)},
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert list(disk.iterdir()) == []
    assert out.read_text().splitlines() == ["serve", *container["args"]]
