"""Enforce the redis tier's TTL: give every key without an expiry the tier's TTL.

Redis has no default key TTL and LMCache writes its chunks without one, so the TokenCache runs
this program beside each Redis pod (image: the metrics sidecar's, entry point
`inference-cache-expirer`). It listens to keyspace notifications (`notify-keyspace-events E$n`
in the rendered redis.conf: `new` for any created key, `set` because a plain SET of an existing
key drops its expiry) and answers each with `EXPIRE key ttl NX`, which never shortens or
extends an expiry a client chose. Pub/sub drops events while the program is disconnected, so a
SCAN sweep applies the same command to every key at start and every `--sweep-interval`.
Replicas are read-only and receive expiries from their primary: on them it only waits.
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

from functions.common.quantity import duration_seconds

log = logging.getLogger("inference-cache-expirer")

# The keyspace events the program needs (see the module docstring); redis.conf must enable them.
NOTIFY_KEYSPACE_EVENTS = "E$n"
CHANNELS = ("__keyevent@0__:new", "__keyevent@0__:set")
BATCH = 512


class Expirer:
    def __init__(self, client: redis.Redis, ttl_seconds: int, sweep_interval: float) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.sweep_interval = sweep_interval

    def is_primary(self) -> bool:
        role = self.client.execute_command("ROLE")  # type: ignore[no-untyped-call]
        return bool(role) and role[0] in (b"master", "master")

    def expire(self, keys: Iterable[bytes]) -> int:
        """EXPIRE NX on each key; returns how many got the TTL (had none before)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.expire(key, self.ttl, nx=True)
        return sum(1 for set_ in pipe.execute() if set_)

    def sweep(self) -> int:
        """Give the TTL to every key that lacks one (events missed while disconnected)."""
        if not self.is_primary():
            return 0
        done = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                done += self.expire(batch)
                batch.clear()
        return done + self.expire(batch)

    def run(self, stop: threading.Event) -> None:
        """Subscribe, sweep, then expire keys as their events arrive until `stop` is set."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(*CHANNELS)
        try:
            # Subscribed before the first sweep: a key written in between is seen by one of them.
            swept = self.sweep()
            log.info("swept: gave %d keys a %ds TTL", swept, self.ttl)
            next_sweep = time.monotonic() + self.sweep_interval
            primary = self.is_primary()
            while not stop.is_set():
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
    client: redis.Redis, ttl_seconds: int, sweep_interval: float, stop: threading.Event
) -> None:
    """Run until `stop`, reconnecting with backoff (Redis in the same pod may start later)."""
    backoff = 0.5
    while not stop.is_set():
        try:
            Expirer(client, ttl_seconds, sweep_interval).run(stop)
        except redis.RedisError as err:
            log.warning("redis unavailable (%s); retrying in %.1fs", err, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


@click.command()
@click.option("--ttl", "ttl", required=True, help="Go duration keys live, e.g. 168h.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6379, show_default=True)
@click.option(
    "--sweep-interval",
    default="5m",
    show_default=True,
    help="Go duration between sweeps for keys whose events were missed.",
)
def cli(ttl: str, host: str, port: int, sweep_interval: str) -> None:
    """Give keys without an expiry the TTL; the password comes from REDIS_PASSWORD."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    seconds = int(duration_seconds(ttl))
    if seconds < 1:
        raise click.BadParameter("must be at least 1s", param_hint="--ttl")
    client = redis.Redis(
        host=host, port=port, password=os.environ.get("REDIS_PASSWORD"), socket_timeout=10
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve(client, seconds, float(duration_seconds(sweep_interval)), stop)
