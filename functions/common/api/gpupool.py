"""GPUPool: GPU nodes selected by labels, how their GPUs are shared, and oversubscription."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from functions.common.api.base import DNS_SUBDOMAIN, Rule, SpecModel
from functions.common.api.inferenceservice import SIDECAR_IMAGE
from functions.common.gpus import ALL_MIG_PROFILE_NAMES
from functions.common.names import LABEL_KEY, LABEL_VALUE, MAX_LABEL, MAX_SUBDOMAIN, is_label_key
from functions.common.quantity import Quantity

SharingMode = Literal["exclusive", "mig", "mps", "timeslice"]
Leftover = Literal["whole", "balanced", "fill"]
Allocation = Literal["device-plugin", "dra"]
# The NVIDIA DRA driver's TimeSliceInterval values (api/nvidia.com/resource/v1beta1/sharing.go).
TimeSliceInterval = Literal["Default", "Short", "Medium", "Long"]
Prefer = Literal["fewestGPUs", "fewestChanges"]
RATIO_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


class MigProfileCount(SpecModel):
    name: Literal[ALL_MIG_PROFILE_NAMES]  # type: ignore[valid-type]
    """MIG profile, e.g. 3g.40gb (names depend on the GPU model)."""
    count: Annotated[int, Field(ge=1, le=56)]
    """Instances of this profile every node in the pool exposes."""


class Sharing(SpecModel):
    mode: SharingMode = "exclusive"
    """exclusive: whole GPUs; mig: MIG instances; mps: CUDA MPS shares; timeslice: time-sliced."""
    profiles: Annotated[list[MigProfileCount], Field(max_length=16)] = Field(default_factory=list)
    """MIG profiles and counts per node, when mode is mig."""
    leftover: Leftover | None = None
    """Unused GPUs: whole (default, MIG off), balanced (all-balanced), fill (more of profiles)."""
    prefer: Prefer | None = None
    """When profiles or counts change: fewestGPUs (default: the fewest GPUs, and among such
    plans the fewest GPUs whose layout changes) or fewestChanges (the fewest changed GPUs, even
    if the new plan uses more GPUs than it needs)."""

    rules = (
        Rule(
            "self.mode != 'mig' || (has(self.profiles) && size(self.profiles) > 0)",
            "profiles must list at least one MIG profile when mode is mig",
            lambda s: s.mode != "mig" or len(s.profiles) > 0,
        ),
        Rule(
            "self.mode == 'mig' || !has(self.profiles) || size(self.profiles) == 0",
            "profiles are only allowed when mode is mig",
            lambda s: s.mode == "mig" or not s.profiles,
        ),
        Rule(
            "self.mode == 'mig' || !has(self.leftover)",
            "leftover is only allowed when mode is mig",
            lambda s: s.mode == "mig" or s.leftover is None,
        ),
        Rule(
            "self.mode == 'mig' || !has(self.prefer)",
            "prefer is only allowed when mode is mig",
            lambda s: s.mode == "mig" or s.prefer is None,
        ),
    )


class Oversubscription(SpecModel):
    enabled: bool = False
    """Advertise each GPU (or MIG instance) to more than one pod."""
    ratio: Annotated[str, Field(pattern=RATIO_PATTERN, max_length=8)] = "2"
    """Schedulable shares per physical device, e.g. "1.5"; rounded to whole replicas (>= 2)."""

    rules = (
        Rule(
            "double(self.ratio) >= 1.0",
            "ratio must be at least 1 (shares per physical device)",
            lambda s: float(s.ratio) >= 1.0,
        ),
    )


class MPSSettings(SpecModel):
    activeThreadPercentage: Annotated[int | None, Field(ge=1, le=100)] = None
    """Share of the GPU's SMs each MPS client may use (driver: defaultActiveThreadPercentage)."""
    pinnedMemoryLimit: Quantity | None = None
    """Device memory each MPS client may pin, e.g. 20Gi (driver: defaultPinnedDeviceMemoryLimit)."""


class DRA(SpecModel):
    """Settings of the NVIDIA DRA driver's claims (allocation dra only)."""

    timeSlicingInterval: TimeSliceInterval | None = None
    """Time slice of a shared GPU (sharing timeslice); the driver's TimeSlicingSettings gate."""
    mps: MPSSettings | None = None
    """Limits of MPS clients (sharing mps); the driver's MPSSupport gate."""
    dynamicMig: bool = False
    """MIG devices created on demand by the driver (its alpha DynamicMIG gate) instead of a layout
    created on the nodes beforehand."""


class MetricsAgent(SpecModel):
    enabled: bool = True
    """Run the inference-sidecar in node mode on the pool's nodes (a DaemonSet in gpu-operator,
    scraped through a PodMonitor): GPU utilization and memory from NVML, GPU devices handed to
    pods from the kubelet. Turn it off where dcgm-exporter already covers the GPUs and the
    allocation metrics are not wanted."""
    image: Annotated[str, Field(max_length=255)] = SIDECAR_IMAGE
    """Sidecar image (the Dockerfile's `sidecar` target)."""
    runtimeClassName: Annotated[str, Field(max_length=253, pattern="^$|" + DNS_SUBDOMAIN)] = (
        "nvidia"
    )
    """RuntimeClass that gives the agent the driver's NVML library, as the GPU Operator's own
    agents get it (the operator creates `nvidia`); empty: the node's default runtime."""


# Label keys and values as Kubernetes allows them in a label selector (names.py): the values by
# pattern, the keys (a map's keys have no schema of their own) by CEL, with the prefix's length
# checked apart because RE2 cannot bound it inside the structure.
LABEL_KEY_CEL = (
    f"self.nodeSelector.all(k, k.matches('{LABEL_KEY}') && "
    f"(!k.contains('/') || k.matches('^[^/]{{1,{MAX_SUBDOMAIN}}}/')))"
)
SelectorValue = Annotated[str, Field(pattern=LABEL_VALUE, max_length=MAX_LABEL)]


class GPUPoolSpec(SpecModel):
    nodeSelector: Annotated[dict[str, SelectorValue], Field(min_length=1, max_length=16)]
    """Labels that select the pool's GPU nodes."""
    sharing: Sharing = Field(default_factory=Sharing)
    """How GPUs on these nodes are shared."""
    oversubscription: Oversubscription = Field(default_factory=Oversubscription)
    """Oversubscription of GPUs or MIG instances (time-slicing or MPS replicas)."""
    metricsAgent: MetricsAgent = Field(default_factory=MetricsAgent)
    """The node metrics agent: one per node of the pool (docs/gpupool.md#metrics-agent)."""
    allocation: Allocation = "device-plugin"
    """device-plugin: extended resources of the NVIDIA device plugin (GPU Operator configs);
    dra: ResourceClaims of the NVIDIA DRA driver (Dynamic Resource Allocation)."""
    dra: DRA | None = None
    """DRA driver settings, when allocation is dra."""

    rules = (
        Rule(
            LABEL_KEY_CEL,
            "nodeSelector keys must be Kubernetes label keys: an optional DNS subdomain prefix "
            "and '/', then at most 63 characters [A-Za-z0-9-_.] beginning and ending "
            "alphanumeric",
            lambda s: all(is_label_key(k) for k in s.nodeSelector),
        ),
        Rule(
            "self.sharing.mode != 'exclusive' || !self.oversubscription.enabled",
            "oversubscription needs sharing.mode mig, mps or timeslice",
            lambda s: s.sharing.mode != "exclusive" or not s.oversubscription.enabled,
        ),
        Rule(
            "self.allocation == 'dra' || !has(self.dra)",
            "dra settings are only allowed when allocation is dra",
            lambda s: s.allocation == "dra" or s.dra is None,
        ),
        Rule(
            "!has(self.dra) || !has(self.dra.timeSlicingInterval) || "
            "self.sharing.mode == 'timeslice'",
            "dra.timeSlicingInterval needs sharing.mode timeslice",
            lambda s: (
                s.dra is None or s.dra.timeSlicingInterval is None or s.sharing.mode == "timeslice"
            ),
        ),
        Rule(
            "!has(self.dra) || !has(self.dra.mps) || self.sharing.mode == 'mps'",
            "dra.mps needs sharing.mode mps",
            lambda s: s.dra is None or s.dra.mps is None or s.sharing.mode == "mps",
        ),
        Rule(
            "!has(self.dra) || !has(self.dra.dynamicMig) || !self.dra.dynamicMig || "
            "self.sharing.mode == 'mig'",
            "dra.dynamicMig needs sharing.mode mig",
            lambda s: s.dra is None or not s.dra.dynamicMig or s.sharing.mode == "mig",
        ),
        Rule(
            "self.allocation != 'dra' || !has(self.sharing.leftover)",
            "sharing.leftover is a mig-parted layout choice; with allocation dra the pool does "
            "not partition GPUs",
            lambda s: s.allocation != "dra" or s.sharing.leftover is None,
        ),
    )
