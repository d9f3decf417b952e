"""InferenceService function: what it renders for each placement, cache and input error."""

from __future__ import annotations

from typing import Any

import pytest
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fnharness import example, run, with_spec

SAMPLE = example("llama-70b.yaml")
EXCLUSIVE = example("llama-8b-h100-exclusive.yaml")


def container(doc: dict[str, Any]) -> dict[str, Any]:
    res = run(doc).resources
    return dict(res["deployment"]["spec"]["template"]["spec"]["containers"][0])


def test_sample_renders_a_vllm_deployment_and_service() -> None:
    res = run(SAMPLE)
    assert set(res.resources) == {
        "deployment",
        "service",
        "disruption-budget",
        "pod-monitor",
        "autoscaler",
        "model-volume",
        "model-download",
    }
    dep, svc = res.resources["deployment"], res.resources["service"]
    assert dep["metadata"]["name"] == "llama-70b"
    assert dep["metadata"]["namespace"] == "default"
    assert dep["spec"]["replicas"] == 3
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "vllm/vllm-openai:v0.33.0"
    assert c["command"] == ["vllm", "serve"]
    assert c["args"][0] == "meta-llama/Llama-2-70b"
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert svc["spec"]["ports"][0]["port"] == 8000
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert res.status["endpoint"] == "http://llama-70b.default.svc.cluster.local:8000/v1"


def test_probes_use_health_with_a_startup_budget_for_model_loading() -> None:
    c = container(SAMPLE)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800


@pytest.mark.parametrize(
    ("gpu", "resource", "devices", "tp"),
    [
        pytest.param(
            {"type": "nvidia-h100", "count": 2, "sharing": "exclusive"},
            "nvidia.com/gpu",
            2,
            2,
            id="exclusive-uses-tensor-parallel",
        ),
        pytest.param(
            {"type": "nvidia-a100", "count": 1, "sharing": "mig", "migProfile": "3g.40gb"},
            "nvidia.com/mig-3g.40gb",
            1,
            1,
            id="mig-profile-resource",
        ),
        pytest.param(
            {"type": "nvidia-a100", "count": 1, "sharing": "mig", "migProfile": "1g.10gb+me"},
            "nvidia.com/mig-1g.10gb.me",
            1,
            1,
            id="mig-plus-becomes-dot",
        ),
        pytest.param(
            {"type": "nvidia-l4", "sharing": "timeslice"},
            "nvidia.com/gpu.shared",
            1,
            1,
            id="timeslice-shared-name",
        ),
        pytest.param(
            {"type": "nvidia-t4", "sharing": "mps"},
            "nvidia.com/gpu.shared",
            1,
            1,
            id="mps-shared-name",
        ),
    ],
)
def test_gpu_resource_per_sharing_mode(
    gpu: dict[str, Any], resource: str, devices: int, tp: int
) -> None:
    c = container(with_spec(EXCLUSIVE, gpu=gpu))
    gpu_limits = {k: v for k, v in c["resources"]["limits"].items() if k.startswith("nvidia.com/")}
    assert gpu_limits == {resource: devices}
    assert c["resources"]["requests"][resource] == devices
    assert f"--tensor-parallel-size={tp}" in c["args"]


def test_mig_count_above_one_renders_one_device_and_says_so() -> None:
    res = run(SAMPLE)
    c = res.resources["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/mig-3g.40gb"] == 1
    assert any("only one MIG device" in w for w in res.warnings)
    assert any("only one MIG device" in w for w in res.status["warnings"])
    assert res.status["gpusPerReplica"] == 1


def test_node_affinity_targets_the_gpu_products_that_offer_the_profile() -> None:
    res = run(SAMPLE)
    pod = res.resources["deployment"]["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expr = terms["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expr["key"] == "nvidia.com/gpu.product"
    # 3g.40gb exists on the 80GB A100s only, not the 40GB ones.
    assert expr["values"] == ["NVIDIA-A100-80GB-PCIe", "NVIDIA-A100-SXM4-80GB"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]


@pytest.mark.parametrize(
    ("cache", "present", "absent"),
    [
        (
            {"enabled": True, "prefixCacheSize": "8Gi"},
            ["--enable-prefix-caching", "--kv-cache-memory-bytes=8589934592"],
            [],
        ),
        ({"enabled": True}, ["--enable-prefix-caching"], ["--kv-cache-memory-bytes"]),
        ({"enabled": False}, ["--no-enable-prefix-caching"], ["--enable-prefix-caching"]),
    ],
)
def test_cache_maps_to_vllm_prefix_caching_flags(
    cache: dict[str, Any], present: list[str], absent: list[str]
) -> None:
    args = container(with_spec(EXCLUSIVE, cache=cache))["args"]
    for flag in present:
        assert flag in args
    for flag in absent:
        assert not any(a.startswith(flag) for a in args)


def test_hugging_face_token_only_through_secret_key_refs() -> None:
    c = container(EXCLUSIVE)
    token_env = {e["name"]: e for e in c["env"] if "TOKEN" in e["name"]}
    assert set(token_env) == {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
    for env in token_env.values():
        assert "value" not in env
        assert env["valueFrom"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    assert not any("hf-token" in a for a in c["args"])


def test_runs_non_root_read_only_without_capabilities() -> None:
    sc = container(SAMPLE)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_tensor_parallel_replicas_get_a_larger_dev_shm() -> None:
    res = run(EXCLUSIVE).resources
    vols = {v["name"]: v for v in res["deployment"]["spec"]["template"]["spec"]["volumes"]}
    assert vols["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"gpu.migProfile": None},
            "spec.gpu: migProfile is required when sharing is mig",
            id="mig-needs-profile",
        ),
        pytest.param(
            {"gpu.sharing": "exclusive"},
            "spec.gpu: migProfile is only allowed when sharing is mig",
            id="profile-needs-mig",
        ),
        pytest.param(
            {"backend": "tgi"},
            "spec.backend: Input should be 'vllm', 'triton' or 'tensorrt-llm'",
            id="unknown-backend",
        ),
        pytest.param(
            {"autoscaling.minReplicas": 11},
            "spec.autoscaling: minReplicas must be less than or equal to maxReplicas",
            id="min-above-max",
        ),
        pytest.param(
            {"cache.prefixCacheSize": "8GB"},
            "spec.cache.prefixCacheSize: '8GB' is not a Kubernetes quantity",
            id="bad-quantity",
        ),
        pytest.param(
            {"gpu.type": "nvidia-l4", "gpu.migProfile": "1g.10gb"},
            "spec.gpu.migProfile: 1g.10gb does not exist on nvidia-l4; profiles there: "
            "none (not MIG-capable)",
            id="profile-not-on-gpu",
        ),
        pytest.param(
            {"gpu.type": "nvidia-a100-40gb"},
            "3g.40gb does not exist on nvidia-a100-40gb; profiles there: 1g.10gb, "
            "1g.5gb, 1g.5gb+me, 2g.10gb, 3g.20gb, 4g.20gb, 7g.40gb",
            id="profile-of-other-memory-size",
        ),
        pytest.param(
            {"surprise": True}, "spec.surprise: Extra inputs are not permitted", id="unknown-field"
        ),
    ],
)
def test_invalid_specs_fail_with_the_field_and_render_nothing(
    changes: dict[str, Any], message: str
) -> None:
    res = run(with_spec(SAMPLE, **changes))
    assert len(res.fatal) == 1
    assert message.removeprefix("spec.") in res.fatal[0]
    assert res.resources == {}


def test_claim_composite_names_resources_after_the_claim() -> None:
    xr = {
        **SAMPLE,
        "kind": "XInferenceService",
        "metadata": {
            "name": "llama-70b-x7k2p",
            "labels": {
                "crossplane.io/claim-name": "llama-70b",
                "crossplane.io/claim-namespace": "serving",
            },
        },
        "spec": {**SAMPLE["spec"], "claimRef": {"name": "llama-70b"}, "resourceRefs": []},
    }
    res = run(xr)
    assert res.fatal == []
    assert res.resources["deployment"]["metadata"]["name"] == "llama-70b"
    assert res.resources["deployment"]["metadata"]["namespace"] == "serving"


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        ({"availableReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]}, True),
        ({"availableReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}, False),
        ({}, False),
    ],
)
def test_deployment_is_ready_when_all_replicas_are_available(
    status: dict[str, Any], ready: bool
) -> None:
    observed = {"deployment": {"kind": "Deployment", "spec": {"replicas": 3}, "status": status}}
    res = run(SAMPLE, observed=observed)
    assert res.ready["deployment"] is ready
    assert res.ready["service"] is False  # not observed yet


def test_same_request_same_bytes() -> None:
    assert run(SAMPLE).wire() == run(SAMPLE).wire()


@pytest.mark.parametrize(
    ("doc", "status", "reason"),
    [
        (SAMPLE, "False", "RequestsNotHonoured"),
        (with_spec(EXCLUSIVE, autoscaling=None), "True", "AllRequestsRendered"),
    ],
)
def test_spec_honoured_condition_mirrors_the_warnings(
    doc: dict[str, Any], status: str, reason: str
) -> None:
    res = run(doc, capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    (cond,) = [c for c in res.raw.conditions if c.type == "SpecHonoured"]
    assert (cond.status, cond.reason) == (
        {"True": fnv1.STATUS_CONDITION_TRUE, "False": fnv1.STATUS_CONDITION_FALSE}[status],
        reason,
    )


def test_no_conditions_for_a_crossplane_that_cannot_take_them() -> None:
    assert list(run(SAMPLE).raw.conditions) == []


@pytest.mark.parametrize(
    ("cache", "warned"),
    [
        ({"enabled": True}, True),
        ({"enabled": False, "prefixCacheSize": "4Gi"}, True),
        ({"enabled": True, "prefixCacheSize": "4Gi"}, False),
    ],
)
def test_shared_gpus_without_a_kv_budget_are_flagged(cache: dict[str, Any], warned: bool) -> None:
    doc = with_spec(example("phi-timeslice.yaml"), cache=cache)
    assert any("reserves 90% of the GPU" in w for w in run(doc).warnings) is warned
