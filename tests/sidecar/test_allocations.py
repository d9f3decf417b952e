"""Node mode: inference_gpu_allocations_total from the kubelet PodResources API.

There is no kubelet here: these tests talk to the in-process FAKE kubelet of
tests/sidecar/kubelet.py (the PodResources gRPC service on a unix socket, from a Python
structure the tests change between scrapes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.allocations import AllocationsSource, device_uuid
from tests.sidecar import procs
from tests.sidecar.kubelet import FakeKubelet

GPU = "nvidia.com/gpu"
MIG = "nvidia.com/mig-1g.10gb"


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[FakeKubelet]:
    k = FakeKubelet(tmp_path / "kubelet.sock").start()
    k.node = {
        GPU: ["GPU-aaa", "GPU-bbb", "GPU-ccc"],
        MIG: ["MIG-111", "MIG-222"],
        "example.com/nic": ["nic0"],
    }
    k.pods = [
        ("llm", "llama-0", "vllm", GPU, ["GPU-aaa", "GPU-bbb"]),
        ("llm", "qwen-0", "triton", MIG, ["MIG-111"]),
        ("llm", "qwen-0", "triton", "example.com/nic", ["nic0"]),  # not a GPU resource
    ]
    yield k
    k.stop()


def by_resource(samples: list[Any], name: str) -> dict[str, float]:
    return {s.labels["resource"]: s.value for s in samples if s.name == name}


def test_counts_devices_handed_to_pods(kubelet: FakeKubelet) -> None:
    source = AllocationsSource(str(kubelet.socket))
    first = source.read()
    assert [s.value for s in first if s.name == "inference_pod_resources_up"] == [1]
    assert by_resource(first, "inference_gpu_allocations_total") == {GPU: 2, MIG: 1}
    assert by_resource(first, "inference_gpu_allocated_devices") == {GPU: 2, MIG: 1}
    assert by_resource(first, "inference_gpu_allocatable_devices") == {GPU: 3, MIG: 2}
    info = [s.labels for s in first if s.name == "inference_gpu_allocation_info"]
    assert {
        "resource": MIG,
        "device_id": "MIG-111",
        "uuid": "MIG-111",
        "namespace": "llm",
        "pod": "qwen-0",
        "container": "triton",
    } in info
    assert len(info) == 3

    # Same assignments again: nothing new handed out.
    assert by_resource(source.read(), "inference_gpu_allocations_total") == {GPU: 2, MIG: 1}

    # llama-0 goes away; a new pod gets GPU-aaa; qwen-0 keeps its MIG device.
    kubelet.pods = [
        ("llm", "qwen-0", "triton", MIG, ["MIG-111"]),
        ("llm", "llama-1", "vllm", GPU, ["GPU-aaa"]),
    ]
    third = source.read()
    assert by_resource(third, "inference_gpu_allocations_total") == {GPU: 3, MIG: 1}
    assert by_resource(third, "inference_gpu_allocated_devices") == {GPU: 1, MIG: 1}
    source.close()


def test_shared_replicas_map_to_their_gpu(kubelet: FakeKubelet) -> None:
    kubelet.pods = [
        ("a", "p1", "c", "nvidia.com/gpu.shared", ["GPU-aaa::0"]),
        ("b", "p2", "c", "nvidia.com/gpu.shared", ["GPU-aaa::1"]),
    ]
    samples = AllocationsSource(str(kubelet.socket)).read()
    assert by_resource(samples, "inference_gpu_allocations_total") == {"nvidia.com/gpu.shared": 2}
    uuids = {s.labels["uuid"] for s in samples if s.name == "inference_gpu_allocation_info"}
    assert uuids == {"GPU-aaa"}
    assert device_uuid("GPU-aaa::12") == "GPU-aaa"


def test_kubelet_without_allocatable(tmp_path: Path) -> None:
    kubelet = FakeKubelet(tmp_path / "old.sock", allocatable=False).start()
    kubelet.pods = [("a", "p", "c", GPU, ["GPU-1"])]
    try:
        source = AllocationsSource(str(kubelet.socket))
        samples = source.read() + source.read()
        assert not by_resource(samples, "inference_gpu_allocatable_devices")
        assert by_resource(samples, "inference_gpu_allocations_total") == {GPU: 1}
    finally:
        kubelet.stop()


def test_kubelet_away_is_up_zero_and_counters_stay(kubelet: FakeKubelet) -> None:
    source = AllocationsSource(str(kubelet.socket), timeout=0.5)
    source.read()
    kubelet.stop()
    samples = source.read()
    assert [s.value for s in samples if s.name == "inference_pod_resources_up"] == [0]
    assert by_resource(samples, "inference_gpu_allocations_total") == {GPU: 2, MIG: 1}


def test_node_mode_process(tmp_path: Path, kubelet: FakeKubelet) -> None:
    """The sidecar process in node mode, reading the fake kubelet's socket."""
    sidecar = procs.sidecar_proc(
        tmp_path,
        {
            "SIDECAR_MODE": "node",
            "POD_RESOURCES_SOCKET": str(kubelet.socket),
            "NVML_FIXTURE": str(procs.FIXTURES / "a100-mig.json"),
        },
    )
    with procs.running(sidecar.proc):
        procs.wait_sidecar(sidecar)
        m = sidecar.scrape()
        assert m.types["inference_gpu_allocations"] == "counter"
        assert m.get("inference_pod_resources_up") == 1
        assert m.get("inference_gpu_allocations_total", resource=GPU) == 2
        assert m.get("inference_gpu_allocations_total", resource=MIG) == 1
        assert m.get("inference_gpu_allocatable_devices", resource=GPU) == 3
        assert not m.all("inference_gpu_allocations_total", resource="example.com/nic")
        assert m.get("inference_gpu_up") == 1
        kubelet.pods.append(("llm", "new", "vllm", GPU, ["GPU-ccc"]))
        assert sidecar.scrape().get("inference_gpu_allocations_total", resource=GPU) == 3
    assert "kubelet PodResources answering" in sidecar.proc.output()


def test_node_mode_without_kubelet(tmp_path: Path) -> None:
    sidecar = procs.sidecar_proc(
        tmp_path,
        {"SIDECAR_MODE": "node", "POD_RESOURCES_SOCKET": str(tmp_path / "missing.sock")},
    )
    with procs.running(sidecar.proc):
        procs.wait_sidecar(sidecar)
        assert sidecar.scrape().get("inference_pod_resources_up") == 0
    assert "kubelet PodResources List failed (UNAVAILABLE" in sidecar.proc.output()
