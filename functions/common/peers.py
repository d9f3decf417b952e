"""What one function reads from another function's composites: the typed peer contract.

A function that depends on another kind (an InferenceService on GPUPools and TokenCaches, a
GPUPool on InferenceServices and other GPUPools, a TokenCache on InferenceServices) asks
Crossplane for those composites as required resources and reads them only through this module:

- `Form` and `form_of` tell the two XRD forms apart (claims: Crossplane v1 composites of kind
  `X<Kind>`, cluster-scoped, Crossplane's fields at the top of `spec`; v2: namespaced XRs with
  Crossplane's fields under `spec.crossplane`);
- `composites` builds the one requirement "composites of kind K (in namespace N)" in either form;
- `parse` turns what Crossplane sent into `Peer`s whose spec and status are the same pydantic
  models that generate the XRDs, so defaults and field names come from one place. A composite
  that does not match its schema (only hand-made input can: the API server validates real ones)
  is left out with a warning naming it, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from functions.common.api import GPUPoolSpec, InferenceServiceSpec, TokenCacheSpec
from functions.common.api.base import SpecModel, format_validation_error
from functions.common.api.status import GPUPoolStatus, InferenceServiceStatus, TokenCacheStatus
from functions.common.kinds import API_VERSION, GPU_POOL, INFERENCE_SERVICE, TOKEN_CACHE, Kind
from functions.common.meta import CLAIM_NAME, CLAIM_NAMESPACE, display_name, namespace_of
from functions.common.names import is_dns_label, is_dns_subdomain, shorten

SpecT = TypeVar("SpecT", bound=SpecModel)
StatusT = TypeVar("StatusT", bound=SpecModel)

# Fields Crossplane itself adds to a composite's spec (v1 top level, v2 under spec.crossplane)
# and status; they are not part of our models.
CROSSPLANE_SPEC_FIELDS = frozenset(
    {
        "crossplane",
        "claimRef",
        "compositionRef",
        "compositionRevisionRef",
        "compositionRevisionSelector",
        "compositionSelector",
        "compositionUpdatePolicy",
        "resourceRefs",
        "writeConnectionSecretToRef",
        "publishConnectionDetailsTo",
        "environmentConfigRefs",
    }
)
CROSSPLANE_STATUS_FIELDS = frozenset({"conditions", "connectionDetails", "claimConditionTypes"})


def spec_of(composite: Mapping[str, Any]) -> dict[str, Any]:
    """A composite's spec as our spec models see it: without Crossplane's own fields."""
    spec = composite.get("spec") or {}
    if not isinstance(spec, Mapping):
        return {}
    return {k: v for k, v in spec.items() if k not in CROSSPLANE_SPEC_FIELDS}


def status_of(composite: Mapping[str, Any]) -> dict[str, Any]:
    """A composite's status as our status models see it: without Crossplane's own fields."""
    status = composite.get("status") or {}
    if not isinstance(status, Mapping):
        return {}
    return {k: v for k, v in status.items() if k not in CROSSPLANE_STATUS_FIELDS}


class Form(StrEnum):
    CLAIMS = "claims"
    """apiextensions.crossplane.io/v1 XRDs with claims: composites are cluster-scoped X<Kind>."""
    V2 = "v2"
    """apiextensions.crossplane.io/v2 XRDs: namespaced (or cluster) XRs, no claims."""


def form_of(kind: Kind, composite: Mapping[str, Any]) -> Form:
    """The XRD form of a composite of `kind` as Crossplane sends it.

    A v2 XR keeps Crossplane's fields under `spec.crossplane`; a v1 composite has them at the top
    of `spec` (`compositionRef`, `resourceRefs`, `claimRef`, ...) and, for the namespaced kinds,
    the kind `X<Kind>`. A bare manifest (tests, hand-made input) is read by its kind: `X<Kind>`
    or a cluster-scoped kind is the claims form (the default package), `<Kind>` of a namespaced
    kind the v2 form.
    """
    spec = composite.get("spec") or {}
    if not isinstance(spec, Mapping):
        spec = {}
    if "crossplane" in spec:
        return Form.V2
    if spec.keys() & (CROSSPLANE_SPEC_FIELDS - {"crossplane"}):
        return Form.CLAIMS
    if kind.namespaced and composite.get("kind") == kind.kind:
        return Form.V2
    return Form.CLAIMS


@dataclass(frozen=True)
class Requirement:
    """Resources the function asks Crossplane to fetch (delivered as required resources)."""

    name: str
    api_version: str
    kind: str
    match_labels: Mapping[str, str] | None = None
    match_name: str | None = None
    namespace: str | None = None


def composites(
    requirement: str,
    kind: Kind,
    form: Form,
    *,
    namespace: str | None = None,
    name: str | None = None,
) -> Requirement:
    """Composites of `kind` (all of them, or those of one claim namespace, or one by name).

    In the claims form a namespaced kind's composites are cluster-scoped `X<Kind>`s that carry
    their claim's namespace and name as labels; in the v2 form they are ordinary namespaced XRs.
    Cluster-scoped kinds (GPUPool) are the same kind in both forms.
    """
    if not kind.namespaced:
        return Requirement(requirement, API_VERSION, kind.kind, match_name=name)
    if form is Form.CLAIMS:
        labels: dict[str, str] | None = None
        if namespace is not None:
            labels = {CLAIM_NAMESPACE: namespace}
            if name is not None:
                labels[CLAIM_NAME] = name
        return Requirement(requirement, API_VERSION, kind.composite_kind, match_labels=labels)
    return Requirement(requirement, API_VERSION, kind.kind, match_name=name, namespace=namespace)


@dataclass(frozen=True)
class Peer(Generic[SpecT, StatusT]):
    """Another composite, as its own function composed it."""

    name: str
    """The name users know it by: the claim's name in the claims form, else the XR's."""
    namespace: str | None
    """The claim's (claims form) or XR's (v2) namespace; None for cluster-scoped kinds."""
    created: str
    """metadata.creationTimestamp (RFC 3339, so it sorts by age); empty when not reported."""
    spec: SpecT
    status: StatusT


GPUPoolPeer = Peer[GPUPoolSpec, GPUPoolStatus]
InferenceServicePeer = Peer[InferenceServiceSpec, InferenceServiceStatus]
TokenCachePeer = Peer[TokenCacheSpec, TokenCacheStatus]


@dataclass(frozen=True)
class Peers(Generic[SpecT, StatusT]):
    found: tuple[Peer[SpecT, StatusT], ...]
    """Valid composites, sorted by (namespace, name)."""
    warnings: tuple[str, ...] = ()
    """One per composite left out because it does not match its schema."""


def _parse(
    kind: Kind, spec_model: type[SpecT], status_model: type[StatusT], objs: Iterable[Any]
) -> Peers[SpecT, StatusT]:
    found: list[Peer[SpecT, StatusT]] = []
    warnings: list[str] = []
    for obj in objs:
        if not isinstance(obj, Mapping):
            warnings.append(f"a required {kind.kind} is not an object; ignored")
            continue
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        name = display_name(metadata)
        namespace = namespace_of(metadata) if kind.namespaced else None
        if not is_dns_subdomain(name) or not (namespace is None or is_dns_label(namespace)):
            where = f" in namespace {shorten(namespace)!r}" if namespace else ""
            warnings.append(
                f"a required {kind.kind} named {shorten(name)!r}{where} is ignored: not a "
                "Kubernetes object name"
            )
            continue
        try:
            spec = spec_model.model_validate(spec_of(obj))
            status = status_model.model_validate(status_of(obj))
        except ValidationError as err:
            part = "status" if err.title == status_model.__name__ else "spec"
            warnings.append(
                f"{kind.kind} {name}: ignored, its {part} does not match the schema: "
                + format_validation_error(err, part, heading="")
            )
            continue
        created = str(metadata.get("creationTimestamp") or "")
        found.append(Peer(name, namespace, created, spec, status))
    found.sort(key=lambda p: (p.namespace or "", p.name))
    return Peers(tuple(found), tuple(sorted(set(warnings))))


def gpu_pools(objs: Iterable[Any]) -> Peers[GPUPoolSpec, GPUPoolStatus]:
    return _parse(GPU_POOL, GPUPoolSpec, GPUPoolStatus, objs)


def inference_services(
    objs: Iterable[Any],
) -> Peers[InferenceServiceSpec, InferenceServiceStatus]:
    return _parse(INFERENCE_SERVICE, InferenceServiceSpec, InferenceServiceStatus, objs)


def token_caches(objs: Iterable[Any]) -> Peers[TokenCacheSpec, TokenCacheStatus]:
    return _parse(TOKEN_CACHE, TokenCacheSpec, TokenCacheStatus, objs)
