"""Reading and writing the YAML documents of manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hack.render.env import RenderError, display


def load_docs(path: Path) -> list[dict[str, Any]]:
    """The non-empty documents of `path`; each must be a mapping."""
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
    """doc[k1][k2]..., or None where a level is missing or not a mapping."""
    cur: Any = doc
    for key in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur
