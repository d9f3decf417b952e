"""Node mode: GPU devices handed to pods, from the kubelet PodResources API.

The kubelet serves `v1.PodResourcesLister` over gRPC on a unix socket
(/var/lib/kubelet/pod-resources/kubelet.sock); dcgm-exporter reads the same API to map
devices to pods. `List` gives, per pod container, the device IDs of each extended resource
(`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`, `nvidia.com/gpu.shared`, ...);
`GetAllocatableResources` gives the node's devices (Kubernetes >= 1.28 GA).

`inference_gpu_allocations_total{resource}` counts hand-outs: every (namespace, pod,
container, resource, device) assignment counts once from the scrape that first sees it; one
that disappears and comes back counts again. It starts at the number of devices assigned when
the process starts (rate() treats that first value as a baseline) and misses assignments that
begin and end between two scrapes.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import grpc

from sidecar import log
from sidecar.metrics import Sample, sample
from sidecar.podresources import api_pb2

SOURCE = "pod-resources"
DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
SERVICE = "v1.PodResourcesLister"
MAX_MESSAGE = 16 * 1024 * 1024

Assignment = tuple[str, str, str, str, str]  # namespace, pod, container, resource, device id


def device_uuid(device_id: str) -> str:
    """GPU/MIG UUID behind a device plugin's device ID ("GPU-x::3" replicas -> "GPU-x")."""
    return device_id.split("::", 1)[0]


class PodResourcesClient:
    """Typed calls of the two RPCs, without generated service stubs."""

    def __init__(self, target: str, timeout: float = 2.0) -> None:
        self.target = target
        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                # The kubelet answers on a unix socket: no authority to check.
                ("grpc.default_authority", "localhost"),
            ],
        )
        self._list = self.channel.unary_unary(
            f"/{SERVICE}/List",
            request_serializer=api_pb2.ListPodResourcesRequest.SerializeToString,
            response_deserializer=api_pb2.ListPodResourcesResponse.FromString,
        )
        self._allocatable = self.channel.unary_unary(
            f"/{SERVICE}/GetAllocatableResources",
            request_serializer=api_pb2.AllocatableResourcesRequest.SerializeToString,
            response_deserializer=api_pb2.AllocatableResourcesResponse.FromString,
        )

    def list(self) -> Any:
        return self._list(api_pb2.ListPodResourcesRequest(), timeout=self.timeout)

    def allocatable(self) -> Any:
        return self._allocatable(api_pb2.AllocatableResourcesRequest(), timeout=self.timeout)

    def close(self) -> None:
        self.channel.close()


def socket_target(path: str) -> str:
    return path if path.startswith(("unix:", "dns:", "ipv4:", "ipv6:")) else f"unix://{path}"


class AllocationsSource:
    name = SOURCE

    def __init__(
        self,
        socket: str = DEFAULT_SOCKET,
        resource_prefixes: tuple[str, ...] = ("nvidia.com/",),
        timeout: float = 2.0,
    ) -> None:
        self.socket = socket
        self.resource_prefixes = resource_prefixes
        self.client = PodResourcesClient(socket_target(socket), timeout)
        self._seen: set[Assignment] = set()
        self._handed_out: Counter[str] = Counter()
        self._allocatable_supported = True
        self._lock = threading.Lock()
        self._states = log.Transitions(SOURCE)

    def _wanted(self, resource: str) -> bool:
        return resource.startswith(self.resource_prefixes)

    def read(self) -> list[Sample]:
        with self._lock:
            return self._read()

    def _read(self) -> list[Sample]:
        try:
            response = self.client.list()
        except grpc.RpcError as err:
            self._states.report(
                "state",
                f"down: {err.code()}",
                logging.WARNING,
                f"kubelet PodResources List failed ({err.code().name}: {err.details()}): "
                "inference_pod_resources_up 0",
                socket=self.socket,
            )
            # Counters keep their last value while the kubelet is away.
            return [
                sample("inference_pod_resources_up", 0),
                *self._counter_samples(),
            ]
        current: set[Assignment] = set()
        for pod in response.pod_resources:
            for container in pod.containers:
                for devices in container.devices:
                    if not self._wanted(devices.resource_name):
                        continue
                    for device_id in devices.device_ids:
                        current.add(
                            (
                                pod.namespace,
                                pod.name,
                                container.name,
                                devices.resource_name,
                                device_id,
                            )
                        )
        for assignment in current - self._seen:
            self._handed_out[assignment[3]] += 1
        self._seen = current
        allocated = Counter(a[3] for a in current)
        self._states.report(
            "state",
            "up",
            logging.INFO,
            "kubelet PodResources answering",
            socket=self.socket,
            assigned_devices=len(current),
        )
        out = [sample("inference_pod_resources_up", 1), *self._counter_samples()]
        allocatable = self._allocatable()
        for resource in sorted(set(allocated) | set(allocatable or {})):
            out.append(
                sample(
                    "inference_gpu_allocated_devices", allocated.get(resource, 0), resource=resource
                )
            )
        if allocatable is not None:
            for resource, count in sorted(allocatable.items()):
                out.append(sample("inference_gpu_allocatable_devices", count, resource=resource))
        for namespace, pod_name, container_name, resource, device_id in sorted(current):
            out.append(
                sample(
                    "inference_gpu_allocation_info",
                    1,
                    resource=resource,
                    device_id=device_id,
                    uuid=device_uuid(device_id),
                    namespace=namespace,
                    pod=pod_name,
                    container=container_name,
                )
            )
        return out

    def _counter_samples(self) -> list[Sample]:
        return [
            sample("inference_gpu_allocations_total", count, resource=resource)
            for resource, count in sorted(self._handed_out.items())
        ]

    def _allocatable(self) -> dict[str, int] | None:
        if not self._allocatable_supported:
            return None
        try:
            response = self.client.allocatable()
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._allocatable_supported = False
                log.info(
                    SOURCE,
                    "kubelet has no GetAllocatableResources (feature gate off or Kubernetes "
                    "< 1.23): inference_gpu_allocatable_devices not exported",
                )
            else:
                self._states.report(
                    "allocatable",
                    f"down: {err.code()}",
                    logging.WARNING,
                    f"kubelet GetAllocatableResources failed ({err.code().name})",
                )
            return None
        counts: Counter[str] = Counter()
        for devices in response.devices:
            if self._wanted(devices.resource_name):
                counts[devices.resource_name] += len(devices.device_ids)
        return dict(counts)

    def close(self) -> None:
        self.client.close()
