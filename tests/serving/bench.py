"""Benchmark: small calls answered while one large GPUPool composes, our server against the SDK's.

`make bench-serve` (`python -m tests.serving.bench --help`). Both servers serve the same
GPUPool function as processes on this machine, side by side:

- `sdk`: the SDK's `runtime.serve` awaiting our synchronous compose on the event loop (how the
  functions were served before `functions/common/serve.py`);
- `ours`: the `function-gpupool` entry point.

For each pool size it sends one pool of N Nodes (8 GPUs each, MIG, the planner's `fill`), then
small calls (the h100-exclusive-pool example) back to back until the large one is answered, and
reports the large call's answer and time, how many small calls completed meanwhile and their
latency, and how long the process took to exit after SIGTERM. Times depend on the machine and
its load; compare the two rows of one size, run together.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import grpc
from crossplane.function import cli as sdkcli
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from functions.gpupool.fn import runner
from tests import fnharness
from tests.gpupool.pooltime import node
from tests.procs import ROOT, free_port

SERVERS = ("sdk", "ours")


class OnTheLoop(grpcv1.FunctionRunnerServiceServicer):
    """The previous serving: compose awaited directly on the SDK's event loop."""

    def __init__(self) -> None:
        self.function = runner()

    async def RunFunction(self, req: fnv1.RunFunctionRequest, _: Any) -> fnv1.RunFunctionResponse:
        return self.function.run(req)


POOL_SELECTOR = {"pool": "big"}
POOL_PRODUCTS = ("NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3")


def big_pool() -> dict[str, Any]:
    """The MIG GPUPool the serving benchmarks compose over many Nodes (POOL_SELECTOR's)."""
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": "big"},
        "spec": {
            "nodeSelector": POOL_SELECTOR,
            "sharing": {
                "mode": "mig",
                "profiles": [{"name": "3g.40gb", "count": 5}, {"name": "1g.10gb", "count": 9}],
                "leftover": "fill",
            },
        },
    }


def pool_request(nodes: int) -> fnv1.RunFunctionRequest:
    rng = random.Random(1)
    items = [
        node(f"gpu-{i:05d}", rng.choice(POOL_PRODUCTS), 8, POOL_SELECTOR) for i in range(nodes)
    ]
    return fnharness.request(big_pool(), required={"nodes": items})


def small_request() -> fnv1.RunFunctionRequest:
    return fnharness.request(
        fnharness.claim_composite(fnharness.example("h100-exclusive-pool.yaml"))
    )


def start(server: str, port: int) -> subprocess.Popen[bytes]:
    address = f"127.0.0.1:{port}"
    if server == "sdk":
        cmd = [sys.executable, "-m", "tests.serving.bench", "--serve-sdk", address]
    else:
        cmd = [
            str(ROOT / ".venv" / "bin" / "function-gpupool"),
            "--insecure",
            f"--address={address}",
        ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{server} server exited with {proc.returncode}") from None
            time.sleep(0.1)


def answer(future: grpc.Future) -> str:
    try:
        rsp = future.result()
    except grpc.RpcError as err:
        return f"{err.code().name}: {err.details()[:70]}"
    fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    return f"fatal: {fatal[0][:70]}..." if fatal else f"composed, {rsp.ByteSize():,} bytes"


def measure(server: str, nodes: int) -> str:
    port = free_port()
    proc = start(server, port)
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)]
    )
    stub = grpcv1.FunctionRunnerServiceStub(channel)  # type: ignore[no-untyped-call]
    small, large = small_request(), pool_request(nodes)
    stub.RunFunction(small, timeout=120)  # warm
    began = time.perf_counter()
    future = stub.RunFunction.future(large, timeout=300)
    latencies = []
    while not future.done():
        t = time.perf_counter()
        stub.RunFunction(small, timeout=300)
        latencies.append(time.perf_counter() - t)
    took = time.perf_counter() - began
    outcome = answer(future)
    channel.close()
    proc.terminate()
    t = time.perf_counter()
    proc.wait(120)
    stopped = time.perf_counter() - t
    small_ms = (
        f"{statistics.median(latencies) * 1000:.0f} / {max(latencies) * 1000:.0f}"
        if latencies
        else "-"
    )
    return (
        f"| {nodes:,} | {large.ByteSize():,} | {server} | {took:.2f} s | {outcome} | "
        f"{len(latencies)} | {small_ms} | {stopped:.2f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2000, 5000, 10000])
    parser.add_argument("--serve-sdk", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sdk:
        sdkcli.run(
            OnTheLoop(),
            debug=False,
            address=args.serve_sdk,
            tls_certs_dir=None,
            insecure=True,
            max_recv_message_size=4,
            max_send_message_size=None,
        )
        return
    print(
        "| nodes | request bytes | server | large call | its answer | small calls meanwhile "
        "| their latency median / max, ms | SIGTERM to exit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for nodes in args.nodes:
        for server in SERVERS:
            print(measure(server, nodes), flush=True)


if __name__ == "__main__":
    main()
