"""The served functions over real gRPC (grpcio): they stay responsive whatever a caller sends.

Each test starts a function as a process, as Crossplane's runtime does: the real console scripts
(`function-tokencache`, ...) or `tests/serving/standin.py`, the real TokenCache compose behind the
real server with a stand-in for a pathological input (a compose that spins or raises on
request, by the claim's name). Deadlines are generous; what is asserted is which calls complete,
in which order and with what answer, never how fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from hack.e2e import pki
from hack.e2e.process import Proc
from tests import fnharness
from tests.procs import ROOT, free_port, wait_for

BIN = Path(sys.executable).parent
METHOD = "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction"
BETA_METHOD = "/apiextensions.fn.proto.v1beta1.FunctionRunnerService/RunFunction"
LIMIT = 4 * 1024 * 1024  # the SDK's default --max-recv-message-size (and so send size), 4 MB
CALL_S = 120.0  # deadline of a call that must succeed: generous, not a performance bound
STOP_S = 60.0  # how long a stopping server may take in these tests (its grace period is 5 s)
START_S = 180.0  # a cold start imports pydantic, grpc and the functions; 2 shared cores are slow
DEADLINE_S = 20.0  # the caller's deadline in tests that expect an answer before it


@dataclass
class Served:
    proc: Proc
    port: int
    dir: Path
    channel: grpc.Channel

    @property
    def stub(self) -> grpcv1.FunctionRunnerServiceStub:
        return grpcv1.FunctionRunnerServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.proc.output().splitlines():
            with contextlib.suppress(ValueError):
                parsed = json.loads(line)
                if isinstance(parsed, dict):  # our JSON log lines, not grpc's plain ones
                    out.append(parsed)
        return out

    def release(self, name: str) -> None:
        (self.dir / f"release-{name}").touch()

    def wait_spinning(self, name: str) -> None:
        wait_for((self.dir / f"spinning-{name}").exists, CALL_S, name, self.proc.log)


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def serving(tmp: Path, command: list[str], *args: str) -> Iterator[Served]:
    port = free_port()
    standin = tmp / "standin"
    standin.mkdir(exist_ok=True)
    proc = Proc(
        [*command, f"--address=127.0.0.1:{port}", *args],
        tmp / f"function-{port}.log",
        env={"STANDIN_DIR": str(standin), "PYTHONPATH": str(ROOT)},
    ).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        wait_for(lambda: proc.alive() and listening(port), START_S, "the function", proc.log)
        yield Served(proc, port, standin, channel)
    finally:
        for name in os.listdir(standin):  # let every spinning compose go
            if name.startswith("spinning-"):
                (standin / name.replace("spinning-", "release-")).touch()
        channel.close()
        proc.stop()


def standin(tmp: Path, *args: str) -> contextlib.AbstractContextManager[Served]:
    return serving(tmp, [sys.executable, "-m", "tests.serving.standin", "--insecure"], *args)


def request(name: str) -> fnv1.RunFunctionRequest:
    """The ttl-cache example claim, renamed, as Crossplane sends its composite."""
    doc = fnharness.example("ttl-cache.yaml")
    doc["metadata"]["name"] = name
    req = fnharness.request(fnharness.claim_composite(doc))
    req.meta.tag = name
    return req


def fatal(rsp: fnv1.RunFunctionResponse) -> list[str]:
    return [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]


def assert_composes(served: Served, name: str = "cache") -> None:
    rsp = served.stub.RunFunction(request(name), timeout=CALL_S)
    assert fatal(rsp) == []
    assert len(rsp.desired.resources) > 0


def padded(req: fnv1.RunFunctionRequest, size: int) -> fnv1.RunFunctionRequest:
    """`req` with a desired ConfigMap from an earlier pipeline step making it exactly `size`
    bytes on the wire (Crossplane passes the desired state of earlier steps along)."""
    out = fnv1.RunFunctionRequest()
    out.CopyFrom(req)
    blob = 0
    for _ in range(10):
        filler = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"blob": "x" * blob}}
        out.desired.resources["earlier-step"].resource.CopyFrom(resource.dict_to_struct(filler))
        if out.ByteSize() == size:
            return out
        blob += size - out.ByteSize()
    raise AssertionError(f"cannot pad the request to {size} bytes")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One stand-in for the tests that leave nothing running behind them."""
    with standin(tmp_path_factory.mktemp("standin")) as served:
        yield served


@contextlib.contextmanager
def hung_up() -> Iterator[None]:
    """Suppress what a socket raises once the peer has hung up: a reset or broken pipe, or
    ENOTCONN from shutdown() on a connection already closed."""
    try:
        yield
    except ConnectionError:
        pass
    except OSError as err:
        if err.errno != errno.ENOTCONN:
            raise


def test_garbage_on_the_socket_and_in_the_message_leaves_the_server_answering(
    shared: Served,
) -> None:
    for garbage in (bytes(range(256)) * 64, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        # The server hangs up: a GOAWAY at most, or a reset when our bytes are still unread,
        # and it may hang up before we finish sending or half-close (ENOTCONN, EPIPE).
        with (
            socket.create_connection(("127.0.0.1", shared.port), timeout=CALL_S) as s,
            hung_up(),
        ):
            s.sendall(garbage)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
    for method in (METHOD, BETA_METHOD):
        call = shared.channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as err:
            call(b"\xff" * 64, timeout=CALL_S)  # not a protobuf message
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
        assert "not a RunFunctionRequest" in str(err.value.details())
    undecodable = [
        line for line in shared.log_lines() if line["msg"] == "request is not a RunFunctionRequest"
    ]
    assert len(undecodable) == 2
    assert all(line["exception"][0]["exc_type"] == "DecodeError" for line in undecodable)
    empty = shared.stub.RunFunction(fnv1.RunFunctionRequest(), timeout=CALL_S)
    assert len(fatal(empty)) == 1, empty  # no composite at all: a fatal result, not a crash
    assert_composes(shared)
    assert shared.proc.alive()


def test_v1beta1_callers_get_the_same_answer_as_v1_callers(shared: Served) -> None:
    wire = request("cache").SerializeToString()
    v1, beta = (shared.channel.unary_unary(m)(wire, timeout=CALL_S) for m in (METHOD, BETA_METHOD))
    assert beta == v1
    assert fatal(fnv1.RunFunctionResponse.FromString(v1)) == []


def test_a_request_at_the_size_limit_is_answered_and_one_byte_more_is_refused(
    shared: Served,
) -> None:
    at_limit = shared.stub.RunFunction(padded(request("large"), LIMIT), timeout=CALL_S)
    # It carries the earlier step's 4 MB along, so the answer cannot fit in one message: a clear
    # fatal result rather than RESOURCE_EXHAUSTED on the response.
    (message,) = fatal(at_limit)
    assert f"{LIMIT} bytes" in message
    with pytest.raises(grpc.RpcError) as err:
        shared.stub.RunFunction(padded(request("large"), LIMIT + 1), timeout=CALL_S)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_composes(shared)


def test_three_hundred_calls_complete_while_a_pathological_compose_runs(
    shared: Served,
) -> None:
    done: list[str] = []
    lock = threading.Lock()

    def call(name: str) -> grpc.Future:
        future = shared.stub.RunFunction.future(request(name), timeout=CALL_S * 2)

        def finished(_: grpc.Future) -> None:
            with lock:
                done.append(name)

        future.add_done_callback(finished)
        return future

    slow = call("spin-concurrent")
    shared.wait_spinning("concurrent")
    calls = {f"cache{i}": call(f"cache{i}") for i in range(300)}
    for name, future in calls.items():
        rsp = future.result(timeout=CALL_S)
        assert fatal(rsp) == [], name
        assert len(rsp.desired.resources) > 0, name
    assert not slow.done(), "the pathological compose finished before the others were answered"
    shared.release("concurrent")
    assert fatal(slow.result(timeout=CALL_S)) == []
    with lock:
        assert sorted(done[:-1]) == sorted(calls)
        assert done[-1] == "spin-concurrent"


def test_a_compose_past_the_callers_deadline_is_answered_with_a_fatal_result(
    shared: Served,
) -> None:
    rsp = shared.stub.RunFunction(request("spin-deadline"), timeout=DEADLINE_S)
    (message,) = fatal(rsp)  # an answer before the deadline, not DEADLINE_EXCEEDED
    assert "composing did not finish within" in message
    assert_composes(shared)  # the spinning thread holds one worker; the others serve
    shared.release("deadline")


def test_calls_beyond_the_busy_workers_get_a_fatal_result_at_their_deadline(
    tmp_path: Path,
) -> None:
    with standin(tmp_path, "--workers=1") as served:
        slow = served.stub.RunFunction.future(request("spin-busy"), timeout=CALL_S)
        served.wait_spinning("busy")
        (message,) = fatal(served.stub.RunFunction(request("waiting"), timeout=DEADLINE_S))
        assert "all 1 compose workers stayed busy" in message
        served.release("busy")
        assert fatal(slow.result(timeout=CALL_S)) == []
        assert_composes(served)


def test_an_exception_is_logged_with_its_traceback_and_answered_with_a_bounded_fatal_result(
    shared: Served,
) -> None:
    rsp = shared.stub.RunFunction(request("raise-bug"), timeout=CALL_S)
    (message,) = fatal(rsp)
    assert message.startswith("internal error in the TokenCache function: RuntimeError: cannot")
    assert "(100011 characters)" in message  # the echoed input, cut short
    assert "Traceback" not in message
    assert len(message.encode()) <= 1024
    logged = [line for line in shared.log_lines() if line.get("msg") == "compose raised"]
    assert [line["tag"] for line in logged] == ["raise-bug"]
    (exc,) = logged[0]["exception"]
    assert exc["exc_type"] == "RuntimeError"
    frames = [frame["name"] for frame in exc["frames"]]
    assert frames[-2:] == ["compose", "_pathological_bug"], frames
    assert_composes(shared)


@pytest.mark.parametrize(
    "function", ["function-tokencache", "function-gpupool", "function-inferenceservice"]
)
def test_sigterm_stops_an_idle_function(tmp_path: Path, function: str) -> None:
    with serving(tmp_path, [str(BIN / function), "--insecure"]) as served:
        served.proc.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert served.proc.popen.wait(STOP_S) == 0  # type: ignore[union-attr]


def test_sigterm_stops_the_server_while_a_compose_is_stuck(tmp_path: Path) -> None:
    with standin(tmp_path) as served:
        stuck = served.stub.RunFunction.future(request("spin-stuck"), timeout=CALL_S * 5)
        served.wait_spinning("stuck")
        served.proc.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert served.proc.popen.wait(STOP_S) == 0  # type: ignore[union-attr]
        assert not (served.dir / "release-stuck").exists()  # it was still spinning
        with pytest.raises(grpc.RpcError):
            stuck.result(timeout=CALL_S)
        assert "exiting with composes still running" in served.proc.output()


def test_a_call_in_flight_at_sigterm_gets_its_answer_within_the_grace_period(
    tmp_path: Path,
) -> None:
    with standin(tmp_path) as served:
        call = served.stub.RunFunction.future(request("spin-graceful"), timeout=CALL_S)
        served.wait_spinning("graceful")
        served.proc.popen.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        wait_for(lambda: '"stopping"' in served.proc.output(), CALL_S, "stopping", served.proc.log)
        served.release("graceful")
        assert fatal(call.result(timeout=CALL_S)) == []
        assert served.proc.popen.wait(STOP_S) == 0  # type: ignore[union-attr]


def test_mtls_serves_a_client_with_a_certificate_from_the_ca_and_no_other(
    tmp_path: Path,
) -> None:
    ca = pki.ca(tmp_path, "ca")
    certs = tmp_path / "serving"
    certs.mkdir()
    pki.leaf(certs, "tls", ca, "/CN=function", server_sans=("IP:127.0.0.1",))
    (certs / "ca.crt").write_bytes(ca.cert.read_bytes())
    client = pki.leaf(tmp_path, "client", ca, "/CN=crossplane", client=True)
    other_ca = pki.ca(tmp_path, "other-ca")
    stranger = pki.leaf(tmp_path, "stranger", other_ca, "/CN=stranger", client=True)
    command = [str(BIN / "function-tokencache"), f"--tls-server-certs-dir={certs}"]
    with serving(tmp_path, command) as served:
        target = f"127.0.0.1:{served.port}"

        def call(pair: pki.KeyPair | None) -> fnv1.RunFunctionResponse:
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca.cert.read_bytes(),
                private_key=pair.key.read_bytes() if pair else None,
                certificate_chain=pair.cert.read_bytes() if pair else None,
            )
            with grpc.secure_channel(target, creds) as channel:
                stub = grpcv1.FunctionRunnerServiceStub(channel)  # type: ignore[no-untyped-call]
                rsp: fnv1.RunFunctionResponse = stub.RunFunction(request("cache"), timeout=CALL_S)
                return rsp

        assert fatal(call(client)) == []
        for refused in (None, stranger):
            with pytest.raises(grpc.RpcError) as err:
                call(refused)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError):  # plaintext is not served beside mTLS
            served.stub.RunFunction(request("cache"), timeout=CALL_S)
