"""The typed peer contract: how a function reads another function's composites."""

from __future__ import annotations

from typing import Any

import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common import peers
from functions.common.composer import Composed, CompositionFunction, Request
from functions.common.kinds import GPU_POOL, INFERENCE_SERVICE, TOKEN_CACHE, Kind
from functions.common.peers import Form, Requirement
from tests.fnharness import claim_metadata

POOL_SPEC = {"nodeSelector": {"gpu": "a100"}, "sharing": {"mode": "mps"}}
SERVICE_SPEC = {"model": {"name": "org/model"}}


@pytest.mark.parametrize(
    ("kind", "composite", "form"),
    [
        # What Crossplane sends: v1 composites carry its fields at the top of spec ...
        (
            INFERENCE_SERVICE,
            {"kind": "XInferenceService", "spec": {"compositionRef": {}}},
            "claims",
        ),
        (GPU_POOL, {"kind": "GPUPool", "spec": {"compositionRef": {"name": "c"}}}, "claims"),
        (GPU_POOL, {"kind": "GPUPool", "spec": {"resourceRefs": []}}, "claims"),
        # ... v2 XRs under spec.crossplane, whatever the kind's scope.
        (GPU_POOL, {"kind": "GPUPool", "spec": {"crossplane": {"compositionRef": {}}}}, "v2"),
        (TOKEN_CACHE, {"kind": "TokenCache", "spec": {"crossplane": {}}}, "v2"),
        # Bare manifests (tests, hand-made input) are read by their kind.
        (INFERENCE_SERVICE, {"kind": "XInferenceService", "spec": {}}, "claims"),
        (INFERENCE_SERVICE, {"kind": "InferenceService", "spec": {}}, "v2"),
        (TOKEN_CACHE, {"kind": "TokenCache", "metadata": {"namespace": "a"}}, "v2"),
        (GPU_POOL, {"kind": "GPUPool", "spec": {}}, "claims"),
        (GPU_POOL, {"kind": "GPUPool", "spec": "not an object"}, "claims"),
    ],
)
def test_the_form_is_told_by_where_crossplane_keeps_its_fields(
    kind: Kind, composite: dict[str, Any], form: str
) -> None:
    assert peers.form_of(kind, composite) == Form(form)


@pytest.mark.parametrize(
    ("kind", "form", "namespace", "name", "expected"),
    [
        (
            TOKEN_CACHE,
            Form.CLAIMS,
            "team-a",
            None,
            Requirement(
                "r",
                "inference.ai/v1alpha1",
                "XTokenCache",
                match_labels={"crossplane.io/claim-namespace": "team-a"},
            ),
        ),
        (
            TOKEN_CACHE,
            Form.CLAIMS,
            "team-a",
            "shared",
            Requirement(
                "r",
                "inference.ai/v1alpha1",
                "XTokenCache",
                match_labels={
                    "crossplane.io/claim-namespace": "team-a",
                    "crossplane.io/claim-name": "shared",
                },
            ),
        ),
        (
            TOKEN_CACHE,
            Form.V2,
            "team-a",
            "shared",
            Requirement(
                "r", "inference.ai/v1alpha1", "TokenCache", match_name="shared", namespace="team-a"
            ),
        ),
        (
            INFERENCE_SERVICE,
            Form.CLAIMS,
            None,
            None,
            Requirement("r", "inference.ai/v1alpha1", "XInferenceService"),
        ),
        (
            INFERENCE_SERVICE,
            Form.V2,
            None,
            None,
            Requirement("r", "inference.ai/v1alpha1", "InferenceService"),
        ),
        (GPU_POOL, Form.CLAIMS, None, None, Requirement("r", "inference.ai/v1alpha1", "GPUPool")),
        (GPU_POOL, Form.V2, None, None, Requirement("r", "inference.ai/v1alpha1", "GPUPool")),
    ],
)
def test_composites_of_a_kind_are_required_in_the_callers_form(
    kind: Kind, form: Form, namespace: str | None, name: str | None, expected: Requirement
) -> None:
    assert peers.composites("r", kind, form, namespace=namespace, name=name) == expected


def test_a_claim_composite_is_known_by_its_claims_name_and_namespace() -> None:
    found = peers.inference_services(
        [
            {
                "kind": "XInferenceService",
                "metadata": claim_metadata("chat", "team-a"),
                "spec": SERVICE_SPEC,
            },
            {
                "kind": "InferenceService",
                "metadata": {"name": "chat", "namespace": "team-b"},
                "spec": SERVICE_SPEC,
            },
        ]
    )
    assert [(p.name, p.namespace) for p in found.found] == [("chat", "team-a"), ("chat", "team-b")]
    assert found.warnings == ()


def test_spec_and_status_are_the_xrd_models_with_their_defaults() -> None:
    pool = peers.gpu_pools(
        [
            {
                "kind": "GPUPool",
                "metadata": {"name": "p", "creationTimestamp": "2026-01-02T03:04:05Z"},
                "spec": {"nodeSelector": {"gpu": "a100"}, "compositionRef": {"name": "c"}},
                "status": {
                    "gpuProducts": ["NVIDIA-A100-SXM4-80GB"],
                    # Struct numbers arrive as floats.
                    "capacity": {"nvidia.com/gpu": {"physical": 8.0, "schedulable": 8.0}},
                    # Crossplane's own status fields are not part of the contract.
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        ]
    ).found[0]
    assert pool.spec.sharing.mode == "exclusive"  # the schema default, from the model
    assert pool.spec.oversubscription.enabled is False
    assert pool.status.capacity["nvidia.com/gpu"].physical == 8
    assert pool.status.capacity["nvidia.com/gpu"].available == 0
    assert pool.created == "2026-01-02T03:04:05Z"
    assert pool.namespace is None


@pytest.mark.parametrize(
    ("obj", "warning"),
    [
        (
            {"metadata": {"name": "p"}, "spec": {"nodeSelector": {}}},
            "GPUPool p: ignored, its spec does not match the schema: spec.nodeSelector: "
            "Dictionary should have at least 1 item after validation, not 0",
        ),
        (
            {"metadata": {"name": "p"}, "spec": POOL_SPEC, "status": {"nodes": "many"}},
            "GPUPool p: ignored, its status does not match the schema: status.nodes: Input "
            "should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"metadata": {"name": "p"}, "spec": POOL_SPEC, "status": {"capacityy": {}}},
            "GPUPool p: ignored, its status does not match the schema: status.capacityy: Extra "
            "inputs are not permitted",
        ),
        ("a string", "a required GPUPool is not an object; ignored"),
    ],
)
def test_a_composite_that_breaks_its_schema_is_left_out_with_a_warning(
    obj: Any, warning: str
) -> None:
    found = peers.gpu_pools([obj])
    assert found.found == ()
    assert found.warnings == (warning,)


def test_status_that_breaks_the_status_schema_is_a_fatal_result_not_a_pruned_key() -> None:
    def compose(_: Request[Any]) -> Composed:
        return Composed(resources={}, status={"gpuProduct": ["typo"]})

    fn = CompositionFunction(GPU_POOL, compose)
    pool = {"kind": "GPUPool", "metadata": {"name": "p"}, "spec": POOL_SPEC}
    rsp = fn.run(
        fnv1.RunFunctionRequest(
            observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(pool)))
        )
    )
    assert [r.severity for r in rsp.results] == [fnv1.SEVERITY_FATAL]
    assert rsp.results[0].message == (
        "internal error: the composed status does not match the XRD's status schema: "
        "status.gpuProduct: Extra inputs are not permitted"
    )
    assert not rsp.desired.resources
