#!/usr/bin/env python3
"""Render InferenceService / GPUPool / TokenCache manifests offline with the real Crossplane CLI.

For every input document this script picks the Composition and XRD for its kind, turns a claim
into the composite Crossplane would create for it (``--form claims``) or uses it as the XR as it
is (``--form v2``), and runs ``crossplane composition render`` (crossplane/cli >= v2.3) against
the three functions, which it serves itself on 127.0.0.1 in Development runtime mode. Rendering
happens in a local Crossplane core binary (``--crossplane-binary``), so neither Docker nor a
cluster is needed.

Exit status: 0 all inputs rendered; 1 at least one render failed (the CLI's message, e.g. a
function's Fatal result, is printed); 2 usage, input or environment error.

Needs only the standard library and PyYAML; run it with the project venv (``make render``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
FORMS = ("claims", "v2")
DEFAULT_PORT_BASE = 9443
# Function name (= Composition functionRef name = console script) -> offset from FN_PORT_BASE.
FUNCTION_PORTS = {
    "function-inferenceservice": 0,
    "function-gpupool": 1,
    "function-tokencache": 2,
}
PACKAGE_REGISTRY = "xpkg.crossplane.io/inference-platform"
DEFAULT_NAMESPACE = "default"
CLAIM_NAME_LABEL = "crossplane.io/claim-name"
CLAIM_NAMESPACE_LABEL = "crossplane.io/claim-namespace"
# Claim spec fields Crossplane does not copy to the composite (xcrd claim/XR machinery props,
# minus the propagated compositionRef/Selector/UpdatePolicy/RevisionSelector).
CLAIM_ONLY_SPEC_FIELDS = (
    "compositeDeletePolicy",
    "compositionRevisionRef",
    "resourceRef",
    "writeConnectionSecretToRef",
    "claimRef",
    "resourceRefs",
    "publishConnectionDetailsTo",
    "environmentConfigRefs",
)
# Kubernetes' name-suffix alphabet (k8s.io/apimachinery/pkg/util/rand), for a stable XR name.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0


class RenderError(Exception):
    """An input, environment or setup problem; message is printed as is, exit status 2."""


# --------------------------------------------------------------------------------------------
# Locations


def tools_dir() -> Path:
    """Same resolution as hack/tools.sh."""
    if os.environ.get("TOOLS_DIR"):
        return Path(os.environ["TOOLS_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "inference-platform" / "tools"


def find_binary(env: str, name: str) -> Path:
    path = Path(os.environ.get(env) or tools_dir() / "bin" / name)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RenderError(
            f"error: {path} not found or not executable; run `make tools` "
            f"(or set {env} / TOOLS_DIR)"
        )
    return path


def find_function(name: str) -> Path:
    """Console script in $FUNCTIONS_BIN_DIR, next to this interpreter, or in .venv/bin."""
    dirs = [Path(sys.executable).parent, REPO / ".venv" / "bin"]
    if os.environ.get("FUNCTIONS_BIN_DIR"):
        dirs.insert(0, Path(os.environ["FUNCTIONS_BIN_DIR"]))
    for directory in dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise RenderError(
        f"error: console script {name!r} not found next to {sys.executable} or in .venv/bin; "
        "run `make venv`"
    )


def package_version() -> str:
    try:
        with (REPO / "pyproject.toml").open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0.0.0"


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# YAML


def load_docs(path: Path) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except OSError as e:
        raise RenderError(f"error: cannot read {display(path)}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise RenderError(f"error: {display(path)} is not valid YAML: {e}") from e
    out = []
    for i, doc in enumerate(docs, 1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise RenderError(f"error: {display(path)} document {i}: not a YAML mapping")
        out.append(doc)
    return out


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def dig(doc: dict[str, Any], *keys: str) -> Any:
    cur: Any = doc
    for key in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


# --------------------------------------------------------------------------------------------
# XRDs and Compositions of one form


@dataclass
class KindInfo:
    """What rendering one user-facing kind needs."""

    kind: str  # kind as the user writes it (claim kind, or XR kind)
    api_version: str
    xr_kind: str
    xr_api_version: str
    is_claim: bool
    namespaced_xr: bool
    xrd: dict[str, Any]
    xrd_path: Path
    composition: dict[str, Any] | None = None
    composition_path: Path | None = None
    functions: list[str] = field(default_factory=list)


@dataclass
class Catalog:
    form: str
    kinds: dict[str, KindInfo]

    def known(self) -> str:
        return ", ".join(sorted(self.kinds))


def _served_version(xrd: dict[str, Any]) -> str:
    versions = dig(xrd, "spec", "versions") or []
    for v in versions:
        if isinstance(v, dict) and v.get("referenceable"):
            return str(v["name"])
    if versions and isinstance(versions[0], dict):
        return str(versions[0]["name"])
    raise RenderError(f"error: XRD {dig(xrd, 'metadata', 'name')} has no spec.versions")


def load_catalog(form: str) -> Catalog:
    xrd_dir, comp_dir = REPO / "xrds" / form, REPO / "compositions" / form
    for d in (xrd_dir, comp_dir):
        if not d.is_dir():
            raise RenderError(
                f"error: {display(d)} does not exist; run `make generate` (inference-xrdgen)"
            )
    kinds: dict[str, KindInfo] = {}
    for path in yaml_files(xrd_dir):
        for xrd in load_docs(path):
            if xrd.get("kind") != "CompositeResourceDefinition":
                continue
            group = dig(xrd, "spec", "group")
            xr_kind = dig(xrd, "spec", "names", "kind")
            api_version = f"{group}/{_served_version(xrd)}"
            api = str(xrd.get("apiVersion", ""))
            scope = dig(xrd, "spec", "scope")
            if api.endswith("/v1"):
                namespaced = scope in ("Namespaced",)
            else:
                namespaced = (scope or "Namespaced") == "Namespaced"
            claim_kind = dig(xrd, "spec", "claimNames", "kind")
            for kind, is_claim in ((xr_kind, False), (claim_kind, True)):
                if kind:
                    kinds[str(kind)] = KindInfo(
                        kind=str(kind),
                        api_version=api_version,
                        xr_kind=str(xr_kind),
                        xr_api_version=api_version,
                        is_claim=is_claim,
                        namespaced_xr=namespaced,
                        xrd=xrd,
                        xrd_path=path,
                    )
    comps: dict[tuple[str, str], list[tuple[dict[str, Any], Path]]] = {}
    for path in yaml_files(comp_dir):
        for comp in load_docs(path):
            if comp.get("kind") != "Composition":
                continue
            ref = dig(comp, "spec", "compositeTypeRef") or {}
            key = (str(ref.get("apiVersion")), str(ref.get("kind")))
            comps.setdefault(key, []).append((comp, path))
    for info in kinds.values():
        found = comps.get((info.xr_api_version, info.xr_kind), [])
        if len(found) == 1:
            info.composition, info.composition_path = found[0]
            pipeline = dig(info.composition, "spec", "pipeline") or []
            info.functions = [
                str(dig(step, "functionRef", "name")) for step in pipeline if isinstance(step, dict)
            ]
        elif len(found) > 1:
            names = ", ".join(str(dig(c, "metadata", "name")) for c, _ in found)
            raise RenderError(
                f"error: several Compositions in {display(comp_dir)} compose "
                f"{info.xr_api_version} {info.xr_kind}: {names}"
            )
    return Catalog(form, kinds)


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Job:
    source: Path
    index: int  # 1-based document number in source
    count: int  # documents in source
    doc: dict[str, Any]  # as the user wrote it (namespace defaulted)
    info: KindInfo
    xr: dict[str, Any] = field(default_factory=dict)
    observed: Path | None = None
    required: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        where = display(self.source)
        return where if self.count == 1 else f"{where} (document {self.index} of {self.count})"


def xr_name_for_claim(name: str, namespace: str) -> str:
    """Crossplane names a claim's composite `<claim-name>-<5 random chars>`; make it stable."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    suffix = "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:5])
    return f"{name[:57]}-{suffix}"


def _without_k8s_keys(m: Any) -> dict[str, str]:
    """Drop *kubernetes.io / *k8s.io keys, as the claim syncer does."""
    if not isinstance(m, dict):
        return {}
    out = {}
    for k, v in m.items():
        prefix = str(k).split("/")[0]
        if prefix.endswith(("kubernetes.io", "k8s.io")):
            continue
        out[str(k)] = v
    return out


def claim_to_composite(claim: dict[str, Any], info: KindInfo) -> dict[str, Any]:
    """The composite the claim controller (LegacyCluster XRD) creates for a claim."""
    meta = claim["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    labels = _without_k8s_keys(meta.get("labels"))
    labels.update({CLAIM_NAME_LABEL: name, CLAIM_NAMESPACE_LABEL: namespace})
    xr_meta: dict[str, Any] = {"name": xr_name_for_claim(name, namespace)}
    annotations = _without_k8s_keys(meta.get("annotations"))
    if annotations:
        xr_meta["annotations"] = annotations
    xr_meta["labels"] = labels
    spec = {k: v for k, v in (claim.get("spec") or {}).items() if k not in CLAIM_ONLY_SPEC_FIELDS}
    spec["claimRef"] = {
        "apiVersion": claim["apiVersion"],
        "kind": claim["kind"],
        "name": name,
        "namespace": namespace,
    }
    return {
        "apiVersion": info.xr_api_version,
        "kind": info.xr_kind,
        "metadata": xr_meta,
        "spec": spec,
    }


# Kinds whose functions read other composites; examples/required/cluster.yaml (the GPUPools and
# TokenCaches the example cluster has) is their default required-resources file.
READS_CLUSTER = {"InferenceService", "XInferenceService"}


def side_file(source: Path, kind: str, doc_kind: str = "") -> Path | None:
    """examples/<kind>/<example-basename>.yaml for an example under examples/<form>/, else
    examples/required/cluster.yaml for the kinds that read the cluster's composites."""
    fallback = "cluster.yaml" if kind == "required" and doc_kind in READS_CLUSTER else None
    for directory in (source.parent.parent / kind, REPO / "examples" / kind):
        for name in (source.name, fallback):
            candidate = directory / name if name else None
            if candidate is not None and candidate.is_file():
                return candidate
    return None


def build_jobs(
    files: Sequence[Path],
    catalog: Catalog,
    observed: Path | None,
    required: Sequence[Path],
    warn: list[str],
) -> list[Job]:
    jobs: list[Job] = []
    errors: list[str] = []
    for source in files:
        docs = load_docs(source)
        if not docs:
            errors.append(f"error: {display(source)}: no YAML documents")
        for i, raw in enumerate(docs, 1):
            where = display(source) if len(docs) == 1 else f"{display(source)} document {i}"
            kind, api = raw.get("kind"), raw.get("apiVersion")
            info = catalog.kinds.get(str(kind))
            if not kind or not api:
                errors.append(f"error: {where}: apiVersion and kind are required")
                continue
            if info is None:
                hint = ""
                if catalog.form == "v2" and str(kind).startswith("X"):
                    hint = " (X-prefixed composite kinds exist only in --form claims)"
                errors.append(
                    f"error: {where}: unknown kind {kind!r} (apiVersion {api}); known kinds "
                    f"for --form {catalog.form}: {catalog.known()}{hint}"
                )
                continue
            if api != info.api_version:
                errors.append(
                    f"error: {where}: {kind} has apiVersion {api!r}, expected {info.api_version!r}"
                )
                continue
            meta = raw.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                errors.append(f"error: {where}: metadata.name (a string) is required")
                continue
            if "spec" in raw and not isinstance(raw["spec"], dict):
                errors.append(f"error: {where}: spec must be a mapping")
                continue
            if info.composition is None:
                errors.append(
                    f"error: {where}: no Composition for {info.xr_api_version} {info.xr_kind} "
                    f"in compositions/{catalog.form}/; run `make generate`"
                )
                continue
            unknown = [f for f in info.functions if f not in FUNCTION_PORTS]
            if unknown:
                errors.append(
                    f"error: {display(info.composition_path or source)}: pipeline uses "
                    f"unknown function(s) {', '.join(unknown)}; known: {', '.join(FUNCTION_PORTS)}"
                )
                continue
            doc = dict(raw)
            doc["metadata"] = dict(meta)
            namespaced_input = info.is_claim or info.namespaced_xr
            if namespaced_input:
                doc["metadata"].setdefault("namespace", DEFAULT_NAMESPACE)
            elif "namespace" in doc["metadata"]:
                warn.append(f"note: {where}: {kind} is cluster-scoped; ignoring metadata.namespace")
                del doc["metadata"]["namespace"]
            doc.setdefault("spec", {})
            xr = claim_to_composite(doc, info) if info.is_claim else doc
            jobs.append(
                Job(
                    source=source,
                    index=i,
                    count=len(docs),
                    doc=doc,
                    info=info,
                    xr=xr,
                    observed=observed or side_file(source, "observed"),
                    required=list(required)
                    or [p for p in [side_file(source, "required", kind)] if p],
                )
            )
    if errors:
        raise RenderError("\n".join(errors))
    return jobs


# --------------------------------------------------------------------------------------------
# Function processes


@dataclass
class Served:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None  # None: reused, not ours
    log: Path | None


def port_open(port: int, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_base() -> int:
    raw = os.environ.get("FN_PORT_BASE", str(DEFAULT_PORT_BASE))
    try:
        base = int(raw)
    except ValueError as e:
        raise RenderError(f"error: FN_PORT_BASE={raw!r} is not a port number") from e
    if not 1 <= base <= 65535 - len(FUNCTION_PORTS):
        raise RenderError(f"error: FN_PORT_BASE={raw!r} is out of range")
    return base


def stop(served: Sequence[Served]) -> None:
    """Stop our function process groups: SIGTERM, then SIGKILL after a grace period."""
    ours = [s for s in served if s.proc is not None and s.proc.poll() is None]
    for s in ours:
        assert s.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(s.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for s in ours:
        assert s.proc is not None
        try:
            s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.is_file():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join("    " + line for line in text)


@contextlib.contextmanager
def serve_functions(
    names: Sequence[str], workdir: Path | None, *, reuse: bool, debug: bool
) -> Iterator[list[Served]]:
    """Serve the functions; their output goes to workdir/<name>.log, or to ours when None."""
    base = port_base()
    served: list[Served] = []
    try:
        # Check every port first, so nothing is started when one is taken.
        plan: list[tuple[str, int, bool]] = []
        busy = []
        for name in names:
            port = base + FUNCTION_PORTS[name]
            in_use = port_open(port)
            if in_use and not reuse:
                busy.append(f"port 127.0.0.1:{port} (for {name}) is already in use")
            plan.append((name, port, in_use))
        if busy:
            raise RenderError(
                "error: "
                + "; ".join(busy)
                + ".\nStop whatever listens there, use --reuse-running to render against "
                "functions already served (e.g. by `make run`), or set FN_PORT_BASE."
            )
        for name, port, in_use in plan:
            if in_use:
                served.append(Served(name, port, None, None))
                continue
            cmd = [str(find_function(name)), "--insecure", "--address", f"127.0.0.1:{port}"]
            if debug:
                cmd.append("--debug")
            log = workdir / f"{name}.log" if workdir is not None else None
            with log.open("wb") if log is not None else contextlib.nullcontext() as out:
                # Own session: a terminal's Ctrl-C reaches only us, and we stop the group.
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT if out is not None else None,
                    start_new_session=True,
                    cwd=REPO,
                )
            served.append(Served(name, port, proc, log))
        deadline = time.monotonic() + START_TIMEOUT_S
        for s in served:
            while not port_open(s.port):
                if s.proc is not None and s.proc.poll() is not None:
                    raise RenderError(
                        f"error: {s.name} exited with status {s.proc.returncode} before "
                        f"listening on 127.0.0.1:{s.port}; its output:\n{log_tail(s.log)}"
                    )
                if time.monotonic() > deadline:
                    raise RenderError(
                        f"error: {s.name} did not listen on 127.0.0.1:{s.port} within "
                        f"{START_TIMEOUT_S:.0f}s; its output:\n{log_tail(s.log)}"
                    )
                time.sleep(0.05)
        yield served
    finally:
        stop(served)


def functions_yaml(served: Sequence[Served]) -> str:
    version = package_version()
    docs = []
    for s in served:
        docs.append(
            {
                "apiVersion": "pkg.crossplane.io/v1",
                "kind": "Function",
                "metadata": {
                    "name": s.name,
                    "annotations": {
                        "render.crossplane.io/runtime": "Development",
                        "render.crossplane.io/runtime-development-target": f"127.0.0.1:{s.port}",
                    },
                },
                "spec": {"package": f"{PACKAGE_REGISTRY}/{s.name}:v{version}"},
            }
        )
    return "---\n".join(dump(d) for d in docs)


# --------------------------------------------------------------------------------------------
# Validation and rendering


def single_doc_file(doc: dict[str, Any], path: Path | None, workdir: Path, name: str) -> Path:
    """The CLI reads one document from XRD/Composition files; extract it when needed."""
    if path is not None and len(load_docs(path)) == 1:
        return path
    out = workdir / name
    out.write_text(dump(doc))
    return out


def validate(cli: Path, catalog: Catalog, jobs: Sequence[Job], workdir: Path) -> str | None:
    """`crossplane resource validate` of the inputs against the form's XRDs, fully offline.

    Returns the CLI's report when validation fails, else None.
    """
    crds = tools_dir() / "xpkg-cache"
    image = core_image()
    if not (crds / image.replace(":", "@")).is_dir():
        raise RenderError(
            f"error: core CRDs for offline validation missing under {crds}; run `make tools`"
        )
    inputs = workdir / "validate-inputs.yaml"
    inputs.write_text("---\n".join(dump(j.doc) for j in jobs))
    cmd = [
        str(cli),
        "resource",
        "validate",
        str(REPO / "xrds" / catalog.form),
        str(inputs),
        "--cache-dir",
        str(crds),
        "--crossplane-image",
        image,
        "--skip-success-results",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode == 0:
        return None
    report = (proc.stdout + proc.stderr).strip()
    legend = "\n".join(f"  {j.doc['kind']} {j.doc['metadata']['name']}: {j.label}" for j in jobs)
    return f"{report}\ninputs:\n{legend}"


def core_image() -> str:
    version = "v2.4.0"
    env = REPO / "hack" / "versions.env"
    if env.is_file():
        for line in env.read_text().splitlines():
            if line.startswith("CROSSPLANE_CORE_VERSION="):
                version = line.split("=", 1)[1].strip()
    return f"xpkg.crossplane.io/crossplane/crossplane:{version}"


@dataclass
class Outcome:
    job: Job
    ok: bool
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class Renderer:
    cli: Path
    core: Path
    functions: Path
    workdir: Path
    args: argparse.Namespace


def render_one(r: Renderer, n: int, job: Job) -> Outcome:
    cli, core, fns, workdir, args = r.cli, r.core, r.functions, r.workdir, r.args
    info = job.info
    assert info.composition is not None
    xr_file = workdir / f"xr-{n}.yaml"
    xr_file.write_text(dump(job.xr))
    comp = single_doc_file(info.composition, info.composition_path, workdir, f"comp-{n}.yaml")
    xrd = single_doc_file(info.xrd, info.xrd_path, workdir, f"xrd-{n}.yaml")
    cmd = [
        str(cli),
        "composition",
        "render",
        str(xr_file),
        str(comp),
        str(fns),
        f"--xrd={xrd}",
        f"--crossplane-binary={core}",
        "--include-function-results",
        f"--timeout={args.timeout}",
    ]
    if args.include_full_xr:
        cmd.append("--include-full-xr")
    if job.observed is not None:
        cmd.append(f"--observed-resources={job.observed}")
    cmd.extend(f"--required-resources={p}" for p in job.required)
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


_ACTIVE: set[subprocess.Popen[str]] = set()
_ACTIVE_LOCK = threading.Lock()


def kill_active() -> None:
    with _ACTIVE_LOCK:
        procs = list(_ACTIVE)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def split_stream(text: str) -> list[str]:
    """Split the CLI's `---`-separated output into documents, keeping their text as is."""
    docs: list[str] = []
    cur: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == "---":
            if "".join(cur).strip():
                docs.append("".join(cur))
            cur = []
        else:
            cur.append(line)
    if "".join(cur).strip():
        docs.append("".join(cur))
    return docs


def format_output(outcome: Outcome, include_results: bool, warn: list[str]) -> str:
    kept: list[str] = []
    for text in split_stream(outcome.stdout):
        doc = yaml.safe_load(text)
        if (
            isinstance(doc, dict)
            and doc.get("kind") == "Result"
            and "render.crossplane.io" in str(doc.get("apiVersion"))
        ):
            if doc.get("severity") == "Warning":
                warn.append(f"warning: {outcome.job.label}: {doc.get('message')}")
            if not include_results:
                continue
        kept.append(text if text.endswith("\n") else text + "\n")
    body = "".join("---\n" + t for t in kept)
    return f"# Source: {outcome.job.label}\n{body}"


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="render.py",
        epilog="environment: TOOLS_DIR (crossplane binaries, as hack/tools.sh), CROSSPLANE_BIN, "
        "CROSSPLANE_CORE_BIN, FN_PORT_BASE (default 9443: inferenceservice, +1 gpupool, "
        "+2 tokencache), FUNCTIONS_BIN_DIR (where the function-* console scripts are)",
        description="Render claims/XRs offline with `crossplane composition render` against "
        "the three functions, served locally by this script.",
    )
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="manifests or directories to render (default: examples/claims)",
    )
    p.add_argument(
        "--form",
        choices=FORMS,
        default="claims",
        help="XRD/Composition form: claims (v1 XRDs, claim->XR) or v2 (namespaced XRs)",
    )
    p.add_argument(
        "--observed",
        type=Path,
        metavar="PATH",
        help="observed composed resources for every input "
        "(default: examples/observed/<basename> when present)",
    )
    p.add_argument(
        "--required",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="required resources for every input, repeatable "
        "(default: examples/required/<basename> when present)",
    )
    p.add_argument(
        "--include-results",
        action="store_true",
        help="also print the functions' results (kind: Result)",
    )
    p.add_argument(
        "--include-full-xr",
        action="store_true",
        help="print the full XR, not only its name and status",
    )
    p.add_argument(
        "--reuse-running",
        action="store_true",
        help="use functions already listening on their ports (e.g. `make run`)",
    )
    p.add_argument(
        "--no-validate",
        action="store_true",
        help="skip `crossplane resource validate` of the inputs against the XRDs",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="only serve the functions on their ports until Ctrl-C (`make run`); no rendering",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="run functions with --debug and print their logs to stderr",
    )
    p.add_argument("--timeout", default="1m", help="CLI --timeout per render (default 1m)")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="renders to run in parallel",
    )
    return p.parse_args(argv)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def serve(args: argparse.Namespace) -> int:
    """`make run`: serve all functions in the foreground until interrupted or one exits."""
    with serve_functions(list(FUNCTION_PORTS), None, reuse=False, debug=args.debug) as fns:
        for s in fns:
            print(f"serving {s.name} on 127.0.0.1:{s.port} (insecure)", file=sys.stderr)
        print("press Ctrl-C to stop", file=sys.stderr)
        while True:
            for s in fns:
                if s.proc is not None and s.proc.poll() is not None:
                    print(
                        f"error: {s.name} exited with status {s.proc.returncode}", file=sys.stderr
                    )
                    return 1
            time.sleep(0.5)


def run(args: argparse.Namespace) -> int:
    if args.serve:
        return serve(args)
    files: list[Path] = []
    for arg in args.files or [REPO / "examples" / "claims"]:
        files.extend(yaml_files(arg) if arg.is_dir() else [arg])
    if not files:
        raise RenderError(
            f"error: no YAML files in {', '.join(map(str, args.files)) or 'examples/claims'}"
        )
    for p in [*files, *args.required, *([args.observed] if args.observed else [])]:
        if not p.is_file():
            raise RenderError(f"error: {p}: no such file")
    cli = find_binary("CROSSPLANE_BIN", "crossplane")
    core = find_binary("CROSSPLANE_CORE_BIN", "crossplane-core")
    catalog = load_catalog(args.form)
    warn: list[str] = []
    jobs = build_jobs(files, catalog, args.observed, args.required, warn)
    for line in warn:
        print(line, file=sys.stderr)
    warn.clear()
    names = sorted({f for j in jobs for f in j.info.functions}, key=list(FUNCTION_PORTS).index)

    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        workdir = Path(tmp)
        if not args.no_validate:
            report = validate(cli, catalog, jobs, workdir)
            if report is not None:
                print(
                    f"error: inputs do not match the {args.form} XRD schemas:\n{report}",
                    file=sys.stderr,
                )
                return 1
        with serve_functions(names, workdir, reuse=args.reuse_running, debug=args.debug) as fns:
            fns_file = workdir / "functions.yaml"
            fns_file.write_text(functions_yaml(fns))
            pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
            try:
                outcomes = list(
                    pool.map(
                        render_one,
                        [Renderer(cli, core, fns_file, workdir, args)] * len(jobs),
                        range(len(jobs)),
                        jobs,
                    )
                )
            finally:
                kill_active()  # only non-empty when interrupted
                pool.shutdown(wait=True, cancel_futures=True)
            failed = [o for o in outcomes if not o.ok]
            for o in outcomes:
                if o.ok:
                    sys.stdout.write(format_output(o, args.include_results, warn))
                else:
                    print(
                        f"error: rendering {o.job.label} failed:\n{o.stderr.rstrip()}",
                        file=sys.stderr,
                    )
            sys.stdout.flush()
            for line in warn:
                print(line, file=sys.stderr)
            for s in fns:
                died = s.proc is not None and s.proc.poll() is not None
                if died:
                    print(f"error: {s.name} exited during rendering", file=sys.stderr)
                tail = log_tail(s.log, 200) if (died or args.debug) else ""
                if tail:
                    print(f"--- {s.name} log (127.0.0.1:{s.port}):\n{tail}", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} of {len(outcomes)} render(s) failed", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return run(args)
    except RenderError as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
