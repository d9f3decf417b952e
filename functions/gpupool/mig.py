"""MIG layouts: an exact placement checker and a fewest-GPUs planner.

mig-parted takes only profile counts per GPU and lets the driver choose placements, so a layout
is valid only if *some* assignment of legal start slots exists. `place_on_gpu` searches for one
(at most 7 instances per GPU, so the search is tiny) and is the oracle for everything else.

`solve` packs the instances a node must expose onto as few GPUs as possible:

1. Every layout one GPU accepts is enumerated once per model (`configurations`: a few hundred
   count vectors, each confirmed by the checker). Layouts are closed under removing an
   instance, so a plan is a multiset of configurations covering the demand.
2. A lower bound (compute slices / 7, memory slices / 8, per-GPU maxima of 7g, 4g, 3g, 2g,
   `+me`, ...) and first-fit-decreasing give a bracket; when they meet, FFD is optimal.
3. Otherwise an exact search decides, for k = lower bound, lower bound + 1, ..., whether k GPUs
   suffice: each GPU takes a configuration that holds the largest instance still unplaced and
   that no further remaining instance fits into (dominance), with failures memoised. The search
   is capped at `EXACT_BUDGET` steps; beyond it (pools far larger than one node) the best plan
   found so far (never worse than FFD) is returned with `optimal=False`.

Every layout returned has passed `place_on_gpu`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from math import ceil

from functions.common.gpus import GPUModel, MigProfile

EXACT_BUDGET = 200_000
"""Search steps before the exact search gives up and keeps the best plan found so far."""

Vector = tuple[int, ...]


@dataclass(frozen=True)
class Placed:
    profile: MigProfile
    start: int


def place_on_gpu(model: GPUModel, profiles: list[MigProfile]) -> list[Placed] | None:
    """Legal start slots for all `profiles` on one GPU of `model`, or None if impossible.

    Rules: each instance occupies memory slices [start, start + size) with `start` one of its
    shape's legal starts; intervals are pairwise disjoint; at most one `+me` instance; at most
    the shape's per-GPU maximum; total compute slices within the GPU's.
    """
    if any(model.profile(p.name) != p for p in profiles):
        return None
    if sum(p.shape.compute_slices for p in profiles) > model.compute_slices:
        return None
    if sum(p.shape.media_extensions for p in profiles) > 1:
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
        previous = placed[-1].start if placed and placed[-1].profile == profile else -1
        for start in profile.shape.starts:
            # Identical instances are interchangeable: try them in increasing start order only.
            if start <= previous:
                continue
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

    return sorted(placed, key=lambda p: (p.start, p.profile.name)) if search(0) else None


def fits(model: GPUModel, layout: dict[str, int]) -> bool:
    """Whether one GPU of `model` accepts `layout` (profile name -> count).

    A lookup in `configurations`, which holds every layout the checker accepts (the leftover
    fill and re-planning ask this per GPU on every reconcile)."""
    index = _index(model)
    vec = [0] * len(index)
    for name, count in layout.items():
        i = index.get(name)
        if i is None or count < 0:
            return False
        vec[i] += count
    return not any(vec) or tuple(vec) in _accepted(model)


# --- count vectors -------------------------------------------------------------------------
# The planner works on vectors indexed like `_order(model)`: profiles largest first.


@cache
def _order(model: GPUModel) -> tuple[MigProfile, ...]:
    return tuple(
        sorted(
            model.profiles,
            key=lambda p: (-p.shape.memory_slices, -p.shape.compute_slices, p.shape.key),
        )
    )


def _expand(model: GPUModel, vec: Vector) -> list[MigProfile]:
    return [p for p, c in zip(_order(model), vec, strict=True) for _ in range(c)]


def _as_layout(model: GPUModel, vec: Vector) -> dict[str, int]:
    return dict(sorted((p.name, c) for p, c in zip(_order(model), vec, strict=True) if c))


@cache
def configurations(model: GPUModel) -> tuple[Vector, ...]:
    """Every non-empty layout one GPU of `model` accepts, as count vectors, largest first."""
    order = _order(model)
    found: list[Vector] = []

    def extend(i: int, vec: list[int], compute: int) -> None:
        if i == len(order):
            if any(vec) and place_on_gpu(model, _expand(model, tuple(vec))) is not None:
                found.append(tuple(vec))
            return
        shape = order[i].shape
        for n in range(shape.max_per_gpu + 1):
            if compute + n * shape.compute_slices > model.compute_slices:
                break
            vec.append(n)
            # Prune early: a prefix the checker rejects cannot become valid.
            if n == 0 or place_on_gpu(model, _expand(model, (*vec, *[0] * (len(order) - i - 1)))):
                extend(i + 1, vec, compute + n * shape.compute_slices)
            vec.pop()

    extend(0, [], 0)
    weight = _weights(model)
    found.sort(key=lambda v: (-sum(w * c for w, c in zip(weight, v, strict=True)), v))
    return tuple(found)


@cache
def _index(model: GPUModel) -> dict[str, int]:
    return {p.name: i for i, p in enumerate(_order(model))}


@cache
def _accepted(model: GPUModel) -> frozenset[Vector]:
    return frozenset(configurations(model))


@cache
def _weights(model: GPUModel) -> Vector:
    # Occupancy of a shape: the larger of its compute and memory share, in 56ths of a GPU.
    unit_c, unit_m = 56 // model.compute_slices, 56 // model.memory_slices
    return tuple(
        max(p.shape.compute_slices * unit_c, p.shape.memory_slices * unit_m) for p in _order(model)
    )


@cache
def _singletons(model: GPUModel) -> tuple[int, ...]:
    """Per shape: how many fit on an otherwise empty GPU (0 when not even one)."""
    out = []
    for i, _ in enumerate(_order(model)):
        best = 0
        for cfg in configurations(model):
            if all(c == 0 for j, c in enumerate(cfg) if j != i):
                best = max(best, cfg[i])
        out.append(best)
    return tuple(out)


def lower_bound(model: GPUModel, demand: Vector) -> int:
    """GPUs any plan needs: slice totals and per-shape maxima (never above the optimum)."""
    order = _order(model)
    compute = sum(p.shape.compute_slices * c for p, c in zip(order, demand, strict=True))
    memory = sum(p.shape.memory_slices * c for p, c in zip(order, demand, strict=True))
    bound = max(ceil(compute / model.compute_slices), ceil(memory / model.memory_slices))
    media = sum(c for p, c in zip(order, demand, strict=True) if p.shape.media_extensions)
    bound = max(bound, media)
    for most, c in zip(_singletons(model), demand, strict=True):
        if c and most:
            bound = max(bound, ceil(c / most))
    return bound


def first_fit_decreasing(model: GPUModel, demand: Vector) -> list[Vector]:
    """The heuristic: largest instances first, each onto the first GPU the checker accepts."""
    gpus: list[list[int]] = []
    cfgs = set(configurations(model))
    for i, count in enumerate(demand):
        for _ in range(count):
            for gpu in gpus:
                gpu[i] += 1
                if tuple(gpu) in cfgs:
                    break
                gpu[i] -= 1
            else:
                one = [0] * len(demand)
                one[i] = 1
                gpus.append(one)
    return [tuple(g) for g in gpus]


class _Budget(Exception):
    pass


def _exact(model: GPUModel, demand: Vector, upper: int, budget: int) -> list[Vector] | None:
    """A plan with fewer than `upper` GPUs, the fewest possible, or None if `upper` is optimal.

    Raises _Budget when the search exceeds `budget` steps.
    """
    cfgs = configurations(model)
    cfg_set = set(cfgs)
    n = len(demand)
    failed: dict[Vector, int] = {}  # demand -> largest k proven insufficient
    steps = 0

    def maximal(cfg: Vector, rest: Vector) -> bool:
        for i in range(n):
            if cfg[i] < rest[i]:
                bigger = (*cfg[:i], cfg[i] + 1, *cfg[i + 1 :])
                if bigger in cfg_set:
                    return False
        return True

    def search(rest: Vector, k: int) -> list[Vector] | None:
        nonlocal steps
        if not any(rest):
            return []
        if k == 0 or failed.get(rest, -1) >= k or lower_bound(model, rest) > k:
            return None
        steps += 1
        if steps > budget:
            raise _Budget
        first = next(i for i, c in enumerate(rest) if c)
        for cfg in cfgs:
            if cfg[first] == 0 or any(c > r for c, r in zip(cfg, rest, strict=True)):
                continue
            if not maximal(cfg, rest):
                continue
            sub = search(tuple(r - c for r, c in zip(rest, cfg, strict=True)), k - 1)
            if sub is not None:
                return [cfg, *sub]
        failed[rest] = max(failed.get(rest, -1), k)
        return None

    for k in range(lower_bound(model, demand), upper):
        plan = search(demand, k)
        if plan is not None:
            return plan
    return None


@dataclass(frozen=True)
class Plan:
    model: GPUModel
    gpus: tuple[dict[str, int], ...]
    """Per-GPU layouts (profile name -> count), fullest first."""
    optimal: bool
    """Proven to use the fewest GPUs (the lower bound was met or the exact search finished)."""
    lower_bound: int

    def __len__(self) -> int:
        return len(self.gpus)


def demand_vector(model: GPUModel, counts: dict[str, int]) -> Vector:
    """Counts by profile name as a vector for `model`; ValueError naming an absent profile."""
    index = {p.name: i for i, p in enumerate(_order(model))}
    vec = [0] * len(index)
    for name, count in sorted(counts.items()):
        if name not in index:
            offered = ", ".join(p.name for p in _order(model))
            raise ValueError(
                f"MIG profile {name} does not exist on {model.key} (profiles there: {offered})"
            )
        vec[index[name]] += count
    return tuple(vec)


def solve(model: GPUModel, counts: dict[str, int], *, budget: int = EXACT_BUDGET) -> Plan:
    """The fewest GPUs of `model` hosting `counts` (profile name -> instances)."""
    demand = demand_vector(model, counts)
    for vec_i, (profile, c) in enumerate(zip(_order(model), demand, strict=True)):
        if c and _singletons(model)[vec_i] == 0:
            raise ValueError(f"MIG profile {profile.name} cannot be placed on {model.key}")
    bound = lower_bound(model, demand)
    best = first_fit_decreasing(model, demand)
    optimal = len(best) <= bound
    if not optimal:
        try:
            better = _exact(model, demand, len(best), budget)
            if better is not None:
                best = better
            optimal = True
        except _Budget:
            optimal = False
    return _finish(model, best, optimal, bound)


def _finish(model: GPUModel, gpus: Iterable[Vector], optimal: bool, bound: int) -> Plan:
    weight = _weights(model)
    ordered = sorted(gpus, key=lambda v: (-sum(w * c for w, c in zip(weight, v, strict=True)), v))
    layouts = []
    for vec in ordered:
        # The oracle has the last word on every layout we hand out.
        if place_on_gpu(model, _expand(model, vec)) is None:  # pragma: no cover
            raise AssertionError(f"planner produced an invalid layout {vec} on {model.key}")
        layouts.append(_as_layout(model, vec))
    return Plan(model, tuple(layouts), optimal, bound)


def plan(model: GPUModel, counts: dict[str, int]) -> list[dict[str, int]]:
    """Per-GPU profile counts hosting `counts` on the fewest GPUs (see `solve`).

    Raises ValueError naming the profile when it does not exist on the model or one instance
    cannot fit even on an empty GPU.
    """
    return list(solve(model, counts).gpus)


def fill(model: GPUModel, layout: dict[str, int], names: Iterable[str]) -> dict[str, int]:
    """`layout` with free slices filled by more of `names` (largest first, while one fits)."""
    out = dict(layout)
    candidates = sorted(
        {model.profile(n) for n in names} - {None},
        key=lambda p: (-p.shape.memory_slices, -p.shape.compute_slices, p.name),  # type: ignore[union-attr]
    )
    for profile in candidates:
        assert profile is not None
        while True:
            out[profile.name] = out.get(profile.name, 0) + 1
            if not fits(model, out):
                out[profile.name] -= 1
                if not out[profile.name]:
                    del out[profile.name]
                break
    return dict(sorted(out.items()))


def max_counts(model: GPUModel, counts: dict[str, int], gpus: int) -> dict[str, int]:
    """Per profile: the most instances that fit on `gpus` GPUs with the other counts unchanged
    (0 when the others alone do not fit). Used to say what fits instead of an infeasible ask."""
    out = {}
    for name in sorted(counts):
        others = {n: c for n, c in counts.items() if n != name}
        lo, hi = -1, counts[name]
        # Binary search the largest count that fits (counts[name] itself does not).
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ask = {**others, name: mid} if mid else others
            if not ask or len(solve(model, ask)) <= gpus:
                lo = mid
            else:
                hi = mid
        out[name] = max(lo, 0)
    return out
