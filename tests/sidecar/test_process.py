"""The sidecar as a process against a real redis-server and the real /metrics of
llm-d-inference-sim (the vLLM simulator built by hack/tools.sh); NVML from recorded answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import redis

from tests.sidecar import procs
from tests.sidecar.procs import SIM_MODEL

PROMPT = (
    "You are a helpful assistant for a hardware store. Answer briefly and politely. "
    "The store opens at nine and closes at six, every day except public holidays. "
    "Question number {n}: what time do you open?"
)


def _engine_counter(sim: procs.Sim, name: str) -> float:
    """The simulator's own counter, read from its /metrics (written without _total)."""
    status, text = procs.http_get(f"{sim.base}/metrics")
    assert status == 200
    m = procs.Metrics.parse(text)
    return m.get(f"{name}_total", model_name=SIM_MODEL)


def _write_cache_dir(root: Path) -> tuple[int, int]:
    sizes = {"a/0001.kv": 4096, "a/0002.kv": 10_000, "b/c/0003.kv": 123_457, "top.kv": 1}
    for rel, size in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    (root / "link.kv").symlink_to(root / "top.kv")  # not followed, not counted
    return sum(sizes.values()), len(sizes)


REDIS_TIER = {"tier": "redis", "source": "redis", "model_name": ""}
LOCAL_TIER = {"tier": "local", "source": "filesystem", "model_name": ""}
PREFIX_TIER = {"tier": "prefix", "source": "vllm", "model_name": SIM_MODEL}


def _redis_traffic(client: redis.Redis) -> None:
    """5 hits, 3 misses, 4 keys."""
    for i in range(4):
        client.set(f"kv:{i}", b"x" * 1000)
    for i in range(5):
        assert client.get(f"kv:{i % 4}") is not None
    for i in range(3):
        assert client.get(f"missing:{i}") is None


def _check_engine(m: procs.Metrics, sim: procs.Sim) -> float:
    """The simulator's counters, unchanged, under our names."""
    engine_hits = _engine_counter(sim, "vllm:prefix_cache_hits")
    engine_queries = _engine_counter(sim, "vllm:prefix_cache_queries")
    assert m.get("inference_engine_up") == 1
    assert engine_hits > 0
    assert engine_queries > engine_hits
    assert m.types["inference_cache_hits"] == "counter"
    assert m.get("inference_cache_hits_total", **PREFIX_TIER) == engine_hits
    assert m.get("inference_cache_queries_total", **PREFIX_TIER) == engine_queries
    usage = m.get("inference_cache_usage_ratio", **PREFIX_TIER)
    assert 0 <= usage <= 1
    assert m.get("inference_cache_capacity_bytes", **PREFIX_TIER) == 2 * 1024**3
    assert m.get("inference_cache_size_bytes", **PREFIX_TIER) == usage * 2 * 1024**3
    return engine_hits


def _check_redis(m: procs.Metrics, info: dict[str, int]) -> None:
    """INFO, exactly (the sidecar itself only runs INFO and CLIENT SETNAME: no lookups)."""
    assert m.get("inference_redis_up") == 1
    assert info["keyspace_hits"] == 5
    assert m.get("inference_cache_hits_total", **REDIS_TIER) == 5
    assert m.get("inference_cache_queries_total", **REDIS_TIER) == 8
    assert m.get("inference_cache_entries", **REDIS_TIER) == 4
    assert m.get("inference_cache_evictions_total", **REDIS_TIER) == 0
    assert m.get("inference_cache_capacity_bytes", **REDIS_TIER) == 64 * 1024 * 1024
    used = m.get("inference_cache_size_bytes", **REDIS_TIER)
    assert 0.5 * info["used_memory"] < used < 2 * info["used_memory"]
    assert m.get("inference_cache_usage_ratio", **REDIS_TIER) == used / (64 * 1024 * 1024)


def test_exports_engine_redis_local_and_gpu_values(
    tmp_path: Path, redis_server: procs.Redis, sim: procs.Sim
) -> None:
    # Prefix-cache traffic: the same long prefix three times, then a different one.
    for n in (1, 1, 1, 2):
        sim.complete(PROMPT.format(n=n))
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, password=redis_server.password)
    _redis_traffic(client)
    password_file = tmp_path / "redis-password"
    password_file.write_text(redis_server.password + "\n")
    cache_dir = tmp_path / "local-cache"
    cache_bytes, cache_files = _write_cache_dir(cache_dir)

    sidecar = procs.sidecar_proc(
        tmp_path,
        {
            "ENGINE_METRICS_URL": f"{sim.base}/metrics",
            "PREFIX_CACHE_CAPACITY": "2Gi",
            "REDIS_URL": redis_server.url,
            "REDIS_PASSWORD_FILE": str(password_file),
            "LOCAL_CACHE_DIR": str(cache_dir),
            "NVML_FIXTURE": str(procs.FIXTURES / "h100-whole.json"),
        },
    )
    with procs.running(sidecar.proc):
        procs.wait_sidecar(sidecar)
        assert sidecar.health("/healthz")[0] == 200
        m = sidecar.scrape()
        engine_hits = _check_engine(m, sim)
        _check_redis(m, client.info())
        # Local tier: the files' apparent size, symlink not followed.
        assert m.get("inference_local_cache_up") == 1
        assert m.get("inference_cache_size_bytes", **LOCAL_TIER) == cache_bytes
        assert m.get("inference_cache_entries", **LOCAL_TIER) == cache_files
        # GPU from the recorded H100 answers.
        assert m.get("inference_gpu_up") == 1
        assert m.get("inference_gpu_utilization", gpu="0") == 0.87
        assert m.get("inference_gpu_memory_used_bytes", gpu="0") == 69632 * 1024 * 1024

        # Values are read at scrape time: more traffic moves the counters.
        for _ in range(2):
            sim.complete(PROMPT.format(n=1))
        client.get("kv:0")
        m2 = sidecar.scrape()
        assert m2.get("inference_cache_hits_total", **PREFIX_TIER) > engine_hits
        assert m2.get("inference_cache_hits_total", **PREFIX_TIER) == _engine_counter(
            sim, "vllm:prefix_cache_hits"
        )
        assert m2.get("inference_cache_hits_total", **REDIS_TIER) == 6

    out = sidecar.proc.output()
    assert sidecar.proc.popen is not None
    assert sidecar.proc.popen.returncode == 0, out
    assert 'source=redis msg="Redis answering"' in out
    assert 'source=engine msg="engine metrics answering"' in out
    assert redis_server.password not in out
    assert "shutting down" in out


def test_backends_down_is_a_normal_state(tmp_path: Path) -> None:
    """No GPU driver, no Redis, no engine, no cache directory: up gauges 0, clear log lines,
    /metrics and the probes keep answering, nothing crashes; Redis coming up later is seen."""
    redis_port = procs.free_port()
    sidecar = procs.sidecar_proc(
        tmp_path,
        {
            "ENGINE_METRICS_URL": f"http://127.0.0.1:{procs.free_port()}/metrics",
            "ENGINE_TIMEOUT": "0.5",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "REDIS_PASSWORD": "s3cret-test-password",
            "LOCAL_CACHE_DIR": str(tmp_path / "does-not-exist"),
            "NVML_FIXTURE": str(procs.FIXTURES / "no-driver.json"),
        },
    )
    with procs.running(sidecar.proc):
        procs.wait_sidecar(sidecar)
        for _ in range(3):
            m = sidecar.scrape()
        assert m.get("inference_gpu_up") == 0
        assert m.get("inference_engine_up") == 0
        assert m.get("inference_redis_up") == 0
        assert m.get("inference_local_cache_up") == 0
        assert not m.has("inference_gpu_utilization")
        assert not m.has("inference_cache_hits_total")
        assert sidecar.health("/healthz")[0] == 200
        status, body = sidecar.health("/readyz")
        assert status == 200, "readiness must not depend on the backends"
        assert '"sources": ["gpu", "engine", "local", "redis"]' in body

        r = procs.redis_proc(tmp_path, redis_port, password="s3cret-test-password")
        with procs.running(r.proc):
            procs.wait_redis(r)
            procs.wait_for(
                lambda: sidecar.scrape().get("inference_redis_up") == 1, 10, "redis_up 1"
            )
        assert sidecar.proc.alive()

    out = sidecar.proc.output()
    assert "NVML unavailable (NVML Shared Library Not Found)" in out
    assert "inference_gpu_up 0" in out
    assert "engine metrics unreachable" in out
    assert "local cache directory missing" in out
    assert "Redis unreachable" in out
    assert "Redis answering" in out
    # Logged on change, not on every scrape.
    assert out.count("Redis unreachable") == 1
    assert out.count("NVML unavailable") == 1
    assert "s3cret-test-password" not in out


def test_redis_wrong_password(tmp_path: Path, redis_server: procs.Redis) -> None:
    sidecar = procs.sidecar_proc(
        tmp_path,
        {"REDIS_URL": redis_server.url, "REDIS_PASSWORD": "wrong-password", "GPU_METRICS": "off"},
    )
    with procs.running(sidecar.proc):
        procs.wait_sidecar(sidecar)
        m = sidecar.scrape()
        assert m.get("inference_redis_up") == 0
        assert not m.has("inference_gpu_up")  # GPU_METRICS=off: no GPU source at all
    out = sidecar.proc.output()
    assert "AuthenticationError" in out
    assert "wrong-password" not in out


def test_bad_bind_address_exits_with_a_message(tmp_path: Path) -> None:
    sidecar = procs.sidecar_proc(tmp_path, {"METRICS_BIND_ADDRESS": "no-port"})
    sidecar.proc.start()
    assert sidecar.proc.popen is not None
    assert sidecar.proc.popen.wait(20) == 1
    assert "cannot listen: bind address 'no-port' is not [host]:port" in sidecar.proc.output()


def test_help_lists_every_environment_variable() -> None:
    out = subprocess.run(
        [*procs.sidecar_command(), "serve", "--help"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    for var in (
        "METRICS_BIND_ADDRESS",
        "HEALTH_PROBE_BIND_ADDRESS",
        "ENGINE_METRICS_URL",
        "REDIS_URL",
        "REDIS_PASSWORD_FILE",
        "LOCAL_CACHE_DIR",
        "PREFIX_CACHE_CAPACITY",
        "SIDECAR_MODE",
        "POD_RESOURCES_SOCKET",
    ):
        assert var in out
