"""Protobuf Structs as Crossplane sends them: where one holds a number JSON cannot carry.

A Struct's numbers are doubles, so the wire can carry NaN and ±Infinity, which no object from
the API server holds (JSON has no such numbers) and which the SDK's `struct_to_dict` refuses with
a ValueError. The functions read only Structs this module has passed.
"""

from __future__ import annotations

import math

from google.protobuf import struct_pb2


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
