"""Numbers JSON cannot carry (NaN, Infinity) in what Crossplane sends never crash a function:
the composite gets a fatal result naming the field, an observed resource reads as not there
yet, a required resource is left out with a warning (issue 14, class: non-JSON numbers)."""

from __future__ import annotations

import math
from typing import Any

import pytest
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


def test_a_required_pool_with_nan_is_left_out_with_a_warning() -> None:
    doc = claim_composite(example("a100-pool.yaml"))
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n0"}, "x": NAN}
    result = run(doc, required={"nodes": [node]})
    assert result.fatal == []
    assert (
        "required nodes[0] ignored: x: NaN or Infinity is not a number JSON (and so the API "
        "server) can hold" in result.warnings
    )
