"""Quantities are read by the Kubernetes client's own parser, loaded without its API client."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubernetes.utils import parse_quantity as client_parse_quantity
from kubernetes.utils import quantity as client_quantity

from functions.common.quantity import parse_quantity, to_bytes

# Every branch of the parser: plain numbers, decimal and binary suffixes, exponents, signs,
# and what it refuses (unknown suffixes, `ki`, no number).
INPUTS = [
    "0", "4", "1.5", ".5", "-1", "+2", "1e3", "1E-3", "2.5e2", 4, 0.5, Decimal("7"),
    "500m", "250u", "3n", "1k", "2M", "3G", "4T", "5P", "6E",
    "1Ki", "8Gi", "1.5Gi", "1Ti", "1Pi", "1Ei", "100Mi",
    "1ki", "1Xi", "1Zi", "Gi", "", "abc", "1 Gi", "1.2.3", "Infinity", "NaN", "1e400",
]  # fmt: skip


def outcome(parse: object, value: object) -> object:
    try:
        return parse(value)  # type: ignore[operator]
    except ValueError as err:
        return ("ValueError", str(err))
    except ArithmeticError as err:
        return (type(err).__name__, str(err))


def test_the_parser_is_the_kubernetes_clients_module_itself() -> None:
    assert parse_quantity.__code__.co_filename == client_quantity.__file__


@pytest.mark.parametrize("value", INPUTS, ids=repr)
def test_each_quantity_parses_as_the_kubernetes_client_parses_it(value: object) -> None:
    # repr: Decimal('NaN') is not equal to itself.
    assert repr(outcome(parse_quantity, value)) == repr(outcome(client_parse_quantity, value))


@pytest.mark.parametrize(
    ("quantity", "want"),
    [("8Gi", 8 * 2**30), ("500M", 500_000_000), ("1.5", 2), ("100m", 1), (4, 4)],
)
def test_whole_bytes_round_up(quantity: str | int, want: int) -> None:
    assert to_bytes(quantity) == want
