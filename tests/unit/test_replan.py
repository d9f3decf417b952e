"""Stable re-planning: a changed request on the fewest GPUs, changing the fewest GPU layouts.

Properties over random requests and random previous plans (leftover whole), against the
placement checker and the independent exhaustive searches of tests/gpupool/bench.py:

- every layout passes the checker and the MIG GPUs host exactly the request;
- the plan uses the optimal GPU count;
- an unchanged request changes no GPU;
- on small instances the changed GPUs equal the exact minimum, and never exceed what the
  from-scratch planner changes.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from functions.common.gpus import CATALOG, GPUModel
from functions.gpupool import mig
from functions.gpupool.replan import Leftover, replan
from tests.gpupool.bench import exact_min_changes, exhaustive_optimum, from_scratch
from tests.unit.test_mig_properties import requests

WHOLE = Leftover({})
A100 = next(m for m in CATALOG if m.key == "a100-80gb")
GPUS = 8


@st.composite
def changes(
    draw: st.DrawFn, max_total: int = 10
) -> tuple[GPUModel, dict[str, int], tuple[dict[str, int], ...], dict[str, int]]:
    """A model, a first request, the stable plan of it, and a second request on that model."""
    model, first = draw(requests(max_total))
    names = [p.name for p in model.profiles]
    second = draw(
        st.dictionaries(st.sampled_from(names), st.integers(1, 4), min_size=1, max_size=3)
    )
    while sum(second.values()) > max_total:
        biggest = max(second, key=lambda n: (second[n], n))
        second[biggest] -= 1
    second = {n: c for n, c in second.items() if c}
    for request in (first, second):
        if len(mig.solve(model, request)) > GPUS:
            reject()
    previous = replan(model, first, [], GPUS, WHOLE).gpus
    return model, first, previous, second


def hosted(layouts: tuple[dict[str, int], ...]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for layout in layouts:
        out.update(layout)
    return dict(out)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(changes())
def test_stable_plan_is_valid_hosts_exactly_the_request_on_the_fewest_gpus(
    case: tuple[GPUModel, dict[str, int], tuple[dict[str, int], ...], dict[str, int]],
) -> None:
    model, _, previous, counts = case
    plan = replan(model, counts, previous, GPUS, WHOLE)
    assert len(plan.gpus) == GPUS
    assert all(mig.fits(model, layout) for layout in plan.gpus if layout)
    assert hosted(plan.gpus) == counts
    assert sum(1 for x in plan.gpus if x) == plan.used == len(mig.solve(model, counts))
    assert plan.used == exhaustive_optimum(model, counts)


@SETTINGS
@given(changes())
def test_unchanged_request_changes_no_gpu(
    case: tuple[GPUModel, dict[str, int], tuple[dict[str, int], ...], dict[str, int]],
) -> None:
    model, first, previous, _ = case
    plan = replan(model, first, previous, GPUS, WHOLE)
    assert plan.changed == ()
    assert plan.gpus == previous


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes(max_total=8))
def test_changed_gpus_are_the_exact_minimum_and_never_more_than_from_scratch(
    case: tuple[GPUModel, dict[str, int], tuple[dict[str, int], ...], dict[str, int]],
) -> None:
    model, _, previous, counts = case
    plan = replan(model, counts, previous, GPUS, WHOLE)
    scratch = from_scratch(model, counts, GPUS)
    assert len(plan.changed) == exact_min_changes(model, counts, previous, GPUS)
    assert len(plan.changed) <= sum(a != b for a, b in zip(scratch, previous, strict=True))


@pytest.mark.parametrize(
    ("previous", "counts", "gpus", "changed"),
    [
        # A new profile goes onto a whole GPU; the two MIG GPUs keep their layouts.
        (
            [{"3g.40gb": 2}, {"1g.10gb": 4}, {}, {}],
            {"3g.40gb": 2, "1g.10gb": 4, "2g.20gb": 3},
            [{"3g.40gb": 2}, {"1g.10gb": 4}, {"2g.20gb": 3}, {}],
            (2,),
        ),
        # Fewer instances: only the GPU that held them changes (and stays MIG-enabled).
        (
            [{"3g.40gb": 2}, {"1g.10gb": 4}, {}, {}],
            {"3g.40gb": 2, "1g.10gb": 2},
            [{"3g.40gb": 2}, {"1g.10gb": 2}, {}, {}],
            (1,),
        ),
        # A profile removed: its GPU becomes whole again (the one mode flip the spec asks for).
        (
            [{"3g.40gb": 2}, {"1g.10gb": 4}, {}, {}],
            {"1g.10gb": 4},
            [{}, {"1g.10gb": 4}, {}, {}],
            (0,),
        ),
        # Kept GPUs need not be the first: the fresh layout goes to the MIG GPU that changes.
        (
            [{}, {"1g.10gb": 7}, {"3g.40gb": 2}, {}],
            {"3g.40gb": 2, "2g.20gb": 3},
            [{}, {"2g.20gb": 3}, {"3g.40gb": 2}, {}],
            (1,),
        ),
    ],
    ids=["add-profile", "fewer-instances", "remove-profile", "reuse-mig-gpu"],
)
def test_stable_plan_changes_only_the_gpus_it_must(
    previous: list[dict[str, int]],
    counts: dict[str, int],
    gpus: list[dict[str, int]],
    changed: tuple[int, ...],
) -> None:
    plan = replan(A100, counts, previous, len(previous), WHOLE)
    assert list(plan.gpus) == gpus
    assert plan.changed == changed


def test_fewest_changes_may_use_more_gpus_than_needed() -> None:
    # Two 3g.40gb on two GPUs can stay where they are, or be packed onto one.
    previous = [{"3g.40gb": 1}, {"3g.40gb": 1}, {}, {}]
    counts = {"3g.40gb": 2}
    fewest_gpus = replan(A100, counts, previous, 4, WHOLE, "gpus")
    fewest_changes = replan(A100, counts, previous, 4, WHOLE, "changes")
    assert (fewest_gpus.used, len(fewest_gpus.changed)) == (1, 2)
    assert (fewest_changes.used, fewest_changes.changed) == (2, ())


def test_only_indices_every_node_has_host_the_request() -> None:
    # Nodes with 2 and 4 GPUs share one layout: the kept GPU at index 3 is not on the small one.
    previous = [{}, {}, {}, {"3g.40gb": 2}]
    plan = replan(A100, {"3g.40gb": 2}, previous, 4, WHOLE, limit=2)
    assert plan.gpus == ({"3g.40gb": 2}, {}, {}, {})


def test_fill_keeps_a_gpu_whose_extra_instances_are_of_requested_profiles() -> None:
    names = ["3g.40gb", "1g.10gb"]
    fill = Leftover(mig.fill(A100, {}, names), frozenset(names), lambda x: mig.fill(A100, x, names))
    previous = [{"1g.10gb": 4, "3g.40gb": 1}, {"3g.40gb": 2}]
    # The first GPU holds the request plus three 1g.10gb the fill policy added; it is kept.
    plan = replan(A100, {"3g.40gb": 1, "1g.10gb": 1}, previous, 2, fill)
    assert plan.changed == ()
    assert plan.used == 1


def policy(model: GPUModel, name: str, counts: dict[str, int]) -> Leftover:
    names = sorted(counts)
    if name == "fill":
        return Leftover(
            mig.fill(model, {}, names), frozenset(names), lambda x: mig.fill(model, x, names)
        )
    return Leftover(model.balanced) if name == "balanced" else WHOLE


@SETTINGS
@given(changes(), st.sampled_from(["whole", "balanced", "fill"]))
def test_every_leftover_policy_keeps_an_unchanged_request_as_it_is(
    case: tuple[GPUModel, dict[str, int], tuple[dict[str, int], ...], dict[str, int]],
    name: str,
) -> None:
    model, first, _, _ = case
    leftover = policy(model, name, first)
    previous = replan(model, first, [], GPUS, leftover).gpus
    plan = replan(model, first, previous, GPUS, leftover)
    assert plan.changed == ()
    assert all(mig.fits(model, layout) for layout in plan.gpus if layout)


@SETTINGS
@given(changes())
def test_fewest_changes_never_changes_more_than_fewest_gpus(
    case: tuple[GPUModel, dict[str, int], tuple[dict[str, int], ...], dict[str, int]],
) -> None:
    model, _, previous, counts = case
    gpus_first = replan(model, counts, previous, GPUS, WHOLE, "gpus")
    changes_first = replan(model, counts, previous, GPUS, WHOLE, "changes")
    assert len(changes_first.changed) <= len(gpus_first.changed)
    assert hosted(changes_first.gpus) == counts
    assert all(mig.fits(model, layout) for layout in changes_first.gpus if layout)
    assert changes_first.used >= gpus_first.used == len(changes_first.plan)
