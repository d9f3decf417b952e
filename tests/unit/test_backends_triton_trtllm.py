"""Triton (vLLM backend) and trtllm-serve plans: image, flags, ports, probes, config files."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.kinds import INFERENCE_SERVICE
from functions.common.meta import Owner
from functions.inferenceservice.backends import ENGINES, tensorrt_llm, triton
from functions.inferenceservice.backends.base import BackendInput, BackendPlan
from functions.inferenceservice.placement import place
from tests.fnharness import run

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
TRITON_NAME = "meta-llama--Llama-3.1-8B-Instruct"
TOKEN = {"name": "hf-token", "key": "token"}


def inp(**spec: Any) -> BackendInput:
    body = {"model": {"name": MODEL}, **spec}
    s = InferenceServiceSpec.model_validate(body)
    return BackendInput(Owner(INFERENCE_SERVICE, "m", "ns"), s, place(s.gpu))


def model_json(plan: BackendPlan) -> dict[str, Any]:
    return dict(json.loads(plan.resources["model-repository"]["data"]["model.json"]))


def trtllm_yaml(plan: BackendPlan) -> dict[str, Any]:
    return dict(yaml.safe_load(plan.resources["engine-config"]["data"]["config.yaml"]))


def env(plan: BackendPlan) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in plan.container["env"]}


# --- both backends ---------------------------------------------------------------------------

BACKENDS = [
    pytest.param(triton.plan, "nvcr.io/nvidia/tritonserver:26.08-vllm-python-py3", id="triton"),
    pytest.param(tensorrt_llm.plan, "nvcr.io/nvidia/tensorrt-llm/release:1.2.1", id="trtllm"),
]


@pytest.mark.parametrize(("plan", "image"), BACKENDS)
def test_pinned_image_by_default_and_spec_image_overrides(plan: Any, image: str) -> None:
    assert plan(inp()).container["image"] == image
    assert plan(inp(image="registry.local/engine:dev")).container["image"] == (
        "registry.local/engine:dev"
    )


@pytest.mark.parametrize(("plan", "image"), BACKENDS)
def test_hf_token_only_through_secret_key_ref(plan: Any, image: str) -> None:
    p = plan(inp(model={"name": MODEL, "tokenSecretRef": TOKEN}))
    e = env(p)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        assert e[name] == {"name": name, "valueFrom": {"secretKeyRef": TOKEN}}
    # Neither the Secret's name nor any token variable leaks into args or rendered files.
    rendered = json.dumps([p.container["args"], [r.get("data") for r in p.resources.values()]])
    assert "hf-token" not in rendered
    assert "TOKEN" not in rendered


@pytest.mark.parametrize(("plan", "image"), BACKENDS)
def test_non_root_read_only_container_with_scratch_mounts(plan: Any, image: str) -> None:
    c = plan(inp()).container
    sec = c["securityContext"]
    assert sec["runAsNonRoot"] is True
    assert sec["runAsUser"] == 1000
    assert sec["readOnlyRootFilesystem"] is True
    assert sec["allowPrivilegeEscalation"] is False
    assert sec["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", "/models", "/dev/shm"} <= mounts
    assert env(plan(inp()))["HOME"]["value"] == "/tmp"


@pytest.mark.parametrize(("plan", "image"), BACKENDS)
def test_rendering_is_deterministic(plan: Any, image: str) -> None:
    spec = {
        "model": {"name": MODEL, "revision": "main", "tokenSecretRef": TOKEN},
        "gpu": {"type": "nvidia-h100", "count": 2},
        "cache": {"enabled": True, "prefixCacheSize": "8Gi"},
    }
    first, second = plan(inp(**spec)), plan(inp(**spec))
    assert first == second
    assert json.dumps(first.resources, sort_keys=False) == json.dumps(second.resources)


@pytest.mark.parametrize(("plan", "image"), BACKENDS)
def test_config_change_changes_the_pod_template(plan: Any, image: str) -> None:
    # Engines read their config file once; only a changed pod template rolls the Deployment.
    on, off = plan(inp(cache={"enabled": True})), plan(inp(cache={"enabled": False}))
    assert on.resources != off.resources
    assert on.pod_annotations != off.pod_annotations
    assert set(on.pod_annotations) == {"inference.ai/config-hash"}


@pytest.mark.parametrize(
    ("gpu", "tp", "shm"),
    [
        pytest.param({"type": "nvidia-h100", "count": 4}, 4, "32Gi", id="exclusive-4"),
        pytest.param({"type": "nvidia-a100", "count": 1}, 1, "2Gi", id="exclusive-1"),
        pytest.param(
            {"type": "nvidia-a100", "count": 2, "sharing": "mig", "migProfile": "3g.40gb"},
            1,
            "2Gi",
            id="mig-forces-1",
        ),
        pytest.param(
            {"type": "nvidia-l4", "count": 2, "sharing": "timeslice"},
            1,
            "2Gi",
            id="timeslice-forces-1",
        ),
    ],
)
def test_tensor_parallel_size_follows_usable_gpus(gpu: dict[str, Any], tp: int, shm: str) -> None:
    t = triton.plan(inp(gpu=gpu))
    assert model_json(t)["tensor_parallel_size"] == tp
    r = tensorrt_llm.plan(inp(gpu=gpu))
    a = r.container["args"]
    assert a[a.index("--tp_size") + 1] == str(tp)
    for p in (t, r):
        dshm = next(v for v in p.volumes if v["name"] == "dshm")
        assert dshm["emptyDir"] == {"medium": "Memory", "sizeLimit": shm}


# --- Triton ----------------------------------------------------------------------------------


def test_triton_command_flags_ports_and_probes() -> None:
    p = triton.plan(inp())
    c = p.container
    assert c["command"] == ["tritonserver"]
    assert c["args"] == [
        "--model-repository=/etc/triton/model-repository",
        "--model-control-mode=explicit",
        f"--load-model={TRITON_NAME}",
        "--http-port=8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
    ]
    assert c["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8001, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 8002, "protocol": "TCP"},
    ]
    assert [(s["name"], s["port"], s["targetPort"]) for s in p.service_ports] == [
        ("http", 8000, "http"),
        ("grpc", 8001, "grpc"),
        ("metrics", 8002, "metrics"),
    ]
    assert c["startupProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 1800
    assert (p.api_path, p.metrics_path, p.metrics_port) == ("/v2", "/metrics", "metrics")


def test_triton_model_repository_config_map_and_mount() -> None:
    p = triton.plan(inp())
    cm = p.resources["model-repository"]
    assert set(p.resources) == {"model-repository"}
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    assert cm["metadata"] == Owner(INFERENCE_SERVICE, "m", "ns").metadata(
        "m-model-repository", "inference-server"
    )
    assert set(cm["data"]) == {"config.pbtxt", "model.json"}
    vol = next(v for v in p.volumes if v["name"] == "model-repository")
    assert vol["configMap"] == {
        "name": "m-model-repository",
        "items": [
            {"key": "model.json", "path": f"{TRITON_NAME}/1/model.json"},
            {"key": "config.pbtxt", "path": f"{TRITON_NAME}/config.pbtxt"},
        ],
    }
    mount = next(m for m in p.container["volumeMounts"] if m["name"] == "model-repository")
    assert mount == {
        "name": "model-repository",
        "mountPath": "/etc/triton/model-repository",
        "readOnly": True,
    }


def test_triton_config_pbtxt_selects_vllm_with_custom_metrics() -> None:
    pbtxt = triton.plan(inp()).resources["model-repository"]["data"]["config.pbtxt"]
    assert 'backend: "vllm"' in pbtxt
    assert "kind: KIND_MODEL" in pbtxt
    assert "count: 1" in pbtxt
    assert 'key: "REPORT_CUSTOM_METRICS"' in pbtxt
    assert 'string_value: "true"' in pbtxt
    assert "tensorrtllm" not in pbtxt


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {},
            {
                "model": MODEL,
                "tensor_parallel_size": 1,
                "enable_prefix_caching": True,
                "disable_log_stats": False,
            },
            id="defaults",
        ),
        pytest.param(
            {
                "cache": {"enabled": True, "prefixCacheSize": "8Gi"},
                "model": {"name": MODEL, "revision": "v1.0"},
            },
            {
                "model": MODEL,
                "tensor_parallel_size": 1,
                "enable_prefix_caching": True,
                "disable_log_stats": False,
                "kv_cache_memory_bytes": 8 * 2**30,
                "revision": "v1.0",
            },
            id="cache-size-and-revision",
        ),
        pytest.param(
            {"cache": {"enabled": False, "prefixCacheSize": "8Gi"}},
            {
                "model": MODEL,
                "tensor_parallel_size": 1,
                "enable_prefix_caching": False,
                "disable_log_stats": False,
            },
            id="cache-off-ignores-size-like-vllm",
        ),
    ],
)
def test_triton_model_json_carries_engine_args(
    spec: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert model_json(triton.plan(inp(**spec))) == expected


def test_triton_model_json_is_sorted_and_stable_text() -> None:
    text = triton.plan(inp()).resources["model-repository"]["data"]["model.json"]
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


@pytest.mark.parametrize(
    ("hf_id", "name"),
    [
        pytest.param(MODEL, TRITON_NAME, id="org-slash-name"),
        pytest.param("gpt2", "gpt2", id="bare-name"),
        pytest.param("Qwen/Qwen2.5-7B_x", "Qwen--Qwen2.5-7B_x", id="dots-underscores"),
    ],
)
def test_triton_model_name_is_a_path_component_and_the_served_name(hf_id: str, name: str) -> None:
    p = triton.plan(inp(model={"name": hf_id}))
    assert triton.model_name(hf_id) == name
    assert "/" not in name
    assert f"--load-model={name}" in p.container["args"]
    paths = [
        i["path"]
        for v in p.volumes
        if v["name"] == "model-repository"
        for i in v["configMap"]["items"]
    ]
    assert all(path.startswith(f"{name}/") for path in paths)
    assert p.served_model == name
    assert p.warnings == []


def test_triton_engine_choice_is_vllm_until_the_spec_can_choose() -> None:
    assert triton.engine(inp().spec) == "vllm"
    assert set(triton.ENGINES) == {"vllm"}


# --- trtllm-serve ----------------------------------------------------------------------------


def test_trtllm_command_flags_ports_and_probes() -> None:
    p = tensorrt_llm.plan(inp(gpu={"type": "nvidia-h100", "count": 2}))
    c = p.container
    assert c["command"] == ["trtllm-serve"]
    assert c["args"] == [
        MODEL,
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--backend",
        "pytorch",
        "--tp_size",
        "2",
        "--extra_llm_api_options",
        "/etc/trtllm/config.yaml",
    ]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert p.service_ports == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert (p.api_path, p.metrics_path, p.metrics_port) == ("/v1", "/prometheus/metrics", "http")


def test_trtllm_config_map_and_mount() -> None:
    p = tensorrt_llm.plan(inp())
    assert set(p.resources) == {"engine-config"}
    cm = p.resources["engine-config"]
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    assert cm["metadata"]["name"] == "m-trtllm-config"
    assert cm["metadata"]["namespace"] == "ns"
    assert set(cm["data"]) == {"config.yaml"}
    vol = next(v for v in p.volumes if v["name"] == "engine-config")
    assert vol == {"name": "engine-config", "configMap": {"name": "m-trtllm-config"}}
    mount = next(m for m in p.container["volumeMounts"] if m["name"] == "engine-config")
    assert mount == {"name": "engine-config", "mountPath": "/etc/trtllm", "readOnly": True}


@pytest.mark.parametrize(
    ("spec", "expected", "warnings"),
    [
        pytest.param(
            {},
            {
                "enable_iter_perf_stats": True,
                "return_perf_metrics": True,
                "kv_cache_config": {"enable_block_reuse": True, "free_gpu_memory_fraction": 0.9},
            },
            [],
            id="defaults",
        ),
        pytest.param(
            {"cache": {"enabled": False}, "model": {"name": MODEL, "revision": "abc123"}},
            {
                "enable_iter_perf_stats": True,
                "return_perf_metrics": True,
                "revision": "abc123",
                "kv_cache_config": {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.9},
            },
            [],
            id="reuse-off-and-revision",
        ),
        pytest.param(
            {"cache": {"enabled": True, "prefixCacheSize": "16Gi"}},
            {
                "enable_iter_perf_stats": True,
                "return_perf_metrics": True,
                "kv_cache_config": {"enable_block_reuse": True, "free_gpu_memory_fraction": 0.9},
            },
            ["cache.prefixCacheSize 16Gi is not applied"],
            id="byte-size-has-no-knob",
        ),
    ],
)
def test_trtllm_options_file_and_warnings(
    spec: dict[str, Any], expected: dict[str, Any], warnings: list[str]
) -> None:
    p = tensorrt_llm.plan(inp(**spec))
    assert trtllm_yaml(p) == expected
    assert len(p.warnings) == len(warnings)
    for got, want in zip(p.warnings, warnings, strict=True):
        assert got.startswith(want)


def test_trtllm_yaml_is_sorted_safe_dump() -> None:
    text = tensorrt_llm.plan(inp()).resources["engine-config"]["data"]["config.yaml"]
    assert text == yaml.safe_dump(yaml.safe_load(text), sort_keys=True)


# --- through the composition function ------------------------------------------------------


def composite(backend: str) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {"model": {"name": MODEL}, "backend": backend, "gpu": {"type": "nvidia-h100"}},
    }


@pytest.mark.parametrize(
    ("backend", "extra", "endpoint"),
    [
        pytest.param(
            "triton", "model-repository", "http://m.ns.svc.cluster.local:8000/v2", id="triton"
        ),
        pytest.param(
            "tensorrt-llm", "engine-config", "http://m.ns.svc.cluster.local:8000/v1", id="trtllm"
        ),
    ],
)
def test_composition_renders_config_map_beside_deployment(
    backend: str, extra: str, endpoint: str
) -> None:
    assert ENGINES[backend] in (triton, tensorrt_llm)
    res = run(composite(backend))
    assert res.fatal == []
    assert extra in res.resources
    pod_spec = res.resources["deployment"]["spec"]["template"]["spec"]
    volume = next(v for v in pod_spec["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == res.resources[extra]["metadata"]["name"]
    assert res.status["endpoint"] == endpoint
