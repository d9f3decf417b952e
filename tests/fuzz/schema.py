"""Hypothesis strategies for the OpenAPI v3 subset our XRD schemas use.

hypothesis-jsonschema 0.23.1 does not run on the hypothesis in uv.lock (it calls a removed
internal, `many.more`), and the XRDs are OpenAPI, not JSON Schema (`x-kubernetes-int-or-string`,
`default`), so this module reads the generated XRDs itself. CEL rules
(`x-kubernetes-validations`) are not generated for: a spec that breaks one must get a fatal
result naming the field, which the property checks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from functions.common.kinds import Kind

ROOT = Path(__file__).resolve().parents[2]
FORMS = ("claims", "v2")
MAX_ITEMS = 4
MAX_PROPERTIES = 4
LABEL_KEY = r"([a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?"


@functools.cache
def xrd_schema(kind: Kind, form: str = "v2") -> dict[str, Any]:
    """The openAPIV3Schema of `kind`'s XRD in `form` (as `make generate` wrote it)."""
    doc = yaml.safe_load((ROOT / "xrds" / form / f"{kind.kind.lower()}.yaml").read_text())
    schema: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def part(kind: Kind, name: str, form: str = "v2") -> dict[str, Any]:
    """`spec` or `status` of the kind's schema."""
    schema: dict[str, Any] = xrd_schema(kind, form)["properties"][name]
    return schema


def _string(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    low = schema.get("minLength", 0)
    high = schema.get("maxLength")
    if "pattern" in schema:
        strategy = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        strategy = st.text(min_size=low, max_size=min(high or 40, 40))
    if high is not None or low:
        strategy = strategy.filter(lambda s: low <= len(s) <= (high or len(s)))
    return strategy


def _integer(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.integers(schema.get("minimum", -(2**63)), schema.get("maximum", 2**63 - 1))


def _object(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    props: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    if props:
        return st.fixed_dictionaries(
            {k: strategy(v) for k, v in props.items() if k in required},
            optional={k: strategy(v) for k, v in props.items() if k not in required},
        )
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        low = schema.get("minProperties", 0)
        high = min(schema.get("maxProperties", MAX_PROPERTIES), max(low, MAX_PROPERTIES))
        # Map keys are label keys more often than not (nodeSelector), else any string.
        keys = st.from_regex(LABEL_KEY, fullmatch=True) | st.text(min_size=1, max_size=20)
        return st.dictionaries(keys, strategy(extra), min_size=low, max_size=high)
    return st.fixed_dictionaries({})


def strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema (less its CEL rules) accepts, as the API server would store them."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("x-kubernetes-int-or-string") or "anyOf" in schema:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "x-kubernetes-int-or-string")}
        branches = [strategy({**rest, **b}) for b in schema.get("anyOf", ())]
        return st.one_of(*branches) if branches else st.one_of(st.integers(), st.text())
    typ = schema.get("type")
    if typ == "object":
        return _object(schema)
    if typ == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", MAX_ITEMS), max(low, MAX_ITEMS))
        return st.lists(strategy(schema.get("items") or {}), min_size=low, max_size=high)
    if typ == "string":
        return _string(schema)
    if typ == "integer":
        return _integer(schema)
    if typ == "number":
        return st.floats(
            schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if typ == "boolean":
        return st.booleans()
    return st.none()


@functools.cache
def spec_strategy(kind: Kind) -> st.SearchStrategy[Any]:
    return strategy(part(kind, "spec"))


@functools.cache
def status_strategy(kind: Kind) -> st.SearchStrategy[Any]:
    return strategy(part(kind, "status"))


def subschema(schema: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any] | None:
    """The schema of the value at `path` (keys and list indexes) under `schema`, if declared."""
    for step in path:
        if isinstance(step, int):
            schema = schema.get("items") or {}
        elif step in (schema.get("properties") or {}):
            schema = schema["properties"][step]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            return None
    return schema
