"""Benchmark of the conversion layer: Struct <-> dict options, and per-call CPU against a baseline.

`make bench-convert` (`python -m tests.serving.convert_bench --help`). Three tables, each
measured side by side in one run (compare within a table, not across runs or machines):

1. `options`: ways to read a protobuf Struct into a dict and to write a dict into one, on the
   requests `crossplane composition render` sends (captured on the wire by
   tests/bench_functions/capture.py) and on
   a GPUPool of realistic Nodes, CPU per request. Every option is first checked to give exactly
   what the SDK gives (equal dicts with the same types and key order; equal Struct bytes).
2. `functions`: CPU per call of each function, in process (`run`) and served (the function's
   console script, CPU of the server process per call driven by a client process), for this
   tree and a baseline tree (`--baseline REF`, a `git archive` of it), interleaved, the least of
   `--repeat` rounds (load only adds). The responses (deterministic serialization) must be
   byte-identical.
3. `serving`: where the served-vs-in-process gap goes. Server CPU per call with a function
   that does nothing (an empty response) and with the InferenceService, on the SDK's
   `runtime.serve` (compose awaited on the event loop), on serve.py of the baseline tree (its
   conversion too), on this tree's serve.py (worker threads) and on this tree's serve.py
   composing on the loop (no thread hop); beside them the InferenceService in process, on the
   same request object and on a freshly parsed one.

Functions run as separate processes with `PYTHONPATH` on their tree; CPU is process CPU time
(user + system), which load on the machine inflates less than wall time, yet does inflate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from google.protobuf import json_format, struct_pb2

from functions.common import structs
from functions.common.kinds import KINDS
from tests import fnharness
from tests.bench_functions.capture import Ports, capture
from tests.gpupool import realnodes
from tests.procs import ROOT, free_block, free_port
from tests.serving.bench import POOL_PRODUCTS, POOL_SELECTOR, big_pool

try:
    import orjson  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # not a dependency: the options table measures it when it is installed
    orjson = None

METHOD = "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction"
CAPTURED = {"InferenceService": "llama-70b", "TokenCache": "shared-cache"}
POOL_SIZES = (100, 1000)
MAX_MESSAGE_MB = 64  # a pool of 1,000 realistic Nodes is a request of about 32 MB


# --- requests --------------------------------------------------------------------------------


def pool_request(nodes: int) -> fnv1.RunFunctionRequest:
    """bench-serve's MIG GPUPool over `nodes` realistic Nodes."""
    items = realnodes.pool_nodes(nodes, POOL_SELECTOR, seed=1, products=POOL_PRODUCTS)
    return fnharness.request(big_pool(), required={"nodes": items})


def capture_requests(out: Path) -> dict[str, int]:
    """CAPTURED's requests as `crossplane composition render` sends them (v2 form), recorded on
    the wire by bench-functions' proxy, written to `out/<Kind>/<composite>.binpb`; per kind, how
    many."""
    work = out / "capture"
    work.mkdir(parents=True, exist_ok=True)
    examples = [ROOT / "examples" / "claims" / f"{name}.yaml" for name in CAPTURED.values()]
    # Ports: the functions from the base, their recording proxies from base + 10.
    got = capture(examples, Ports(free_block(10 + len(KINDS))), work, form="v2")
    kind_of = {k.function: k.kind for k in KINDS}
    counts: dict[str, int] = {}
    for c in got:
        kind = kind_of[c.function]
        (out / kind).mkdir(exist_ok=True)
        (out / kind / f"{c.composite}.binpb").write_bytes(c.request)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def requests(captured: Path) -> dict[str, tuple[str, bytes]]:
    """Label -> (kind, serialized request): the captured ones and the realistic pools."""
    out = {
        f"{kind} {name}": (kind, (captured / kind / f"{name}.binpb").read_bytes())
        for kind, name in CAPTURED.items()
    }
    for n in POOL_SIZES:
        out[f"GPUPool {n:,} nodes"] = ("GPUPool", pool_request(n).SerializeToString())
    return out


# --- 1. options ------------------------------------------------------------------------------


def structs_of(req: fnv1.RunFunctionRequest) -> list[struct_pb2.Struct]:
    return [
        req.observed.composite.resource,
        *(r.resource for r in req.observed.resources.values()),
        *(i.resource for rs in req.required_resources.values() for i in rs.items),
    ]


Read = Callable[[struct_pb2.Struct], Any]


def read_options() -> dict[str, tuple[Read, Callable[[dict[str, Any]], Any] | None]]:
    """Label -> (read, what it must give from the SDK's dict; None: not a full conversion)."""

    def sdk_checked(s: struct_pb2.Struct) -> dict[str, Any]:
        if structs.non_finite(s):
            raise ValueError
        return resource.struct_to_dict(s)

    def same(d: dict[str, Any]) -> dict[str, Any]:
        return d

    return {
        "SDK struct_to_dict (json_format.MessageToDict) + NaN scan (before)": (sdk_checked, same),
        "SDK struct_to_dict alone": (resource.struct_to_dict, same),
        "json_format.MessageToJson + json.loads": (
            lambda s: json.loads(json_format.MessageToJson(s)),
            same,
        ),
        "Struct's own mapping: dict(s.items()) (top level only)": (lambda s: dict(s.items()), None),
        "structs.to_dict: one walk, NaN checked, no managedFields (after)": (
            structs.to_dict,
            _without_managed_fields,
        ),
        "structs.to_dict(only=metadata): what the GPUPool reads of a required Node (after)": (
            lambda s: structs.to_dict(s, ("metadata",)),
            lambda d: {k: v for k, v in _without_managed_fields(d).items() if k == "metadata"},
        ),
    }


def write_options() -> dict[str, Callable[[dict[str, Any]], Any]]:
    def sdk(d: dict[str, Any]) -> struct_pb2.Struct:
        s = struct_pb2.Struct()
        s.update(d)
        return s

    def ours(d: dict[str, Any]) -> struct_pb2.Struct:
        s = struct_pb2.Struct()
        structs.update(s, d)
        return s

    def via_json(d: dict[str, Any]) -> struct_pb2.Struct:
        return json_format.Parse(json.dumps(d), struct_pb2.Struct())

    opts: dict[str, Callable[[dict[str, Any]], Any]] = {
        "SDK resource.update (Struct.update) (before)": sdk,
        "json_format.ParseDict": lambda d: json_format.ParseDict(d, struct_pb2.Struct()),
        "json.dumps + json_format.Parse": via_json,
    }
    if orjson is not None:
        opts["orjson.dumps + json_format.Parse"] = lambda d: json_format.Parse(
            orjson.dumps(d), struct_pb2.Struct()
        )
        opts["orjson.dumps alone (no Struct: the floor of any JSON route)"] = lambda d: (
            orjson.dumps(d) and struct_pb2.Struct()
        )
    opts["structs.update: upb setters (after)"] = ours
    return opts


def cpu_per(fn: Callable[[], Any], *, at_least: float = 0.15) -> float:
    """CPU seconds per call of `fn`, over enough calls to take `at_least` CPU seconds."""
    fn()
    n = 1
    while True:
        began = time.process_time()
        for _ in range(n):
            fn()
        spent = time.process_time() - began
        if spent >= at_least:
            return spent / n
        n *= 2


def fastest(fns: dict[str, Callable[[], Any]], rounds: int = 3) -> dict[str, float]:
    """ms CPU per call of each, the least of `rounds` interleaved rounds (noise only adds)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], cpu_per(fn) * 1000)
    return best


def options_table(reqs: dict[str, tuple[str, bytes]]) -> list[str]:
    out = ["| direction | corpus | option | ms CPU | vs before |", "|---|---|---|---|---|"]
    for label, (kind, data) in reqs.items():
        req = fnv1.RunFunctionRequest.FromString(data)
        corpus = structs_of(req)
        want = [resource.struct_to_dict(s) for s in corpus]
        reads: dict[str, Callable[[], Any]] = {}
        for name, (read, expect) in read_options().items():
            if expect is not None:
                got = [read(c) for c in corpus]
                assert repr(got) == repr([expect(w) for w in want]), f"{name}: {label} differs"
            reads[name] = lambda r=read, cs=corpus: [r(c) for c in cs]  # type: ignore[misc]
        rsp = fnharness.RUNNERS[kind].run(req)
        dicts = [resource.struct_to_dict(r.resource) for r in rsp.desired.resources.values()]
        wanted = [write_options()["SDK resource.update (Struct.update) (before)"](d) for d in dicts]
        writes: dict[str, Callable[[], Any]] = {}
        for name, write in write_options().items():
            if "alone" not in name:
                got = [write(d) for d in dicts]
                assert [g.SerializeToString() for g in got] == [
                    w.SerializeToString() for w in wanted
                ], f"{name} writes {label} differently"
            writes[name] = lambda w=write, ds=dicts: [w(d) for d in ds]  # type: ignore[misc]
        for direction, fns in (("read", reads), ("write", writes)):
            times = fastest(fns)
            before = next(iter(times.values()))
            for name, ms in times.items():
                out.append(f"| {direction} | {label} | {name} | {ms:.3f} | {ms / before:.2f} |")
        print("\n".join(out[-len(read_options()) - len(write_options()) :]), flush=True)
    return out


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


# --- 2. functions, baseline vs this tree -----------------------------------------------------

IN_PROCESS = """
import sys, time
from crossplane.function import logging
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
logging.configure(level=logging.Level.INFO)
kind, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
module = {"InferenceService": "inferenceservice", "GPUPool": "gpupool", "TokenCache": "tokencache"}
fn = __import__(f"functions.{module[kind]}.fn", fromlist=["runner"]).runner()
req = fnv1.RunFunctionRequest.FromString(open(path, "rb").read())
out = fn.run(req).SerializeToString(deterministic=True)
n, began = 0, time.process_time()
while time.process_time() - began < seconds:
    fn.run(req)
    n += 1
sys.stdout.buffer.write(str((time.process_time() - began) / n).encode() + b"\\n" + out)
"""


def in_process(tree: Path, kind: str, path: Path, seconds: float) -> tuple[float, bytes]:
    """CPU seconds per `run` in a fresh process on `tree`'s code, and the response bytes."""
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, kind, str(path), str(seconds)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        check=True,
    ).stdout
    line, _, rsp = out.partition(b"\n")
    return float(line), rsp


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server(cmd: list[str], tree: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        cmd,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server {cmd} did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def served_cpu(proc: subprocess.Popen[bytes], port: int, data: bytes, seconds: float) -> float:
    """Server CPU seconds per call, calls sent one after another from this process."""
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", MAX_MESSAGE_MB << 20)]
    )
    call = channel.unary_unary(METHOD)
    for _ in range(3):
        call(data, timeout=120)
    n, began, wall = 0, process_cpu(proc.pid), time.monotonic()
    while time.monotonic() - wall < seconds or n < 3:
        call(data, timeout=120)
        n += 1
    spent = process_cpu(proc.pid) - began
    channel.close()
    return spent / n


def function_cmd(kind: str, port: int) -> list[str]:
    module = kind.lower()
    return [
        sys.executable,
        "-c",
        f"from functions.{module}.main import cli; cli(['--insecure', "
        f"'--address=127.0.0.1:{port}', '--max-recv-message-size={MAX_MESSAGE_MB}'])",
    ]


def functions_table(
    reqs: dict[str, tuple[str, bytes]], trees: dict[str, Path], repeat: int, seconds: float
) -> list[str]:
    out = [
        "| request | request bytes | tree | in process, ms CPU | served, ms CPU | served - in "
        "process | in process, after/before | served, after/before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for label, (kind, data) in reqs.items():
            path = Path(tmp) / "request.binpb"
            path.write_bytes(data)
            runs: dict[str, list[tuple[float, float]]] = {t: [] for t in trees}
            responses = {}
            for _ in range(repeat):
                for name, tree in trees.items():  # interleaved: load changes hit both alike
                    ms, responses[name] = in_process(tree, kind, path, seconds)
                    port = free_port()
                    with server(function_cmd(kind, port), tree, port) as proc:
                        served = served_cpu(proc, port, data, seconds)
                    runs[name].append((ms, served))
            assert len(set(responses.values())) == 1, f"{label}: the trees answer differently"
            med = {t: (min(r[0] for r in rs), min(r[1] for r in rs)) for t, rs in runs.items()}
            base = med[next(iter(trees))]
            for name, (ip, sv) in med.items():
                out.append(
                    f"| {label} | {len(data):,} | {name} | {ip * 1e3:.2f} | {sv * 1e3:.2f} | "
                    f"{(sv - ip) * 1e3:.2f} | {ip / base[0]:.2f} | {sv / base[1]:.2f} |"
                )
            print("\n".join(out[-len(trees) :]), flush=True)
    return out


# --- 3. serving overhead ---------------------------------------------------------------------


SERVE = """
import sys
from crossplane.function import cli as sdkcli
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from functions.common import serve
from functions.common.kinds import INFERENCE_SERVICE
from functions.inferenceservice.fn import runner

stack, function, address, mb = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


class Nothing:
    # A function that composes nothing: what is left is the cost of serving a call.
    kind = INFERENCE_SERVICE

    def run(self, req):
        return fnv1.RunFunctionResponse(meta=fnv1.ResponseMeta(tag=req.meta.tag))

    async def RunFunction(self, req, _):
        return self.run(req)


fn = Nothing() if function == "nothing" else runner()
if stack == "sdk":
    sdkcli.run(fn, debug=False, address=address, tls_certs_dir=None, insecure=True,
               max_recv_message_size=mb, max_send_message_size=None)
    raise SystemExit(0)
if stack == "inline":
    async def on_loop(self, req, _):
        return self.compose(req)
    serve.Servicer.RunFunction = on_loop
serve.run(fn, debug=False, address=address, tls_certs_dir=None, insecure=True,
          max_recv_message_size=mb, max_send_message_size=None)
"""

STACKS = {
    "SDK runtime.serve: compose awaited on the event loop": ("sdk", "this"),
    "serve.py before: worker thread, asyncio.wait_for(shield(run_in_executor))": ("ours", "base"),
    "serve.py after: worker thread, one future and one timer": ("ours", "this"),
    "serve.py after, composing on the event loop (no thread hop)": ("inline", "this"),
}

IN_PROCESS_FRESH = """
import sys, time
from crossplane.function import logging
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from functions.inferenceservice.fn import runner
logging.configure(level=logging.Level.INFO)
fn, data, seconds = runner(), open(sys.argv[1], "rb").read(), float(sys.argv[2])
req = fnv1.RunFunctionRequest.FromString(data)
def fresh():
    fn.run(fnv1.RunFunctionRequest.FromString(data)).SerializeToString()
def fresh_then_idle():  # as a server between calls: other processes take the core and caches
    fresh()
    time.sleep(0.002)
for label, call in (
    ("run(req), the same request object", lambda: fn.run(req)),
    ("parse, run, serialize: a fresh request", fresh),
    ("a fresh request, then 2 ms idle (CPU time only)", fresh_then_idle),
):
    call()
    n, began = 0, time.process_time()
    while time.process_time() - began < seconds:
        call()
        n += 1
    print(f"{label}\t{(time.process_time() - began) / n}")
"""


def serving_table(data: bytes, trees: dict[str, Path], repeat: int, seconds: float) -> list[str]:
    """Server CPU per call with a function that does nothing and with the InferenceService,
    per serving stack, and the InferenceService in process, side by side."""
    out = [
        "| how (least of the rounds) | nothing, ms CPU | InferenceService, ms CPU | "
        "InferenceService minus nothing |",
        "|---|---|---|---|",
    ]
    runs: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "request.binpb"
        path.write_bytes(data)
        for _ in range(repeat):
            for label, (stack, tree) in STACKS.items():
                for function in ("nothing", "inferenceservice"):
                    port = free_port()
                    cmd = [
                        sys.executable,
                        "-c",
                        SERVE,
                        stack,
                        function,
                        f"127.0.0.1:{port}",
                        str(MAX_MESSAGE_MB),
                    ]
                    with server(cmd, trees[tree], port) as proc:
                        cpu = served_cpu(proc, port, data, seconds)
                    runs.setdefault((label, function), []).append(cpu)
            lines = subprocess.run(
                [sys.executable, "-c", IN_PROCESS_FRESH, str(path), str(seconds)],
                cwd=ROOT,
                capture_output=True,
                check=True,
                text=True,
            ).stdout.splitlines()
            for line in lines:
                label, value = line.split("\t")
                runs.setdefault((f"in process: {label}", "inferenceservice"), []).append(
                    float(value)
                )
    labels = dict.fromkeys(label for label, _ in runs)
    for label in labels:
        nothing = runs.get((label, "nothing"))
        fn = min(runs[(label, "inferenceservice")]) * 1e3
        if nothing:
            base = min(nothing) * 1e3
            out.append(f"| {label} | {base:.3f} | {fn:.3f} | {fn - base:.3f} |")
        else:
            out.append(f"| {label} | - | {fn:.3f} | - |")
    print("\n".join(out), flush=True)
    return out


# --- main ------------------------------------------------------------------------------------


def baseline_tree(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["options", "functions", "serving"])
    parser.add_argument("--baseline", default="main", help="git ref the functions table compares")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--requests", type=Path, help="captured requests (default: capture now)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        captured = args.requests
        if captured is None:
            captured = Path(tmp) / "requests"
            print(f"captured {capture_requests(captured)}", flush=True)
        reqs = requests(captured)
        print(f"load before: {os.getloadavg()}", flush=True)
        if "options" in args.tables:
            options_table(reqs)
        if "functions" in args.tables:
            base = baseline_tree(args.baseline, Path(tmp) / "baseline")
            functions_table(
                reqs,
                {f"baseline ({args.baseline})": base, "this tree": ROOT},
                args.repeat,
                args.seconds,
            )
        if "serving" in args.tables:
            data = reqs[f"InferenceService {CAPTURED['InferenceService']}"][1]
            trees = {"base": baseline_tree(args.baseline, Path(tmp) / "base"), "this": ROOT}
            serving_table(data, trees, args.repeat, args.seconds)
        print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
