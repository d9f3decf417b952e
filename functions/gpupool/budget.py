"""How many Nodes one GPUPool configures: the bytes its response spends per Node, measured on it.

Crossplane receives at most 4 MiB from a function (grpc-go's default; core v2.4.0 sets no call
option), and a pool's response grows with its Nodes: one provider-kubernetes Object each, and,
while a MIG change is pending, each node's name in `status.migChanges`. A pool must fit in every
state, not only the one it is in: a MIG pool is measured as if a change were pending on every
node (its first render is such a state), so a pool renders in all of them or in none, and the
fatal result names the same ceiling whenever it comes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import struct_pb2

from functions.gpupool.reads import NODE_OBJECT_PREFIX

LIMIT = 4 * 2**20
"""Crossplane's gRPC receive limit (composer.MAX_RESPONSE_BYTES)."""
LISTED = 6
"""Bytes a node name takes in a list of a Struct besides its own (the list item's tag and
length, the Value's string tag and length), for names up to 16,383 bytes."""
CHANGES = 2048
"""Bytes allowed for what status.migChanges holds besides node names: an entry per distinct
change (config, GPUs, mode flips, the bound services it disrupts)."""


def _varint(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _field(n: int) -> int:
    """Bytes of a length-delimited field of n bytes (a one-byte tag)."""
    return 1 + _varint(n) + n


@dataclass(frozen=True)
class Budget:
    nodes: int
    size: int
    """The response as composed."""
    worst: int
    """The response with every node listed in a pending MIG change (a MIG pool), else size."""
    per_node: float
    ceiling: int
    """The most Nodes of this kind (names, config) whose worst response fits LIMIT."""


def _node_names(rsp: fnv1.RunFunctionResponse) -> list[str]:
    return [n for n in rsp.desired.resources if n.startswith(NODE_OBJECT_PREFIX)]


def _listed(names: Iterable[str]) -> int:
    return sum(len(n) - len(NODE_OBJECT_PREFIX) + LISTED for n in names)


def _status(rsp: fnv1.RunFunctionResponse) -> struct_pb2.Value | None:
    status = rsp.desired.composite.resource.fields.get("status")
    return status if status is not None and status.HasField("struct_value") else None


def is_mig(rsp: fnv1.RunFunctionResponse) -> bool:
    status = _status(rsp)
    mode = status.struct_value.fields.get("mode") if status is not None else None
    return mode is not None and mode.string_value == "mig"


def fits(rsp: fnv1.RunFunctionResponse, size: int) -> bool:
    """Whether the pool fits in every state: cheap (a sum over names) unless it is close."""
    if not is_mig(rsp):
        return size <= LIMIT
    if size + _listed(_node_names(rsp)) + CHANGES <= LIMIT:
        return True
    return measure(rsp, size).worst <= LIMIT


def measure(rsp: fnv1.RunFunctionResponse, size: int) -> Budget:
    """The pool's bytes per Node and its ceiling, from its `size`-byte response `rsp`."""
    names = _node_names(rsp)
    objects = sum(
        _field(_field(len(n.encode())) + _field(rsp.desired.resources[n].ByteSize())) for n in names
    )
    pending = listed = reserve = 0
    status = _status(rsp)
    if status is not None and is_mig(rsp):
        changes = status.struct_value.fields.get("migChanges")
        if changes is not None:
            pending = _field(_field(len(b"migChanges")) + _field(changes.ByteSize()))
        listed, reserve = _listed(names), CHANGES
    base = size - objects - pending
    worst = base + objects + max(pending, listed + reserve)
    if not names:
        return Budget(0, size, worst, 0.0, 0)
    per_node = (objects + listed) / len(names)
    ceiling = max(0, int((LIMIT - base - reserve) // per_node))
    return Budget(len(names), size, worst, per_node, ceiling)


def message(budget: Budget) -> str:
    mig = budget.worst != budget.size
    return (
        f"spec.nodeSelector: the pool's {budget.nodes} Nodes take {budget.worst} bytes of "
        f"response ({budget.per_node:.0f} per Node: one provider-kubernetes Object each"
        + (", and its name while a MIG change is pending" if mig else "")
        + f"), over the {LIMIT} bytes (4 MiB) Crossplane accepts from a function: a pool of these "
        f"Nodes configures at most {budget.ceiling}. Split it into GPUPools whose nodeSelectors "
        f"select at most {budget.ceiling} Nodes each, by a node label such as "
        "nvidia.com/gpu.product or a rack or zone label (topology.kubernetes.io/zone)"
    )
