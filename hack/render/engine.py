"""`crossplane composition render` once per job, in parallel, stoppable on an interrupt."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.render.env import REPO, display
from hack.render.jobs import Job
from hack.render.yamlio import dump, load_docs


@dataclass
class Outcome:
    job: Job
    ok: bool
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class Renderer:
    """What every render shares: the binaries, the functions file, a scratch directory."""

    cli: Path
    core: Path
    functions: Path
    workdir: Path
    timeout: str
    include_full_xr: bool


_ACTIVE: set[subprocess.Popen[str]] = set()
_ACTIVE_LOCK = threading.Lock()


def single_doc_file(doc: dict[str, Any], path: Path | None, workdir: Path, name: str) -> Path:
    """The CLI reads one document from XRD/Composition files; extract it when needed."""
    if path is not None and len(load_docs(path)) == 1:
        return path
    out = workdir / name
    out.write_text(dump(doc))
    return out


def _command(r: Renderer, n: int, job: Job, xr_file: Path) -> list[str]:
    info = job.info
    assert info.composition is not None
    comp = single_doc_file(info.composition, info.composition_path, r.workdir, f"comp-{n}.yaml")
    xrd = single_doc_file(info.xrd, info.xrd_path, r.workdir, f"xrd-{n}.yaml")
    cmd = [
        str(r.cli),
        "composition",
        "render",
        str(xr_file),
        str(comp),
        str(r.functions),
        f"--xrd={xrd}",
        f"--crossplane-binary={r.core}",
        "--include-function-results",
        f"--timeout={r.timeout}",
    ]
    if r.include_full_xr:
        cmd.append("--include-full-xr")
    if job.observed is not None:
        cmd.append(f"--observed-resources={job.observed}")
    cmd.extend(f"--required-resources={p}" for p in job.required)
    return cmd


def render_one(r: Renderer, n: int, job: Job) -> Outcome:
    xr_file = r.workdir / f"xr-{n}.yaml"
    xr_file.write_text(dump(job.xr))
    cmd = _command(r, n, job, xr_file)
    started = time.monotonic()
    # Own session, so an interrupt can stop the CLI and the core binary it runs as a group.
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )
    with _ACTIVE_LOCK:
        _ACTIVE.add(proc)
    try:
        stdout, stderr = proc.communicate()
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(proc)
    elapsed = time.monotonic() - started
    stderr = stderr.replace(str(xr_file), display(job.source))
    return Outcome(job, proc.returncode == 0, stdout, stderr, elapsed)


def kill_active() -> None:
    """SIGKILL the process group of every render still running."""
    with _ACTIVE_LOCK:
        procs = list(_ACTIVE)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def render_all(r: Renderer, jobs: Sequence[Job], parallel: int) -> list[Outcome]:
    """Every job's outcome, in job order; on an interrupt the running renders are killed."""
    pool = ThreadPoolExecutor(max_workers=max(1, parallel))
    try:
        return list(pool.map(render_one, [r] * len(jobs), range(len(jobs)), jobs))
    finally:
        kill_active()  # only non-empty when interrupted
        pool.shutdown(wait=True, cancel_futures=True)
