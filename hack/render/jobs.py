"""Input documents, checked against the catalog before anything runs: one render job each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.common.kinds import KINDS
from hack.render.catalog import Catalog, KindInfo
from hack.render.claims import claim_to_composite
from hack.render.env import REPO, RenderError, display
from hack.render.functions import FUNCTIONS
from hack.render.yamlio import load_docs

DEFAULT_NAMESPACE = "default"
# Kinds (claim or composite) whose functions read the cluster's composites;
# examples/required/cluster.yaml (the GPUPools and TokenCaches the example cluster has) is their
# default required-resources file.
READS_CLUSTER = frozenset(
    name for k in KINDS if k.reads_cluster for name in (k.kind, k.composite_kind)
)


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


def _problem(raw: dict[str, Any], where: str, catalog: Catalog, source: Path) -> str | None:
    """Why `raw` cannot be rendered with this catalog, or None."""
    kind, api = raw.get("kind"), raw.get("apiVersion")
    info = catalog.kinds.get(str(kind))
    if not kind or not api:
        return f"error: {where}: apiVersion and kind are required"
    if info is None:
        hint = ""
        if catalog.form == "v2" and str(kind).startswith("X"):
            hint = " (X-prefixed composite kinds exist only in --form claims)"
        return (
            f"error: {where}: unknown kind {kind!r} (apiVersion {api}); known kinds "
            f"for --form {catalog.form}: {catalog.known()}{hint}"
        )
    if api != info.api_version:
        return f"error: {where}: {kind} has apiVersion {api!r}, expected {info.api_version!r}"
    meta = raw.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return f"error: {where}: metadata.name (a string) is required"
    if "spec" in raw and not isinstance(raw["spec"], dict):
        return f"error: {where}: spec must be a mapping"
    if info.composition is None:
        return (
            f"error: {where}: no Composition for {info.xr_api_version} {info.xr_kind} "
            f"in compositions/{catalog.form}/; run `make generate`"
        )
    unknown = [f for f in info.functions if f not in FUNCTIONS]
    if unknown:
        return (
            f"error: {display(info.composition_path or source)}: pipeline uses "
            f"unknown function(s) {', '.join(unknown)}; known: {', '.join(FUNCTIONS)}"
        )
    return None


def _defaulted(raw: dict[str, Any], info: KindInfo, where: str, warn: list[str]) -> dict[str, Any]:
    """`raw` with the namespace defaulted (or dropped from cluster-scoped kinds) and a spec."""
    doc = dict(raw)
    doc["metadata"] = dict(raw["metadata"])
    if info.is_claim or info.namespaced_xr:
        doc["metadata"].setdefault("namespace", DEFAULT_NAMESPACE)
    elif "namespace" in doc["metadata"]:
        warn.append(f"note: {where}: {raw['kind']} is cluster-scoped; ignoring metadata.namespace")
        del doc["metadata"]["namespace"]
    doc.setdefault("spec", {})
    return doc


def build_jobs(
    files: Sequence[Path],
    catalog: Catalog,
    observed: Path | None,
    required: Sequence[Path],
    warn: list[str],
) -> list[Job]:
    """One job per document of `files`; every problem of every document at once, or none."""
    jobs: list[Job] = []
    errors: list[str] = []
    for source in files:
        docs = load_docs(source)
        if not docs:
            errors.append(f"error: {display(source)}: no YAML documents")
        for i, raw in enumerate(docs, 1):
            where = display(source) if len(docs) == 1 else f"{display(source)} document {i}"
            problem = _problem(raw, where, catalog, source)
            if problem is not None:
                errors.append(problem)
                continue
            kind = str(raw["kind"])
            info = catalog.kinds[kind]
            doc = _defaulted(raw, info, where, warn)
            jobs.append(
                Job(
                    source=source,
                    index=i,
                    count=len(docs),
                    doc=doc,
                    info=info,
                    xr=claim_to_composite(doc, info) if info.is_claim else doc,
                    observed=observed or side_file(source, "observed"),
                    required=list(required)
                    or [p for p in [side_file(source, "required", kind)] if p],
                )
            )
    if errors:
        raise RenderError("\n".join(errors))
    return jobs
