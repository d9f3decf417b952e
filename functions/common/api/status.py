"""Status models: what the functions report on each composite (schema for the XRDs)."""

from __future__ import annotations

from pydantic import Field

from functions.common.api.base import SpecModel


class InferenceServiceStatus(SpecModel):
    endpoint: str | None = None
    """In-cluster OpenAI-compatible (or KServe v2, for Triton) base URL."""
    servedModel: str | None = None
    """Model name clients send in requests."""
    backend: str | None = None
    """Serving engine in use."""
    gpuResource: str | None = None
    """Extended resource each replica requests, e.g. nvidia.com/mig-3g.40gb."""
    gpusPerReplica: int | None = None
    """Devices of gpuResource each replica requests."""
    desiredReplicas: int | None = None
    """Replicas the backend Deployment wants (set by the autoscaler when there is one)."""
    readyReplicas: int | None = None
    """Replicas of the backend Deployment that are available."""
    warnings: list[str] = Field(default_factory=list)
    """Requested features the rendered configuration cannot honour, and why."""


class GPUPoolStatus(SpecModel):
    mode: str | None = None
    """Sharing mode in force."""
    migConfig: str | None = None
    """mig-parted configuration name nodes of this pool select (nvidia.com/mig.config)."""
    devicePluginConfig: str | None = None
    """Device-plugin configuration key nodes select (nvidia.com/device-plugin.config)."""
    resources: dict[str, int] = Field(default_factory=dict)
    """Schedulable devices per extended resource name, per node."""
    warnings: list[str] = Field(default_factory=list)
    """Requested features the rendered configuration cannot honour, and why."""


class TokenCacheStatus(SpecModel):
    redisURL: str | None = None
    """Connection URL of the distributed tier (password from the Secret in redisSecret)."""
    redisSecret: str | None = None
    """Secret holding the Redis password (key: password)."""
    lmcacheConfig: str | None = None
    """ConfigMap with the LMCache configuration (key: lmcache.yaml) for engines to mount."""
    prefixCacheBytes: int | None = None
    """GPU prefix-cache budget InferenceServices bound to this cache apply."""
    warnings: list[str] = Field(default_factory=list)
    """Requested features the rendered configuration cannot honour, and why."""
