"""The TTL of the redis tier, enforced by the rendered expirer against a real redis-server.

Redis has no default key TTL and LMCache writes its chunks without one; the expirer gives
every key that lacks an expiry the tier's ttl (EXPIRE NX) on its keyspace event, and sweeps
keys it missed.
"""

from __future__ import annotations

from pathlib import Path

import redis

from sidecar.expirer import STALL_SECONDS, Metrics
from tests import procs
from tests.tokencache.rendered import client, expirer, redis_pod, render, spec
from tests.tokencache.test_redis_behaviour import MAXMEMORY, VALUE

TTL = 3600


def wait_ttl(c: redis.Redis, key: str, log: Path) -> int:
    procs.wait_for(lambda: int(c.ttl(key)) > 0, 10, f"a TTL on {key}", log)
    return int(c.ttl(key))


def test_rendered_config_enables_the_events_the_expirer_listens_to(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    assert "expirer" in pod.containers
    with redis_pod(tmp_path, pod) as r:
        flags = client(r).config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert set(flags) == set("E$n")


def test_keys_written_without_expiry_get_the_tier_ttl(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    with redis_pod(tmp_path, pod) as r, expirer(tmp_path, pod, r) as e:
        c = client(r)
        procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
        c.set("model@1@0@chunk-a", VALUE)
        assert TTL - 10 < wait_ttl(c, "model@1@0@chunk-a", e.log) <= TTL
        c.hset("a-hash", "f", "v")  # any type: the `new` event
        assert TTL - 10 < wait_ttl(c, "a-hash", e.log) <= TTL


def test_an_expiry_the_client_chose_is_kept(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    with redis_pod(tmp_path, pod) as r, expirer(tmp_path, pod, r) as e:
        c = client(r)
        procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
        c.set("short", "v", ex=30)
        c.set("marker", "v")
        wait_ttl(c, "marker", e.log)  # events are handled in order: "short" was seen
        assert 0 < int(c.ttl("short")) <= 30


def test_overwriting_a_key_gets_the_ttl_again(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    with redis_pod(tmp_path, pod) as r, expirer(tmp_path, pod, r) as e:
        c = client(r)
        procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
        c.set("k", "v", ex=5)
        c.set("k", "v2")  # a plain SET drops the expiry
        procs.wait_for(lambda: int(c.ttl("k")) > 5, 10, "the tier TTL on k", e.log)


def test_keys_written_before_the_expirer_started_are_swept(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    with redis_pod(tmp_path, pod) as r:
        c = client(r)
        c.mset({f"before{i}": "v" for i in range(1500)})  # more than one SCAN batch
        with expirer(tmp_path, pod, r) as e:
            procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
            assert "gave 1500 keys a 3600s TTL" in e.output()
            assert all(0 < int(c.ttl(f"before{i}")) <= TTL for i in range(1500))


def test_keys_whose_events_were_lost_are_swept_periodically(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    with (
        redis_pod(tmp_path, pod) as r,
        expirer(tmp_path, pod, r, "--sweep-interval-seconds=0.2") as e,
    ):
        c = client(r)
        procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
        c.config_set("notify-keyspace-events", "")  # events lost, as during a reconnect
        c.set("unseen", "v")
        assert TTL - 10 < wait_ttl(c, "unseen", e.log) <= TTL


def test_replicas_replicate_the_expiry_and_their_expirer_only_waits(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    (tmp_path / "p").mkdir()
    (tmp_path / "r").mkdir()
    with (
        redis_pod(tmp_path / "p", pod) as primary,
        redis_pod(tmp_path / "r", pod, ordinal=1, primary=primary) as replica,
        expirer(tmp_path / "r", pod, replica, "--sweep-interval-seconds=0.2") as on_replica,
    ):
        rc = client(replica)
        procs.wait_for(
            lambda: rc.info("replication")["master_link_status"] == "up", 15, "replication"
        )
        client(primary).set("k", "v")
        procs.wait_for(lambda: rc.get("k") == b"v", 10, "k on the replica")
        procs.wait_for(lambda: "swept" in on_replica.output(), 10, "the replica's sweep")
        assert int(rc.ttl("k")) == -1  # the replica's expirer wrote nothing
        with expirer(tmp_path / "p", pod, primary) as e:
            assert TTL - 10 < wait_ttl(rc, "k", e.log) <= TTL
        assert on_replica.alive()
        assert "READONLY" not in on_replica.output()


def test_ttl_policy_keeps_accepting_writes_once_the_expirer_runs(tmp_path: Path) -> None:
    # Without the expirer the same fill is refused (test_redis_behaviour.py): keys without an
    # expiry cannot be evicted by volatile-ttl.
    pod = render(spec("ttl", ttl="1h"))
    with redis_pod(tmp_path, pod) as r, expirer(tmp_path, pod, r) as e:
        c = client(r)
        procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
        for i in range(80):
            c.set(f"k{i}", VALUE)
            wait_ttl(c, f"k{i}", e.log)  # LMCache writes far slower than this loop
        assert int(c.info("memory")["used_memory"]) <= MAXMEMORY
        assert int(c.info("stats")["evicted_keys"]) >= 15


def test_a_tier_without_ttl_renders_no_expirer_and_no_events() -> None:
    pod = render(spec("lru"))
    assert set(pod.containers) == {"redis"}
    assert "notify-keyspace-events" not in pod.conf


def bound_port(e: procs.Proc, flag: str) -> int:
    (arg,) = [a for a in e.args if a.startswith(f"--{flag}=")]
    return int(arg.rsplit(":", 1)[1])


def metric(text: str, line_prefix: str) -> float:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(line_prefix + " ")]
    return float(line.split()[-1])


def test_expirer_reports_its_work_on_metrics_and_probes(tmp_path: Path) -> None:
    pod = render(spec("lru", ttl="1h"))
    with redis_pod(tmp_path, pod) as r:
        c = client(r)
        c.mset({f"old{i}": "v" for i in range(3)})
        with expirer(tmp_path, pod, r) as e:
            health = f"http://127.0.0.1:{bound_port(e, 'health-bind-address')}"
            metrics = f"http://127.0.0.1:{bound_port(e, 'metrics-bind-address')}/metrics"
            procs.wait_for(lambda: "swept" in e.output(), 10, "the expirer's first sweep", e.log)
            c.set("new", "v")
            wait_ttl(c, "new", e.log)
            assert procs.http_get(f"{health}/healthz")[0] == 200
            assert procs.http_get(f"{health}/readyz")[0] == 200
            status, text = procs.http_get(metrics)
            assert status == 200
            expired = 'inference_cache_expirer_keys_expired_total{source="%s"}'
            assert metric(text, expired % "sweep") == 3
            assert metric(text, expired % "event") >= 1
            assert metric(text, "inference_cache_expirer_sweeps_total") >= 1
            assert metric(text, "inference_cache_expirer_redis_up") == 1
            assert metric(text, "inference_cache_expirer_primary") == 1


def test_expirer_liveness_fails_only_when_its_loop_stops_turning() -> None:
    m = Metrics()
    assert not m.stalled(now=m.heartbeat + STALL_SECONDS - 1)
    assert m.stalled(now=m.heartbeat + STALL_SECONDS + 1)
    m.beat()
    assert not m.stalled()
