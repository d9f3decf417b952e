"""A client of the endpoint picker's ext-proc service, standing in for Envoy.

Per HTTP request, one bidirectional `envoy.service.ext_proc.v3.ExternalProcessor/Process`
stream, as a gateway opens it (docs/routing-upstream.md, "How a gateway talks to the EPP"):
request headers, then the body with `end_of_stream`; the picker answers with a header mutation
naming the endpoint (`x-gateway-destination-endpoint`, also in the dynamic metadata namespace
`envoy.lb`) and the body to forward. The stream stays open while the engine answers; the
response headers and the end of the response body go through it as Envoy's streamed mode sends
them, so the picker's completion bookkeeping runs as in a cluster.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc

DESTINATION = "x-gateway-destination-endpoint"
TIMEOUT_S = 30.0


class PickError(RuntimeError):
    pass


def _headers(items: dict[str, str], end_of_stream: bool = False) -> pb.HttpHeaders:
    return pb.HttpHeaders(
        headers=base_pb2.HeaderMap(
            headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in items.items()]
        ),
        end_of_stream=end_of_stream,
    )


def _body_chunks(rsp: pb.BodyResponse) -> tuple[bytes, bool]:
    streamed = rsp.response.body_mutation.streamed_response
    return streamed.body, streamed.end_of_stream


class Exchange:
    """One request's ext-proc stream: open, pick, then report the response and close."""

    def __init__(self, stub: pb_grpc.ExternalProcessorStub) -> None:
        self._out: queue.Queue[pb.ProcessingRequest | None] = queue.Queue()
        self._in: Iterator[pb.ProcessingResponse] = stub.Process(
            iter(self._out.get, None), timeout=TIMEOUT_S
        )
        self.endpoint = ""
        self.body = b""

    def _next(self) -> pb.ProcessingResponse:
        try:
            return next(self._in)
        except StopIteration as e:
            raise PickError("the picker closed the stream") from e

    def pick(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> str:
        """Send the request; the endpoint `ip:port` the picker chose (the forwarded body in
        `self.body`)."""
        request_headers = {
            ":method": "POST",
            ":path": path,
            ":authority": "inference-gateway",
            ":scheme": "http",
            "content-type": "application/json",
            "x-request-id": str(uuid.uuid4()),
            **(headers or {}),
        }
        self._out.put(pb.ProcessingRequest(request_headers=_headers(request_headers)))
        self._out.put(pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True)))
        first = self._next()
        if first.HasField("immediate_response"):
            r = first.immediate_response
            raise PickError(f"picker refused: HTTP {r.status.code} {r.body[:300]!r}")
        mutation = first.request_headers.response.header_mutation
        for h in mutation.set_headers:
            if h.header.key == DESTINATION:
                self.endpoint = (h.header.raw_value or h.header.value.encode()).decode()
        if not self.endpoint:
            lb = first.dynamic_metadata.fields.get("envoy.lb")
            if lb is not None:
                self.endpoint = lb.struct_value.fields[DESTINATION].string_value
        if not self.endpoint:
            raise PickError(f"no {DESTINATION} in the picker's answer: {first}")
        parts = []
        while True:
            rsp = self._next()
            chunk, eos = _body_chunks(rsp.request_body)
            parts.append(chunk)
            if eos:
                break
        self.body = b"".join(parts)
        return self.endpoint

    def response_started(self, status: int, content_type: str) -> None:
        self._out.put(
            pb.ProcessingRequest(
                response_headers=_headers({":status": str(status), "content-type": content_type})
            )
        )
        self._next()

    def finish(self, last_chunk: bytes) -> None:
        """The end of the response body (the stream's last event: usage and `[DONE]`)."""
        self._out.put(
            pb.ProcessingRequest(response_body=pb.HttpBody(body=last_chunk, end_of_stream=True))
        )
        for rsp in self._in:
            if rsp.HasField("response_body") and _body_chunks(rsp.response_body)[1]:
                break
        self.close()

    def close(self) -> None:
        self._out.put(None)


@dataclass
class Picker:
    """A channel to one endpoint picker's ext-proc port (plaintext: `--secure-serving=false`)."""

    address: str
    channel: Any = None

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.ExternalProcessorStub(self.channel)

    def exchange(self) -> Exchange:
        return Exchange(self.stub)

    def close(self) -> None:
        self.channel.close()


def health(address: str, service: str = "inference-extension", timeout: float = 2.0) -> bool:
    """grpc.health.v1.Health/Check on the picker's health port: True when SERVING. The request
    and answer are encoded by hand (one string field; one enum field, SERVING = 1): the
    project has no grpc health stubs."""
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        name = service.encode()
        try:
            answer: bytes = check(b"\x0a" + bytes([len(name)]) + name, timeout=timeout)
        except grpc.RpcError:
            return False
    return answer == b"\x08\x01"
