"""Stable re-planning: a changed MIG request on the fewest GPUs, changing the fewest GPU layouts.

mig-parted reconfigures a GPU only when its instances differ from its entry (it skips a GPU that
already matches), so the disruption a new plan causes is the number of GPU indices whose layout
changes. `replan` takes the per-GPU layouts a node runs now (`previous`, leftover policy applied,
`{}` = MIG disabled) and the new request, and keeps as many previous GPUs as it can:

1. `k`, the fewest GPUs for the request, comes from `mig.solve` (exact).
2. A previous GPU may be kept when its layout holds only requested profiles (plus, where the
   leftover policy fills free slices, more of them): it hosts what it has of the request.
   Every subset of keepable GPUs is tried, largest first; the rest of the request must pack
   (exactly, `mig.solve`) onto `k - kept` fresh GPUs (`prefer="gpus"`) or onto the node's
   remaining GPUs (`prefer="changes"`, which may use more than `k`). Among the best subsets the
   fewest changed instances win, then the lowest indices.
3. Fresh layouts go to free GPUs that already have MIG enabled, spares (`spare`) to GPUs that
   have it disabled, so the MIG mode flips only on GPUs whose role requires it (mig-parted
   clears every MIG GPU of a node and resets all its GPUs when any GPU's mode flips).

An unchanged request keeps every GPU: the previous plan is itself a candidate of `k` GPUs, and
it is checked first (the usual reconcile costs one evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations, islice
from typing import Literal

from functions.common.gpus import GPUModel
from functions.gpupool import mig

Layout = dict[str, int]
MAX_SUBSETS = 4096
"""Subsets of previous GPUs tried per size (C(8, 4) = 70; only nodes of 14+ GPUs reach it)."""
Prefer = Literal["gpus", "changes"]


@dataclass(frozen=True)
class Leftover:
    """What the pool's leftover policy makes of GPUs and free slices."""

    spare: Layout
    """Layout of a GPU the request does not need ({} = MIG disabled, a whole GPU)."""
    extras: frozenset[str] = frozenset()
    """Profiles a GPU may hold beyond its share of the request (leftover fill)."""
    complete: Callable[[Layout], Layout] = dict
    """Applied to a fresh GPU's layout (fill adds instances to free slices)."""


@dataclass(frozen=True)
class Replan:
    gpus: tuple[Layout, ...]
    """Layout per GPU index, leftover applied."""
    used: int
    """GPUs hosting the request."""
    plan: mig.Plan
    """The from-scratch plan: its length is the fewest GPUs the request needs."""
    changed: tuple[int, ...]
    """Indices whose layout differs from the previous one (unknown previous = changed)."""
    flipped: tuple[int, ...]
    """Indices whose MIG mode flips (enabled <-> disabled)."""


def _le(a: Layout, b: Layout) -> bool:
    return all(b.get(n, 0) >= c for n, c in a.items())


def _minus(a: Layout, b: Layout) -> Layout:
    return {n: c - b.get(n, 0) for n, c in a.items() if c - b.get(n, 0) > 0}


def _share(layout: Layout, rest: Layout, extras: frozenset[str]) -> Layout | None:
    """What `layout` hosts of `rest`, or None when it would expose an unrequested instance."""
    share = {n: min(c, rest.get(n, 0)) for n, c in layout.items()}
    share = {n: c for n, c in share.items() if c}
    beyond = _minus(layout, share)
    if any(n not in extras for n in beyond) or not share:
        return None
    return share


def _instances(a: Layout | None, b: Layout) -> int:
    if a is None:
        return sum(b.values())
    return sum(abs(a.get(n, 0) - b.get(n, 0)) for n in {*a, *b})


def replan(
    model: GPUModel,
    counts: Layout,
    previous: Sequence[Layout | None],
    gpus: int,
    leftover: Leftover,
    prefer: Prefer = "gpus",
    limit: int | None = None,
) -> Replan:
    """Layouts for `gpus` GPUs hosting `counts`, keeping the most of `previous` (see module).

    Only GPU indices below `limit` (default `gpus`; the smallest node's GPU count) host the
    request: the layouts are shared by nodes of one model whose GPU counts may differ.

    Raises ValueError as `mig.solve` does for a profile that does not fit the model.
    """
    base = mig.solve(model, counts)
    k = len(base)
    hosts = gpus if limit is None else min(limit, gpus)
    prev = [previous[i] if i < len(previous) else None for i in range(gpus)]
    keepable = [
        i
        for i, layout in enumerate(prev[:hosts])
        if layout and all(model.profile(n) is not None for n in layout) and mig.fits(model, layout)
    ]
    solved: dict[tuple[tuple[str, int], ...], tuple[Layout, ...]] = {(): ()}
    solved[tuple(sorted(counts.items()))] = base.gpus

    def fresh_plan(rest: Layout) -> tuple[Layout, ...]:
        key = tuple(sorted(rest.items()))
        if key not in solved:
            solved[key] = mig.solve(model, rest).gpus
        return solved[key]

    filled: dict[tuple[tuple[str, int], ...], tuple[Layout, ...]] = {}

    def completed(rest: Layout) -> tuple[Layout, ...]:
        """The fresh layouts for `rest` with the leftover policy applied (fill is costly)."""
        key = tuple(sorted(rest.items()))
        if key not in filled:
            filled[key] = tuple(leftover.complete(x) for x in fresh_plan(rest))
        return filled[key]

    # What a subset leaves of the request, by subset: `combinations` yields subsets in
    # lexicographic order, so each extends a prefix already computed (one share per subset).
    rests: dict[tuple[int, ...], Layout | None] = {(): dict(counts)}

    def shares(subset: tuple[int, ...]) -> Layout | None:
        if subset not in rests:
            head = shares(subset[:-1])
            share = None if head is None else _share(prev[subset[-1]] or {}, head, leftover.extras)
            rests[subset] = None if head is None or share is None else _minus(head, share)
        return rests[subset]

    Result = tuple[tuple[int, int, int], tuple[Layout, ...], int]

    def evaluate(subset: tuple[int, ...]) -> Result | None:
        """(changed GPUs, used GPUs, moved instances), layouts, used; None if not allowed."""
        rest = shares(subset)
        if rest is None:
            return None
        used = len(subset) + len(fresh_plan(rest))
        if (prefer == "gpus" and used != k) or used > hosts:
            return None
        layouts = _place(completed(rest), subset, prev, gpus, hosts, leftover)
        differ = sum(1 for i in range(gpus) if layouts[i] != prev[i])
        moved = sum(_instances(prev[i], layouts[i]) for i in range(gpus))
        return (differ, used, moved), layouts, used

    # Fast path, the usual reconcile: the previous plan itself still fits the request.
    best = evaluate(_greedy(prev, keepable, counts, leftover.extras))
    if best is not None and best[0][0] == 0:
        return _result(best[1], best[2], base, prev)
    best = None
    spare_slots = sum(1 for layout in prev if layout == leftover.spare)
    top = min(len(keepable), k if prefer == "gpus" else hosts)
    for size in range(top, -1, -1):
        if best is not None and (prefer == "gpus" or size + spare_slots < gpus - best[0][0]):
            break  # fewest GPUs: the most kept GPUs won; fewest changes: none left can win
        for subset in islice(combinations(keepable, size), MAX_SUBSETS):
            found = evaluate(subset)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
    assert best is not None  # the empty subset with a fresh optimal plan always qualifies
    return _result(best[1], best[2], base, prev)


def _greedy(
    prev: list[Layout | None], keepable: list[int], counts: Layout, extras: frozenset[str]
) -> tuple[int, ...]:
    """Previous GPUs in index order, each while it still hosts part of the request."""
    rest, out = dict(counts), []
    for i in keepable:
        share = _share(prev[i] or {}, rest, extras)
        if share is not None:
            out.append(i)
            rest = _minus(rest, share)
    return tuple(out)


def _result(
    layouts: tuple[Layout, ...], used: int, base: mig.Plan, prev: list[Layout | None]
) -> Replan:
    changed = tuple(i for i, x in enumerate(layouts) if x != prev[i])
    flipped = tuple(
        i for i, x in enumerate(layouts) if prev[i] is not None and bool(prev[i]) != bool(x)
    )
    return Replan(layouts, used, base, changed, flipped)


def _place(
    fresh: tuple[Layout, ...],
    kept: tuple[int, ...],
    prev: list[Layout | None],
    gpus: int,
    hosts: int,
    leftover: Leftover,
) -> tuple[Layout, ...]:
    """Kept GPUs as they are; fresh layouts onto free GPUs with MIG on, spares onto the rest."""
    plan = [dict(x) for x in fresh]
    out: list[Layout | None] = [None] * gpus
    for i in kept:
        out[i] = prev[i]
    free = [i for i in range(hosts) if out[i] is None]
    # Fullest fresh layout first, each onto the free GPU it changes least; GPUs whose MIG mode
    # would flip (MIG disabled now, or unknown) only when no MIG-enabled GPU is free.
    for layout in plan:
        pick = min(free, key=lambda i: (not prev[i], _instances(prev[i], layout), i))
        out[pick] = layout
        free.remove(pick)
    for i in range(gpus):
        if out[i] is None:
            out[i] = dict(leftover.spare)
    return tuple(x if x is not None else {} for x in out)
