"""The benchmark's requests, captured on the wire from the real `crossplane composition render`.

A recording proxy (a gRPC server that passes RunFunction bytes through unparsed) sits between the
crossplane CLI and each function: `python -m hack.render --reuse-running` renders the example
claims against the proxies of our three functions, exactly as `make render` does, and the CLI
renders the llama-70b composite with tests/bench_functions/patch-and-transform.yaml against the
proxy of function-patch-and-transform. Per function and composite, the last request is kept: the
one that carries the required resources the function asked for, as Crossplane sends it at every
reconcile once they are fetched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from hack.render.catalog import load_catalog
from hack.render.engine import Renderer, render_one
from hack.render.env import REPO, find_binary
from hack.render.functions import FUNCTIONS, port_of
from hack.render.jobs import build_jobs
from tests.bench_functions.servers import Server, ours, served

SERVICES = ("apiextensions.fn.proto.v1.FunctionRunnerService",)
GO_REFERENCE = "function-patch-and-transform"
PT_COMPOSITION = Path(__file__).with_name("patch-and-transform.yaml")
MAX_MESSAGE = 64 * 1024 * 1024  # the proxy must never be the limit; the functions keep theirs


@dataclass(frozen=True)
class Captured:
    function: str
    composite: str
    """The claim's name (a claim's composite carries it as a label) or the composite's."""
    request: bytes


class Recorder:
    """A pass-through RunFunction server that keeps every request's bytes."""

    def __init__(self, function: str, upstream: int) -> None:
        self.function = function
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{upstream}",
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self.requests: list[bytes] = []
        self.lock = threading.Lock()

    def forward(self, method: str) -> Any:
        call = self.channel.unary_unary(method)  # no (de)serializers: bytes in, bytes out

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self.lock:
                self.requests.append(request)
            return bytes(call(request, timeout=context.time_remaining()))

        return handle

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            grpc.method_handlers_generic_handler(
                service,
                {"RunFunction": grpc.unary_unary_rpc_method_handler(
                    self.forward(f"/{service}/RunFunction")
                )},
            )
            for service in SERVICES
        ]  # fmt: skip


@contextlib.contextmanager
def recording(recorders: dict[int, Recorder]) -> Iterator[None]:
    """Serve each recorder on its own port (127.0.0.1, plaintext) until the block ends: the port
    says whose request it is."""
    servers = []
    for port, recorder in recorders.items():
        server = grpc.server(
            ThreadPoolExecutor(max_workers=4),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
        )
        server.add_generic_rpc_handlers(recorder.handlers())
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        servers.append(server)
    try:
        yield
    finally:
        for server in servers:
            server.stop(grace=None)
        for recorder in recorders.values():
            recorder.channel.close()


def composite_of(request: bytes) -> str:
    req = fnv1.RunFunctionRequest.FromString(request)
    meta = req.observed.composite.resource.fields["metadata"].struct_value.fields
    labels = meta["labels"].struct_value.fields if "labels" in meta else {}
    claim = labels.get("crossplane.io/claim-name")
    name: str = claim.string_value if claim is not None else meta["name"].string_value
    return name


def last_per_composite(function: str, requests: Sequence[bytes]) -> list[Captured]:
    """The last request each composite got, in the order composites first appeared."""
    last: dict[str, bytes] = {}
    for request in requests:
        last[composite_of(request)] = request
    return [Captured(function, name, data) for name, data in last.items()]


@dataclass(frozen=True)
class Ports:
    """Where the capture listens: the functions from `base`, their proxies from `base` + 10."""

    base: int

    def upstream(self, i: int) -> int:
        return self.base + i

    def proxy_base(self) -> int:
        return self.base + 10


def render_ours(claims: Sequence[Path], proxy_base: int, log: Path, form: str = "claims") -> None:
    """`make render` of `claims` (in XRD form `form`) against the functions listening from
    `proxy_base`."""
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "hack.render", "--reuse-running", "--no-validate", "-j", "1",
             "--form", form, *map(str, claims)],
            cwd=REPO,
            env={**os.environ, "FN_PORT_BASE": str(proxy_base)},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"rendering {', '.join(map(str, claims))} failed; see {log}")


def render_go_reference(claim: Path, port: int, workdir: Path) -> None:
    """The CLI renders `claim`'s composite (with its observed and required resources, as
    `make render` would) through tests/bench_functions/patch-and-transform.yaml."""
    catalog = load_catalog("claims")
    (job,) = build_jobs([claim], catalog, None, [], [])
    composition = yaml.safe_load(PT_COMPOSITION.read_text())
    job = dataclasses.replace(
        job,
        info=dataclasses.replace(
            job.info, composition=composition, composition_path=PT_COMPOSITION
        ),
    )
    functions = workdir / "functions-go.yaml"
    functions.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "Function",
                "metadata": {
                    "name": GO_REFERENCE,
                    "annotations": {
                        "render.crossplane.io/runtime": "Development",
                        "render.crossplane.io/runtime-development-target": f"127.0.0.1:{port}",
                    },
                },
                "spec": {"package": f"xpkg.crossplane.io/crossplane-contrib/{GO_REFERENCE}"},
            }
        )
    )
    renderer = Renderer(
        find_binary("CROSSPLANE_BIN", "crossplane"),
        find_binary("CROSSPLANE_CORE_BIN", "crossplane-core"),
        functions,
        workdir,
        "1m",
        include_full_xr=False,
    )
    outcome = render_one(renderer, 0, job)
    if not outcome.ok:
        raise RuntimeError(f"rendering {claim} with {GO_REFERENCE} failed:\n{outcome.stderr}")


def capture(
    claims: Sequence[Path],
    ports: Ports,
    workdir: Path,
    *,
    go: tuple[Path, Server] | None = None,
    form: str = "claims",
) -> list[Captured]:
    """Every function's requests for `claims` (ours, in XRD form `form`) and, with `go`, for
    its claim rendered by the Go reference server."""
    log = workdir / "capture.log"
    names = list(FUNCTIONS)
    proxy = ports.proxy_base()
    recorders = {port_of(n, proxy): Recorder(n, ports.upstream(i)) for i, n in enumerate(names)}
    go_proxy = proxy + len(names)
    if go is not None:
        recorders[go_proxy] = Recorder(GO_REFERENCE, ports.upstream(len(names)))
    with contextlib.ExitStack() as stack:
        for i, name in enumerate(names):
            stack.enter_context(served(ours(name), ports.upstream(i), log))
        if go is not None:
            stack.enter_context(served(go[1], ports.upstream(len(names)), log))
        stack.enter_context(recording(recorders))
        render_ours(claims, proxy, log, form)
        if go is not None:
            render_go_reference(go[0], go_proxy, workdir)
    out: list[Captured] = []
    for recorder in recorders.values():
        out.extend(last_per_composite(recorder.function, recorder.requests))
    return out


def with_nodes(
    request: bytes, nodes: Sequence[dict[str, Any]], requirement: str = "nodes"
) -> bytes:
    """A captured GPUPool request with `nodes` as the Nodes Crossplane fetched for it: the
    GPUPool-by-node-count rows, from the request the CLI really sent."""
    req = fnv1.RunFunctionRequest.FromString(request)
    items = req.required_resources[requirement].items
    del items[:]
    for node in nodes:
        items.add().resource.CopyFrom(resource.dict_to_struct(node))
    data: bytes = req.SerializeToString()
    return data
