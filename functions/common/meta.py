"""Identity of a composite: the names, namespace and labels its composed resources share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.common import names
from functions.common.kinds import Kind

CLAIM_NAME = "crossplane.io/claim-name"
CLAIM_NAMESPACE = "crossplane.io/claim-namespace"
PART_OF = "inference-platform"
MAX_NAME = names.MAX_LABEL  # DNS-1035 label: Services, and every name pods derive from


def child_name(base: str, suffix: str = "") -> str:
    """`<base>-<suffix>` as a DNS-1035 label (Services, and every name pods derive from):
    deterministic, unique per input, kept as it is when already valid (see names.derived)."""
    return names.derived(base, suffix)


def problems(kind: Kind, metadata: Any) -> list[str]:
    """Why the composite's metadata is not what the API server allows (name, namespace, claim
    labels), one clause each; empty when it is. The names of every composed object derive from
    these, so they are checked before anything is composed."""
    if not isinstance(metadata, Mapping):
        return ["metadata: must be an object"]
    out = []
    name = metadata.get("name")
    if not names.is_dns_subdomain(name):
        out.append(
            f"metadata.name: {names.shorten(name)!r} is not a Kubernetes object name (a DNS-1123 "
            "subdomain: at most 253 characters [a-z0-9-.], beginning and ending alphanumeric)"
        )
    namespace = metadata.get("namespace")
    if namespace is not None and not names.is_dns_label(namespace):
        out.append(
            f"metadata.namespace: {names.shorten(namespace)!r} is not a namespace name (a "
            "DNS-1123 label: at most 63 characters [a-z0-9-], beginning and ending alphanumeric)"
        )
    labels = metadata.get("labels")
    if labels is None:
        return out
    if not isinstance(labels, Mapping):
        return [*out, "metadata.labels: must be a map of strings"]
    checks = ((CLAIM_NAME, names.is_dns_subdomain), (CLAIM_NAMESPACE, names.is_dns_label))
    for key, valid in checks:
        value = labels.get(key)
        if value is not None and not (valid(value) and names.is_label_value(value)):
            out.append(
                f"metadata.labels[{key}]: {names.shorten(value)!r} is not a claim "
                f"{'name' if key == CLAIM_NAME else 'namespace'} Kubernetes allows in a label "
                "(at most 63 characters [a-z0-9-.], beginning and ending alphanumeric)"
            )
    return out


def display_name(metadata: Mapping[str, Any]) -> str:
    """The name users know a composite by: its claim's name (claims form), else its own; empty
    when neither is a string (a number would otherwise read as a valid name such as `5.0`)."""
    labels = metadata.get("labels") or {}
    claim = labels.get(CLAIM_NAME) if isinstance(labels, Mapping) else None
    name = claim or metadata.get("name")
    return name if isinstance(name, str) else ""


def namespace_of(metadata: Mapping[str, Any]) -> str:
    """A namespaced composite's namespace: its own (v2), else its claim's (claims form)."""
    labels = metadata.get("labels") or {}
    claim = labels.get(CLAIM_NAMESPACE) if isinstance(labels, Mapping) else None
    namespace = metadata.get("namespace") or claim or "default"
    return namespace if isinstance(namespace, str) else ""


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
