"""Drive one served function with ghz and read its CPU time and memory from /proc."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from tests.bench_functions.report import (
    Load,
    Run,
    cpu_ms_per_call,
    cpu_ticks,
    ghz_summary,
    memory_kib,
    work,
)
from tests.bench_functions.servers import Server, served

CALL = "apiextensions.fn.proto.v1.FunctionRunnerService.RunFunction"
MAX_MESSAGE = 64 * 1024 * 1024
HZ = os.sysconf("SC_CLK_TCK")


def protoset() -> bytes:
    """A FileDescriptorSet of RunFunction (and what it imports) from the SDK's generated code:
    ghz needs the schema, and server reflection would add calls to the server measured."""
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        out.file.append(proto)

    add(fnv1.DESCRIPTOR)
    data: bytes = out.SerializeToString()
    return data


@dataclass(frozen=True)
class Workload:
    name: str
    server: Server
    request: Path
    """A serialized RunFunctionRequest, as captured."""


@dataclass(frozen=True)
class Settings:
    ghz: Path
    protoset: Path
    port: int
    server_cpu: int
    client_cpu: int
    warmup: int
    calls: int
    """Single-client calls: latency and CPU per call."""
    concurrent_calls: int
    concurrency: Sequence[int]
    logs: Path


def ghz(s: Settings, request: Path, calls: int, concurrency: int) -> Load:
    """`calls` calls at `concurrency` over one connection (Crossplane keeps one per function)."""
    cmd = [
        "taskset", "-c", str(s.client_cpu), str(s.ghz),
        "--cpus=1", "--insecure", f"--protoset={s.protoset}", f"--call={CALL}",
        f"--binary-file={request}", f"--total={calls}", f"--concurrency={concurrency}",
        "--connections=1", "--timeout=60s", "--format=json", f"127.0.0.1:{s.port}",
        # Large pools' requests and answers: the server's limits, not the client's, apply.
        "--max-recv-message-size=1GiB", "--max-send-message-size=1GiB",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"ghz failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    load = ghz_summary(json.loads(done.stdout))
    if load.ok != calls:
        raise RuntimeError(f"ghz: {load.ok} of {calls} calls answered OK: {done.stdout[-2000:]}")
    return load


def answer(port: int, request: Path) -> bytes:
    """One call through grpcio: the bytes the server answers this request with."""
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", MAX_MESSAGE)]
    ) as channel:
        call = channel.unary_unary(f"/{CALL.rpartition('.')[0]}/RunFunction")
        return bytes(call(request.read_bytes(), timeout=60))


def check(name: str, response: bytes) -> None:
    """The work measured is a real composition: resources, no fatal result."""
    rsp = fnv1.RunFunctionResponse.FromString(response)
    fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    if fatal or not rsp.desired.resources:
        raise RuntimeError(f"{name} does not compose its request: {fatal or 'no resources'}")


def proc_read(pid: int, what: str) -> str:
    return Path(f"/proc/{pid}/{what}").read_text()


def measure(w: Workload, s: Settings) -> Run:
    """Start the server pinned to its core, check its answer, warm it up, then measure."""
    with served(w.server, s.port, s.logs / f"{w.name}.log", cpu=s.server_cpu) as proc:
        response = answer(s.port, w.request)
        check(w.name, response)
        ghz(s, w.request, s.warmup, 1)
        warm = memory_kib(proc_read(proc.pid, "status"))
        before = cpu_ticks(proc_read(proc.pid, "stat"))
        single = ghz(s, w.request, s.calls, 1)
        used = cpu_ticks(proc_read(proc.pid, "stat")) - before
        rps = {c: ghz(s, w.request, s.concurrent_calls, c).rps for c in s.concurrency}
        end = memory_kib(proc_read(proc.pid, "status"))
    return Run(
        workload=w.name,
        p50_ms=single.p50_ms,
        p99_ms=single.p99_ms,
        cpu_ms=cpu_ms_per_call(used, s.calls, HZ),
        rps=rps,
        rss_mib=warm["VmRSS"] / 1024,
        # VmHWM is updated lazily (it can read below an earlier VmRSS): the largest reading.
        hwm_mib=max(*warm.values(), *end.values()) / 1024,
        work=work(w.request.read_bytes(), response),
    )
