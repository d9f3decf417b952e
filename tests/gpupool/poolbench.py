"""Benchmark: the GPUPool function by node count, on Nodes of realistic size (`make bench-pool`).

For each pool size N the pool (MIG, two GPU models, 8 GPUs a node) is reconciled once from
scratch, then the steady-state request is built as Crossplane sends it: the N Nodes (realistic
size, tests/gpupool/realnodes.py) carrying the labels the pool applied, the observed composed
resources (one provider-kubernetes Object per Node, whose status.atProvider.manifest holds the
whole Node, as provider-kubernetes v1.2.0 writes it) and the composite with the status the
function reported. Measured on that request:

- request and response bytes (the response must stay under Crossplane's 4 MiB receive limit),
  the composite's status bytes (JSON, as etcd stores it within its 1.5 MiB object limit) in the
  steady state and while a MIG change is pending on every node;
- CPU per call in process: the request parse, and `RunFunction` on the parsed request;
- CPU per call served: `function-gpupool` as a process, called over gRPC with the request's
  bytes, its CPU time (utime + stime from /proc) per call, and its peak RSS (VmHWM).

`python -m tests.gpupool.poolbench --help`; `rows()` returns the table for other benchmarks
(`make bench-functions`). CPU times depend on the machine and its load: compare rows measured
in one run, or against a baseline run side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from crossplane.function import logging, resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import json_format

from functions.gpupool.fn import runner
from tests.gpupool import realnodes
from tests.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
SIZES = (10, 100, 1000, 5000)
SELECTOR = {"inference.ai/pool": "big"}
PROFILES = [{"name": "3g.40gb", "count": 1}, {"name": "1g.10gb", "count": 3}]
CHANGED = [{"name": "2g.20gb", "count": 3}, {"name": "1g.10gb", "count": 1}]
"""A change of layout on every node: each gets an entry in status.migChanges until it is done."""
METHOD = "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction"
TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


def composite(profiles: list[dict[str, Any]], status: dict[str, Any] | None) -> dict[str, Any]:
    """The pool as a v2 composite (namespaced form's cluster-scoped GPUPool)."""
    out: dict[str, Any] = {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {
            "name": "big",
            "uid": "6b0b5f36-3c1e-4d6f-9a51-2f7d0c1e9b11",
            "creationTimestamp": realnodes.TIME,
            "generation": 3,
        },
        "spec": {
            "nodeSelector": SELECTOR,
            "sharing": {"mode": "mig", "profiles": profiles, "leftover": "fill"},
        },
    }
    if status:
        out["status"] = status
    return out


def struct(obj: dict[str, Any]) -> Any:
    return resource.dict_to_struct(obj)


@dataclass
class Scenario:
    """The steady-state request of an N-node pool, and one with a MIG change pending."""

    nodes: int
    steady: bytes
    change: bytes


def scenario(count: int, seed: int = 1) -> Scenario:
    function = runner()
    live = realnodes.pool_nodes(count, SELECTOR, seed=seed)
    first = function.run(
        fnv1.RunFunctionRequest(
            observed=fnv1.State(
                composite=fnv1.Resource(resource=struct(composite(PROFILES, None)))
            ),
            required_resources={
                "nodes": fnv1.Resources(items=[fnv1.Resource(resource=struct(n)) for n in live])
            },
        )
    )
    # A pool the function refuses (a fatal result) has no status and nothing composed.
    status = resource.struct_to_dict(first.desired.composite.resource).get("status", {})
    owner = composite(PROFILES, status)
    desired = {n: resource.struct_to_dict(r.resource) for n, r in first.desired.resources.items()}
    by_node = {
        d["spec"]["forProvider"]["manifest"]["metadata"]["name"]: (name, d)
        for name, d in desired.items()
        if d["kind"] == "Object" and d["spec"]["forProvider"]["manifest"]["kind"] == "Node"
    }
    observed: dict[str, Any] = {}
    for node in live:
        if node["metadata"]["name"] not in by_node:
            continue
        name, obj = by_node[node["metadata"]["name"]]
        # The Node as the pool left it: its labels applied and mig-manager done.
        node["metadata"]["labels"] |= obj["spec"]["forProvider"]["manifest"]["metadata"]["labels"]
        node["metadata"]["labels"]["nvidia.com/mig.config.state"] = "success"
        observed[name] = struct(realnodes.observed_object(obj, node, owner, name, seed=seed))
    for name, obj in desired.items():
        if name not in observed:
            observed[name] = struct(obj)
    required = fnv1.Resources(items=[fnv1.Resource(resource=struct(n)) for n in live])

    def request(profiles: list[dict[str, Any]]) -> bytes:
        out: bytes = fnv1.RunFunctionRequest(
            meta=fnv1.RequestMeta(tag="bench", capabilities=[fnv1.CAPABILITY_CONDITIONS]),
            observed=fnv1.State(
                composite=fnv1.Resource(resource=struct(composite(profiles, status))),
                resources={n: fnv1.Resource(resource=s) for n, s in observed.items()},
            ),
            required_resources={
                "nodes": required,
                "inferenceservices": fnv1.Resources(),
                "gpupools": fnv1.Resources(),
            },
        ).SerializeToString()
        return out

    return Scenario(count, request(PROFILES), request(CHANGED))


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def served(root: Path) -> Iterator[tuple[subprocess.Popen[bytes], grpc.Channel]]:
    """function-gpupool of the tree at `root` as a process, and a channel to it."""
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "import sys; from functions.gpupool.main import cli; sys.exit(cli())",
        "--insecure",
        f"--address=127.0.0.1:{port}",
        "--max-recv-message-size=2047",
        "--workers=1",
    ]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
    )
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield proc, channel
    finally:
        channel.close()
        proc.terminate()
        proc.wait(60)


@dataclass
class Row:
    nodes: int
    request_bytes: int
    response_bytes: int
    status_bytes: int
    change_status_bytes: int
    parse_ms: float
    inprocess_ms: float
    served_ms: float
    rss_mib: float
    outcome: str

    def cells(self) -> list[str]:
        return [
            f"{self.nodes:,}",
            f"{self.request_bytes / MIB:,.2f}",
            f"{self.response_bytes / MIB:,.3f}",
            f"{self.status_bytes / 1024:,.1f} / {self.change_status_bytes / 1024:,.1f}",
            f"{self.parse_ms:,.1f}",
            f"{self.inprocess_ms:,.1f}",
            f"{self.served_ms:,.1f}",
            f"{self.rss_mib:,.0f}",
            self.outcome,
        ]


HEADER = [
    "nodes",
    "request MiB",
    "response MiB",
    "status KiB (steady / MIG change)",
    "parse ms",
    "RunFunction ms (in process)",
    "served ms CPU/call",
    "server peak RSS MiB",
    "outcome",
]


def outcome(rsp: fnv1.RunFunctionResponse) -> str:
    fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    return f"fatal: {fatal[0][:90]}" if fatal else f"{len(rsp.desired.resources):,} resources"


def status_bytes(rsp: fnv1.RunFunctionResponse) -> int:
    status = json_format.MessageToDict(rsp.desired.composite.resource).get("status", {})
    return len(json.dumps(status, separators=(",", ":")))


def calls_for(nodes: int) -> int:
    """Calls to average over: 20 for small pools, 3 for the largest (a call there is seconds)."""
    return max(3, min(20, 5_000 // max(nodes, 1)))


def measure(sc: Scenario, root: Path = ROOT) -> Row:
    """One pool size: bytes, in-process CPU per call, served CPU per call and peak RSS."""
    function = runner()
    calls = calls_for(sc.nodes)
    start = time.process_time()
    for _ in range(calls):
        req = fnv1.RunFunctionRequest.FromString(sc.steady)
    parse = (time.process_time() - start) / calls
    rsp = function.run(req)  # warm
    start = time.process_time()
    for _ in range(calls):
        rsp = function.run(req)
    inprocess = (time.process_time() - start) / calls
    change = function.run(fnv1.RunFunctionRequest.FromString(sc.change))
    with served(root) as (proc, channel):
        call = channel.unary_unary(METHOD)
        call(sc.steady, timeout=600)  # warm: imports, first compose
        before = cpu_of(proc.pid)
        for _ in range(calls):
            wire = call(sc.steady, timeout=600)
        served_cpu = (cpu_of(proc.pid) - before) / calls
        rss = peak_rss_mib(proc.pid)
    served_rsp = fnv1.RunFunctionResponse.FromString(wire)
    return Row(
        nodes=sc.nodes,
        request_bytes=len(sc.steady),
        response_bytes=len(wire),
        status_bytes=status_bytes(rsp),
        change_status_bytes=status_bytes(change),
        parse_ms=parse * 1000,
        inprocess_ms=inprocess * 1000,
        served_ms=served_cpu * 1000,
        rss_mib=rss,
        outcome=outcome(served_rsp),
    )


def rows(sizes: Sequence[int] = SIZES, seed: int = 1, root: Path = ROOT) -> list[Row]:
    """The benchmark's rows, one per pool size (for `make bench-functions`)."""
    logging.configure(level=logging.Level.DISABLED)
    return [measure(scenario(n, seed), root) for n in sizes]


def table(found: Sequence[Row]) -> list[str]:
    return [
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(r.cells()) + " |" for r in found),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--nodes", type=int, nargs="+", default=list(SIZES), help="pool sizes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--root", type=Path, default=ROOT, help="tree whose function-gpupool is served")
    args = ap.parse_args(argv)
    began = time.perf_counter()
    found = rows(args.nodes, args.seed, args.root)
    load = os.getloadavg()
    print("\n".join(table(found)))
    print(
        f"\n{os.cpu_count()} CPUs, load average {load[0]:.2f} at the end; served: one "
        f"function-gpupool process (--workers=1), calls back to back; "
        f"{time.perf_counter() - began:.0f} s in all."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
