"""An in-process FAKE kubelet PodResources server for the node-mode tests.

There is no kubelet here, so the tests serve `v1.PodResourcesLister` from a grpc.server on a
unix socket in the test's temporary directory, implemented with this project's own messages
(sidecar/podresources/api.proto, written from the Kubernetes API). It answers `List` and
`GetAllocatableResources` from a mutable Python structure the tests change between scrapes; it
checks only the wire format and our counting, not a real kubelet's behaviour.
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from sidecar.podresources import api_pb2

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
