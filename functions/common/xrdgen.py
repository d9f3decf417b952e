"""Generate XRDs and Compositions from the spec models.

Two forms from the same models:
  xrds/claims/  apiextensions.crossplane.io/v1, namespaced claims over cluster composites
                (legacy in Crossplane v2, which still serves them)
  xrds/v2/      apiextensions.crossplane.io/v2, namespaced (or cluster) composites, no claims
It also writes the docs pages generated from the code (functions/common/docgen.py): the field
references docs/reference/<kind>.md and docs/layout.md.
`inference-xrdgen --check` fails when the files on disk differ from what the models produce.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from functions.common import docgen
from functions.common.kinds import API_VERSION, GROUP, KINDS, VERSION, Kind

CATEGORIES = ["crossplane", "inference"]
# JSON-schema keywords that structural OpenAPI (Kubernetes) does not accept or need.
_DROP = {"title", "additionalProperties", "$defs"}


def structural(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Turn pydantic's JSON schema into a Kubernetes structural schema.

    Inlines `$ref`s, collapses `Optional[X]` (anyOf with null) to X, keeps string-map
    `additionalProperties`, and gives objects whose fields all have defaults `default: {}`,
    so the API server fills nested defaults as the function would.
    """
    defs = schema.get("$defs", {}) if defs is None else defs
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return structural(merged, defs)
    if "anyOf" in schema and not schema.get("x-kubernetes-int-or-string"):
        variants = [v for v in schema["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            if schema.get("default") is not None:
                rest["default"] = schema["default"]
            return structural({**variants[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "anyOf":
            out[key] = [structural(v, defs) for v in value]
        elif key == "const":
            out["enum"] = [value]  # CRD schemas have no `const`
        else:
            out[key] = value
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(schema["additionalProperties"], defs)
    for name, sub in out.get("properties", {}).items():
        # An object field whose own fields all have defaults gets those defaults as its own, so
        # the API server fills them in as the function would. Not `{}`: the API server checks a
        # default against the object's CEL rules, which read those fields. Optional (nullable)
        # fields stay absent.
        if (
            sub.get("type") == "object"
            and "properties" in sub
            and not sub.get("required")
            and "default" not in sub
            and name not in out.get("required", [])
            and not _nullable(schema["properties"][name])
        ):
            sub["default"] = {
                key: prop["default"] for key, prop in sub["properties"].items() if "default" in prop
            }
    if (
        out.get("type") == "object"
        and not out.get("properties")
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _nullable(schema: dict[str, Any]) -> bool:
    return any(v.get("type") == "null" for v in schema.get("anyOf", []))


def spec_schema(kind: Kind) -> dict[str, Any]:
    spec = structural(kind.spec.model_json_schema(by_alias=True, mode="validation"))
    status = structural(kind.status.model_json_schema(by_alias=True, mode="serialization"))
    return {
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": spec, "status": status},
    }


def _printer_columns(kind: Kind) -> list[dict[str, str]]:
    columns = {
        "InferenceService": [
            ("Backend", ".spec.backend"),
            ("Model", ".spec.model.name"),
            ("Endpoint", ".status.endpoint"),
        ],
        "GPUPool": [("Mode", ".spec.sharing.mode"), ("MIG-Config", ".status.migConfig")],
        "TokenCache": [("Eviction", ".spec.evictionPolicy"), ("Redis", ".status.redisURL")],
    }[kind.kind]
    return [{"name": n, "type": "string", "jsonPath": p} for n, p in columns]


def xrd(kind: Kind, form: str) -> dict[str, Any]:
    claims = form == "claims"
    composite_kind, composite_plural = (
        (kind.composite_kind, kind.composite_plural) if claims else (kind.kind, kind.plural)
    )
    spec: dict[str, Any] = {"group": GROUP}
    if not claims:
        spec["scope"] = kind.scope
    spec["names"] = {
        "kind": composite_kind,
        "plural": composite_plural,
        "categories": CATEGORIES,
        **({} if claims and kind.namespaced else {"shortNames": list(kind.short_names)}),
    }
    if claims and kind.namespaced:
        spec["claimNames"] = {
            "kind": kind.kind,
            "plural": kind.plural,
            "shortNames": list(kind.short_names),
            "categories": CATEGORIES,
        }
    spec["defaultCompositionRef"] = {"name": f"{composite_plural}.{GROUP}"}
    spec["versions"] = [
        {
            "name": VERSION,
            "served": True,
            "referenceable": True,
            "additionalPrinterColumns": _printer_columns(kind),
            "schema": {"openAPIV3Schema": spec_schema(kind)},
        }
    ]
    return {
        "apiVersion": f"apiextensions.crossplane.io/{'v1' if claims else 'v2'}",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": f"{composite_plural}.{GROUP}"},
        "spec": spec,
    }


def composition(kind: Kind, form: str) -> dict[str, Any]:
    composite_kind, composite_plural = (
        (kind.composite_kind, kind.composite_plural)
        if form == "claims"
        else (kind.kind, kind.plural)
    )
    return {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "metadata": {
            "name": f"{composite_plural}.{GROUP}",
            "labels": {"inference.ai/form": form},
        },
        "spec": {
            "compositeTypeRef": {"apiVersion": API_VERSION, "kind": composite_kind},
            "mode": "Pipeline",
            "pipeline": [{"step": "compose", "functionRef": {"name": kind.function}}],
        },
    }


HEADER = (
    "# Generated by `make generate` (inference-xrdgen) from functions/common/api. Do not edit.\n"
)


def dump(obj: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(obj, sort_keys=False, width=100, allow_unicode=True)


def expected_files(root: Path) -> dict[Path, str]:
    files: dict[Path, str] = {}
    for form in ("claims", "v2"):
        for kind in KINDS:
            name = f"{kind.kind.lower()}.yaml"
            files[root / "xrds" / form / name] = dump(xrd(kind, form))
            files[root / "compositions" / form / name] = dump(composition(kind, form))
    for kind in KINDS:
        page = docgen.reference_page(kind, spec_schema(kind))
        files[root / "docs" / "reference" / f"{kind.kind.lower()}.md"] = page
    files[root / "docs" / "layout.md"] = docgen.layout_page(docgen.read_modules(root))
    return files


@click.command()
@click.option("--root", type=click.Path(path_type=Path), default=Path("."), show_default=True)
@click.option("--check", is_flag=True, help="Fail if generated files are stale; write nothing.")
def cli(root: Path, check: bool) -> None:
    """Write xrds/, compositions/ and the generated docs pages from the models and modules."""
    stale = []
    files = expected_files(root)
    for path, content in files.items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    if check and stale:
        click.echo("stale generated files (run `make generate`):", err=True)
        for path in stale:
            click.echo(f"  {path}", err=True)
        sys.exit(1)
    click.echo(f"{'checked' if check else 'wrote'} {len(files)} files")
