"""The TokenCache's rendered Redis pod, run as local processes on free ports.

The redis.conf comes from the rendered ConfigMap and the auth include is written by the
rendered start script itself (run with /bin/sh); only what ties them to the pod changes: the
port, the bind address, the data directory and the two mount paths. The expirer runs with the
rendered container's arguments, pointed at the same port.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from functions.tokencache.redis_tier import CONF_DIR, RUN_DIR
from sidecar.contract import EXPIRER_COMMAND
from tests import procs
from tests.fnharness import example, run, with_spec

PASSWORD = "rendered-test-password"


def spec(policy: str, size: str = "16Mi", ttl: str | None = None) -> dict[str, Any]:
    """A redis-only TokenCache (the session-cache example) with the given tier and policy."""
    tier: dict[str, Any] = {"name": "sessions", "type": "redis", "size": size}
    if ttl is not None:
        tier["ttl"] = ttl
    return with_spec(example("session-cache-lfu.yaml"), evictionPolicy=policy, tiers=[tier])


@dataclass(frozen=True)
class Pod:
    conf: str
    start: str
    containers: dict[str, dict[str, Any]]


def render(doc: dict[str, Any]) -> Pod:
    res = run(doc)
    assert res.fatal == [], res.fatal
    containers = {
        c["name"]: c for c in res.resources["redis"]["spec"]["template"]["spec"]["containers"]
    }
    command = containers["redis"]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    return Pod(res.resources["redis-config"]["data"]["redis.conf"], command[2], containers)


def adapt(conf: str, run_dir: Path, **directives: str) -> str:
    """The rendered config with `directives` replaced (each must be there) and mounts moved."""
    out, seen = [], set()
    for line in conf.splitlines():
        key = line.split(" ", 1)[0]
        if key in directives:
            seen.add(key)
        new = f"{key} {directives[key]}" if key in directives else line
        out.append(new.replace(RUN_DIR, str(run_dir)))
    assert seen == set(directives), f"rendered redis.conf lacks {set(directives) - seen}"
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def redis_pod(
    tmp: Path, pod: Pod, ordinal: int = 0, primary: procs.Redis | None = None
) -> Iterator[procs.Redis]:
    """redis-server started by the rendered start script with the rendered config, as the
    StatefulSet's pod `ordinal` (not 0: a replica of `primary`)."""
    procs.redis_binary()  # a clear failure when it is missing
    etc, run_dir = tmp / "conf", tmp / "auth"
    etc.mkdir()
    run_dir.mkdir()
    port = procs.free_port()
    conf = adapt(pod.conf, run_dir, port=str(port), bind="127.0.0.1", dir=str(tmp))
    (etc / "redis.conf").write_text(conf)
    start = pod.start.replace(CONF_DIR, str(etc)).replace(RUN_DIR, str(run_dir))
    assert CONF_DIR not in start
    assert RUN_DIR not in start
    env = {
        "REDIS_PASSWORD": PASSWORD,
        "HOSTNAME": f"cache-redis-{ordinal}",
        "PRIMARY_HOST": "127.0.0.1",
        "PORT": str(primary.port if primary else port),
    }
    proc = procs.Proc(["/bin/sh", "-c", start], tmp / "redis.log", env=env)
    r = procs.Redis(proc, port, PASSWORD)
    with procs.running(proc):
        procs.wait_redis(r)
        yield r


def expirer_command() -> list[str]:
    script = Path(sys.executable).parent / Path(EXPIRER_COMMAND).name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sidecar.expirer import cli; cli()"]


@contextlib.contextmanager
def expirer(tmp: Path, pod: Pod, r: procs.Redis, *extra: str) -> Iterator[procs.Proc]:
    """The rendered expirer container's program and arguments, against `r`, with its Redis port
    and its metrics and health addresses moved to free ports on loopback."""
    command = pod.containers["expirer"]["command"]
    assert command[0] == EXPIRER_COMMAND
    moved = ("--port=", "--metrics-bind-address=", "--health-bind-address=")
    args = [a for a in command[1:] if not a.startswith(moved)]
    assert len(args) == len(command) - 1 - len(moved), "the rendered expirer names its ports"
    ports = [
        f"--port={r.port}",
        f"--metrics-bind-address=127.0.0.1:{procs.free_port()}",
        f"--health-bind-address=127.0.0.1:{procs.free_port()}",
    ]
    proc = procs.Proc(
        [*expirer_command(), *args, *ports, *extra],
        tmp / "expirer.log",
        env={"REDIS_PASSWORD": r.password},
    )
    with procs.running(proc):
        yield proc


def client(r: procs.Redis, password: str | None = PASSWORD, protocol: int = 3) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=r.port, password=password, protocol=protocol)
