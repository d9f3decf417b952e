"""What the GPUPool function reads of a request: a copy without the bytes of Nodes it never reads.

A pool's request grows with its Nodes twice over. Crossplane sends each selected Node whole
(a ResourceSelector selects no fields), and each per-node provider-kubernetes Object comes back
observed with the whole Node in `status.atProvider.manifest` (provider-kubernetes v1.2.0's
`setAtProvider` stores what it read, managedFields included). A GPU Operator node is 20-40 KB
of JSON, mostly its status (40-60 image digests, conditions, capacity) and managedFields; the
pool reads of a Node only its name and labels, and of its Object only the Ready condition.

Of a Node's labels (a GPU Operator node has 100-150: NFD's and GFD's) the pool reads the few
GPU feature discovery and mig-manager labels nodes.py names, and those the GPUPools' node
selectors name (which pool owns a node, nodes.owned).

`trimmed` copies what is read into a new request, field by field in the protobuf runtime (no
per-field Python walk), so the conversion to dicts that follows touches only that: the CPU a
pool costs no longer grows with the size of its Nodes, only with their count.
"""

from __future__ import annotations

from collections.abc import Iterable

from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import struct_pb2

from functions.gpupool.nodes import COUNT_LABEL, MIG_CONFIG_LABEL, MIG_STATE_LABEL, PRODUCT_LABEL

NODE_OBJECT_PREFIX = "node-"
"""Composed-resource names of the per-node Objects (`node-<node name>`)."""
NODE_KEYS = ("apiVersion", "kind")
NODE_LABELS = (PRODUCT_LABEL, COUNT_LABEL, MIG_CONFIG_LABEL, MIG_STATE_LABEL)
"""The labels of a Node the pool reads, besides those node selectors name."""
NODE_MAPS = frozenset({"labels", "annotations", "managedFields"})
"""The large parts of a Node's metadata: labels are trimmed to NODE_LABELS, the rest dropped."""
OBJECT_KEYS = ("apiVersion", "kind")
OBJECT_STATUS_KEYS = ("conditions",)
"""What readiness reads of an observed per-node Object (its Ready condition)."""


def _copy(src: struct_pb2.Struct, dst: struct_pb2.Struct, keys: Iterable[str]) -> None:
    for key in keys:
        if key in src.fields:
            dst.fields[key].CopyFrom(src.fields[key])


def _nested(src: struct_pb2.Struct, dst: struct_pb2.Struct, key: str, keys: Iterable[str]) -> None:
    """dst[key] = src[key] with only `keys`; a src[key] that is not an object is copied as is
    (so a malformed value still reaches the checks that report it)."""
    value = src.fields.get(key)
    if value is None:
        return
    if value.WhichOneof("kind") != "struct_value":
        dst.fields[key].CopyFrom(value)
        return
    inner = dst.fields[key].struct_value
    inner.SetInParent()
    _copy(value.struct_value, inner, keys)


def node(src: struct_pb2.Struct, dst: struct_pb2.Struct, labels: Iterable[str]) -> None:
    """A required Node's kind, metadata without annotations and managedFields, and of its labels
    `labels` (those it has)."""
    _copy(src, dst, NODE_KEYS)
    meta = src.fields.get("metadata")
    if meta is None or meta.WhichOneof("kind") != "struct_value":
        _copy(src, dst, ("metadata",))
        return
    out = dst.fields["metadata"].struct_value
    out.SetInParent()
    # All of metadata but its large maps: what the pool reads of it (name, some labels) and the
    # small fields besides (uid, resourceVersion, ...), which are checked as they are read.
    _copy(meta.struct_value, out, (k for k in meta.struct_value.fields if k not in NODE_MAPS))
    _nested(meta.struct_value, out, "labels", labels)


def selector_keys(composites: Iterable[struct_pb2.Struct]) -> set[str]:
    """The label keys in the spec.nodeSelector of these GPUPools (well-formed or not: a
    malformed one is reported where it is parsed)."""
    out: set[str] = set()
    for composite in composites:
        spec = composite.fields.get("spec")
        if spec is None or spec.WhichOneof("kind") != "struct_value":
            continue
        selector = spec.struct_value.fields.get("nodeSelector")
        if selector is not None and selector.WhichOneof("kind") == "struct_value":
            out.update(selector.struct_value.fields.keys())
    return out


def node_object(src: struct_pb2.Struct, dst: struct_pb2.Struct) -> None:
    """An observed per-node Object's kind and conditions."""
    _copy(src, dst, OBJECT_KEYS)
    _nested(src, dst, "status", OBJECT_STATUS_KEYS)


def trimmed(req: fnv1.RunFunctionRequest, nodes: str, pools: str) -> fnv1.RunFunctionRequest:
    """`req` with only what the pool reads of the Nodes required as `nodes` (the GPUPools
    required as `pools` name the selector labels it reads) and of the observed per-node
    Objects; everything else copied unchanged."""
    out = fnv1.RunFunctionRequest()
    for name in ("meta", "desired", "input", "context"):
        if req.HasField(name):
            getattr(out, name).CopyFrom(getattr(req, name))
    for key, creds in req.credentials.items():
        out.credentials[key].CopyFrom(creds)
    out.observed.composite.CopyFrom(req.observed.composite)
    for name, observed in req.observed.resources.items():
        copy = out.observed.resources[name]
        if name.startswith(NODE_OBJECT_PREFIX):
            node_object(observed.resource, copy.resource)
            copy.ready = observed.ready
        else:
            copy.CopyFrom(observed)
    peers = [
        item.resource
        for found in (req.extra_resources, req.required_resources)
        if pools in found
        for item in found[pools].items
    ]
    labels = sorted({*NODE_LABELS, *selector_keys([req.observed.composite.resource, *peers])})
    for src, dst in (
        (req.extra_resources, out.extra_resources),
        (req.required_resources, out.required_resources),
    ):
        for name, found in src.items():
            target = dst[name]
            if name != nodes:
                target.CopyFrom(found)
                continue
            for item in found.items:
                node(item.resource, target.items.add().resource, labels)
    return out
