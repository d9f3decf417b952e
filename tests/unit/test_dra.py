"""GPUPools with allocation dra and the InferenceServices bound to them.

What the NVIDIA DRA driver (kubernetes-sigs/dra-driver-nvidia-gpu v25.12.0) consumes: DeviceClass
names, attribute names and the opaque GpuConfig are written out here from the driver's source
(see functions/common/dra.py), not taken from our module, so a drift in either fails.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common import peers
from functions.common.api.inferenceservice import GPU
from functions.common.peers import GPUPoolPeer
from functions.inferenceservice.placement import place
from functions.inferenceservice.pools import bind
from tests.fnharness import EXAMPLES, claim_composite, example, run, with_spec

CLUSTER = [
    doc
    for doc in yaml.safe_load_all((EXAMPLES.parent / "required" / "cluster.yaml").read_text())
    if doc and doc["kind"] == "GPUPool"
]
H100 = ["NVIDIA-H100-80GB-HBM3"]
PRODUCT = "device.attributes['gpu.nvidia.com'].productName.replace(' ', '-') in "
# Every H100 of the catalog (nvidia-h100 is a family), and those that have a 3g.40gb profile.
PRODUCT_CEL = PRODUCT + "['NVIDIA-H100-80GB-HBM3', 'NVIDIA-H100-NVL', 'NVIDIA-H100-PCIe']"
MIG_PRODUCT_CEL = PRODUCT + "['NVIDIA-H100-80GB-HBM3', 'NVIDIA-H100-PCIe']"


def dra_pool(name: str, sharing: dict[str, Any], **spec: Any) -> GPUPoolPeer:
    doc = {
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"pool": name}, "allocation": "dra", "sharing": sharing, **spec},
        "status": {"gpuProducts": H100},
    }
    (found,) = peers.gpu_pools([doc]).found
    return found


MIG = {"mode": "mig", "profiles": [{"name": "3g.40gb", "count": 2}]}


@pytest.mark.parametrize(
    ("gpu", "pool", "device_class", "count", "selectors", "config", "shared"),
    [
        # Whole GPUs: count devices of gpu.nvidia.com, filtered by product, no config.
        (
            {"type": "nvidia-h100", "count": 2},
            dra_pool("p", {"mode": "exclusive"}),
            "gpu.nvidia.com",
            2,
            [PRODUCT_CEL],
            None,
            False,
        ),
        # MIG: one device of mig.nvidia.com with the driver's `profile` attribute.
        (
            {"type": "nvidia-h100", "sharing": "mig", "migProfile": "3g.40gb"},
            dra_pool("p", MIG, dra={"dynamicMig": True}),
            "mig.nvidia.com",
            1,
            [MIG_PRODUCT_CEL, "device.attributes['gpu.nvidia.com'].profile == '3g.40gb'"],
            None,
            False,
        ),
        # Time-slicing: the pool's interval in the driver's GpuConfig, one claim for all replicas.
        (
            {"type": "nvidia-h100", "sharing": "timeslice"},
            dra_pool("p", {"mode": "timeslice"}, dra={"timeSlicingInterval": "Long"}),
            "gpu.nvidia.com",
            1,
            [PRODUCT_CEL],
            {
                "apiVersion": "resource.nvidia.com/v1beta1",
                "kind": "GpuConfig",
                "sharing": {"strategy": "TimeSlicing", "timeSlicingConfig": {"interval": "Long"}},
            },
            True,
        ),
        # MPS: the pool's limits as the driver's defaultActiveThreadPercentage and
        # defaultPinnedDeviceMemoryLimit.
        (
            {"type": "nvidia-h100", "sharing": "mps", "count": 2},
            dra_pool(
                "p",
                {"mode": "mps"},
                dra={"mps": {"activeThreadPercentage": 50, "pinnedMemoryLimit": "20Gi"}},
            ),
            "gpu.nvidia.com",
            1,
            [PRODUCT_CEL],
            {
                "apiVersion": "resource.nvidia.com/v1beta1",
                "kind": "GpuConfig",
                "sharing": {
                    "strategy": "MPS",
                    "mpsConfig": {
                        "defaultActiveThreadPercentage": 50,
                        "defaultPinnedDeviceMemoryLimit": "20Gi",
                    },
                },
            },
            True,
        ),
        # MPS without limits: the strategy alone (the driver fills in its defaults).
        (
            {"type": "nvidia-h100", "sharing": "mps"},
            dra_pool("p", {"mode": "mps"}),
            "gpu.nvidia.com",
            1,
            [PRODUCT_CEL],
            {
                "apiVersion": "resource.nvidia.com/v1beta1",
                "kind": "GpuConfig",
                "sharing": {"strategy": "MPS"},
            },
            True,
        ),
    ],
    ids=["exclusive", "mig", "timeslice", "mps", "mps-defaults"],
)
def test_a_dra_pool_turns_the_request_into_the_drivers_claim(
    gpu: dict[str, Any],
    pool: GPUPoolPeer,
    device_class: str,
    count: int,
    selectors: list[str],
    config: dict[str, Any] | None,
    shared: bool,
) -> None:
    spec = GPU.model_validate(gpu)
    bound = bind(spec, place(spec), (pool,)).placement
    assert bound.claim is not None
    assert bound.resource == device_class
    (request,) = bound.claim.devices()["requests"]
    assert request == {
        "name": "gpu",
        "exactly": {
            "deviceClassName": device_class,
            "selectors": [{"cel": {"expression": s}} for s in selectors],
            "allocationMode": "ExactCount",
            "count": count,
        },
    }
    configs = bound.claim.devices().get("config")
    expected = (
        None
        if config is None
        else [{"requests": ["gpu"], "opaque": {"driver": "gpu.nvidia.com", "parameters": config}}]
    )
    assert configs == expected
    assert bound.shared is shared
    # The GPU product is the claim's business: no GFD product label in the node affinity.
    (term,) = bound.node_affinity()["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [{"key": "pool", "operator": "In", "values": ["p"]}]


def test_a_device_plugin_pool_keeps_extended_resources() -> None:
    doc = {
        "metadata": {"name": "dp"},
        "spec": {"nodeSelector": {"pool": "dp"}},
        "status": {"gpuProducts": H100},
    }
    (pool,) = peers.gpu_pools([doc]).found
    spec = GPU.model_validate({"type": "nvidia-h100"})
    bound = bind(spec, place(spec), (pool,)).placement
    assert bound.claim is None
    assert bound.resource == "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("service", "pool", "claim_kind", "reference"),
    [
        (
            "llama-8b-dra-exclusive.yaml",
            with_spec(
                example("h100-mig-dra-pool.yaml"),
                sharing={"mode": "exclusive"},
                dra=None,
            ),
            "ResourceClaimTemplate",
            ("resourceClaimTemplateName", "llama-8b-dra-gpu-"),
        ),
        (
            "qwen-dra-mig.yaml",
            example("h100-mig-dra-pool.yaml"),
            "ResourceClaimTemplate",
            ("resourceClaimTemplateName", "qwen-mig-dra-gpu-"),
        ),
        (
            "phi-dra-timeslice.yaml",
            example("l4-timeslice-dra-pool.yaml"),
            "ResourceClaim",
            ("resourceClaimName", "phi-mini-dra-gpu-"),
        ),
    ],
    ids=["exclusive", "mig", "timeslice"],
)
def test_replicas_of_a_dra_service_name_the_claim_instead_of_extended_resources(
    service: str, pool: dict[str, Any], claim_kind: str, reference: tuple[str, str]
) -> None:
    doc = claim_composite(example(service))
    ref = doc["spec"]["gpu"]["poolRef"]["name"]
    pool["metadata"]["name"] = ref
    products = ["NVIDIA-L4"] if "l4" in ref else H100
    res = run(doc, required={"gpupools": [{**pool, "status": {"gpuProducts": products}}]})
    assert not res.fatal
    claim = res.resources["gpu-claim"]
    assert claim["kind"] == claim_kind
    assert claim["apiVersion"] == "resource.k8s.io/v1"
    pod = res.resources["deployment"]["spec"]["template"]["spec"]
    # The pod names the claim (or template) composed beside it; its name ends in a digest of
    # its immutable spec.
    key, prefix = reference
    name = claim["metadata"]["name"]
    assert re.fullmatch(re.escape(prefix) + "[0-9a-f]{8}", name)
    assert pod["resourceClaims"] == [{"name": "gpu", key: name}]
    engine = pod["containers"][0]
    assert engine["resources"]["claims"] == [{"name": "gpu", "request": "gpu"}]
    for part in ("requests", "limits"):
        assert not [r for r in engine["resources"][part] if r.startswith("nvidia.com/")]


def test_a_shared_dra_claim_warns_that_replicas_share_one_gpu() -> None:
    doc = claim_composite(example("phi-dra-timeslice.yaml"))
    pool = example("l4-timeslice-dra-pool.yaml")
    res = run(doc, required={"gpupools": [{**pool, "status": {"gpuProducts": ["NVIDIA-L4"]}}]})
    assert any("every replica of this service uses the same claimed GPU" in w for w in res.warnings)
    assert any("same claimed GPU" in w for w in res.status["warnings"])


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        # Oversubscription has no DRA counterpart: said, never silently dropped.
        ({}, "oversubscription has no DRA equivalent"),
        ({}, "needs the driver's feature gate TimeSlicingSettings"),
        (
            {"sharing.mode": "mps", "dra": {"mps": {"activeThreadPercentage": 25}}},
            "needs the driver's feature gate MPSSupport",
        ),
        (
            {
                "sharing": {"mode": "mig", "profiles": [{"name": "3g.40gb", "count": 2}]},
                "dra": None,
            },
            "the pool renders no mig-parted layout",
        ),
        (
            {
                "sharing": {"mode": "mig", "profiles": [{"name": "3g.40gb", "count": 2}]},
                "dra": {"dynamicMig": True},
            },
            "DynamicMIG feature gate",
        ),
    ],
)
def test_a_dra_pool_warns_about_what_the_driver_needs_or_cannot_do(
    changes: dict[str, Any], warning: str
) -> None:
    doc = with_spec(example("l4-timeslice-dra-pool.yaml"), **changes)
    res = run(doc, required={"nodes": []})
    assert not res.fatal
    assert any(warning in w for w in res.warnings), res.warnings
    assert any(warning in w for w in res.status["warnings"])


def test_a_dra_pool_renders_no_gpu_operator_config_and_reports_its_device_classes() -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "n",
            "labels": {
                "gpu-type": "nvidia-h100-dra",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "nvidia.com/gpu.count": "8",
            },
        },
    }
    res = run(example("h100-mig-dra-pool.yaml"), required={"nodes": [node]})
    assert res.resources == {}
    assert res.status["allocation"] == "dra"
    assert res.status["deviceClasses"] == ["mig.nvidia.com"]
    assert res.status["nodes"] == 1
    assert res.status["gpuProducts"] == H100
    assert "devicePluginConfigMap" not in res.status
    assert "migConfigMap" not in res.status


# The DRA examples against the example cluster: (pool, DeviceClass, claim kind, TP size).
DRA_MATRIX = {
    "llama-8b-dra-exclusive.yaml": (
        "h100-exclusive-dra",
        "gpu.nvidia.com",
        "ResourceClaimTemplate",
        2,
    ),
    "qwen-dra-mig.yaml": ("h100-mig-dra", "mig.nvidia.com", "ResourceClaimTemplate", 1),
    "phi-dra-timeslice.yaml": ("l4-timeslice-dra", "gpu.nvidia.com", "ResourceClaim", 1),
}


@pytest.mark.parametrize("name", sorted(DRA_MATRIX))
def test_each_dra_example_binds_its_pool_and_claims_its_device_class(name: str) -> None:
    pool, device_class, claim_kind, tp = DRA_MATRIX[name]
    out = run(example(name), required={"gpupools": CLUSTER})
    assert out.fatal == []
    assert out.status["pool"] == pool
    assert out.status["gpuResource"] == device_class
    claim = out.resources["gpu-claim"]
    assert claim["kind"] == claim_kind
    container = out.resources["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert f"--tensor-parallel-size={tp}" in container["args"]


def slice_of(
    node: str, devices: list[tuple[str, str | None]], generation: int = 1
) -> dict[str, Any]:
    """A ResourceSlice as the driver publishes it: (type, MIG profile) per device."""
    out = []
    for i, (kind, profile) in enumerate(devices):
        attributes: dict[str, Any] = {"type": {"string": kind}}
        if profile:
            attributes["profile"] = {"string": profile}
        out.append({"name": f"dev-{i}", "attributes": attributes})
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{generation}"},
        "spec": {
            "driver": "gpu.nvidia.com",
            "nodeName": node,
            "pool": {"name": node, "generation": generation, "resourceSliceCount": 1},
            "devices": out,
        },
    }


def h100_node(name: str) -> dict[str, Any]:
    labels = {"gpu-type": "nvidia-h100-dra", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def bound_service(name: str, gpu: dict[str, Any], resource: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"model": {"name": "org/model"}, "replicas": replicas, "gpu": gpu},
        "status": {"pool": "h100-exclusive-dra", "gpuResource": resource, "gpusPerReplica": 1},
    }


GPU4 = [("gpu", None)] * 4
MIG2 = [("mig", "3g.40gb")] * 2


@pytest.mark.parametrize(
    ("slices", "services", "capacity"),
    [
        # Whole GPUs and static MIG devices, as announced on the pool's node; another node's
        # slice and another driver's are not the pool's.
        (
            [
                slice_of("n0", GPU4 + MIG2),
                slice_of("other", GPU4),
                {**slice_of("n0", GPU4), "spec": {**slice_of("n0", GPU4)["spec"], "driver": "x"}},
            ],
            [],
            # An exclusive pool offers the whole GPUs; the node's MIG devices are not its own.
            {"gpu.nvidia.com": {"physical": 4, "schedulable": 4, "requested": 0, "available": 4}},
        ),
        # Only the newest generation of a pool counts.
        (
            [slice_of("n0", GPU4, generation=1), slice_of("n0", GPU4[:2], generation=2)],
            [],
            {"gpu.nvidia.com": {"physical": 2, "schedulable": 2, "requested": 0, "available": 2}},
        ),
        # Templates: replicas x devices; a shared claim: its devices once for all replicas.
        (
            [slice_of("n0", GPU4)],
            [
                bound_service("a", {"type": "nvidia-h100"}, "gpu.nvidia.com", 3),
                bound_service("b", {"type": "nvidia-h100", "sharing": "mps"}, "gpu.nvidia.com", 5),
            ],
            {"gpu.nvidia.com": {"physical": 4, "schedulable": 4, "requested": 4, "available": 0}},
        ),
        # More claimed than announced: negative available.
        (
            [slice_of("n0", GPU4[:1])],
            [bound_service("a", {"type": "nvidia-h100"}, "gpu.nvidia.com", 2)],
            {"gpu.nvidia.com": {"physical": 1, "schedulable": 1, "requested": 2, "available": -1}},
        ),
    ],
    ids=["announced", "newest-generation", "claimed", "overcommitted"],
)
def test_a_dra_pool_counts_capacity_from_its_nodes_resource_slices(
    slices: list[dict[str, Any]], services: list[dict[str, Any]], capacity: dict[str, Any]
) -> None:
    res = run(
        example("h100-exclusive-dra-pool.yaml"),
        required={
            "nodes": [h100_node("n0")],
            "resourceslices": slices,
            "inferenceservices": services,
        },
        capabilities=(fnv1.CAPABILITY_CONDITIONS,),
    )
    assert not res.fatal
    assert res.status["capacity"] == capacity
    assert res.raw.requirements.resources["resourceslices"].kind == "ResourceSlice"
    (cond,) = [c for c in res.raw.conditions if c.type == "CapacityAvailable"]
    short = any(v["available"] < 0 for v in capacity.values())
    assert cond.reason == ("Overcommitted" if short else "WithinCapacity")


def test_a_static_mig_dra_pool_counts_the_mig_devices_of_its_profiles() -> None:
    pool = with_spec(example("h100-mig-dra-pool.yaml"), dra=None)
    svc = bound_service(
        "a", {"type": "nvidia-h100", "sharing": "mig", "migProfile": "3g.40gb"}, "mig.nvidia.com", 3
    )
    svc["status"]["pool"] = "h100-mig-dra"
    res = run(
        pool,
        required={
            "nodes": [h100_node("n0")],
            # 2g.20gb is announced but not one of the pool's profiles.
            "resourceslices": [slice_of("n0", GPU4 + MIG2 + [("mig", "2g.20gb")])],
            "inferenceservices": [svc],
        },
    )
    assert res.status["capacity"] == {
        "mig.nvidia.com/3g.40gb": {"physical": 2, "schedulable": 2, "requested": 3, "available": -1}
    }
