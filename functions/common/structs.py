"""Protobuf Structs as Crossplane sends them, read into dicts and written from them.

A Struct's numbers are doubles, so the wire can carry NaN and ±Infinity, which no object from
the API server holds (JSON has no such numbers) and which the SDK's `struct_to_dict` refuses with
a ValueError. `to_dict` refuses them too, naming the field (`NonFinite`).

Both directions are the SDK's (`resource.struct_to_dict`, `resource.update`) made cheaper:
protobuf's `json_format` and `Struct.update` walk every field through generic Python code
(descriptor lookups, isinstance chains), which took most of a call's CPU; the options measured
are in docs/performance.md. `to_dict` is one tight walk that also checks the numbers (the SDK
needed a second walk for that); `update` sets the C runtime's (upb) fields directly. The
results are the same: numbers stay floats (`3` is read as `3.0`, as the SDK reads it), keys
keep the Struct's order, and a desired resource serializes to the same bytes
(tests/unit/test_structs.py).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from google.protobuf import struct_pb2


class NonFinite(ValueError):
    """A Struct holds NaN or Infinity at `path`."""

    def __init__(self, path: str) -> None:
        super().__init__(describe(path))
        self.path = path


def _value(value: struct_pb2.Value, path: str) -> str | None:
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        return path
    if kind == "struct_value":
        return non_finite(value.struct_value, path)
    if kind == "list_value":
        for i, item in enumerate(value.list_value.values):
            if found := _value(item, f"{path}[{i}]"):
                return found
    return None


def non_finite(struct: struct_pb2.Struct, path: str = "") -> str | None:
    """Path (`spec.cache.size`) of the first NaN or Infinity in `struct`, keys in order; None
    when JSON can carry every number in it."""
    for key in sorted(struct.fields):
        if found := _value(struct.fields[key], f"{path}.{key}" if path else key):
            return found
    return None


def describe(path: str) -> str:
    return f"{path}: NaN or Infinity is not a number JSON (and so the API server) can hold"


class _Unreadable(Exception):
    """Raised deep in `_read`; `to_dict` finds the path (a second walk, on failure only)."""


UNREAD_METADATA = frozenset({"managedFields"})
"""Keys of an object's metadata no function reads, left out when reading: the API server's
server-side-apply bookkeeping, often the largest part of an object it returns."""


def _read(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return {k: _read(v) for k, v in value.struct_value.fields.items()}
    if kind == "number_value":
        number = value.number_value
        if number - number:  # NaN for NaN and ±Infinity, 0.0 (false) for every finite number
            raise _Unreadable
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return [_read(v) for v in value.list_value.values]
    return None  # null_value, or no kind set (json_format reads both as null)


def _selected(
    struct: struct_pb2.Struct, only: Collection[str] | None
) -> Iterator[tuple[str, struct_pb2.Value]]:
    """What `to_dict` reads, as Values (copies where it leaves keys out)."""
    for key, value in struct.fields.items():
        if only is not None and key not in only:
            continue
        if key != "metadata" or value.WhichOneof("kind") != "struct_value":
            yield key, value
            continue
        meta = struct_pb2.Value()
        for k, v in value.struct_value.fields.items():
            if k not in UNREAD_METADATA:
                meta.struct_value.fields[k].CopyFrom(v)
        yield key, meta


def to_dict(struct: struct_pb2.Struct, only: Collection[str] | None = None) -> dict[str, Any]:
    """`struct` as the SDK's `struct_to_dict` reads it, without metadata.managedFields and, with
    `only`, with only those top-level keys; NonFinite naming the first field read (keys in
    order) that holds NaN or Infinity."""
    out: dict[str, Any] = {}
    try:
        for key, value in struct.fields.items():
            if only is not None and key not in only:
                continue
            if key == "metadata" and value.WhichOneof("kind") == "struct_value":
                out[key] = {
                    k: _read(v)
                    for k, v in value.struct_value.fields.items()
                    if k not in UNREAD_METADATA
                }
            else:
                out[key] = _read(value)
        return out
    except _Unreadable:
        for key, value in sorted(_selected(struct, only)):
            if found := _value(value, key):
                raise NonFinite(found) from None
        raise AssertionError("unreachable: a non-finite number was read") from None


def _set(value: struct_pb2.Value, data: Any) -> None:
    """Set `value` (a fresh Value) to `data`; the type checks in the order of protobuf's
    `Struct.update`, exact types first (a str Enum or an IntEnum takes the slower branch)."""
    t = type(data)
    if t is str:
        value.string_value = data
    elif t is dict:
        inner = value.struct_value
        inner.SetInParent()  # {} too is a struct_value
        _set_fields(inner.fields, data)
    elif t is int or t is float:
        value.number_value = data
    elif t is bool:
        value.bool_value = data
    elif t is list:
        _set_list(value, data)
    elif data is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        value.bool_value = data
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, (int, float)):
        value.number_value = data
    elif isinstance(data, dict):
        value.struct_value.SetInParent()
        _set_fields(value.struct_value.fields, data)
    elif isinstance(data, (list, tuple)):
        _set_list(value, data)
    else:
        raise ValueError(f"Unexpected type {type(data).__name__} in a Struct")


def _set_list(value: struct_pb2.Value, data: list[Any] | tuple[Any, ...]) -> None:
    items = value.list_value
    items.SetInParent()  # [] too is a list_value
    add = items.values.add
    for item in data:
        _set(add(), item)


def _set_fields(fields: Any, data: Mapping[str, Any]) -> None:
    for key, item in data.items():
        if type(item) is str:  # most values: one map access and one set, no call
            fields[key].string_value = item
        else:
            _set(fields[key], item)


def update(struct: struct_pb2.Struct, data: Mapping[str, Any]) -> None:
    """`struct.update(data)`, what the SDK's `resource.update` does with a dict: each key of
    `data` replaces that key's value in `struct`, in the same order (so the same bytes)."""
    fields = struct.fields
    if len(fields):
        for key in data:
            if key in fields:
                fields[key].Clear()  # replaced, not merged: what was there goes
    _set_fields(fields, data)
