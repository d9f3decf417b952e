"""Property-based tests of the MIG checker and planner over random profile mixes and GPU models.

- The planner never emits a layout the checker rejects, and hosts exactly what was asked.
- On small instances its GPU count equals the optimum of an independent exhaustive search
  (instances assigned one by one to k GPUs, the checker as oracle), which knows nothing of the
  planner's configuration table, bounds or dominance rules.
- The checker agrees with brute force over every assignment of legal start slots.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.common.gpus import CATALOG, GPUModel, MigProfile
from functions.gpupool import mig
from tests.gpupool.bench import exhaustive_optimum

MIG_MODELS = [m for m in CATALOG if m.mig_capable]


def accepted(model: GPUModel, layout: dict[str, int]) -> bool:
    """The placement checker's word on a layout (mig.fits answers from the planner's table)."""
    profiles = [model.profile(n) for n, c in layout.items() for _ in range(c)]
    return None not in profiles and mig.place_on_gpu(model, profiles) is not None  # type: ignore[arg-type]


@st.composite
def requests(draw: st.DrawFn, max_total: int = 24) -> tuple[GPUModel, dict[str, int]]:
    model = draw(st.sampled_from(MIG_MODELS))
    names = draw(
        st.lists(st.sampled_from([p.name for p in model.profiles]), min_size=1, unique=True)
    )
    counts = {n: draw(st.integers(1, 8)) for n in names}
    while sum(counts.values()) > max_total:
        biggest = max(counts, key=lambda n: (counts[n], n))
        counts[biggest] -= 1
    return model, {n: c for n, c in counts.items() if c}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_planner_output_always_passes_the_checker(request: tuple[GPUModel, dict[str, int]]) -> None:
    model, counts = request
    plan = mig.solve(model, counts)
    hosted: Counter[str] = Counter()
    for layout in plan.gpus:
        assert layout, "no empty GPUs in a plan"
        assert accepted(model, layout), (model.key, layout)
        hosted.update(layout)
    assert dict(hosted) == counts
    assert len(plan) >= plan.lower_bound


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(max_total=9))
def test_planner_uses_the_fewest_gpus_on_small_instances(
    request: tuple[GPUModel, dict[str, int]],
) -> None:
    model, counts = request
    plan = mig.solve(model, counts)
    assert plan.optimal
    assert len(plan) == exhaustive_optimum(model, counts)


@settings(max_examples=200, deadline=None)
@given(requests(max_total=12), st.sampled_from(["whole", "balanced", "fill"]))
def test_fill_and_balanced_layouts_pass_the_checker(
    request: tuple[GPUModel, dict[str, int]], policy: str
) -> None:
    model, counts = request
    for layout in mig.solve(model, counts).gpus:
        grown = mig.fill(model, layout, counts) if policy == "fill" else layout
        assert accepted(model, grown)
        assert all(grown.get(n, 0) >= c for n, c in layout.items())
    assert accepted(model, model.balanced)


def brute_force_fits(model: GPUModel, profiles: list[MigProfile]) -> bool:
    if sum(p.shape.media_extensions for p in profiles) > 1:
        return False
    per_shape = Counter(p.shape.key for p in profiles)
    if any(per_shape[p.shape.key] > p.shape.max_per_gpu for p in profiles):
        return False
    if sum(p.shape.compute_slices for p in profiles) > model.compute_slices:
        return False
    for starts in itertools.product(*(p.shape.starts for p in profiles)):
        used: set[int] = set()
        ok = True
        for p, s in zip(profiles, starts, strict=True):
            span = set(range(s, s + p.shape.memory_slices))
            if s + p.shape.memory_slices > model.memory_slices or span & used:
                ok = False
                break
            used |= span
        if ok:
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_checker_agrees_with_brute_force_over_start_slots(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(MIG_MODELS))
    profiles = data.draw(st.lists(st.sampled_from(model.profiles), min_size=1, max_size=5))
    placed = mig.place_on_gpu(model, profiles)
    assert (placed is not None) == brute_force_fits(model, profiles)
    assert mig.fits(model, dict(Counter(p.name for p in profiles))) == (placed is not None)
    if placed is not None:
        used: set[int] = set()
        for p in placed:
            assert p.start in p.profile.shape.starts
            span = set(range(p.start, p.start + p.profile.shape.memory_slices))
            assert not span & used
            assert max(span) < model.memory_slices
            used |= span
        assert Counter(p.profile.name for p in placed) == Counter(p.name for p in profiles)
