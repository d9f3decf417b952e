"""Identity of a composite: the names, namespace and labels its composed resources share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.common.kinds import Kind

CLAIM_NAME = "crossplane.io/claim-name"
CLAIM_NAMESPACE = "crossplane.io/claim-namespace"
PART_OF = "inference-platform"


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
        labels = metadata.get("labels", {}) or {}
        name = labels.get(CLAIM_NAME) or metadata.get("name") or kind.kind.lower()
        namespace = None
        if kind.namespaced:
            namespace = metadata.get("namespace") or labels.get(CLAIM_NAMESPACE) or "default"
        return cls(kind, name, namespace)

    def labels(self, component: str) -> dict[str, str]:
        """Recommended Kubernetes labels plus ours, identical on every render."""
        return {
            "app.kubernetes.io/name": component,
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "crossplane",
            f"inference.ai/{self.kind.kind.lower()}": self.name,
        }

    def selector(self, component: str) -> dict[str, str]:
        """The stable subset of labels used in selectors (immutable on Deployments)."""
        return {
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            f"inference.ai/{self.kind.kind.lower()}": self.name,
        }

    def metadata(self, name: str, component: str, **extra: Any) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if self.namespace is not None:
            meta["namespace"] = self.namespace
        meta["labels"] = self.labels(component)
        meta.update(extra)
        return meta
