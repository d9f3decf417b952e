"""Identity of a composite: the names, namespace and labels its composed resources share."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.common.kinds import Kind

CLAIM_NAME = "crossplane.io/claim-name"
CLAIM_NAMESPACE = "crossplane.io/claim-namespace"
PART_OF = "inference-platform"
MAX_NAME = 63  # DNS-1035 label: Services, and every name pods derive from


def child_name(base: str, suffix: str = "") -> str:
    """`<base>-<suffix>` within 63 characters, deterministic and unique per input.

    Too-long names keep a readable prefix and end in a hash of the full name, so two long
    claims that share a prefix still get different objects.
    """
    name = f"{base}-{suffix}" if suffix else base
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(digest) - 1 - (len(suffix) + 1 if suffix else 0)
    head = base[:keep].rstrip("-.")
    return f"{head}-{digest}-{suffix}" if suffix else f"{head}-{digest}"


def display_name(metadata: Mapping[str, Any]) -> str:
    """The name users know a composite by: its claim's name (claims form), else its own."""
    labels = metadata.get("labels") or {}
    return str(
        (labels.get(CLAIM_NAME) if isinstance(labels, Mapping) else None)
        or metadata.get("name")
        or ""
    )


def namespace_of(metadata: Mapping[str, Any]) -> str:
    """A namespaced composite's namespace: its own (v2), else its claim's (claims form)."""
    labels = metadata.get("labels") or {}
    claim = labels.get(CLAIM_NAMESPACE) if isinstance(labels, Mapping) else None
    return str(metadata.get("namespace") or claim or "default")


@dataclass(frozen=True)
class Owner:
    """Who the composed resources belong to.

    Works for both XR shapes: a Crossplane v1 claim's cluster-scoped composite (names come
    from the claim labels, so resources carry the claim's name, not the generated XR name)
    and a Crossplane v2 namespaced composite.
    """

    kind: Kind
    name: str
    namespace: str | None

    @classmethod
    def from_composite(cls, kind: Kind, composite: dict[str, Any]) -> Owner:
        metadata = composite.get("metadata", {})
        name = display_name(metadata) or kind.kind.lower()
        return cls(kind, name, namespace_of(metadata) if kind.namespaced else None)

    def child(self, suffix: str = "") -> str:
        """Name of a composed object: the claim's name, plus a suffix, within 63 characters."""
        return child_name(self.name, suffix)

    def labels(self, component: str) -> dict[str, str]:
        """Recommended Kubernetes labels plus ours, identical on every render."""
        return {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/instance": self.child(),
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "crossplane",
            f"inference.ai/{self.kind.kind.lower()}": self.child(),
        }

    def selector(self, component: str) -> dict[str, str]:
        """The stable subset of labels used in selectors (immutable on Deployments)."""
        return {
            "app.kubernetes.io/instance": self.child(),
            "app.kubernetes.io/component": component,
            f"inference.ai/{self.kind.kind.lower()}": self.child(),
        }

    def metadata(self, name: str, component: str, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if self.namespace is not None:
            meta["namespace"] = self.namespace
        meta["labels"] = self.labels(component)
        meta.update(extra)
        return meta
