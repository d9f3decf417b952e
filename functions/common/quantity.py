"""Kubernetes quantities and Go-style durations as pydantic field types.

Quantities are parsed by the Kubernetes Python client's parser (`kubernetes.utils.quantity`),
so `8Gi`, `500M` and `1.5` mean exactly what they mean to the API server.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from functions.common.names import shorten


def _kubernetes_parse_quantity() -> Callable[[object], Decimal]:
    """`parse_quantity` of the installed Kubernetes client, loaded from its one file.

    `import kubernetes.utils` runs the package's __init__, which imports the whole API client
    (~60 MiB RSS, half a second or more): most of a served function's memory. The parser's
    module needs only the standard library (tests/unit/test_quantity.py holds this copy to the
    client's own import), so it is executed alone; the package is located, never imported.
    """
    package = importlib.util.find_spec("kubernetes")
    if package is None or not package.submodule_search_locations:
        raise ImportError("the kubernetes client package is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "utils" / "quantity.py"
    spec = importlib.util.spec_from_file_location("_kubernetes_quantity", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Kubernetes client's quantity parser from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(Callable[[object], Decimal], module.parse_quantity)


parse_quantity = _kubernetes_parse_quantity()

# The API server's own quantity grammar (resource.Quantity), used as the schema pattern.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]+))?$"
)

# Go time.ParseDuration units, as Kubernetes `metav1.Duration` fields accept them.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_SECONDS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}


def to_bytes(quantity: str | int) -> int:
    """Whole bytes of a quantity (`8Gi` -> 8589934592); fractions round up."""
    value = parse_quantity(quantity)
    return int(value.to_integral_value(rounding="ROUND_CEILING"))


def format_bytes(n: int) -> str:
    """Bytes as the largest binary-suffixed quantity that is exact (671088640000 -> 625Gi)."""
    for suffix, factor in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n and n % factor == 0:
            return f"{n // factor}{suffix}"
    return str(n)


def to_decimal(quantity: str | int | float) -> Decimal:
    return Decimal(parse_quantity(quantity))


def duration_seconds(duration: str) -> Decimal:
    """Seconds in a Go duration string (`1h30m` -> 5400)."""
    if not re.fullmatch(DURATION_PATTERN, duration):
        raise ValueError(f"invalid duration {duration!r}: use Go units such as 30s, 15m, 1h, 168h")
    return sum(
        (Decimal(n) * _DURATION_SECONDS[unit] for n, unit in _DURATION_PART.findall(duration)),
        Decimal(0),
    )


MAX_QUANTITY = "1Pi"
"""The largest quantity any field takes: more memory, disk or cache than any node or engine has,
and small enough that every byte count derived from it stays within int64 (the API server's
integers)."""
MAX_QUANTITY_LENGTH = 64
QUANTITY_RANGE_MESSAGE = f"must be a quantity from 0 to {MAX_QUANTITY}"
# The same bound for the API server: CEL's Kubernetes quantity library (k8s >= 1.29).
QUANTITY_RANGE_CEL = (
    "!isQuantity(string(self)) || (!quantity(string(self)).isLessThan(quantity('0')) && "
    f"!quantity(string(self)).isGreaterThan(quantity('{MAX_QUANTITY}')))"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)


def _not_a_quantity(value: object) -> str:
    return f"{shorten(value)!r} is not a Kubernetes quantity (e.g. 8Gi, 500M, 4)"


def _check_quantity(value: Any) -> Any:
    # Integer quantities reach the function as floats (protobuf Struct numbers are doubles).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a Kubernetes quantity such as 8Gi, 500M or 4")
    # The API server's grammar first: Python's Decimal alone would take `Infinity` and `NaN`.
    text = str(value)
    if isinstance(value, str) and (len(text) > MAX_QUANTITY_LENGTH or not _QUANTITY.match(text)):
        raise ValueError(_not_a_quantity(value))
    try:
        amount = parse_quantity(value)
    except (ValueError, ArithmeticError) as err:
        raise ValueError(_not_a_quantity(value)) from err
    if not amount.is_finite() or amount < 0 or amount > parse_quantity(MAX_QUANTITY):
        raise ValueError(QUANTITY_RANGE_MESSAGE)
    return text if isinstance(value, str) else value


MAX_DURATION = "2562047h"
"""Go's longest duration (int64 nanoseconds, rounded down to hours): what the API server's CEL
`duration()` and every Go component can read."""
DURATION_RANGE_MESSAGE = f"must be at most {MAX_DURATION}"
DURATION_RANGE_CEL = f"duration(self) <= duration('{MAX_DURATION}')"


def _check_duration(value: str) -> str:
    if duration_seconds(value) > duration_seconds(MAX_DURATION):
        raise ValueError(DURATION_RANGE_MESSAGE)
    return value


Quantity = Annotated[
    str | int,
    BeforeValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": MAX_QUANTITY_LENGTH,
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {"rule": QUANTITY_RANGE_CEL, "message": QUANTITY_RANGE_MESSAGE}
            ],
        }
    ),
]
"""A Kubernetes resource quantity (`16Gi`, `500M`, `4`), from 0 to MAX_QUANTITY."""

Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 64,
            # A longer one fails CEL's duration() itself: rejected too, as an evaluation error.
            "x-kubernetes-validations": [
                {"rule": DURATION_RANGE_CEL, "message": DURATION_RANGE_MESSAGE}
            ],
        }
    ),
]
"""A Go duration (`30s`, `1h`, `168h`), at most MAX_DURATION."""
