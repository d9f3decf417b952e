"""Processes tests run beside our code: redis-server and llm-d-inference-sim.

Every process gets free ports, runs in its own process group and is stopped (SIGTERM, then
SIGKILL) by the fixture that started it. Missing binaries fail the test with the command that
provides them; nothing is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from hack.e2e.process import Proc

ROOT = Path(__file__).resolve().parents[1]
SIM_MODEL = "fake-org/fake-model-7b"  # not a Hugging Face model: the simulator stays offline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_block(count: int) -> int:
    """The first of `count` consecutive free local ports (9443 is provider-kubernetes')."""
    rng = random.Random()
    while True:
        base = rng.randrange(20000, 60000)
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + count):
                    s = held.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return base


# RSS after each import, in a fresh interpreter: the first reading is the bare interpreter's.
IMPORT_RSS = """
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
steps = [("interpreter", rss())]
for name in sys.argv[1:]:
    importlib.import_module(name)
    steps.append((name, rss()))
print(json.dumps(steps))
"""


def import_rss(modules: Sequence[str], env: Mapping[str, str]) -> list[tuple[str, int]]:
    """VmRSS (KiB) of a fresh interpreter (`interpreter`) and after importing each of `modules`
    in order, run from the repository root with `env` over this process's environment."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_RSS, *modules],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    )
    return [(str(name), int(kib)) for name, kib in json.loads(out.stdout.splitlines()[-1])]


def tools_dir() -> Path:
    env = os.environ.get("TOOLS_DIR")
    if env:
        return Path(env)
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / "tools.sh"), "dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def sim_binary() -> Path:
    path = tools_dir() / "bin" / "llm-d-inference-sim"
    if not path.exists():
        pytest.fail(f"missing {path}: run `make tools` (hack/tools.sh sim)")
    return path


def redis_binary() -> str:
    path = shutil.which("redis-server")
    if not path:
        pytest.fail("redis-server is not installed: run `make test-deps` (apt-get, as root)")
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError):
            if check():
                return
        time.sleep(0.05)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def http_post_json(url: str, body: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


# -- the programs -------------------------------------------------------------------------


@dataclass
class Redis:
    proc: Proc
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def redis_proc(tmp: Path, port: int, password: str, maxmemory: str = "64mb") -> Redis:
    # Password in a config file, not argv (as the TokenCache's Redis has it); persistence off,
    # like the rendered StatefulSet.
    conf = tmp / f"redis-{port}.conf"
    conf.write_text(
        f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {tmp}\n'
        f"requirepass {password}\nmaxmemory {maxmemory}\nmaxmemory-policy allkeys-lru\n"
    )
    return redis_from_conf(conf, port, password)


def redis_from_conf(conf: Path, port: int, password: str) -> Redis:
    """redis-server reading `conf` (which must set `port`); its log lies beside the file."""
    return Redis(Proc([redis_binary(), str(conf)], conf.with_suffix(".log")), port, password)


def wait_redis(r: Redis) -> None:
    client = redis.Redis(host="127.0.0.1", port=r.port, password=r.password)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:  # not listening yet (an OSError only underneath)
            return False

    wait_for(up, 15, "redis-server", r.proc.log)
    client.close()


@dataclass
class Sim:
    proc: Proc
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def complete(self, prompt: str, max_tokens: int = 4) -> dict[str, Any]:
        return http_post_json(
            f"{self.base}/v1/completions",
            {"model": SIM_MODEL, "prompt": prompt, "max_tokens": max_tokens},
        )

    def chat(self, system: str, user: str, max_tokens: int = 4) -> dict[str, Any]:
        """A chat completion with a system prompt, as chat clients send one."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return http_post_json(
            f"{self.base}/v1/chat/completions",
            {"model": SIM_MODEL, "messages": messages, "max_tokens": max_tokens},
        )


def sim_proc(tmp: Path, port: int | None = None) -> Sim:
    port = port or free_port()
    args = [
        str(sim_binary()),
        "--model",
        SIM_MODEL,
        "--port",
        str(port),
        "--mode",
        "echo",
        # The KV-cache model is what makes vllm:prefix_cache_{hits,queries} move; it needs
        # POD_IP and publishes block events on a ZMQ endpoint nobody listens to.
        "--enable-kvcache",
        "--kv-cache-size",
        "1024",
        "--block-size",
        "16",
        "--zmq-endpoint",
        f"tcp://127.0.0.1:{free_port()}",
        "--force-dummy-tokenizer",
    ]
    return Sim(Proc(args, tmp / f"sim-{port}.log", env={"POD_IP": "127.0.0.1"}), port)


def wait_sim(s: Sim) -> None:
    wait_for(
        lambda: http_get(f"{s.base}/health/ready")[0] == 200, 30, "llm-d-inference-sim", s.proc.log
    )
