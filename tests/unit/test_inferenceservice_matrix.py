"""Every backend x sharing-mode example, bound to the example cluster's pools: the GPU resource,
tensor-parallel size, probe paths and cache knob each renders (the meaning behind the goldens)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fnharness import EXAMPLES, example, run
from tests.unit.test_dra import DRA_MATRIX

CLUSTER = [
    doc
    for doc in yaml.safe_load_all((EXAMPLES.parent / "required" / "cluster.yaml").read_text())
    if doc and doc["kind"] == "GPUPool"
]

# example: (backend, pool, GPU resource, TP size, readiness path)
MATRIX = {
    "llama-8b-h100-exclusive.yaml": ("vllm", "h100-exclusive", "nvidia.com/gpu", 2, "/health"),
    "llama-70b.yaml": ("vllm", "a100-pool", "nvidia.com/mig-3g.40gb.shared", 1, "/health"),
    "qwen-hostpath-cache.yaml": ("vllm", "h100-exclusive", "nvidia.com/gpu", 1, "/health"),
    "llama-8b-prefix-aware.yaml": ("vllm", "h100-exclusive", "nvidia.com/gpu", 1, "/health"),
    "gemma-mps.yaml": ("vllm", "t4-mps", "nvidia.com/gpu.shared", 1, "/health"),
    "phi-timeslice.yaml": ("vllm", "l4-timeslice", "nvidia.com/gpu.shared", 1, "/health"),
    "qwen-triton.yaml": ("triton", "l40s-exclusive", "nvidia.com/gpu", 1, "/v2/health/ready"),
    "qwen-triton-mig.yaml": (
        "triton",
        "h100-mig-balanced",
        "nvidia.com/mig-2g.20gb",
        1,
        "/v2/health/ready",
    ),
    "qwen-triton-mps.yaml": ("triton", "t4-mps", "nvidia.com/gpu.shared", 1, "/v2/health/ready"),
    "qwen-triton-timeslice.yaml": (
        "triton",
        "l4-timeslice",
        "nvidia.com/gpu.shared",
        1,
        "/v2/health/ready",
    ),
    "mistral-trtllm.yaml": ("tensorrt-llm", "h200-exclusive", "nvidia.com/gpu", 1, "/health"),
    "mistral-trtllm-mig.yaml": (
        "tensorrt-llm",
        "a100-pool",
        "nvidia.com/mig-3g.40gb.shared",
        1,
        "/health",
    ),
    "mistral-trtllm-mps.yaml": ("tensorrt-llm", "h100-mps", "nvidia.com/gpu.shared", 1, "/health"),
    "mistral-trtllm-timeslice.yaml": (
        "tensorrt-llm",
        "l4-timeslice",
        "nvidia.com/gpu.shared",
        1,
        "/health",
    ),
}


def test_the_matrix_covers_every_backend_and_sharing_mode() -> None:
    combos = {
        (example(name)["spec"]["backend"], example(name)["spec"]["gpu"].get("sharing", "exclusive"))
        for name in MATRIX
    }
    assert combos == {
        (b, s)
        for b in ("vllm", "triton", "tensorrt-llm")
        for s in ("exclusive", "mig", "mps", "timeslice")
    }
    claims = {p.name for p in Path(EXAMPLES).glob("*.yaml")}
    services = {n for n in claims if example(n)["kind"] == "InferenceService"}
    assert services == set(MATRIX) | set(DRA_MATRIX)


def tensor_parallel(backend: str, container: dict[str, Any], res: dict[str, Any]) -> int:
    args = container["args"]
    if backend == "vllm":
        return int(next(a for a in args if a.startswith("--tensor-parallel-size=")).split("=")[1])
    if backend == "tensorrt-llm":
        return int(args[args.index("--tp_size") + 1])
    model_json = res["model-repository"]["data"]["model.json"]
    return int(json.loads(model_json)["tensor_parallel_size"])


def prefix_caching(backend: str, container: dict[str, Any], res: dict[str, Any]) -> bool:
    if backend == "vllm":
        return "--enable-prefix-caching" in container["args"]
    if backend == "tensorrt-llm":
        options = yaml.safe_load(res["engine-config"]["data"]["config.yaml"])
        return bool(options["kv_cache_config"]["enable_block_reuse"])
    return bool(json.loads(res["model-repository"]["data"]["model.json"])["enable_prefix_caching"])


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_example_renders_what_its_backend_and_pool_need(name: str) -> None:
    backend, pool, gpu_resource, tp, ready_path = MATRIX[name]
    doc = example(name)
    out = run(doc, required={"gpupools": CLUSTER})
    assert out.fatal == []
    assert out.status["pool"] == pool
    res = out.resources
    container = res["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"][gpu_resource] >= 1
    assert tensor_parallel(backend, container, res) == tp
    assert container["readinessProbe"]["httpGet"]["path"] == ready_path
    assert prefix_caching(backend, container, res) is doc["spec"].get("cache", {}).get(
        "enabled", True
    )
