"""InferenceService around the Deployment: autoscaling, model download, disruption, scraping,
names and conditions."""

from __future__ import annotations

from typing import Any

import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common.meta import child_name
from tests.fnharness import RUNNERS, example, run, with_spec

SAMPLE = example("llama-70b.yaml")
EXCLUSIVE = example("llama-8b-h100-exclusive.yaml")
SCALING = {"minReplicas": 1, "maxReplicas": 4, "metrics": [{"type": "queue-depth", "target": 5}]}


def scaled(backend: str = "vllm", **autoscaling: Any) -> dict[str, Any]:
    return with_spec(EXCLUSIVE, backend=backend, autoscaling={**SCALING, **autoscaling})


def trigger(doc: dict[str, Any], kind: str = "queue-depth") -> dict[str, Any]:
    obj = run(doc).resources["autoscaler"]
    assert obj["kind"] == "ScaledObject"
    return next(t for t in obj["spec"]["triggers"] if t["name"] == kind)


SEL = 'namespace="team-a",inference_ai_service="llama-8b"'


@pytest.mark.parametrize(
    ("backend", "query"),
    [
        ("vllm", f"sum(vllm:num_requests_waiting{{{SEL}}})"),
        ("triton", f"sum(nv_inference_pending_request_count{{{SEL}}})"),
        ("tensorrt-llm", f"sum(trtllm_num_requests_waiting{{{SEL}}})"),
    ],
)
def test_queue_depth_scales_on_each_engines_waiting_requests_per_replica(
    backend: str, query: str
) -> None:
    t = trigger(scaled(backend))
    assert t["type"] == "prometheus"
    assert t["metricType"] == "AverageValue"
    assert t["metadata"]["query"] == query
    assert t["metadata"]["threshold"] == "5"
    assert t["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"


@pytest.mark.parametrize(
    ("backend", "metric", "warned"),
    [
        ("vllm", "vllm:time_to_first_token_seconds_bucket", False),
        ("tensorrt-llm", "trtllm_time_to_first_token_seconds_bucket", False),
        ("triton", "nv_inference_queue_duration_us", True),
    ],
)
def test_latency_uses_time_to_first_token_or_says_what_it_uses(
    backend: str, metric: str, warned: bool
) -> None:
    doc = scaled(backend, metrics=[{"type": "latency", "target": 500}])
    t = trigger(doc, "latency")
    assert metric in t["metadata"]["query"]
    assert t["metricType"] == "Value"
    assert any("average queue time" in w for w in run(doc).warnings) is warned


@pytest.mark.parametrize(
    ("gpu", "metric", "warning"),
    [
        ({"type": "nvidia-h100", "count": 1}, "DCGM_FI_DEV_GPU_UTIL", None),
        (
            {"type": "nvidia-a100", "sharing": "mig", "migProfile": "3g.40gb"},
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            "no per-instance GPU_UTIL",
        ),
        (
            {"type": "nvidia-l4", "sharing": "timeslice"},
            "DCGM_FI_DEV_GPU_UTIL",
            "utilization overstates",
        ),
    ],
)
def test_gpu_utilization_reads_dcgm_and_names_its_limits(
    gpu: dict[str, Any], metric: str, warning: str | None
) -> None:
    doc = with_spec(scaled(metrics=[{"type": "gpu-utilization", "target": 80}]), gpu=gpu)
    t = trigger(doc, "gpu-utilization")
    assert metric in t["metadata"]["query"]
    warnings = run(doc).warnings
    if warning:
        assert any(warning in w for w in warnings)
    else:
        assert not any("gpu-utilization" in w for w in warnings)


def test_scaled_object_targets_the_deployment_with_the_specs_bounds() -> None:
    obj = run(scaled(pollingInterval=30, cooldownPeriod=120)).resources["autoscaler"]
    assert obj["apiVersion"] == "keda.sh/v1alpha1"
    spec = obj["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llama-8b",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (30, 120)
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert "initialCooldownPeriod" not in spec


def test_scale_to_zero_waits_for_the_first_replica_and_activates_on_one_request() -> None:
    obj = run(scaled(minReplicas=0)).resources["autoscaler"]
    assert obj["spec"]["initialCooldownPeriod"] == 600
    assert obj["spec"]["triggers"][0]["metadata"]["activationThreshold"] == "0"


def test_hpa_engine_renders_external_metrics() -> None:
    doc = scaled(
        engine="hpa",
        metrics=[{"type": "queue-depth", "target": 5}, {"type": "gpu-utilization", "target": 80}],
    )
    res = run(doc)
    assert any("gpu-utilization needs engine keda" in w for w in res.warnings)
    obj = res.resources["autoscaler"]
    assert (obj["apiVersion"], obj["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    (metric,) = obj["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"] == {
        "name": "inference_ai_queue_depth",
        "selector": {"matchLabels": {"inference_ai_service": "llama-8b"}},
    }
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "5"}
    assert (obj["spec"]["minReplicas"], obj["spec"]["maxReplicas"]) == (1, 4)


@pytest.mark.parametrize(
    ("observed_replicas", "expected"),
    [(None, 2), (7, 7), (1, 1)],
)
def test_the_autoscaler_owns_replicas_once_the_deployment_exists(
    observed_replicas: int | None, expected: int
) -> None:
    observed = {}
    if observed_replicas is not None:
        observed = {"deployment": {"kind": "Deployment", "spec": {"replicas": observed_replicas}}}
    dep = run(scaled(), observed=observed).resources["deployment"]
    assert dep["spec"]["replicas"] == expected


def test_without_autoscaling_replicas_follow_the_spec() -> None:
    observed = {"deployment": {"kind": "Deployment", "spec": {"replicas": 7}}}
    res = run(EXCLUSIVE, observed=observed)
    assert res.resources["deployment"]["spec"]["replicas"] == 2
    assert "autoscaler" not in res.resources


def test_weights_download_once_into_a_shared_volume() -> None:
    res = run(SAMPLE).resources
    pvc, job = res["model-volume"], res["model-download"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "100Gi"
    job_pod = job["spec"]["template"]["spec"]
    assert job_pod["volumes"][1]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    download = job_pod["containers"][0]
    env = {e["name"]: e.get("value") for e in download["env"]}
    assert env["MODEL"] == "meta-llama/Llama-2-70b"
    assert download["image"] == "vllm/vllm-openai:v0.33.0"
    pod = res["deployment"]["spec"]["template"]["spec"]
    (wait,) = pod["initContainers"]
    assert {e["name"]: e["value"] for e in wait["env"]}["MARKER"] == env["MARKER"]
    serving_env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert serving_env["HF_HUB_OFFLINE"] == "1"
    assert {
        "name": "model-cache",
        "persistentVolumeClaim": {"claimName": "llama-70b-models"},
    } in pod["volumes"]


@pytest.mark.parametrize(
    ("binding_mode", "ready"), [("WaitForFirstConsumer", True), ("Immediate", False)]
)
def test_a_pending_model_volume_is_ready_when_its_class_waits_for_the_download_job(
    binding_mode: str, ready: bool
) -> None:
    doc = with_spec(SAMPLE, **{"model.storage": {"storageClassName": "fast"}})
    assert run(doc).raw.requirements.resources["storageclasses"].kind == "StorageClass"
    claim = {**run(doc).resources["model-volume"], "status": {"phase": "Pending"}}
    fast = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "fast"},
        "volumeBindingMode": binding_mode,
    }
    res = run(doc, observed={"model-volume": claim}, required={"storageclasses": [fast]})
    assert res.ready["model-volume"] is ready


def test_a_new_revision_downloads_again() -> None:
    first = run(SAMPLE).resources["model-download"]["metadata"]["name"]
    second = run(with_spec(SAMPLE, **{"model.revision": "main"})).resources["model-download"]
    assert first != second["metadata"]["name"]


def test_without_storage_each_replica_downloads_itself() -> None:
    result = run(with_spec(SAMPLE, **{"model.storage": {"enabled": False}}))
    assert "storageclasses" not in result.raw.requirements.resources
    res = result.resources
    assert "model-volume" not in res
    assert "model-download" not in res
    pod = res["deployment"]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert {"name": "model-cache", "emptyDir": {}} in pod["volumes"]


def test_read_write_once_with_several_replicas_is_flagged() -> None:
    doc = with_spec(SAMPLE, **{"model.storage": {"accessMode": "ReadWriteOnce"}})
    assert any("ReadWriteOnce" in w for w in run(doc).warnings)


@pytest.mark.parametrize(
    ("backend", "port", "path"),
    [
        ("vllm", "http", "/metrics"),
        ("triton", "metrics", "/metrics"),
        ("tensorrt-llm", "http", "/prometheus/metrics"),
    ],
)
def test_pod_monitor_scrapes_each_engines_prometheus_endpoint(
    backend: str, port: str, path: str
) -> None:
    res = run(with_spec(EXCLUSIVE, backend=backend)).resources
    pm = res["pod-monitor"]
    assert pm["apiVersion"] == "monitoring.coreos.com/v1"
    relabel = [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
            "targetLabel": "inference_ai_service",
        }
    ]
    assert pm["spec"]["podMetricsEndpoints"] == [
        {"port": port, "path": path, "interval": "15s", "relabelings": relabel},
        {"port": "sidecar-metrics", "path": "/metrics", "interval": "15s", "relabelings": relabel},
    ]
    assert (
        pm["spec"]["selector"]["matchLabels"]
        == res["deployment"]["spec"]["selector"]["matchLabels"]
    )


def test_disruption_budget_lets_one_replica_go_at_a_time() -> None:
    pdb = run(SAMPLE).resources["disruption-budget"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_long_claim_names_stay_within_63_characters_and_distinct() -> None:
    long = "a" * 70
    names = {child_name(long), child_name(long + "b"), child_name(long, "models")}
    assert len(names) == 3
    assert all(len(n) <= 63 for n in names)
    doc = {**SAMPLE, "metadata": {"name": "x" * 80}}
    for obj in run(doc).resources.values():
        assert len(obj["metadata"]["name"]) <= 63
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


@pytest.mark.parametrize(
    ("observed", "status", "reason"),
    [
        ({}, "False", "DownloadingModel"),
        (
            {
                "model-download": {
                    "kind": "Job",
                    "status": {"conditions": [{"type": "Complete", "status": "True"}]},
                }
            },
            "False",
            "Creating",
        ),
        (
            {
                "model-download": {
                    "kind": "Job",
                    "status": {"conditions": [{"type": "Complete", "status": "True"}]},
                },
                "deployment": {
                    "kind": "Deployment",
                    "spec": {"replicas": 3},
                    "status": {
                        "availableReplicas": 3,
                        "conditions": [{"type": "Available", "status": "True"}],
                    },
                },
            },
            "True",
            "Available",
        ),
    ],
)
def test_backend_ready_condition_says_what_it_waits_for(
    observed: dict[str, Any], status: str, reason: str
) -> None:
    res = run(SAMPLE, observed=observed, capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    (cond,) = [c for c in res.raw.conditions if c.type == "BackendReady"]
    want = {"True": fnv1.STATUS_CONDITION_TRUE, "False": fnv1.STATUS_CONDITION_FALSE}[status]
    assert (cond.status, cond.reason) == (want, reason)


def test_a_dotted_claim_name_gives_the_promql_pod_regex_of_its_derived_deployment_name() -> None:
    doc = {
        **scaled(metrics=[{"type": "gpu-utilization", "target": 80}]),
        "metadata": {"name": "llama.v2", "namespace": "team-a"},
    }
    res = run(doc)
    deployment = res.resources["deployment"]["metadata"]["name"]
    query = trigger(doc, "gpu-utilization")["metadata"]["query"]
    # Dots are not allowed in Service names, so children of `llama.v2` are `llama-v2-<hash>`.
    assert deployment == child_name("llama.v2") == "llama-v2-dbafeb21"
    assert f'pod=~"{deployment}-[a-z0-9]+-[a-z0-9]+"' in query


def pool(name: str, sharing: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"pool": name}, "sharing": sharing, **extra.get("spec", {})},
        "status": extra.get("status", {}),
    }


POOLS = [
    pool(
        "a100-pool",
        {"mode": "mig", "profiles": [{"name": "3g.40gb", "count": 2}]},
        spec={"oversubscription": {"enabled": True, "ratio": "2"}},
    ),
    pool(
        "h100-exclusive", {"mode": "exclusive"}, status={"gpuProducts": ["NVIDIA-H100-80GB-HBM3"]}
    ),
    pool("l40s-exclusive", {"mode": "exclusive"}, status={"gpuProducts": ["NVIDIA-L40S"]}),
    pool("l4-timeslice", {"mode": "timeslice"}),
]


def bound(doc: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    res = run(doc, required={"gpupools": POOLS})
    assert res.fatal == [], res.fatal
    pod = res.resources["deployment"]["spec"]["template"]["spec"]
    return pod, res


def test_mig_service_binds_to_the_pool_that_partitions_its_profile() -> None:
    pod, res = bound(SAMPLE)
    assert res.status["pool"] == "a100-pool"
    # The pool time-slices its MIG instances, so they are advertised as <name>.shared.
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/mig-3g.40gb.shared"] == 1
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {"key": "pool", "operator": "In", "values": ["a100-pool"]} in terms["nodeSelectorTerms"][
        0
    ]["matchExpressions"]


def test_exclusive_service_binds_to_the_pool_with_its_gpu_product() -> None:
    _, res = bound(EXCLUSIVE)  # nvidia-h100
    assert res.status["pool"] == "h100-exclusive"
    _, res = bound(with_spec(EXCLUSIVE, gpu={"type": "nvidia-l40s"}))
    assert res.status["pool"] == "l40s-exclusive"


def test_a_pool_without_reported_products_is_used_with_a_warning() -> None:
    _, res = bound(example("phi-timeslice.yaml"))
    assert res.status["pool"] == "l4-timeslice"
    assert any("has not reported its nodes' GPU products" in w for w in res.warnings)


def test_a_pool_that_reported_the_gpu_beats_one_that_has_not_reported_yet() -> None:
    verified = pool("z-l4", {"mode": "timeslice"}, status={"gpuProducts": ["NVIDIA-L4"]})
    unverified = pool("a-new-pool", {"mode": "timeslice"})
    res = run(example("phi-timeslice.yaml"), required={"gpupools": [unverified, verified]})
    assert res.status["pool"] == "z-l4"
    assert not any("has not reported" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"gpu": {"type": "nvidia-t4", "sharing": "mps"}},
            "spec.gpu: no GPUPool hosts sharing mps on nvidia-t4; pools: a100-pool "
            "(mig: 3g.40gb), h100-exclusive (exclusive)",
            id="no-mps-pool",
        ),
        pytest.param(
            {"gpu": {"type": "nvidia-h100", "poolRef": {"name": "l40s-exclusive"}}},
            "spec.gpu.poolRef: GPUPool l40s-exclusive cannot host this service: its "
            "nodes have NVIDIA-L40S, not nvidia-h100",
            id="wrong-product",
        ),
        pytest.param(
            {"gpu": {"type": "nvidia-h100", "poolRef": {"name": "gone"}}},
            "spec.gpu.poolRef: GPUPool gone does not exist",
            id="missing-pool",
        ),
    ],
)
def test_an_unservable_request_is_fatal_and_names_the_field(
    changes: dict[str, Any], message: str
) -> None:
    res = run(with_spec(EXCLUSIVE, **changes), required={"gpupools": POOLS})
    assert len(res.fatal) == 1
    assert res.fatal[0].startswith(message)
    assert res.resources == {}


def test_no_pools_at_all_is_fatal() -> None:
    res = run(SAMPLE, required={"gpupools": []})
    assert res.fatal == [
        "spec.gpu: no GPUPool hosts sharing mig with MIG profile 3g.40gb on nvidia-a100; "
        "pools: none"
    ]


def test_pools_are_requested_and_allocation_is_reported() -> None:
    res = run(SAMPLE, capabilities=(fnv1.CAPABILITY_CONDITIONS,))
    assert res.raw.requirements.resources["gpupools"].kind == "GPUPool"
    (cond,) = [c for c in res.raw.conditions if c.type == "GPUAllocated"]
    assert cond.status == fnv1.STATUS_CONDITION_UNKNOWN
    over = [
        {
            **POOLS[0],
            "status": {
                "capacity": {
                    "nvidia.com/mig-3g.40gb.shared": {
                        "schedulable": 4,
                        "requested": 6,
                        "available": -2,
                    }
                }
            },
        }
    ]
    res = run(SAMPLE, capabilities=(fnv1.CAPABILITY_CONDITIONS,), required={"gpupools": over})
    (cond,) = [c for c in res.raw.conditions if c.type == "GPUAllocated"]
    assert (cond.status, cond.reason) == (fnv1.STATUS_CONDITION_FALSE, "PoolOvercommitted")


@pytest.mark.parametrize(
    ("backend", "engine_url"),
    [
        ("vllm", "http://127.0.0.1:8000/metrics"),
        ("triton", "http://127.0.0.1:8002/metrics"),
        ("tensorrt-llm", "http://127.0.0.1:8000/prometheus/metrics"),
    ],
)
def test_metrics_sidecar_reads_its_engine_and_runs_without_privileges(
    backend: str, engine_url: str
) -> None:
    pod = run(with_spec(EXCLUSIVE, backend=backend)).resources["deployment"]["spec"]["template"]
    _engine, side = pod["spec"]["containers"]
    assert side["name"] == "metrics-sidecar"
    assert side["image"] == "ghcr.io/inference-platform/inference-sidecar:v0.1.0"
    env = {e["name"]: e["value"] for e in side["env"]}
    assert env == {
        "METRICS_BIND_ADDRESS": ":8080",
        "HEALTH_PROBE_BIND_ADDRESS": ":8081",
        "GPU_METRICS": "off",
        "ENGINE_METRICS_URL": engine_url,
        "PREFIX_CACHE_CAPACITY": str(20 * 2**30),
    }
    assert side["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "sidecar-health"}
    assert side["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "sidecar-health"}
    assert not any(k.startswith("nvidia.com/") for k in side["resources"]["limits"])
    sc = side["securityContext"]
    assert (sc["runAsNonRoot"], sc["readOnlyRootFilesystem"]) == (True, True)
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_metrics_sidecar_can_be_turned_off_or_moved() -> None:
    off = run(with_spec(EXCLUSIVE, metricsSidecar={"enabled": False})).resources
    assert len(off["deployment"]["spec"]["template"]["spec"]["containers"]) == 1
    assert len(off["pod-monitor"]["spec"]["podMetricsEndpoints"]) == 1
    moved = run(with_spec(EXCLUSIVE, metricsSidecar={"metricsPort": 9400, "healthPort": 9401}))
    side = moved.resources["deployment"]["spec"]["template"]["spec"]["containers"][1]
    assert [p["containerPort"] for p in side["ports"]] == [9400, 9401]


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ({"metricsPort": 8000}, "spec.metricsSidecar.metricsPort: 8000 is the vllm engine's port"),
        ({"metricsPort": 9000, "healthPort": 9000}, "metricsPort and healthPort must differ"),
    ],
)
def test_sidecar_ports_must_not_collide(sidecar: dict[str, Any], message: str) -> None:
    res = run(with_spec(EXCLUSIVE, metricsSidecar=sidecar))
    assert len(res.fatal) == 1
    assert message in res.fatal[0]


def test_pools_sent_the_crossplane_v1_way_are_read_too() -> None:
    """Crossplane v1.20 answers requirements in `extra_resources`, v2 in `required_resources`."""
    req = fnv1.RunFunctionRequest(
        observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(SAMPLE))),
        extra_resources={
            "gpupools": fnv1.Resources(
                items=[fnv1.Resource(resource=resource.dict_to_struct(POOLS[0]))]
            )
        },
    )
    rsp = RUNNERS["InferenceService"].run(req)
    assert resource.struct_to_dict(rsp.desired.composite.resource)["status"]["pool"] == "a100-pool"
