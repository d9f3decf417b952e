"""Enforce the redis tier's TTL: give every key without an expiry the tier's TTL.

Redis has no default key TTL and LMCache writes its chunks without one, so the TokenCache runs
this program beside each Redis pod (image: the metrics sidecar's, entry point
`inference-cache-expirer`). It listens to keyspace notifications (`notify-keyspace-events E$n`
in the rendered redis.conf, from sidecar/contract.py: `new` for any created key, `set` because a
plain SET of an existing key drops its expiry) and answers each with `EXPIRE key ttl NX`, which
never shortens or extends an expiry a client chose. Pub/sub drops events while the program is
disconnected, so a SCAN sweep applies the same command to every key at start and every
`--sweep-interval-seconds`.
Replicas are read-only and receive expiries from their primary: on them it only waits.

`/metrics` (Prometheus) counts the keys given the TTL and the sweeps; `/healthz` fails when the
main loop has not turned for `STALL_SECONDS` (stuck, not merely disconnected: reconnecting
turns it too), and `/readyz` is ready once serving. Neither follows Redis: a container of the
Redis pod that went unready with Redis would only take the pod out of its Service again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable

import click
import redis
from prometheus_client import CollectorRegistry, Counter, Gauge

from sidecar.server import Servers

log = logging.getLogger("inference-cache-expirer")

# The events of sidecar.contract.NOTIFY_KEYSPACE_EVENTS that the program listens to.
CHANNELS = ("__keyevent@0__:new", "__keyevent@0__:set")
BATCH = 512
STALL_SECONDS = 60.0  # the loop turns at least every second, or every backoff (<= 10s)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.expired = Counter(
            "inference_cache_expirer_keys_expired",
            "Keys given the tier TTL (EXPIRE NX set it).",
            ["source"],
            registry=self.registry,
        )
        self.sweeps = Counter(
            "inference_cache_expirer_sweeps", "SCAN sweeps finished.", registry=self.registry
        )
        self.redis_up = Gauge(
            "inference_cache_expirer_redis_up",
            "1 while connected to Redis.",
            registry=self.registry,
        )
        self.primary = Gauge(
            "inference_cache_expirer_primary",
            "1 when the Redis beside it is the primary.",
            registry=self.registry,
        )
        self.heartbeat = time.monotonic()

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def stalled(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) - self.heartbeat > STALL_SECONDS


class Expirer:
    def __init__(
        self,
        client: redis.Redis,
        ttl_seconds: int,
        sweep_interval: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.sweep_interval = sweep_interval
        self.metrics = metrics or Metrics()

    def is_primary(self) -> bool:
        role = self.client.execute_command("ROLE")  # type: ignore[no-untyped-call]
        primary = bool(role) and role[0] in (b"master", "master")
        self.metrics.primary.set(int(primary))
        return primary

    def expire(self, keys: Iterable[bytes], source: str = "event") -> int:
        """EXPIRE NX on each key; returns how many got the TTL (had none before)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.expire(key, self.ttl, nx=True)
        done = sum(1 for set_ in pipe.execute() if set_)
        self.metrics.expired.labels(source).inc(done)
        return done

    def sweep(self) -> int:
        """Give the TTL to every key that lacks one (events missed while disconnected)."""
        if not self.is_primary():
            return 0
        done = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                done += self.expire(batch, "sweep")
                batch.clear()
                self.metrics.beat()
        done += self.expire(batch, "sweep")
        self.metrics.sweeps.inc()
        return done

    def run(self, stop: threading.Event) -> None:
        """Subscribe, sweep, then expire keys as their events arrive until `stop` is set."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(*CHANNELS)
        self.metrics.redis_up.set(1)
        try:
            # Subscribed before the first sweep: a key written in between is seen by one of them.
            swept = self.sweep()
            log.info("swept: gave %d keys a %ds TTL", swept, self.ttl)
            next_sweep = time.monotonic() + self.sweep_interval
            primary = self.is_primary()
            while not stop.is_set():
                self.metrics.beat()
                keys: set[bytes] = set()
                msg = pubsub.get_message(timeout=1.0)
                while msg is not None and len(keys) < BATCH:
                    keys.add(msg["data"])
                    msg = pubsub.get_message(timeout=0)
                if keys and primary:
                    self.expire(keys)
                if time.monotonic() >= next_sweep:
                    primary = self.is_primary()
                    swept = self.sweep()
                    if swept:
                        log.info("swept: gave %d keys a %ds TTL", swept, self.ttl)
                    next_sweep = time.monotonic() + self.sweep_interval
        finally:
            pubsub.close()


def serve(
    client: redis.Redis,
    ttl_seconds: int,
    sweep_interval: float,
    stop: threading.Event,
    metrics: Metrics | None = None,
) -> None:
    """Run until `stop`, reconnecting with backoff (Redis in the same pod may start later)."""
    metrics = metrics or Metrics()
    backoff = 0.5
    while not stop.is_set():
        metrics.beat()
        try:
            Expirer(client, ttl_seconds, sweep_interval, metrics).run(stop)
        except redis.RedisError as err:
            metrics.redis_up.set(0)
            log.warning("redis unavailable (%s); retrying in %.1fs", err, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


@click.command()
@click.option(
    "--ttl-seconds", "ttl", type=click.IntRange(min=1), required=True, help="How long keys live."
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6379, show_default=True)
@click.option(
    "--sweep-interval-seconds",
    "sweep_interval",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Between sweeps for keys whose events were missed.",
)
@click.option("--metrics-bind-address", default=":8080", show_default=True, help="/metrics")
@click.option(
    "--health-bind-address",
    default=":8081",
    show_default=True,
    help="/healthz (main loop turning) and /readyz",
)
def cli(
    ttl: int,
    host: str,
    port: int,
    sweep_interval: float,
    metrics_bind_address: str,
    health_bind_address: str,
) -> None:
    """Give keys without an expiry the TTL; the password comes from REDIS_PASSWORD."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    client = redis.Redis(
        host=host, port=port, password=os.environ.get("REDIS_PASSWORD"), socket_timeout=10
    )
    metrics = Metrics()
    servers = Servers(
        metrics_bind_address,
        health_bind_address,
        metrics.registry,
        alive=lambda: not metrics.stalled(),
    )
    servers.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve(client, ttl, sweep_interval, stop, metrics)
    finally:
        servers.stop()
