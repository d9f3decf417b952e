"""Status models: what the functions report on each composite (schema for the XRDs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from functions.common.api.base import SpecModel

INT64 = (-(2**63), 2**63 - 1)


def _int64(value: int) -> int:
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError("must fit in int64 (the API server's integers)")
    return value


Int64 = Annotated[int, AfterValidator(_int64)]
"""An integer the API server can store (its schema type `integer` is int64)."""
Replicas = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A replica count (int32 in the Deployment API)."""


class RoutingStatus(SpecModel):
    mode: str | None = None
    """Routing in force: service, or prefix-aware (through the InferencePool)."""
    inferencePool: str | None = None
    """InferencePool over the engine pods (prefix-aware)."""
    endpointPicker: str | None = None
    """Service of the pool's endpoint picker (ext-proc gRPC on 9002)."""
    httpRoute: str | None = None
    """HTTPRoute attaching the service to spec.routing.gatewayRef."""
    gateway: str | None = None
    """The Gateway (namespace/name) the HTTPRoute attaches to."""
    gatewayFound: bool | None = None
    """Whether that Gateway exists."""
    endpoint: str | None = None
    """Base URL through the Gateway (its first address and listener), once it reports one."""


class InferenceServiceStatus(SpecModel):
    endpoint: str | None = None
    """In-cluster OpenAI-compatible (or KServe v2, for Triton) base URL."""
    servedModel: str | None = None
    """Model name clients send in requests."""
    backend: str | None = None
    """Serving engine in use."""
    gpuResource: str | None = None
    """Extended resource each replica requests, e.g. nvidia.com/mig-3g.40gb; with a DRA pool
    the DeviceClass its claim names (gpu.nvidia.com, mig.nvidia.com)."""
    gpusPerReplica: Annotated[int | None, Field(ge=1, le=16)] = None
    """Devices of gpuResource each replica requests."""
    pool: str | None = None
    """GPUPool the replicas are placed on."""
    tokenCache: str | None = None
    """TokenCache whose tiers the engine uses."""
    desiredReplicas: Replicas | None = None
    """Replicas the backend Deployment wants (set by the autoscaler when there is one)."""
    readyReplicas: Replicas | None = None
    """Replicas of the backend Deployment that are available."""
    routing: RoutingStatus | None = None
    """How requests reach the replicas (spec.routing)."""
    warnings: list[str] = Field(default_factory=list)
    """Requested features the rendered configuration cannot honour, and why."""


class ResourceCapacity(SpecModel):
    physical: Int64 = 0
    """Devices behind the resource on the pool's nodes (GPUs or MIG instances)."""
    schedulable: Int64 = 0
    """What the device plugin advertises: physical devices times time-slicing/MPS replicas."""
    requested: Int64 = 0
    """Replicas x devices per replica of InferenceServices bound to the pool (status.pool, else
    spec.gpu.poolRef)."""
    available: Int64 = 0
    """schedulable - requested; negative when the pool is overcommitted."""


class MigPlanStatus(SpecModel):
    configName: str | None = None
    """mig-parted configuration the pool's nodes of this model select (nvidia.com/mig.config)."""
    gpusUsed: Int64 | None = None
    """GPUs per node the requested MIG instances occupy."""
    optimal: bool | None = None
    """Whether optimalGPUs is proven minimal (exact search finished or the lower bound was met)."""
    nodes: Int64 | None = None
    """Nodes of the pool with this GPU model."""
    gpusPerNode: Int64 | None = None
    """GPUs per node (largest nvidia.com/gpu.count among those nodes)."""
    optimalGPUs: Int64 | None = None
    """Fewest GPUs per node the request needs (gpusUsed exceeds it only with prefer
    fewestChanges)."""
    changedGPUs: list[int] = Field(default_factory=list)
    """GPU indices whose layout differs from the previous plan (configName before this one)."""
    previousConfigName: str | None = None
    """The plan this one was made from (kept until a plan changes again)."""


class MigNodeChange(SpecModel):
    nodes: list[str]
    """The nodes (sorted) this change is pending on: nodes whose change is the same share one
    entry, and a node is in at most one."""
    config: str
    """mig-parted configuration the node is moving to."""
    gpus: list[int] = Field(default_factory=list)
    """GPU indices whose MIG instances mig-manager destroys and recreates (every GPU of the
    node when one GPU's MIG mode flips)."""
    migModeFlips: list[int] = Field(default_factory=list)
    """GPU indices whose MIG mode flips; mig-parted then clears every MIG GPU of the node and
    resets all its GPUs."""
    services: list[str] = Field(default_factory=list)
    """Bound InferenceServices (namespace/name) with replicas that request a resource those GPUs
    expose: the function does not read Pods, so any of their replicas may run there."""


class MetricsAgentStatus(SpecModel):
    daemonSet: str | None = None
    """The agent's DaemonSet (gpu-operator/<name>)."""
    ready: bool = False
    """Whether the current agent runs and is ready on every node the DaemonSet selects (at
    least one)."""
    nodes: int = 0
    """Nodes the DaemonSet should run on (desiredNumberScheduled)."""
    readyNodes: int = 0
    """Nodes where an agent is ready (numberReady)."""


class GPUPoolStatus(SpecModel):
    mode: str | None = None
    """Sharing mode in force."""
    allocation: str | None = None
    """dra when the pool's GPUs are claimed through the NVIDIA DRA driver (else unset)."""
    deviceClasses: list[str] = Field(default_factory=list)
    """DeviceClasses of the DRA driver that the pool's services claim from (allocation dra)."""
    migConfigMap: str | None = None
    """Shared mig-parted ConfigMap (gpu-operator) for ClusterPolicy migManager.config.name."""
    migPartedConfigs: str | None = None
    """This pool's mig-parted layouts (YAML of mig-configs); other pools merge them."""
    migPlans: dict[str, MigPlanStatus] = Field(default_factory=dict)
    """MIG plan per GPU model (catalog key, e.g. a100-80gb)."""
    devicePluginConfigMap: str | None = None
    """Shared device-plugin ConfigMap (gpu-operator) for ClusterPolicy devicePlugin.config.name."""
    devicePluginConfig: str | None = None
    """Device-plugin configuration key nodes select (nvidia.com/device-plugin.config)."""
    resources: dict[str, Int64] = Field(default_factory=dict)
    """Schedulable devices per extended resource name on the pool's largest node."""
    nodes: Int64 | None = None
    """Nodes matching spec.nodeSelector."""
    gpuProducts: list[str] = Field(default_factory=list)
    """GPU products (nvidia.com/gpu.product, without -SHARED/-MIG- suffixes) of those nodes."""
    nodeStates: dict[str, Int64] = Field(default_factory=dict)
    """Nodes per nvidia.com/mig.config.state (pending, rebooting, success, failed, unknown)."""
    capacity: dict[str, ResourceCapacity] = Field(default_factory=dict)
    """Pool-wide capacity per advertised extended resource name."""
    metricsAgent: MetricsAgentStatus | None = None
    """The node metrics agent, when spec.metricsAgent.enabled."""
    migChanges: list[MigNodeChange] = Field(default_factory=list)
    """The MIG changes pending on the pool's nodes (each until the node reports success) and what
    they disrupt, one entry per distinct change with the nodes it is pending on."""
    warnings: list[str] = Field(default_factory=list)
    """Requested features the rendered configuration cannot honour, and why."""


class TierStatus(SpecModel):
    name: str
    """Tier name from the spec."""
    type: str
    """prefix, local or redis."""
    capacityBytes: Int64
    """Bytes the tier holds: per GPU for prefix, per engine replica for local (LMCache's disk
    limit, 90% of the volume), in total for redis (maxmemory)."""
    ttlEnforced: bool | None = None
    """Whether the tier's ttl is enforced (unset when the tier has no ttl)."""
    endpoint: str | None = None
    """Where clients reach the tier: the Redis URL, or the local tier's directory in engines."""
    ready: bool | None = None
    """Whether the tier's own workload is available (redis; the others live in the engines)."""
    policy: str | None = None
    """Eviction the tier applies (Redis maxmemory-policy, LMCache cache_policy, vLLM's LRU)."""
    compression: str | None = None
    """Encoding the tier stores (LMCache remote_serde for redis; none elsewhere)."""


class CacheCapacity(SpecModel):
    gpuBytesPerGPU: Int64 | None = None
    """GPU prefix-cache budget each GPU of a bound engine applies."""
    hostMemoryBytesPerGPU: Int64 | None = None
    """Pinned host RAM LMCache allocates per GPU rank of a bound engine (buffer and hot cache)."""
    diskBytesPerReplica: Int64 | None = None
    """Local disk LMCache may fill per engine replica."""
    redisBytes: Int64 | None = None
    """Redis maxmemory, shared by every bound engine."""


class TokenCacheStatus(SpecModel):
    tiers: list[TierStatus] = Field(default_factory=list)
    """Each tier: capacity, TTL enforcement, endpoint and readiness."""
    redisURL: str | None = None
    """Connection URL of the distributed tier (password from the Secret in redisSecret)."""
    redisSecret: str | None = None
    """Secret holding the Redis password (key: redisSecretKey)."""
    redisSecretKey: str | None = None
    """Key of redisSecret that holds the password."""
    lmcacheConfigs: dict[str, str] = Field(default_factory=dict)
    """ConfigMap with the LMCache configuration (key lmcache.yaml) per InferenceService
    cache.strategy this cache can serve (local, distributed, hybrid)."""
    lmcacheConfigHashes: dict[str, str] = Field(default_factory=dict)
    """Content hash of each lmcacheConfigs ConfigMap; bound engines put it in their pod template
    so that a changed configuration rolls them."""
    capacity: CacheCapacity | None = None
    """Capacity per medium, each in the scope its name says."""
    prefixCacheBytes: Int64 | None = None
    """GPU prefix-cache budget InferenceServices bound to this cache apply."""
    warmupJob: str | None = None
    """Job that sends the common prefixes to the ready bound InferenceServices."""
    warmupTargets: list[str] = Field(default_factory=list)
    """Endpoints of the ready InferenceServices bound to this cache that the Job warms."""
    warmupWaitingFor: list[str] = Field(default_factory=list)
    """InferenceServices bound to this cache that are not ready yet (warmed once they are)."""
    warnings: list[str] = Field(default_factory=list)
    """Requested features the rendered configuration cannot honour, and why."""
