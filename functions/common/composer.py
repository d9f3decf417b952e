"""Thin RunFunction glue shared by the three functions.

Each function supplies a pure `compose(request) -> Composed`; this module validates the spec,
turns invalid input into one fatal result naming the fields and allowed values, writes the
desired resources (never a partial set), marks readiness from observed state, and reports
warnings both as results and in the composite's status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

import grpc
from crossplane.function import logging, request, resource, response
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from pydantic import ValidationError

from functions.common import meta, readiness, structs
from functions.common.api.base import SpecModel, format_validation_error
from functions.common.kinds import Kind
from functions.common.messages import bounded
from functions.common.meta import Owner
from functions.common.peers import Form, Requirement, form_of, spec_of
from functions.common.readiness import Cluster, is_ready

S = TypeVar("S", bound=SpecModel)
DEFAULT_TTL = timedelta(minutes=1)
"""How long Crossplane may reuse a response (function response cache) and, with realtime
compositions, when it reconciles an unchanged composite again: docs/performance.md."""
MAX_RESPONSE_BYTES = 4 * 2**20
"""Crossplane's gRPC client receives at most 4 MiB (gRPC's default) from a function; a larger
response would fail as RESOURCE_EXHAUSTED with no word on which composite or why."""


class ComposeError(Exception):
    """The spec is valid on its own but cannot be composed (e.g. no pool can host it)."""


@dataclass(frozen=True)
class Request(Generic[S]):
    owner: Owner
    spec: S
    observed: Mapping[str, dict[str, Any]]
    required: Mapping[str, list[dict[str, Any]]]
    form: Form = Form.V2
    """The XRD form of the composite, which is also the form of its peers."""
    created: str = ""
    """The composite's metadata.creationTimestamp (RFC 3339; empty before it is created)."""
    status: Mapping[str, Any] = field(default_factory=dict)
    """The composite's observed status: what this function reported last time."""


@dataclass
class Composed:
    resources: dict[str, dict[str, Any]]
    status: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    conditions: list[resource.Condition] = field(default_factory=list)
    requirements: list[Requirement] = field(default_factory=list)
    cluster: Cluster = field(default_factory=Cluster)
    """Cluster facts the composed resources' readiness depends on (e.g. StorageClasses)."""


SPEC_HONOURED = "SpecHonoured"


def honoured(warnings: list[str]) -> resource.Condition:
    """Whether the rendered configuration does everything the spec asks (see status.warnings)."""
    if not warnings:
        return resource.Condition(SPEC_HONOURED, "True", "AllRequestsRendered")
    return resource.Condition(
        SPEC_HONOURED,
        "False",
        "RequestsNotHonoured",
        f"{len(set(warnings))} requested feature(s) not honoured; see status.warnings",
    )


def required_resources(
    req: fnv1.RunFunctionRequest, reads: Mapping[str, Collection[str]] | None = None
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Resources Crossplane fetched for our requirements, by requirement name, and a warning
    for each one left out because what we read of it holds a number JSON cannot (see
    structs.py). `reads` names, per requirement, the only top-level keys the function reads.

    Crossplane v2 answers in `required_resources`, v1.x (<= v1.20) in `extra_resources`; the
    SDK's helper reads only the former.
    """
    reads = reads or {}
    out: dict[str, list[dict[str, Any]]] = {}
    warnings = []
    for field_map in (req.extra_resources, req.required_resources):
        for name in sorted(field_map):
            out[name] = []
            only = reads.get(name)
            for i, item in enumerate(field_map[name].items):
                try:
                    out[name].append(structs.to_dict(item.resource, only))
                except structs.NonFinite as bad:
                    warnings.append(f"required {name}[{i}] ignored: {bad}")
    return out, warnings


def odd_observed(
    desired: Mapping[str, Mapping[str, Any]], observed: Mapping[str, Any]
) -> list[str]:
    """A warning for each composed resource whose observed copy has a shape that reads as not
    ready."""
    out = []
    for name in sorted(desired):
        odd = readiness.problem(observed.get(name))
        if odd:
            kind = str(desired[name].get("kind", "resource"))
            out.append(f"observed {kind} {name!r} is treated as not ready: {odd}")
    return out


def observed_resources(req: fnv1.RunFunctionRequest) -> dict[str, dict[str, Any]]:
    """The observed composed resources as dicts; one JSON cannot hold is read as not there yet
    (so not ready)."""
    observed = {}
    for name, r in sorted(req.observed.resources.items()):
        with contextlib.suppress(structs.NonFinite):
            observed[name] = structs.to_dict(r.resource)
    return observed


def require(rsp: fnv1.RunFunctionResponse, requirements: Iterable[Requirement]) -> None:
    """Ask Crossplane for the resources the next call reads."""
    for want in requirements:
        response.require_resources(
            rsp,
            want.name,
            want.api_version,
            want.kind,
            match_name=want.match_name,
            match_labels=dict(want.match_labels) if want.match_labels else None,
            namespace=want.namespace,
        )


def warn(rsp: fnv1.RunFunctionResponse, messages: list[str]) -> None:
    """A warning result for each message, shown on the composite and its claim."""
    for message in messages:
        rsp.results.append(
            fnv1.Result(
                severity=fnv1.SEVERITY_WARNING,
                message=message,
                target=fnv1.TARGET_COMPOSITE_AND_CLAIM,
            )
        )


class CompositionFunction(grpcv1.FunctionRunnerServiceServicer, Generic[S]):
    """A composition function for one kind, built from a pure compose callable.

    Served by `functions.common.serve`, which runs `run` off the event loop and turns what it
    raises into a fatal result; `RunFunction` here is for in-process callers and raises.
    """

    def __init__(
        self,
        kind: Kind,
        compose: Callable[[Request[S]], Composed],
        reads: Mapping[str, Collection[str]] | None = None,
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        self.kind = kind
        self.compose = compose
        self.reads = dict(reads or {})
        """Per requirement name, the only top-level keys compose reads of those resources: the
        rest is never converted (a Node's status, with its image list, is most of it)."""
        self.ttl = ttl
        self.log = logging.get_logger()

    async def RunFunction(
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext | None
    ) -> fnv1.RunFunctionResponse:
        return self.run(req)

    def fits(self, rsp: fnv1.RunFunctionResponse, size: int) -> bool:
        """Whether `rsp`, composed in `size` bytes, fits what Crossplane receives; a function
        whose response grows in other states of the same input checks those too."""
        return size <= MAX_RESPONSE_BYTES

    def oversized(self, rsp: fnv1.RunFunctionResponse, size: int) -> str:
        """The fatal message for `rsp`, composed but `size` bytes, over MAX_RESPONSE_BYTES; a
        function whose response grows with its input names its own ceiling."""
        return (
            f"the composed resources take {size} bytes, more than the {MAX_RESPONSE_BYTES} "
            f"bytes (4 MiB) Crossplane accepts in a function's gRPC response: split this "
            f"{self.kind.kind} into smaller ones"
        )

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        rsp = response.to(req, ttl=self.ttl)
        try:
            composite = structs.to_dict(req.observed.composite.resource)
        except structs.NonFinite as bad:
            response.fatal(rsp, f"invalid composite: {bad}")
            return rsp
        invalid = meta.problems(self.kind, composite.get("metadata"))
        if invalid:
            self.log.info("rejected invalid metadata", kind=self.kind.kind, error=invalid)
            response.fatal(rsp, "invalid metadata: " + "; ".join(invalid))
            return rsp
        owner = Owner.from_composite(self.kind, composite)
        log = self.log.bind(kind=self.kind.kind, name=owner.name, namespace=owner.namespace)
        try:
            spec = self.kind.spec.model_validate(spec_of(composite))
        except ValidationError as err:
            log.info("rejected invalid spec", error=str(err))
            response.fatal(rsp, bounded(format_validation_error(err)))
            return rsp
        observed = observed_resources(req)
        required, unreadable = required_resources(req, self.reads)
        created = str((composite.get("metadata") or {}).get("creationTimestamp") or "")
        last = composite.get("status")
        composing = Request(
            owner,
            spec,
            observed,
            required,
            form_of(self.kind, composite),
            created,
            last if isinstance(last, dict) else {},
        )
        try:
            out = self.compose(composing)  # type: ignore[arg-type]
        except ComposeError as err:
            log.info("cannot compose", error=str(err))
            response.fatal(rsp, bounded(str(err)))
            return rsp
        out.warnings += [*unreadable, *odd_observed(out.resources, observed)]
        status = {**out.status, "warnings": sorted({bounded(w) for w in out.warnings})}
        try:
            # The API server would silently prune a key the XRD does not declare.
            self.kind.status.model_validate(status)
        except ValidationError as err:
            log.info("composed an invalid status", error=str(err))
            response.fatal(
                rsp,
                bounded(
                    "internal error: the composed status does not match the XRD's status schema: "
                    + format_validation_error(err, "status", heading="")
                ),
            )
            return rsp

        for name in sorted(out.resources):
            desired = rsp.desired.resources[name]
            structs.update(desired.resource, out.resources[name])
            if is_ready(observed.get(name), out.cluster):
                desired.ready = fnv1.READY_TRUE
        require(rsp, out.requirements)
        structs.update(rsp.desired.composite.resource, {"status": status})
        warn(rsp, status["warnings"])
        if request.has_capability(req, fnv1.CAPABILITY_CONDITIONS):
            response.set_conditions(rsp, honoured(out.warnings), *out.conditions)
        size = rsp.ByteSize()
        if not self.fits(rsp, size):
            log.info("composed a response over the gRPC limit", bytes=size)
            message = self.oversized(rsp, size)
            rsp = response.to(req, ttl=self.ttl)
            response.fatal(rsp, bounded(message))
            return rsp
        log.debug("composed", resources=len(out.resources), warnings=len(out.warnings))
        return rsp
