"""The three functions as local processes: ports, start, readiness, stop, functions.yaml."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from functions.common.kinds import KINDS, PACKAGE_REGISTRY, Kind
from hack.render.env import REPO, RenderError, find_function, package_version
from hack.render.yamlio import dump

# Function name (= Composition functionRef name = console script) -> its kind, in KINDS order.
FUNCTIONS: dict[str, Kind] = {k.function: k for k in KINDS}
DEFAULT_PORT_BASE = min(k.port for k in KINDS)
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0


@dataclass
class Served:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None  # None: reused, not ours
    log: Path | None


def port_open(port: int, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_base() -> int:
    """FN_PORT_BASE, the port of the first function; the others keep their distance to it."""
    raw = os.environ.get("FN_PORT_BASE", str(DEFAULT_PORT_BASE))
    try:
        base = int(raw)
    except ValueError as e:
        raise RenderError(f"error: FN_PORT_BASE={raw!r} is not a port number") from e
    if not 1 <= base <= 65535 - len(FUNCTIONS):
        raise RenderError(f"error: FN_PORT_BASE={raw!r} is out of range")
    return base


def port_of(name: str, base: int) -> int:
    return base + FUNCTIONS[name].port - DEFAULT_PORT_BASE


def stop(served: Sequence[Served]) -> None:
    """Stop our function process groups: SIGTERM, then SIGKILL after a grace period."""
    ours = [s.proc for s in served if s.proc is not None and s.proc.poll() is None]
    for proc in ours:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in ours:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in text)


def print_function_logs(served: Sequence[Served], *, debug: bool) -> None:
    """The log tail of each function that died (of each with `debug`) to stderr."""
    for s in served:
        died = s.proc is not None and s.proc.poll() is not None
        if died:
            print(f"error: {s.name} exited during rendering", file=sys.stderr)
        tail = log_tail(s.log, 200) if (died or debug) else ""
        if tail:
            print(f"--- {s.name} log (127.0.0.1:{s.port}):\n{tail}", file=sys.stderr)


def _plan(names: Sequence[str], base: int, *, reuse: bool) -> list[tuple[str, int, bool]]:
    """(name, port, already listening) per function; every port is checked before any start."""
    plan: list[tuple[str, int, bool]] = []
    busy = []
    for name in names:
        port = port_of(name, base)
        in_use = port_open(port)
        if in_use and not reuse:
            busy.append(f"port 127.0.0.1:{port} (for {name}) is already in use")
        plan.append((name, port, in_use))
    if busy:
        raise RenderError(
            "error: "
            + "; ".join(busy)
            + ".\nStop whatever listens there, use --reuse-running to render against "
            "functions already served (e.g. by `make run`), or set FN_PORT_BASE."
        )
    return plan


def _start(name: str, port: int, workdir: Path | None, *, debug: bool) -> Served:
    cmd = [str(find_function(name)), "--insecure", "--address", f"127.0.0.1:{port}"]
    if debug:
        cmd.append("--debug")
    log = workdir / f"{name}.log" if workdir is not None else None
    with log.open("wb") if log is not None else contextlib.nullcontext() as out:
        # Own session: a terminal's Ctrl-C reaches only us, and we stop the group.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
            cwd=REPO,
        )
    return Served(name, port, proc, log)


def _wait_listening(served: Sequence[Served]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    for s in served:
        while not port_open(s.port):
            if s.proc is not None and s.proc.poll() is not None:
                raise RenderError(
                    f"error: {s.name} exited with status {s.proc.returncode} before "
                    f"listening on 127.0.0.1:{s.port}; its output:\n{log_tail(s.log)}"
                )
            if time.monotonic() > deadline:
                raise RenderError(
                    f"error: {s.name} did not listen on 127.0.0.1:{s.port} within "
                    f"{START_TIMEOUT_S:.0f}s; its output:\n{log_tail(s.log)}"
                )
            time.sleep(0.05)


@contextlib.contextmanager
def serve_functions(
    names: Sequence[str], workdir: Path | None, *, reuse: bool, debug: bool
) -> Iterator[list[Served]]:
    """Serve the functions; their output goes to workdir/<name>.log, or to ours when None."""
    base = port_base()
    served: list[Served] = []
    try:
        for name, port, in_use in _plan(names, base, reuse=reuse):
            if in_use:
                served.append(Served(name, port, None, None))
            else:
                served.append(_start(name, port, workdir, debug=debug))
        _wait_listening(served)
        yield served
    finally:
        stop(served)


def functions_yaml(served: Sequence[Served]) -> str:
    """The CLI's functions file: Development runtime, pointed at our ports, so nothing is pulled."""
    version = package_version()
    docs = []
    for s in served:
        docs.append(
            {
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "Function",
                "metadata": {
                    "name": s.name,
                    "annotations": {
                        "render.crossplane.io/runtime": "Development",
                        "render.crossplane.io/runtime-development-target": f"127.0.0.1:{s.port}",
                    },
                },
                "spec": {"package": f"{PACKAGE_REGISTRY}/{s.name}:v{version}"},
            }
        )
    return "---\n".join(dump(d) for d in docs)


def serve_forever(*, debug: bool) -> int:
    """`make run`: serve all functions in the foreground until interrupted or one exits."""
    with serve_functions(list(FUNCTIONS), None, reuse=False, debug=debug) as fns:
        for s in fns:
            print(f"serving {s.name} on 127.0.0.1:{s.port} (insecure)", file=sys.stderr)
        print("press Ctrl-C to stop", file=sys.stderr)
        while True:
            for s in fns:
                if s.proc is not None and s.proc.poll() is not None:
                    print(
                        f"error: {s.name} exited with status {s.proc.returncode}", file=sys.stderr
                    )
                    return 1
            time.sleep(0.5)
