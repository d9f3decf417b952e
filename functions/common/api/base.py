"""Base class for spec models: camelCase wire names, no unknown fields, CEL rules.

A `Rule` carries a CEL expression (emitted into the XRD as `x-kubernetes-validations`, so the
API server enforces it) together with the same check in Python (so `crossplane render`, which
has no API server, rejects the same specs with the same message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# Kubernetes object names: DNS-1123 label (Services, most names) and subdomain (Secrets, ...).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


@dataclass(frozen=True)
class Rule:
    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None

    def schema(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


class SpecModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        validate_default=True,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in self.rules:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        if cls.rules:
            target["x-kubernetes-validations"] = [r.schema() for r in cls.rules]
        return schema

    def wire(self) -> dict[str, Any]:
        """The model as the API server would store it (camelCase, defaults filled)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class NamedRef(SpecModel):
    name: str
    """Name of the referenced object."""


class SecretKeyRef(SpecModel):
    name: str
    """Name of the Secret in the same namespace."""
    key: str = "token"
    """Key in the Secret that holds the value."""


def format_validation_error(
    err: ValidationError, prefix: str = "spec", heading: str = "invalid spec: "
) -> str:
    """One clause per problem: `spec.gpu.sharing: Input should be 'exclusive', 'mig', ...`.

    Built from pydantic's messages only (never the offending input's repr), sorted and without
    repeats (pydantic reports a map's entries in the order the map arrived, which is protobuf's
    and differs between processes), so the same input gives the same text in every process.
    """
    lines = []
    for problem in err.errors(include_url=False, include_input=False):
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"])
        msg = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {msg}")
    return heading + "; ".join(sorted(set(lines)))
