"""MIG layouts: an exact placement checker and a fewest-GPUs planner.

mig-parted takes only profile counts per GPU and lets the driver choose placements, so a layout
is valid only if *some* assignment of legal start slots exists. The checker searches for one
(at most 7 instances per GPU, so the search is tiny); the planner packs the requested instances
largest-first onto as few GPUs as it can, asking the checker at every step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from functions.common.gpus import GPUModel, MigProfile


@dataclass(frozen=True)
class Placed:
    profile: MigProfile
    start: int


def place_on_gpu(model: GPUModel, profiles: list[MigProfile]) -> list[Placed] | None:
    """Legal start slots for all `profiles` on one GPU of `model`, or None if impossible."""
    if sum(p.shape.compute_slices for p in profiles) > model.compute_slices:
        return None
    per_shape = Counter(p.shape.key for p in profiles)
    if any(per_shape[p.shape.key] > p.shape.max_per_gpu for p in profiles):
        return None
    # Biggest first: they have the fewest legal starts, so dead ends surface early.
    order = sorted(
        profiles, key=lambda p: (-p.shape.memory_slices, -p.shape.compute_slices, p.name)
    )
    used = [False] * model.memory_slices
    placed: list[Placed] = []

    def search(i: int) -> bool:
        if i == len(order):
            return True
        profile = order[i]
        size = profile.shape.memory_slices
        for start in profile.shape.starts:
            span = range(start, start + size)
            if start + size > model.memory_slices or any(used[s] for s in span):
                continue
            for s in span:
                used[s] = True
            placed.append(Placed(profile, start))
            if search(i + 1):
                return True
            placed.pop()
            for s in span:
                used[s] = False
        return False

    return sorted(placed, key=lambda p: p.start) if search(0) else None


def plan(model: GPUModel, counts: dict[str, int]) -> list[dict[str, int]]:
    """Per-GPU profile counts hosting `counts`, using as few GPUs as first-fit-decreasing finds.

    Raises ValueError naming the profile when one instance cannot fit even on an empty GPU.
    """
    instances: list[MigProfile] = []
    for name, count in sorted(counts.items()):
        profile = model.profile(name)
        if profile is None:
            raise ValueError(f"MIG profile {name} does not exist on {model.key}")
        instances.extend([profile] * count)
    instances.sort(key=lambda p: (-p.shape.memory_slices, -p.shape.compute_slices, p.name))
    gpus: list[list[MigProfile]] = []
    for profile in instances:
        for gpu in gpus:
            if place_on_gpu(model, [*gpu, profile]) is not None:
                gpu.append(profile)
                break
        else:
            if place_on_gpu(model, [profile]) is None:
                raise ValueError(f"MIG profile {profile.name} cannot be placed on {model.key}")
            gpus.append([profile])
    return [dict(sorted(Counter(p.name for p in gpu).items())) for gpu in gpus]
