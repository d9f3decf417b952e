"""The generated docs pages: field references from the models, the layout from the modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from functions.common import docgen
from functions.common.api.base import SpecModel
from functions.common.kinds import KINDS, Kind
from functions.common.xrdgen import cli, expected_files, spec_schema

ROOT = Path(__file__).resolve().parents[2]


def test_docs_pages_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in expected_files(ROOT).items()
        if path.is_relative_to(ROOT / "docs") and (not path.exists() or path.read_text() != content)
    ]
    assert stale == [], "run `make generate`"


def test_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    for path, content in expected_files(ROOT).items():
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    page = tmp_path / "docs" / "reference" / "gpupool.md"
    page.write_text(page.read_text().replace("Labels that select", "Labels selecting"))
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert str(page) in result.output


def model_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """(path, docstring) of every field under a model, as the reference writes paths."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        yield path, info.description
        for sub, suffix in _nested(info.annotation):
            yield from model_fields(sub, f"{path}{suffix}.")


def _nested(annotation: object) -> Iterator[tuple[type[BaseModel], str]]:
    args = getattr(annotation, "__args__", ())
    origin = getattr(annotation, "__origin__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, ""
    elif origin is list:
        for sub, suffix in _nested(args[0]):
            yield sub, f"[]{suffix}"
    elif origin is dict:
        for sub, suffix in _nested(args[1]):
            yield sub, f".<key>{suffix}"
    else:  # Optional / Annotated
        for arg in args:
            yield from _nested(arg)


def _rules(model: type[BaseModel]) -> Iterator[str]:
    if issubclass(model, SpecModel):
        for rule in model.rules:
            yield rule.message
    for info in model.model_fields.values():
        for sub, _ in _nested(info.annotation):
            yield from _rules(sub)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_reference_lists_every_field_with_its_description(kind: Kind) -> None:
    page = docgen.reference_page(kind, spec_schema(kind))
    spec_part, status_part = page.split("\n## status\n")
    for part, model in ((spec_part, kind.spec), (status_part, kind.status)):
        for path, description in model_fields(model):
            row = next((x for x in part.splitlines() if x.startswith(f"| `{path}` |")), None)
            assert row is not None, f"{path} missing from the {kind.kind} reference"
            assert description, f"{kind.kind} {path} has no docstring"
            assert docgen._cell(docgen._prose(" ".join(description.split()))) in row


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_reference_lists_every_rule(kind: Kind) -> None:
    page = docgen.reference_page(kind, spec_schema(kind))
    for message in _rules(kind.spec):
        assert docgen._cell(docgen._prose(" ".join(message.split()))) in page


def test_reference_shows_defaults_bounds_and_enums() -> None:
    page = docgen.reference_page(KINDS[0], spec_schema(KINDS[0]))
    spec = page.split("\n## status\n")[0]
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in spec.splitlines()}
    assert "| integer | `1` | 1 to 16 |" in rows["`gpu.count`"]
    assert "`vllm`, `triton`, `tensorrt-llm`" in rows["`backend`"]
    assert "| quantity | `100Gi` |" in rows["`model.storage.size`"]
    assert "| duration | `5m` |" in rows["`autoscaling.scaleDownStabilization`"]
    assert "**required**" in rows["`model.name`"]
    assert "[25 values](#values-of-gputype)" in rows["`gpu.type`"]
    assert "### Values of gpu.type" in page
    assert "[{type: queue-depth, target: 5}]" in rows["`autoscaling.metrics`"]
    assert "`self.minReplicas <= self.maxReplicas`" in page


def test_table_cells_escape_pipes() -> None:
    page = docgen.reference_page(KINDS[0], spec_schema(KINDS[0]))
    rule = next(x for x in page.splitlines() if "migProfile is required" in x)
    assert "\\|\\|" in rule  # `||` in the CEL would otherwise split the cell
    assert rule.count(" | ") == 2


def test_module_summary() -> None:
    source = '"""First line\ncontinued.\n\nDetails."""\nimport os\n'
    assert docgen.module_summary(source, "m.py") == "First line continued."
    assert docgen.module_summary("", "pkg/__init__.py") is None
    assert docgen.module_summary("#!/bin/sh\n# Does it.\n# More.\n#\n# x\nset -e\n", "a.sh") == (
        "Does it. More."
    )
    with pytest.raises(ValueError, match=r"m\.py has no docstring"):
        docgen.module_summary("import os\n", "m.py")


def test_layout_lists_every_module() -> None:
    page = (ROOT / "docs" / "layout.md").read_text()
    for top in docgen.LAYOUT_ROOTS:
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            if ast.parse(path.read_text()).body:
                assert f"| `{rel}` |" in page, rel
