"""Run one case through RunFunction and judge the response (the fuzz properties).

Classes of failure, each counted by `make fuzz` and failing the property test:

- `exception`: RunFunction raised (Crossplane would retry forever on an opaque error);
- `fatal-unnamed`: a fatal result that names no field, or not the one a mutation broke;
- `fatal-with-resources`: a fatal result that still carries desired resources (half a config);
- `internal-error`: the function's own status check failed (status would not match the XRD);
- `invalid-object`: without a fatal, a desired object the API server would refuse (name,
  namespace, labels, selectors, container/volume/port names, numbers beyond int64);
- `invalid-status`: without a fatal, a status the status model or int64 refuses;
- `nondeterministic-repeat` / `nondeterministic-order`: the same request again, or with every
  map in another order, gives other bytes (`nondeterministic-process`: in another process with
  another hash seed, judged by `crossprocess`);
- `oversized-message`: a result message over 1 KiB, an Event note's limit (inputs echoed);
- `slow`: a call over 1 s of CPU time (`slow-large-pool` when the case has a pool of 100+
  nodes: documented). CPU, not wall-clock, time: on a shared machine a 5 ms call can wait
  a second for a core.
"""

from __future__ import annotations

import asyncio
import faulthandler
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from pydantic import ValidationError

from functions.common.composer import CompositionFunction
from functions.common.kinds import KINDS, Kind
from functions.common.peers import spec_of, status_of
from tests.fuzz import kube
from tests.fuzz.inputs import Case

FAILURES = (
    "exception",
    "fatal-unnamed",
    "fatal-with-resources",
    "internal-error",
    "invalid-object",
    "invalid-status",
    "nondeterministic-repeat",
    "nondeterministic-order",
    "nondeterministic-process",
    "oversized-message",
    "slow",
)
SLOW_SECONDS = 1.0
HANG_SECONDS = 120
# Results become Events on the composite and claim: Kubernetes refuses an Event note over 1 KiB.
MAX_MESSAGE = 1024
FIELD_PATH = re.compile(r"\b(?:spec|metadata)(?:\.[A-Za-z0-9_/-]+|\[\d+\])*")
ROOT = Path(__file__).resolve().parents[2]
_loop: asyncio.AbstractEventLoop | None = None
_runners: dict[str, CompositionFunction[Any]] = {}


def runner(kind: str) -> CompositionFunction[Any]:
    if not _runners:
        from functions.gpupool.fn import runner as gpupool  # noqa: PLC0415
        from functions.inferenceservice.fn import runner as inferenceservice  # noqa: PLC0415
        from functions.tokencache.fn import runner as tokencache  # noqa: PLC0415

        _runners.update(
            InferenceService=inferenceservice(), GPUPool=gpupool(), TokenCache=tokencache()
        )
    return _runners[kind]


def kind_of(req: fnv1.RunFunctionRequest) -> Kind:
    # Read from the Struct itself: struct_to_dict refuses a composite holding NaN or Infinity.
    kind = req.observed.composite.resource.fields["kind"].string_value
    return {k.kind: k for k in KINDS}[kind.removeprefix("X")]


def run(req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
    """RunFunction, as the gRPC server calls it (an async servicer method)."""
    global _loop  # noqa: PLW0603 (one event loop per process, reused by every call)
    if _loop is None:
        _loop = asyncio.new_event_loop()
    rsp: fnv1.RunFunctionResponse = _loop.run_until_complete(
        runner(kind_of(req).kind).RunFunction(req, None)
    )
    return rsp


def wire(rsp: fnv1.RunFunctionResponse) -> bytes:
    data: bytes = rsp.SerializeToString(deterministic=True)
    return data


def digest(rsp: fnv1.RunFunctionResponse) -> str:
    return hashlib.sha256(wire(rsp)).hexdigest()


def where(err: BaseException) -> str:
    """`Type at file:line` of the innermost frame in our code."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/functions/" in f.filename] or frames
    spot = ours[-1] if ours else None
    at = f" at {Path(spot.filename).relative_to(ROOT)}:{spot.lineno}" if spot else ""
    if spot and not spot.filename.startswith(str(ROOT)):
        at = f" at {spot.filename.rsplit('site-packages/', 1)[-1]}:{spot.lineno}"
    return f"{type(err).__name__}{at}"


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"\.|\[(\d+)\]", path) if p)


def names_field(message: str, broken: Sequence[str | int] | None) -> bool:
    """Whether a fatal message names a field (and, for a mutation, the one it broke, one
    above or below it, or a sibling: a replacement the schema accepts can make a rule about
    its neighbour fail, e.g. cache.enabled true needing cache.tokenCacheRef)."""
    found = [_parts(p) for p in FIELD_PATH.findall(message)]
    if not found:
        return False
    if broken is None:
        return True
    want = tuple(str(p) for p in broken)
    parent = want[:-1] if len(want) > 2 else want
    return any(f[: len(parent)] == parent[: len(f)] for f in found)


@dataclass
class Outcome:
    verdict: str
    """`rendered`, `fatal` or `exception`."""
    seconds: float
    """CPU seconds of the call (the process's, so other load on the machine does not count)."""
    failures: dict[str, str] = field(default_factory=dict)
    """Failure class -> one detail."""
    digest: str = ""
    request: bytes = b""


def spec_accepted(case: Case) -> bool:
    """Whether the spec model (so the schema, CEL rules included) accepts the case's spec."""
    try:
        case.kind.spec.model_validate(spec_of(case.composite))
    except ValidationError:
        return False
    return True


def _problems(case: Case, rsp: fnv1.RunFunctionResponse) -> dict[str, str]:
    out: dict[str, str] = {}
    fatals = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    for r in rsp.results:
        if len(r.message.encode()) > MAX_MESSAGE:
            out["oversized-message"] = f"{len(r.message.encode())} bytes"
    if fatals:
        broken = case.broken
        if broken and broken[0] == "spec" and spec_accepted(case):
            broken = None  # the mutation left a valid spec: a compose-time fatal may name any
        if rsp.desired.resources:
            out["fatal-with-resources"] = f"{len(rsp.desired.resources)} resources"
        for message in fatals:
            if message.startswith("internal error"):
                out["internal-error"] = message[:300]
            elif not names_field(message, broken):
                out["fatal-unnamed"] = f"broke {broken}: {message[:300]}"
        return out
    for name in sorted(rsp.desired.resources):
        obj = resource.struct_to_dict(rsp.desired.resources[name].resource)
        if problems := kube.object_problems(name, obj):
            out["invalid-object"] = "; ".join(problems[:3])
            break
    status = status_of(resource.struct_to_dict(rsp.desired.composite.resource))
    try:
        case.kind.status.model_validate(status)
    except ValidationError as err:
        out["invalid-status"] = str(err)[:300]
    if problems := list(kube.numbers_problems("status", status)):
        out["invalid-status"] = "; ".join(problems[:3])
    return out


def check(case: Case, shuffle: int = 1) -> Outcome:
    """Run `case` three times (as is, again, every map reordered) and judge it.

    A call that hangs cannot be interrupted in process (it may sit in C code, e.g. a Decimal
    with a huge exponent), so a watchdog dumps every thread's stack and exits instead.
    """
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        return _check(case, shuffle)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _check(case: Case, shuffle: int) -> Outcome:
    req = case.request()
    start = time.process_time()
    try:
        rsp = run(req)
    except Exception as err:
        seconds = time.process_time() - start
        return Outcome("exception", seconds, {"exception": where(err)}, "", req.SerializeToString())
    seconds = time.process_time() - start
    fatal = any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results)
    out = Outcome("fatal" if fatal else "rendered", seconds, _problems(case, rsp), digest(rsp))
    out.request = req.SerializeToString(deterministic=True)
    if seconds > SLOW_SECONDS:
        slow = "slow-large-pool" if "large-pool" in case.tags else "slow"
        out.failures[slow] = f"{seconds:.2f} s CPU"
    if wire(run(req)) != wire(rsp):
        out.failures["nondeterministic-repeat"] = "a second call gave other bytes"
    if wire(run(case.request(shuffle=shuffle))) != wire(rsp):
        out.failures["nondeterministic-order"] = "the request with maps reordered gave other bytes"
    return out


def crossprocess(requests: Iterable[tuple[bytes, str]], seeds: Sequence[int] = (1, 2)) -> list[int]:
    """Indexes of requests whose response digest differs in processes with other hash seeds
    (`python -m tests.fuzz.worker`, one per seed, run side by side)."""
    items = list(requests)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests"
        with path.open("wb") as f:
            for data, _ in items:
                f.write(len(data).to_bytes(8, "big") + data)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.worker", str(path)],
                cwd=ROOT,
                env={**os.environ, "PYTHONHASHSEED": str(seed)},
                stdout=subprocess.PIPE,
                text=True,
            )
            for seed in seeds
        ]
        answers = [w.communicate()[0].split() for w in workers]
        for w in workers:
            if w.returncode:
                raise RuntimeError(f"tests.fuzz.worker exited {w.returncode}")
    return [
        i for i, (_, want) in enumerate(items) if any(len(a) <= i or a[i] != want for a in answers)
    ]
