"""Every ```yaml block of README.md and docs/**/*.md is checked against the schema, so a snippet
cannot drift from it: each document that is an inference.ai resource must pass
`crossplane resource validate` against both XRD forms and the spec model. A block that is
deliberately partial is preceded by `<!-- not-a-resource -->`; keep those rare."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.common.kinds import API_VERSION, GROUP, KINDS
from tests.cli.test_validate import validate
from tests.toolchain import ROOT, Tools

MARKER = "<!-- not-a-resource -->"
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
BY_KIND = {k.kind: k for k in KINDS}


@dataclass(frozen=True)
class Snippet:
    file: str  # relative to the repository root
    line: int  # of the opening fence, 1-based
    text: str
    marked: bool  # preceded by MARKER

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def snippets(path: Path) -> list[Snippet]:
    """The yaml fenced blocks of a markdown file."""
    out: list[Snippet] = []
    lines = path.read_text().splitlines()
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    fence: str | None = None
    start, is_yaml, marked = 0, False, False
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence, start, body = match.group(1), number, []
                is_yaml = match.group(2).lower() in ("yaml", "yml")
                previous = [x.strip() for x in lines[: number - 1] if x.strip()]
                marked = bool(previous) and previous[-1] == MARKER
            continue
        if match and match.group(1).startswith(fence) and not match.group(2):
            if is_yaml:
                indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
                text = "\n".join(x[indent:] for x in body)
                out.append(Snippet(rel, start, text, marked))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{rel}:{start}: unclosed code fence"
    return out


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


SNIPPETS = [s for path in markdown_files() for s in snippets(path)]


def documents(snippet: Snippet) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(snippet.text) if d is not None]
    except yaml.YAMLError as err:
        pytest.fail(f"{snippet.where}: not YAML: {err}")


def is_resource(doc: Any) -> bool:
    return isinstance(doc, dict) and {"apiVersion", "kind", "metadata"} <= doc.keys()


def ours(doc: Any) -> bool:
    return is_resource(doc) and str(doc["apiVersion"]).split("/")[0] == GROUP


def resources() -> list[tuple[str, dict[str, Any]]]:
    """(name for the file, document) of every inference.ai resource in an unmarked block."""
    out = []
    for s in SNIPPETS:
        if s.marked:
            continue
        for i, doc in enumerate(documents(s)):
            if ours(doc):
                name = re.sub(r"[^a-z0-9]+", "-", s.file.lower()).strip("-")
                out.append((f"{name}-l{s.line}-{i}.yaml", doc))
    return out


def test_snippets_finds_yaml_blocks_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```sh\nmake\n```\n<!-- not-a-resource -->\n\n```yaml\nspec: {}\n```\n"
        "- item\n\n  ```yaml\n  a: 1\n  ```\n````yml\n```\nb: 2\n````\n"
    )
    found = snippets(page)
    assert [(s.line, s.text, s.marked) for s in found] == [
        (7, "spec: {}", True),
        (12, "a: 1", False),
        (15, "```\nb: 2", False),
    ]


def test_the_docs_show_each_kind() -> None:
    kinds = {doc["kind"] for _, doc in resources()}
    assert kinds == set(BY_KIND), "README/docs lost an example of a kind"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.where)
def test_each_yaml_block_is_a_resource_or_marked(snippet: Snippet) -> None:
    docs = documents(snippet)
    assert docs, f"{snippet.where}: empty yaml block"
    if snippet.marked:
        assert not all(ours(d) for d in docs), (
            f"{snippet.where}: marked {MARKER} but is a whole inference.ai resource; "
            "drop the marker so it is validated"
        )
        return
    for doc in docs:
        assert is_resource(doc), (
            f"{snippet.where}: a yaml block must hold whole resources (apiVersion, kind, "
            f"metadata); put {MARKER} before a deliberately partial one"
        )
        if ours(doc):
            assert doc["apiVersion"] == API_VERSION, snippet.where
            assert doc["kind"] in BY_KIND, f"{snippet.where}: unknown kind {doc['kind']}"
            # The function's own checks: what a render would reject.
            BY_KIND[doc["kind"]].spec.model_validate(doc.get("spec") or {})


@pytest.mark.parametrize("form", ["claims", "v2"])
def test_snippets_validate_against_the_xrds(tools: Tools, tmp_path: Path, form: str) -> None:
    found = resources()
    for name, doc in found:
        (tmp_path / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    result = validate(tools, form, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(found)} success cases, 0 failure cases" in result.stdout, result.stdout


def test_a_drifted_snippet_fails(tools: Tools, tmp_path: Path) -> None:
    """The check has teeth: a field the schema does not have, and a value it does not allow."""
    good = next(doc for _, doc in resources() if doc["kind"] == "InferenceService")
    spec = good["spec"]
    (tmp_path / "unknown-field.yaml").write_text(
        yaml.safe_dump({**good, "spec": {**spec, "gpus": spec.get("gpu", {})}})
    )
    (tmp_path / "bad-enum.yaml").write_text(
        yaml.safe_dump({**good, "spec": {**spec, "backend": "tgi"}})
    )
    for form in ("claims", "v2"):
        result = validate(tools, form, tmp_path)
        assert "0 success cases, 2 failure cases" in result.stdout, result.stdout + result.stderr
