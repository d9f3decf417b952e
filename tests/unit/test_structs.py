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
