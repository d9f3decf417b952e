"""Node mode: inference_gpu_allocations_total from the kubelet PodResources API.

There is no kubelet here, so these tests serve `v1.PodResourcesLister` from an in-process
FAKE kubelet: a grpc.server on a unix socket in the test's temporary directory, implemented
below with this project's own messages (sidecar/podresources/api.proto). It answers `List`
and `GetAllocatableResources` from a mutable Python structure the tests change between
scrapes; it checks only the wire format and our counting, not a real kubelet's behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.allocations import AllocationsSource, device_uuid
from sidecar.podresources import api_pb2
from tests.sidecar import procs

GPU = "nvidia.com/gpu"
MIG = "nvidia.com/mig-1g.10gb"

# namespace, pod, container, resource, device ids
Pods = list[tuple[str, str, str, str, list[str]]]


class FakeKubelet:
    """In-process fake of the kubelet's PodResourcesLister (see the module docstring)."""

    def __init__(self, socket: Path, allocatable: bool = True) -> None:
        self.socket = socket
        self.pods: Pods = []
        self.node: dict[str, list[str]] = {}
        self.allocatable_supported = allocatable
        self.list_calls = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handlers = {
            "List": grpc.unary_unary_rpc_method_handler(
                self._list,
                request_deserializer=api_pb2.ListPodResourcesRequest.FromString,
                response_serializer=api_pb2.ListPodResourcesResponse.SerializeToString,
            ),
            "GetAllocatableResources": grpc.unary_unary_rpc_method_handler(
                self._allocatable,
                request_deserializer=api_pb2.AllocatableResourcesRequest.FromString,
                response_serializer=api_pb2.AllocatableResourcesResponse.SerializeToString,
            ),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("v1.PodResourcesLister", handlers),)
        )
        self.server.add_insecure_port(f"unix://{socket}")

    def _list(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.list_calls += 1
        by_pod: dict[tuple[str, str], dict[str, list[api_pb2.ContainerDevices]]] = {}
        for namespace, pod, container, resource, ids in self.pods:
            containers = by_pod.setdefault((namespace, pod), {})
            containers.setdefault(container, []).append(
                api_pb2.ContainerDevices(resource_name=resource, device_ids=ids)
            )
        return api_pb2.ListPodResourcesResponse(
            pod_resources=[
                api_pb2.PodResources(
                    name=pod,
                    namespace=namespace,
                    containers=[
                        api_pb2.ContainerResources(name=c, devices=devs)
                        for c, devs in containers.items()
                    ],
                )
                for (namespace, pod), containers in by_pod.items()
            ]
        )

    def _allocatable(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self.allocatable_supported:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "allocatable resources not enabled")
        return api_pb2.AllocatableResourcesResponse(
            devices=[
                api_pb2.ContainerDevices(resource_name=r, device_ids=ids)
                for r, ids in self.node.items()
            ]
        )

    def start(self) -> FakeKubelet:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)


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
