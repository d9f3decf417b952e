"""GPUPool: GPU nodes selected by labels, how their GPUs are shared, and oversubscription."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from functions.common.api.base import Rule, SpecModel
from functions.common.gpus import ALL_MIG_PROFILE_NAMES

SharingMode = Literal["exclusive", "mig", "mps", "timeslice"]
Leftover = Literal["whole", "balanced", "fill"]
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


class GPUPoolSpec(SpecModel):
    nodeSelector: Annotated[dict[str, str], Field(min_length=1, max_length=16)]
    """Labels that select the pool's GPU nodes."""
    sharing: Sharing = Field(default_factory=Sharing)
    """How GPUs on these nodes are shared."""
    oversubscription: Oversubscription = Field(default_factory=Oversubscription)
    """Oversubscription of GPUs or MIG instances (time-slicing or MPS replicas)."""

    rules = (
        Rule(
            "self.sharing.mode != 'exclusive' || !self.oversubscription.enabled",
            "oversubscription needs sharing.mode mig, mps or timeslice",
            lambda s: s.sharing.mode != "exclusive" or not s.oversubscription.enabled,
        ),
    )
