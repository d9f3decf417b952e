"""Quantities and numbers: what no engine could use is refused where it enters, with the same
rule offline as in the schema, and status never carries a number its schema refuses (issue 14)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from functions.common.api.status import TokenCacheStatus
from functions.common.quantity import QUANTITY_RANGE_MESSAGE
from tests.fnharness import example, run, with_spec

INT64_MAX = 2**63 - 1


def numbers(value: Any) -> list[int | float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def cache_with_size(tier: int, size: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example("shared-cache.yaml"))
    doc["spec"]["tiers"][tier]["size"] = size
    return doc


@pytest.mark.parametrize("tier", [0, 1, 2])
@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("1e400", QUANTITY_RANGE_MESSAGE),  # within the grammar, beyond any disk
        ("8Ei", QUANTITY_RANGE_MESSAGE),  # 2**63 bytes: one more than int64 holds
        ("1e19", QUANTITY_RANGE_MESSAGE),
        ("1e308", QUANTITY_RANGE_MESSAGE),
        (1e308, QUANTITY_RANGE_MESSAGE),  # a number: protobuf Struct numbers are doubles
        ("-1Gi", QUANTITY_RANGE_MESSAGE),
        ("Infinity", "'Infinity' is not a Kubernetes quantity"),
        ("NaN", "'NaN' is not a Kubernetes quantity"),
        ("1" * 65, "'1111"),
    ],
)
def test_sizes_no_engine_could_use_are_fatal_naming_the_field(
    tier: int, size: Any, message: str
) -> None:
    res = run(cache_with_size(tier, size))
    assert len(res.fatal) == 1
    assert f"spec.tiers[{tier}].size: {message}" in res.fatal[0]


@pytest.mark.parametrize("tier", [0, 1, 2])
def test_the_largest_size_gives_a_status_within_int64(tier: int) -> None:
    res = run(cache_with_size(tier, "1Pi"))
    assert res.fatal == []
    assert max(numbers(res.status)) <= INT64_MAX
    TokenCacheStatus.model_validate(res.status)


@pytest.mark.parametrize(
    "changes",
    [
        {"resources.memory": "2Pi"},
        {"resources.cpu": "1e400"},
        {"cache.prefixCacheSize": "8Ei"},
        {"model.storage.size": 1e19},
    ],
)
def test_inferenceservice_quantities_have_the_same_ceiling(changes: dict[str, Any]) -> None:
    res = run(with_spec(example("llama-70b.yaml"), **changes))
    (field,) = changes
    assert len(res.fatal) == 1
    assert f"spec.{field}: {QUANTITY_RANGE_MESSAGE}" in res.fatal[0]


def test_the_status_model_refuses_numbers_beyond_int64() -> None:
    tier = {"name": "a", "type": "redis", "capacityBytes": INT64_MAX + 1}
    with pytest.raises(ValidationError, match="must fit in int64"):
        TokenCacheStatus.model_validate({"tiers": [tier]})
    tier["capacityBytes"] = INT64_MAX
    TokenCacheStatus.model_validate({"tiers": [tier]})
