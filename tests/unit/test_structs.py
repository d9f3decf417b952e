"""Numbers JSON cannot carry (NaN, Infinity) in what Crossplane sends never crash a function:
the composite gets a fatal result naming the field, an observed resource reads as not there
yet, a required resource is left out with a warning (issue 14, class: non-JSON numbers)."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
from crossplane.function import resource
from google.protobuf import struct_pb2

from functions.common import structs
from tests.fnharness import claim_composite, example, run

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": 1.0, "b": "x"}, None),
        ({"spec": {"size": INF}}, "spec.size"),
        ({"spec": {"tiers": [{"n": 1}, {"n": NAN}]}}, "spec.tiers[1].n"),
        ({"b": -INF, "a": {"c": NAN}}, "a.c"),  # keys in order: the same path every time
    ],
)
def test_non_finite_names_the_first_path(value: dict[str, Any], path: str | None) -> None:
    struct = struct_pb2.Struct()
    struct.update(value)
    assert structs.non_finite(struct) == path


def test_a_composite_with_infinity_gets_a_fatal_naming_the_field() -> None:
    doc = claim_composite(example("llama-8b-h100-exclusive.yaml"))
    doc["spec"]["replicas"] = INF
    result = run(doc)
    assert result.fatal == [
        "invalid composite: spec.replicas: NaN or Infinity is not a number JSON (and so the "
        "API server) can hold"
    ]
    assert result.resources == {}


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_an_observed_deployment_with_nan_replicas_reads_as_not_ready(value: float) -> None:
    doc = claim_composite(example("llama-8b-h100-exclusive.yaml"))
    observed = {
        "deployment": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llama-8b"},
            "status": {"availableReplicas": value},
        }
    }
    result = run(doc, observed=observed)
    assert result.fatal == []
    assert result.ready.get("deployment") is False


@pytest.mark.parametrize(
    ("node", "warning"),
    [
        (
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n0", "x": NAN}},
            "required nodes[0] ignored: metadata.x: NaN or Infinity is not a number JSON (and so "
            "the API server) can hold",
        ),
        # The GPUPool reads only a Node's metadata: what it never converts cannot hurt.
        ({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n0"}, "x": NAN}, None),
    ],
)
def test_a_required_node_with_nan_where_it_is_read_is_left_out_with_a_warning(
    node: dict[str, Any], warning: str | None
) -> None:
    doc = claim_composite(example("a100-pool.yaml"))
    result = run(doc, required={"nodes": [node]})
    assert result.fatal == []
    ignored = [w for w in result.warnings if w.startswith("required nodes")]
    assert ignored == ([warning] if warning else [])
    assert ("nodes n0 have no known" in " ".join(result.warnings)) is (warning is None)


def test_a_required_pool_with_nan_anywhere_is_left_out_with_a_warning() -> None:
    doc = claim_composite(example("a100-pool.yaml"))
    pool = claim_composite(example("h100-exclusive-pool.yaml"))
    pool["status"] = {"x": [1.0, INF]}
    result = run(doc, required={"gpupools": [pool]})
    assert (
        "required gpupools[0] ignored: status.x[1]: NaN or Infinity is not a number JSON (and so "
        "the API server) can hold" in result.warnings
    )


class Tag(enum.StrEnum):
    A = "a"


class Level(enum.IntEnum):
    TWO = 2


# What the API server and our functions put in a Struct: every Value kind, empty containers,
# keys and strings past 127 bytes (two-byte lengths), non-ASCII, numbers JSON reads as ints.
VALUES: list[dict[str, Any]] = [
    {},
    {"a": None, "b": True, "c": False, "d": 0, "e": -1.5, "f": 3, "g": 2**53 + 1},
    {"empty": {}, "none": [], "nested": {"x": {"y": [{}, [], [1, "z", None]]}}},
    {"k" * 200: "v" * 300, "ü": "日本", "": ""},
    {"tuple": (1, "a"), "enum": Tag.A, "int": Level.TWO},
    {"spec": {"containers": [{"name": "c", "args": ["--x", "1"], "ports": [{"port": 80}]}]}},
]


@pytest.mark.parametrize("value", VALUES)
def test_update_writes_what_struct_update_writes(value: dict[str, Any]) -> None:
    ours, sdks = struct_pb2.Struct(), struct_pb2.Struct()
    structs.update(ours, value)
    sdks.update(value)
    assert ours == sdks
    assert ours.SerializeToString() == sdks.SerializeToString()


@pytest.mark.parametrize("value", VALUES)
def test_update_replaces_the_keys_it_writes_and_keeps_the_others(value: dict[str, Any]) -> None:
    before = {"spec": {"old": 1}, "nested": "was a string", "kept": [1]}
    ours, sdks = struct_pb2.Struct(), struct_pb2.Struct()
    ours.update(before)
    sdks.update(before)
    structs.update(ours, value)
    sdks.update(value)
    assert resource.struct_to_dict(ours) == resource.struct_to_dict(sdks)
    assert ours.SerializeToString() == sdks.SerializeToString()


def test_update_refuses_what_a_struct_cannot_hold() -> None:
    with pytest.raises(ValueError, match="Unexpected type set"):
        structs.update(struct_pb2.Struct(), {"a": {1}})


@pytest.mark.parametrize("value", VALUES)
def test_to_dict_reads_what_the_sdk_reads(value: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    struct.update(value)
    ours, sdks = structs.to_dict(struct), resource.struct_to_dict(struct)
    assert ours == sdks
    assert repr(ours) == repr(sdks)  # the same types (3.0, not 3) and key order


def test_to_dict_leaves_out_managed_fields_and_keys_not_asked_for() -> None:
    struct = struct_pb2.Struct()
    struct.update(
        {
            "metadata": {"name": "n", "managedFields": [{"manager": "kubelet"}]},
            "spec": {"x": 1},
            "status": {"images": [{"names": ["a"]}], "bad": NAN},
        }
    )
    assert structs.to_dict(struct, ("metadata", "spec")) == {
        "metadata": {"name": "n"},
        "spec": {"x": 1.0},
    }
    with pytest.raises(structs.NonFinite, match=r"^status\.bad: NaN"):
        structs.to_dict(struct)
