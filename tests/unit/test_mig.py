"""MIG placement checker and planner against the documented combination rules."""

from __future__ import annotations

import pytest

from functions.common.gpus import CATALOG, GPUModel
from functions.gpupool import mig

A100_80 = next(m for m in CATALOG if m.key == "a100-80gb")
A30 = next(m for m in CATALOG if m.key == "a30-24gb")


def fits(model: GPUModel, *names: str) -> bool:
    profiles = [model.profile(n) for n in names]
    assert all(profiles), names
    return mig.place_on_gpu(model, profiles) is not None  # type: ignore[arg-type]


# Valid and invalid single-GPU layouts from the MIG user guide's combination tables
# (A100-80GB names; 1g.20gb is the 1-compute-slice profile with two memory slices).
VALID = [
    ["1g.10gb"] * 7,
    ["3g.40gb", "3g.40gb"],
    ["1g.20gb"] * 4,
    ["4g.40gb", "3g.40gb"],
    ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
    ["1g.10gb"] * 5 + ["2g.20gb"],
    ["2g.20gb"] * 3 + ["1g.10gb"],
    ["2g.20gb"] * 3 + ["1g.20gb"],
    ["3g.40gb", "2g.20gb", "2g.20gb"],
    ["3g.40gb"] + ["1g.10gb"] * 4,
    ["4g.40gb", "2g.20gb", "1g.10gb"],
    ["4g.40gb"] + ["1g.10gb"] * 3,
    ["1g.10gb"] * 6 + ["1g.20gb"],
    ["7g.80gb"],
    ["1g.10gb+me"] + ["1g.10gb"] * 6,
]
INVALID = [
    ["1g.10gb"] * 8,
    ["3g.40gb", "3g.40gb", "1g.10gb"],
    ["1g.20gb"] * 4 + ["1g.10gb"],
    ["4g.40gb", "2g.20gb", "2g.20gb"],
    ["4g.40gb", "3g.40gb", "1g.10gb"],
    ["7g.80gb", "1g.10gb"],
    ["1g.10gb+me", "1g.10gb+me"],
    ["2g.20gb"] * 4,
]


@pytest.mark.parametrize("layout", VALID, ids="+".join)
def test_documented_valid_layouts_are_accepted(layout: list[str]) -> None:
    assert fits(A100_80, *layout)


@pytest.mark.parametrize("layout", INVALID, ids="+".join)
def test_documented_invalid_layouts_are_rejected(layout: list[str]) -> None:
    assert not fits(A100_80, *layout)


def test_three_3g_plus_1g_is_impossible_though_compute_would_fit() -> None:
    # 3+3+1 = 7 compute slices, but the two 3g take all 8 memory slices.
    assert not fits(A100_80, "3g.40gb", "3g.40gb", "1g.10gb")


def test_four_1g_with_double_memory_strand_three_compute_slices() -> None:
    assert fits(A100_80, *["1g.20gb"] * 4)
    # Memory is full: no further instance fits although 3 of 7 compute slices are idle.
    for extra in ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb"):
        assert not fits(A100_80, *["1g.20gb"] * 4, extra)


def test_4g_forces_the_3g_to_start_at_slot_4() -> None:
    placed = mig.place_on_gpu(A100_80, [A100_80.profile("3g.40gb"), A100_80.profile("4g.40gb")])  # type: ignore[list-item]
    assert placed is not None
    assert [(p.profile.name, p.start) for p in placed] == [("4g.40gb", 0), ("3g.40gb", 4)]


def test_illegal_start_slots_are_not_in_the_catalog() -> None:
    shapes = {p.shape.key: p.shape for p in A100_80.profiles}
    assert 7 not in shapes["1g"].starts  # no 1g at slot 7
    assert 6 not in shapes["2g"].starts  # no 2g at slot 6
    assert shapes["3g"].starts == (0, 4)


def test_media_extensions_are_one_per_gpu_across_shapes() -> None:
    assert not fits(A30, "1g.6gb+me", "2g.12gb+me")
    assert fits(A30, "1g.6gb+me", "2g.12gb", "1g.6gb")


def test_a30_has_four_slots() -> None:
    assert fits(A30, "2g.12gb", "1g.6gb", "1g.6gb")
    assert not fits(A30, "2g.12gb", "2g.12gb", "1g.6gb")
    assert not fits(A30, "4g.24gb", "1g.6gb")


def test_placements_use_legal_start_slots() -> None:
    placed = mig.place_on_gpu(A100_80, [A100_80.profile("3g.40gb")] * 2)  # type: ignore[list-item]
    assert placed is not None
    assert [p.start for p in placed] == [0, 4]


@pytest.mark.parametrize(
    ("counts", "gpus"),
    [
        ({"3g.40gb": 2, "1g.10gb": 4}, [{"3g.40gb": 2}, {"1g.10gb": 4}]),
        ({"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}, [{"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}]),
        ({"7g.80gb": 2}, [{"7g.80gb": 1}, {"7g.80gb": 1}]),
        ({"1g.10gb": 9}, [{"1g.10gb": 7}, {"1g.10gb": 2}]),
        ({"4g.40gb": 1, "2g.20gb": 2}, [{"2g.20gb": 1, "4g.40gb": 1}, {"2g.20gb": 1}]),
    ],
)
def test_planner_packs_requests_onto_fewest_gpus(
    counts: dict[str, int], gpus: list[dict[str, int]]
) -> None:
    assert mig.plan(A100_80, counts) == gpus


def test_every_planned_gpu_passes_the_checker() -> None:
    for layout in mig.plan(A100_80, {"3g.40gb": 3, "2g.20gb": 4, "1g.10gb": 5, "1g.20gb": 2}):
        names = [n for n, c in layout.items() for _ in range(c)]
        assert fits(A100_80, *names)


def test_unknown_profile_for_the_model_is_named() -> None:
    with pytest.raises(ValueError, match=r"MIG profile 3g\.20gb does not exist on a100-80gb"):
        mig.plan(A100_80, {"3g.20gb": 1})


def test_exact_search_beats_first_fit_decreasing() -> None:
    # FFD pairs the two 3g (all 8 memory slices), then 2g + 5 x 1g, and needs a third GPU for
    # the last 1g; the optimum is 3g + 2g + 2 x 1g and 3g + 4 x 1g.
    counts = {"3g.40gb": 2, "2g.20gb": 1, "1g.10gb": 6}
    demand = mig.demand_vector(A100_80, counts)
    assert len(mig.first_fit_decreasing(A100_80, demand)) == 3
    best = mig.solve(A100_80, counts)
    assert best.optimal
    assert best.gpus == (
        {"1g.10gb": 4, "3g.40gb": 1},
        {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
    )


def test_fill_adds_the_largest_listed_profiles_that_still_fit() -> None:
    assert mig.fill(A100_80, {"3g.40gb": 1}, ["3g.40gb", "1g.10gb"]) == {"3g.40gb": 2}
    assert mig.fill(A100_80, {"4g.40gb": 1}, ["3g.40gb", "1g.10gb"]) == {
        "3g.40gb": 1,
        "4g.40gb": 1,
    }
    assert mig.fill(A100_80, {}, ["2g.20gb", "1g.10gb"]) == {"1g.10gb": 1, "2g.20gb": 3}


def test_max_counts_say_what_fits_instead() -> None:
    assert mig.max_counts(A100_80, {"3g.40gb": 7, "1g.10gb": 4}, 3) == {
        "1g.10gb": 0,
        "3g.40gb": 5,
    }


def test_balanced_layouts_are_valid() -> None:
    for model in CATALOG:
        if model.mig_capable:
            assert mig.fits(model, model.balanced), model.key
