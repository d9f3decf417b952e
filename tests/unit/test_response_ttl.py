"""The TTL each function puts on its responses (docs/performance.md, "Response TTLs"): with
Crossplane's realtime compositions it is how often an unchanged composite is reconciled, and
with the function response cache how long a response is served for an identical request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common.api.base import SpecModel
from functions.common.composer import CompositionFunction
from tests.fnharness import RUNNERS, claim_composite, example, request, with_spec

EXPECTED = {
    # Reads Nodes, which change outside Crossplane, and its circuit breaker opens at scale.
    "GPUPool": timedelta(minutes=1),
    "TokenCache": timedelta(minutes=1),
    # The numerous kind; reads only watched objects that are in the cache key.
    "InferenceService": timedelta(minutes=5),
}
EXAMPLES = {
    "GPUPool": "h100-exclusive-pool.yaml",
    "TokenCache": "shared-cache.yaml",
    "InferenceService": "llama-8b-h100-exclusive.yaml",
}


def ttl_of(fn: CompositionFunction[SpecModel], composite: dict[str, Any]) -> timedelta:
    rsp = fn.run(request(composite))
    return timedelta(seconds=rsp.meta.ttl.seconds, microseconds=rsp.meta.ttl.nanos // 1000)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_composed_response_carries_the_functions_ttl(kind: str) -> None:
    doc = example(EXAMPLES[kind])
    composite = claim_composite(doc) if kind != "GPUPool" else doc
    assert ttl_of(RUNNERS[kind], composite) == EXPECTED[kind]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_fatal_response_carries_the_same_ttl(kind: str) -> None:
    # An invalid spec: a cached fatal result is served no longer than a composed response.
    bad = with_spec(example(EXAMPLES[kind]), **{"unknownField": 1})
    fn = RUNNERS[kind]
    rsp = fn.run(request(bad))
    assert [r.severity for r in rsp.results] == [fnv1.SEVERITY_FATAL]
    assert ttl_of(fn, bad) == EXPECTED[kind]
