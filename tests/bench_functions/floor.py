"""What a served function's memory consists of: RSS after each import, in a fresh interpreter.

The steps follow the entry point's own import order (each step imports what the previous ones
did not), so the increments add up to the function's RSS before it serves; the served process's
RSS after the warm-up, beside it, adds what serving holds (threads, gRPC buffers, caches).
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.procs import import_rss

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


def steps(entry: str, env: dict[str, str]) -> list[tuple[str, float]]:
    """(component, MiB it adds) for the function whose entry module is `entry`."""
    groups = [*STEPS, ("the function's own modules", (entry,))]
    # Each component's reading is the one after its last module (modules are distinct).
    after = dict(import_rss([m for _, modules in groups for m in modules], env))
    readings = [("Python interpreter", after["interpreter"])]
    readings += [(name, after[modules[-1]]) for name, modules in groups]
    return increments(readings)


def increments(readings: Sequence[tuple[str, int]]) -> list[tuple[str, float]]:
    """Cumulative VmRSS readings (KiB) to each step's increment (MiB); the first is absolute."""
    out = []
    last = 0
    for name, kib in readings:
        out.append((name, (kib - last) / 1024))
        last = kib
    return out
