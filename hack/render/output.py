"""What a render prints: its documents under `# Source:`, its warnings on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TypeGuard

import yaml

from hack.render.engine import Outcome


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


def _is_result(doc: object) -> TypeGuard[dict[str, Any]]:
    """A function result the CLI prints with --include-function-results."""
    return (
        isinstance(doc, dict)
        and doc.get("kind") == "Result"
        and "render.crossplane.io" in str(doc.get("apiVersion"))
    )


def format_output(outcome: Outcome, include_results: bool, warn: list[str]) -> str:
    """The outcome's documents; Warning results go to `warn`, and all results are dropped
    unless `include_results`."""
    kept: list[str] = []
    for text in split_stream(outcome.stdout):
        doc = yaml.safe_load(text)
        if _is_result(doc):
            if doc.get("severity") == "Warning":
                warn.append(f"warning: {outcome.job.label}: {doc.get('message')}")
            if not include_results:
                continue
        kept.append(text if text.endswith("\n") else text + "\n")
    body = "".join("---\n" + t for t in kept)
    return f"# Source: {outcome.job.label}\n{body}"


def print_outcomes(outcomes: Sequence[Outcome], include_results: bool) -> None:
    """Rendered documents to stdout in input order; failures, then warnings, to stderr."""
    warn: list[str] = []
    for o in outcomes:
        if o.ok:
            sys.stdout.write(format_output(o, include_results, warn))
        else:
            print(f"error: rendering {o.job.label} failed:\n{o.stderr.rstrip()}", file=sys.stderr)
    sys.stdout.flush()
    for line in warn:
        print(line, file=sys.stderr)
