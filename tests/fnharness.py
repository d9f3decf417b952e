"""Drive a composition function through the SDK's wire types, as Crossplane does."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import json_format

from functions.common.composer import CompositionFunction
from functions.gpupool.fn import runner as gpupool_runner
from functions.inferenceservice.fn import runner as inferenceservice_runner
from functions.tokencache.fn import runner as tokencache_runner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "claims"

RUNNERS: dict[str, CompositionFunction[Any]] = {
    "InferenceService": inferenceservice_runner(),
    "GPUPool": gpupool_runner(),
    "TokenCache": tokencache_runner(),
}


def example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


def claim_metadata(claim: str, namespace: str, suffix: str = "x1y2z") -> dict[str, Any]:
    """Metadata of the cluster-scoped v1 composite Crossplane creates for claim namespace/claim:
    a generated name and the claim's labels."""
    return {
        "name": f"{claim}-{suffix}",
        "labels": {
            "crossplane.io/claim-name": claim,
            "crossplane.io/claim-namespace": namespace,
        },
    }


def claim_composite(doc: dict[str, Any], suffix: str = "x1y2z") -> dict[str, Any]:
    """The claim `doc` as Crossplane's v1 composite (kind X<Kind>, cluster-scoped)."""
    meta = doc["metadata"]
    return {
        **doc,
        "kind": f"X{doc['kind']}",
        "metadata": claim_metadata(meta["name"], meta.get("namespace", "default"), suffix),
    }


def with_spec(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `doc` with dotted spec paths replaced: with_spec(d, **{"gpu.count": 1})."""
    out = copy.deepcopy(doc)
    for path, value in changes.items():
        node = out["spec"]
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out


@dataclass
class Result:
    raw: fnv1.RunFunctionResponse

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return {
            name: resource.struct_to_dict(r.resource)
            for name, r in self.raw.desired.resources.items()
        }

    @property
    def ready(self) -> dict[str, bool]:
        return {n: r.ready == fnv1.READY_TRUE for n, r in self.raw.desired.resources.items()}

    @property
    def status(self) -> dict[str, Any]:
        return dict(resource.struct_to_dict(self.raw.desired.composite.resource).get("status", {}))

    def messages(self, severity: int) -> list[str]:
        return [r.message for r in self.raw.results if r.severity == severity]

    @property
    def fatal(self) -> list[str]:
        return self.messages(fnv1.SEVERITY_FATAL)

    @property
    def warnings(self) -> list[str]:
        return self.messages(fnv1.SEVERITY_WARNING)

    def wire(self) -> bytes:
        return self.raw.SerializeToString(deterministic=True)

    def as_dict(self) -> dict[str, Any]:
        return dict(json_format.MessageToDict(self.raw))


def request(
    composite: dict[str, Any],
    observed: dict[str, dict[str, Any]] | None = None,
    capabilities: tuple[int, ...] = (),
    required: dict[str, list[dict[str, Any]]] | None = None,
) -> fnv1.RunFunctionRequest:
    """The RunFunctionRequest Crossplane sends for `composite` and these observed and required
    resources."""
    return fnv1.RunFunctionRequest(
        meta=fnv1.RequestMeta(capabilities=list(capabilities)),
        observed=fnv1.State(
            composite=fnv1.Resource(resource=resource.dict_to_struct(composite)),
            resources={
                name: fnv1.Resource(resource=resource.dict_to_struct(obj))
                for name, obj in (observed or {}).items()
            },
        ),
        required_resources={
            name: fnv1.Resources(
                items=[fnv1.Resource(resource=resource.dict_to_struct(o)) for o in objs]
            )
            for name, objs in (required or {}).items()
        },
    )


def run(
    composite: dict[str, Any],
    observed: dict[str, dict[str, Any]] | None = None,
    capabilities: tuple[int, ...] = (),
    required: dict[str, list[dict[str, Any]]] | None = None,
) -> Result:
    req = request(composite, observed, capabilities, required)
    return Result(RUNNERS[composite["kind"].removeprefix("X")].run(req))
