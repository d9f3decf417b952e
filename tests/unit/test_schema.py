"""The XRDs are generated from the spec models and carry their validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from functions.common.kinds import KINDS
from functions.common.xrdgen import expected_files

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in expected_files(ROOT).items()
        if not path.exists() or path.read_text() != content
    ]
    assert stale == [], "run `make generate`"


def load(form: str, kind: str) -> dict:
    return dict(yaml.safe_load((ROOT / "xrds" / form / f"{kind.lower()}.yaml").read_text()))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_claim_form_and_v2_form_share_one_schema(kind) -> None:  # type: ignore[no-untyped-def]
    v1, v2 = load("claims", kind.kind), load("v2", kind.kind)
    assert v1["apiVersion"] == "apiextensions.crossplane.io/v1"
    assert v2["apiVersion"] == "apiextensions.crossplane.io/v2"
    assert v1["spec"]["versions"][0]["schema"] == v2["spec"]["versions"][0]["schema"]
    assert v2["spec"]["scope"] == kind.scope
    assert v2["spec"]["names"]["kind"] == kind.kind
    if kind.namespaced:
        assert v1["spec"]["names"]["kind"] == f"X{kind.kind}"
        assert v1["spec"]["claimNames"]["kind"] == kind.kind
    else:
        assert "claimNames" not in v1["spec"]
        assert v1["spec"]["names"]["kind"] == kind.kind


def walk(node: object):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_schemas_are_structural(kind) -> None:  # type: ignore[no-untyped-def]
    schema = load("v2", kind.kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for node in walk(schema):
        assert not {"$ref", "$defs", "title"} & set(node)
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True
        if "properties" in node:
            assert node.get("type") == "object"
            assert "additionalProperties" not in node


def test_cel_rules_of_the_sample_fields_are_in_the_schema() -> None:
    text = (ROOT / "xrds" / "v2" / "inferenceservice.yaml").read_text()
    assert "self.minReplicas <= self.maxReplicas" in text
    assert "self.sharing != 'mig' || has(self.migProfile)" in text


def test_optional_sections_get_no_default_so_absent_means_off() -> None:
    spec = load("v2", "InferenceService")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    props = spec["properties"]["spec"]["properties"]
    # Absent autoscaling must stay absent: a `{}` default would switch it on for everyone.
    assert "default" not in props["autoscaling"]
    # Sections whose fields all have defaults default to those values (not `{}`: the API server
    # checks a default against the section's CEL rules, which read the fields).
    assert props["gpu"]["default"] == {"type": "nvidia-a100", "count": 1, "sharing": "exclusive"}
    assert props["cache"]["default"] == {"enabled": True, "strategy": "prefix"}


def test_single_value_fields_use_enum_not_const() -> None:
    for form in ("claims", "v2"):
        for path in (ROOT / "xrds" / form).glob("*.yaml"):
            assert "const:" not in path.read_text(), path
