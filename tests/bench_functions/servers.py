"""The function servers the benchmark starts: ours (console scripts) and the Go reference."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hack.render.env import REPO, find_binary, find_function

START_S = 120.0  # a cold start on two shared cores imports grpc, pydantic and the functions
STOP_S = 10.0


@dataclass(frozen=True)
class Server:
    """How to start one function: its command without the address."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    def command(self, port: int, cpu: int | None) -> list[str]:
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        return [*pin, *self.argv, "--insecure", "--address", f"127.0.0.1:{port}"]


def ours(function: str, tree: Path | None = None) -> Server:
    """A function's console script, as the image runs it (unbuffered, no bytecode written); with
    `tree`, that source tree's code first on the path (another commit's, for a baseline)."""
    env = [("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")]
    if tree is not None:
        env.append(("PYTHONPATH", str(tree)))
    return Server(function, (str(find_function(function)),), tuple(env))


def go_reference(name: str) -> Server:
    return Server(name, (str(find_binary("", name)),))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def served(
    server: Server, port: int, log: Path, *, cpu: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`server` listening on 127.0.0.1:`port` (pinned to `cpu`), stopped when the block ends.

    taskset and the console scripts exec, so the process's pid is the server's own.
    """
    if port_open(port):
        raise RuntimeError(f"port 127.0.0.1:{port} is taken: pass another --port-base")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            server.command(port, cpu),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **dict(server.env)},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_S
        while not port_open(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.name} did not listen within {START_S:.0f} s; see {log}"
                )
            time.sleep(0.05)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
