"""The RunFunctionRequests `crossplane composition render` really sends, captured.

`python -m tests.serving.capture DIR` serves the three functions on FN_PORT_BASE's ports (default:
three free ones) behind a recorder, renders every example with the real CLI and core (`python -m
hack.render --reuse-running`) and writes, per composite, the last request the CLI sent (the one
with its requirements met) to `DIR/<Kind>/<composite>.binpb`, serialized as it arrived. The
conversion benchmark (`tests/serving/convert_bench.py`) replays them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common.kinds import KINDS
from hack.render.functions import DEFAULT_PORT_BASE
from tests.fnharness import RUNNERS
from tests.procs import ROOT


class Recorder:
    """RunFunction on the wire for one function: keep the request's bytes, answer it."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.function = RUNNERS[kind]
        self.seen: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def run(self, data: bytes, _: grpc.ServicerContext) -> bytes:
        req = fnv1.RunFunctionRequest.FromString(data)
        meta = req.observed.composite.resource.fields["metadata"].struct_value.fields
        name = meta["name"].string_value
        with self.lock:
            self.seen[name] = data  # the CLI calls again once requirements are met: keep the last
        out: bytes = self.function.run(req).SerializeToString()
        return out

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            fnv1.DESCRIPTOR.services_by_name["FunctionRunnerService"].full_name,
            {"RunFunction": grpc.unary_unary_rpc_method_handler(self.run)},
        )


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


def capture(out: Path, form: str) -> dict[str, int]:
    base = int(os.environ.get("FN_PORT_BASE") or free_block(len(KINDS)))
    recorders, servers = [], []
    for kind in KINDS:
        rec = Recorder(kind.kind)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2),
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers([rec.handler()])
        server.add_insecure_port(f"127.0.0.1:{base + kind.port - DEFAULT_PORT_BASE}")
        server.start()
        recorders.append(rec)
        servers.append(server)
    try:
        subprocess.run(
            [sys.executable, "-m", "hack.render", "--reuse-running", "--form", form],
            cwd=ROOT,
            env={**os.environ, "FN_PORT_BASE": str(base)},
            stdout=subprocess.DEVNULL,
            check=True,
        )
    finally:
        for server in servers:
            server.stop(None)
    counts = {}
    for rec in recorders:
        (out / rec.kind).mkdir(parents=True, exist_ok=True)
        for name, data in sorted(rec.seen.items()):
            (out / rec.kind / f"{name}.binpb").write_bytes(data)
        counts[rec.kind] = len(rec.seen)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--form", choices=("claims", "v2"), default="v2")
    args = parser.parse_args()
    print(capture(args.out, args.form))


if __name__ == "__main__":
    main()
