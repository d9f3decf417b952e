"""What a served function's memory consists of: RSS after each import, in a fresh interpreter.

The steps follow the entry point's own import order (each step imports what the previous ones
did not), so the increments add up to the function's RSS before it serves; the served process's
RSS after the warm-up, beside it, adds what serving holds (threads, gRPC buffers, caches).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from hack.render.env import REPO

# (component, modules imported for it): each step's increment is charged to the component.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("protobuf runtime (upb)", ("google.protobuf.struct_pb2",)),
    ("grpcio (C core, cygrpc)", ("grpc", "grpc.aio")),
    ("pydantic (pydantic-core)", ("pydantic", "pydantic.main")),
    (
        "crossplane SDK: wire types, resource, response",
        (
            "crossplane.function.proto.v1.run_function_pb2",
            "crossplane.function.proto.v1beta1.run_function_pb2",
            "crossplane.function.resource",
            "crossplane.function.response",
        ),
    ),
    ("gRPC server reflection (SDK runtime)", ("grpc_reflection.v1alpha.reflection",)),
    (
        "click, structlog, PyYAML (SDK cli, logging)",
        ("crossplane.function.runtime", "crossplane.function.cli", "yaml"),
    ),
    ("our spec models (pydantic schemas built)", ("functions.common.api",)),
    ("our serving and compose glue", ("functions.common.serve", "functions.common.composer")),
)

PROBE = """
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
out = [("Python interpreter", rss())]
for name, modules in json.loads(sys.argv[1]):
    for m in modules:
        importlib.import_module(m)
    out.append((name, rss()))
importlib.import_module(sys.argv[2])
out.append(("the function's own modules", rss()))
print(json.dumps(out))
"""


def steps(entry: str, env: dict[str, str]) -> list[tuple[str, float]]:
    """(component, MiB it adds) for the function whose entry module is `entry`."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(STEPS), entry],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    readings = json.loads(done.stdout.splitlines()[-1])
    return increments([(str(n), int(k)) for n, k in readings])


def increments(readings: Sequence[tuple[str, int]]) -> list[tuple[str, float]]:
    """Cumulative VmRSS readings (KiB) to each step's increment (MiB); the first is absolute."""
    out = []
    last = 0
    for name, kib in readings:
        out.append((name, (kib - last) / 1024))
        last = kib
    return out
