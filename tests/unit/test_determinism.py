"""Deterministic across processes (issue 14): every example, in both XRD forms, with and without
its required and observed resources, renders to the same bytes in processes with different hash
seeds and with every input map in reversed order; status and results included.

Bytes are the response's deterministic protobuf serialization (map entries sorted by key): what
must not vary is the content, such as a warning that lists a selector in map order; the order in
which protobuf itself walks a Struct's map on the wire is not ours to fix (Crossplane decodes it
into maps).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from pydantic import ValidationError

from functions.common.api.base import format_validation_error
from functions.common.api.gpupool import GPUPoolSpec
from tests.fnharness import claim_composite, run

ROOT = Path(__file__).resolve().parents[2]
# Requirement names the three functions use, per kind of required resource.
REQUIREMENT = {
    "Node": "nodes",
    "GPUPool": "gpupools",
    "InferenceService": "inferenceservices",
    "XInferenceService": "inferenceservices",
    "TokenCache": "tokencaches",
    "XTokenCache": "tokencaches",
    "StorageClass": "storageclasses",
    "Gateway": "gateway",
}


def reversed_maps(value: Any) -> Any:
    """`value` with every mapping's keys inserted in reverse order."""
    if isinstance(value, dict):
        return {k: reversed_maps(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_maps(v) for v in value]
    return value


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d] if path.exists() else []


def render_all(reverse: bool) -> dict[str, str]:
    """Digest of the response for every example and variant."""
    out = {}
    for file in sorted((ROOT / "examples" / "claims").glob("*.yaml")):
        claim = documents(file)[0]
        required: dict[str, list[dict[str, Any]]] = {}
        for doc in documents(ROOT / "examples" / "required" / file.name):
            required.setdefault(REQUIREMENT.get(doc["kind"], doc["kind"]), []).append(doc)
        observed = {
            doc["metadata"]["annotations"]["crossplane.io/composition-resource-name"]: doc
            for doc in documents(ROOT / "examples" / "observed" / file.name)
        }
        v2 = {**claim, "metadata": {"namespace": "default", **claim["metadata"]}}
        if claim["kind"] == "GPUPool":  # cluster-scoped: the same composite in both forms
            v2 = claim
        forms = {"claims": claim_composite(claim), "v2": v2}
        for form, composite in forms.items():
            variants: dict[str, dict[str, Any]] = {
                "bare": {},
                "nodes-empty": {"required": {"nodes": []}},
                "full": {
                    "required": required,
                    "observed": observed,
                    "capabilities": (fnv1.CAPABILITY_CONDITIONS,),
                },
            }
            for variant, kwargs in variants.items():
                args: dict[str, Any] = {"composite": composite, **kwargs}
                if reverse:
                    args = {k: reversed_maps(v) for k, v in args.items()}
                wire = run(**args).wire()
                out[f"{file.name} {form} {variant}"] = hashlib.sha256(wire).hexdigest()
    return out


def render_in_process(seed: str, reverse: bool, out: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    code = (
        "import json, pathlib; from tests.unit.test_determinism import render_all; "
        f"pathlib.Path({str(out)!r}).write_text(json.dumps(render_all({reverse})))"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(out.read_text()))


def test_every_example_renders_the_same_bytes_in_every_process_and_map_order(
    tmp_path: Path,
) -> None:
    first = render_in_process("1", False, tmp_path / "1.json")
    assert len(first) == len(list((ROOT / "examples" / "claims").glob("*.yaml"))) * 2 * 3
    for seed, reverse in (("2", False), ("3", True)):
        other = render_in_process(seed, reverse, tmp_path / f"{seed}.json")
        differ = sorted(case for case in first if first[case] != other.get(case))
        assert differ == [], f"PYTHONHASHSEED={seed} reverse={reverse}"


def test_a_fatal_listing_several_map_entries_does_not_depend_on_their_order() -> None:
    # Pydantic reports a map's entries in the order they arrive; from a Struct that is protobuf's
    # map order, which is fixed within a process but not across processes.
    messages = set()
    for selector in ({"b": ".5", "a": "-x"}, {"a": "-x", "b": ".5"}):
        with pytest.raises(ValidationError) as err:
            GPUPoolSpec.model_validate({"nodeSelector": selector})
        messages.add(format_validation_error(err.value))
    (message,) = messages
    assert message.index("spec.nodeSelector.a") < message.index("spec.nodeSelector.b")
