"""Serving a function over gRPC: compose in bounded worker threads, every failure a fatal result.

The SDK's `runtime.serve` awaits `RunFunction` on the asyncio event loop, and our compose is
synchronous CPU work: one slow call stalled every other call and SIGTERM with it. Here the
event loop only accepts calls and answers them; each compose runs on one of `--workers`
threads, admitted by a semaphore that is released only when the thread is really done, so the
server never holds more compose work than it has threads. Every call answers, within the
caller's gRPC deadline (`--compose-timeout` when the caller sets none), with a response or one
fatal result: an exception (logged with its traceback, never a stack trace to Crossplane), a
compose still running at the deadline, no free worker, or a response over the gRPC send limit
(instead of RESOURCE_EXHAUSTED, which Crossplane would only retry). SIGTERM and SIGINT stop the
server within a grace period even while a compose is stuck. mTLS and `--insecure` behave as
with the SDK's `cli.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import click
import grpc
from crossplane.function import logging, runtime
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from crossplane.function.proto.v1beta1 import run_function_pb2 as fnv1beta1
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from functions.common.kinds import Kind
from functions.common.messages import bounded, echo

DEFAULT_WORKERS = 4
DEFAULT_COMPOSE_TIMEOUT_S = 60.0
SHUTDOWN_GRACE_S = 5.0
"""Seconds in-flight calls get after SIGTERM; Kubernetes waits 30 s before SIGKILL."""
DEADLINE_MARGIN_S = 2.0
"""Answer this long (at most a tenth of the time left) before the caller's deadline, so the
fatal result reaches it instead of DEADLINE_EXCEEDED."""
RESULT_TTL = timedelta(minutes=1)

F = TypeVar("F", bound=Callable[..., Any])


class Runner(Protocol):
    """What is served: a function's synchronous `run` (CompositionFunction)."""

    kind: Kind

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse: ...


def fatal(req: fnv1.RunFunctionRequest, message: str) -> fnv1.RunFunctionResponse:
    """A response with only one fatal result: no desired state, since Crossplane stops there."""
    return fnv1.RunFunctionResponse(
        meta=fnv1.ResponseMeta(
            tag=req.meta.tag, ttl=duration_pb2.Duration(seconds=int(RESULT_TTL.total_seconds()))
        ),
        results=[
            fnv1.Result(
                severity=fnv1.SEVERITY_FATAL,
                message=bounded(message),
            )
        ],
    )


def identity(req: fnv1.RunFunctionRequest) -> dict[str, str]:
    """Log fields naming the composite a request is about; never raises, whatever its shape."""
    fields = req.observed.composite.resource.fields
    out = {"tag": req.meta.tag}
    meta = fields.get("metadata")
    if meta is not None and meta.HasField("struct_value"):
        for key in ("name", "namespace"):
            value = meta.struct_value.fields.get(key)
            if value is not None and value.HasField("string_value"):
                out[key] = echo(value.string_value)
    kind = fields.get("kind")
    if kind is not None and kind.HasField("string_value"):
        out["composite"] = echo(kind.string_value)
    return out


class Servicer(grpcv1.FunctionRunnerServiceServicer):
    """RunFunction for one function: compose on a worker thread, answer before the deadline.

    Served through `handlers` (bytes on the wire); `RunFunction` is the SDK servicer's method.
    """

    def __init__(
        self,
        function: Runner,
        *,
        workers: int = DEFAULT_WORKERS,
        compose_timeout: float = DEFAULT_COMPOSE_TIMEOUT_S,
        max_send_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.function = function
        self.workers = workers
        self.compose_timeout = compose_timeout
        self.max_send_bytes = max_send_bytes
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compose")
        self.slots: asyncio.Semaphore | None = None  # made on the serving loop
        self.busy = 0  # composes running on a thread; written by those threads
        self.busy_lock = threading.Lock()
        self.log = logging.get_logger()

    def budget(self, context: grpc.aio.ServicerContext | None) -> float:
        """Seconds this call may take: until shortly before the caller's deadline, if it set one."""
        left: float | None = context.time_remaining() if context is not None else None
        if left is None:
            return self.compose_timeout
        return max(0.0, min(self.compose_timeout, left - min(DEADLINE_MARGIN_S, left / 10)))

    async def RunFunction(
        self, req: fnv1.RunFunctionRequest, context: grpc.aio.ServicerContext | None
    ) -> fnv1.RunFunctionResponse:
        loop = asyncio.get_running_loop()
        budget = self.budget(context)
        deadline = loop.time() + budget
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.workers)
        slots = self.slots
        try:
            if slots.locked():
                await asyncio.wait_for(slots.acquire(), budget)
            else:
                await slots.acquire()  # a free slot: taken at once, no task and no timer
        except TimeoutError:
            self.log.warning("no free worker", workers=self.workers, **identity(req))
            return fatal(
                req,
                f"internal error: all {self.workers} compose workers stayed busy for "
                f"{budget:.1f} s; Crossplane will call again",
            )
        # One future the loop awaits, resolved by the worker's answer or the deadline, whichever
        # comes first: asyncio.wait_for(shield(...)) cost as much CPU as the hop itself.
        answer: asyncio.Future[fnv1.RunFunctionResponse | None] = loop.create_future()

        def settle(rsp: fnv1.RunFunctionResponse | None) -> None:
            if not answer.done():
                answer.set_result(rsp)

        def done(rsp: fnv1.RunFunctionResponse) -> None:
            # The slot is freed when the thread finishes, not when this call gives up on it.
            slots.release()
            settle(rsp)

        def finished(work: Future[fnv1.RunFunctionResponse]) -> None:  # on the worker thread
            if work.cancelled() or work.exception() is not None:  # compose answers every Exception
                rsp = fatal(req, "internal error: the compose worker stopped")
            else:
                rsp = work.result()
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(done, rsp)

        self.pool.submit(self.compose, req).add_done_callback(finished)
        timer = loop.call_later(max(0.0, deadline - loop.time()), settle, None)
        try:
            rsp = await answer
        finally:
            timer.cancel()
        if rsp is None:
            self.log.warning("compose is over its deadline", seconds=budget, **identity(req))
            return fatal(
                req,
                f"internal error: composing did not finish within {budget:.1f} s; the request "
                "may be too large or the function's log names the problem",
            )
        return rsp

    async def RunFunctionWire(self, data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        """RunFunction on the wire: parsed here, so an undecodable request is logged and answered
        INVALID_ARGUMENT (grpcio answers a failed deserializer with an unlogged UNKNOWN)."""
        req = fnv1.RunFunctionRequest()
        try:
            req.ParseFromString(data)
        except DecodeError as err:
            self.log.exception("request is not a RunFunctionRequest", bytes=len(data))
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                bounded(f"the request is not a RunFunctionRequest: {err}"),
            )
        try:
            rsp = await self.RunFunction(req, context)
        except Exception as err:  # a bug of ours around compose; still an answer and a log
            self.log.exception("serving raised", **identity(req))
            rsp = fatal(req, f"internal error serving the call: {type(err).__name__}")
        out: bytes = rsp.SerializeToString()
        if len(out) > self.max_send_bytes:
            self.log.warning("response over the send limit", bytes=len(out), **identity(req))
            out = fatal(
                req,
                f"the composed response is {len(out)} bytes, over the function's gRPC message "
                f"limit of {self.max_send_bytes} bytes (--max-send-message-size); the composite "
                "asks for more than one response can carry",
            ).SerializeToString()
        return out

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """RunFunction of v1 and of v1beta1, whose messages are the same on the wire."""
        method = grpc.unary_unary_rpc_method_handler(self.RunFunctionWire)
        return [
            grpc.method_handlers_generic_handler(
                module.DESCRIPTOR.services_by_name["FunctionRunnerService"].full_name,
                {"RunFunction": method},
            )
            for module in (fnv1, fnv1beta1)
        ]

    def compose(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        """Run the function on this (worker) thread; an exception becomes a fatal result."""
        with self.busy_lock:
            self.busy += 1
        try:
            return self.function.run(req)
        except Exception as err:  # every failure becomes an answer; the log keeps the traceback
            self.log.exception("compose raised", kind=self.function.kind.kind, **identity(req))
            return fatal(
                req,
                f"internal error in the {self.function.kind.kind} function: "
                f"{type(err).__name__}: {echo(err, 200)} (the function's log has the traceback)",
            )
        finally:
            with self.busy_lock:
                self.busy -= 1


async def _serve(
    servicer: Servicer,
    address: str,
    creds: grpc.ServerCredentials | None,
    *,
    insecure: bool,
    options: Sequence[tuple[str, Any]],
    grace: float,
) -> None:
    # Handlers before the port opens: a SIGTERM sent as soon as the port answers is ours to handle.
    # Adding the port already listens (connections queue until start), so they come first.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers(servicer.handlers())
    reflection.enable_server_reflection(runtime.SERVICE_NAMES, server)
    # As the SDK's --insecure documents: it wins over --tls-server-certs-dir.
    if insecure:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, creds)
    await server.start()
    log = logging.get_logger()
    log.info("serving", address=address, workers=servicer.workers, tls=not insecure)
    terminated = asyncio.ensure_future(server.wait_for_termination())
    await asyncio.wait(
        [terminated, asyncio.ensure_future(stopping.wait())], return_when="FIRST_COMPLETED"
    )
    log.info("stopping", grace_seconds=grace, composing=servicer.busy)
    await server.stop(grace)


def serve(
    function: Runner,
    address: str,
    *,
    creds: grpc.ServerCredentials | None,
    insecure: bool,
    options: Sequence[tuple[str, Any]] = (),
    workers: int = DEFAULT_WORKERS,
    compose_timeout: float = DEFAULT_COMPOSE_TIMEOUT_S,
    grace: float = SHUTDOWN_GRACE_S,
) -> None:
    """Serve `function` until SIGTERM/SIGINT (then within `grace` seconds) or a server failure."""
    if creds is None and not insecure:
        raise click.UsageError("no TLS credentials: pass --tls-server-certs-dir or --insecure")
    limits = dict(options)
    servicer = Servicer(
        function,
        workers=workers,
        compose_timeout=compose_timeout,
        max_send_bytes=int(limits.get("grpc.max_send_message_length", 4 * 1024 * 1024)),
    )
    asyncio.run(_serve(servicer, address, creds, insecure=insecure, options=options, grace=grace))
    servicer.pool.shutdown(wait=False, cancel_futures=True)
    if servicer.busy:
        # A thread cannot be interrupted, and the interpreter would join it at exit.
        logging.get_logger().warning("exiting with composes still running", composing=servicer.busy)
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)


def options(func: F) -> F:
    """Our serving options, beside the SDK's `standard_options`."""
    func = click.option(
        "--compose-timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_COMPOSE_TIMEOUT_S,
        show_default=True,
        envvar="COMPOSE_TIMEOUT",
        help="Seconds one call may compose when the caller sets no gRPC deadline "
        "(with one, it answers shortly before that deadline).",
    )(func)
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=DEFAULT_WORKERS,
        show_default=True,
        envvar="COMPOSE_WORKERS",
        help="Threads that compose; calls beyond them wait for one until their deadline.",
    )(func)


def run(
    function: Runner,
    *,
    debug: bool,
    address: str,
    tls_certs_dir: str | None,
    insecure: bool,
    max_recv_message_size: int,
    max_send_message_size: int | None,
    workers: int = DEFAULT_WORKERS,
    compose_timeout: float = DEFAULT_COMPOSE_TIMEOUT_S,
) -> None:
    """The command line's options (the SDK's `standard_options` and ours) to a served function."""
    logging.configure(level=logging.Level.DEBUG if debug else logging.Level.INFO)
    send_mb = max_recv_message_size if max_send_message_size is None else max_send_message_size
    grpc_options = [
        ("grpc.max_receive_message_length", max_recv_message_size * 1024 * 1024),
        ("grpc.max_send_message_length", send_mb * 1024 * 1024),
        # A second server on a taken port must fail to start, not share the port silently.
        ("grpc.so_reuseport", 0),
    ]
    serve(
        function,
        address,
        creds=runtime.load_credentials(tls_certs_dir) if tls_certs_dir and not insecure else None,
        insecure=insecure,
        options=grpc_options,
        workers=workers,
        compose_timeout=compose_timeout,
    )
