"""What every serving backend takes and returns: the `Engine` protocol and its plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.meta import Owner
from functions.inferenceservice.placement import Placement
from functions.inferenceservice.tokencache import BoundCache


@dataclass(frozen=True)
class BackendInput:
    owner: Owner
    spec: InferenceServiceSpec
    placement: Placement
    cache: BoundCache | None = None  # the TokenCache whose tiers the engine should use


@dataclass(frozen=True)
class EngineMetrics:
    """PromQL over the engine's own metrics; `{sel}` stands for the pods' label matchers."""

    queue_depth: str  # requests waiting for a batch slot, summed over replicas
    latency_ms: str  # the latency signal, in milliseconds
    latency_meaning: str  # what latency_ms measures, for status and docs
    latency_is_ttft: bool = True  # False where the engine reports no time to first token


@dataclass
class BackendPlan:
    """What a backend contributes to the pod and beside it."""

    container: dict[str, Any]  # main container: name, image, command/args, env, ports, probes
    volumes: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. ConfigMaps
    service_ports: list[dict[str, Any]] = field(default_factory=list)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    served_model: str | None = None  # name clients send; default: the Hugging Face id
    api_path: str = "/v1"  # base path clients call (OpenAI /v1, KServe /v2)
    metrics: EngineMetrics | None = None
    metrics_path: str = "/metrics"
    metrics_port: str = "http"
    warnings: list[str] = field(default_factory=list)


@dataclass
class TierPlan:
    """What a backend adds to its container to use a TokenCache's tiers."""

    args: list[str] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    command: list[str] | None = None  # replaces the engine's command (it must exec it)
    pod_annotations: dict[str, str] = field(default_factory=dict)


class Engine(Protocol):
    """A serving backend (each module of this package is one)."""

    def plan(self, inp: BackendInput) -> BackendPlan:
        """The engine container and what goes beside it."""
        ...

    def tiers(self, inp: BackendInput, bound: BoundCache) -> TierPlan:
        """What the engine adds to use a TokenCache's tiers (warnings where it cannot)."""
        ...
