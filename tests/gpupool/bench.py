"""Benchmark of the MIG planner: GPUs used against an exact optimum, and time for large pools.

Run with `make bench` (which adds PuLP/CBC for the integer program); `python -m
tests.gpupool.bench --help` for options. Without PuLP the optimum comes from exhaustive
search only (small instances).

Planners compared on the same random instances (per-node MIG requests on a random MIG model):

- `planner`: `mig.solve` (configuration table, bounds, exact search with a step budget);
- `ffd`: first-fit decreasing with the checker (largest instances first);
- `first-fit`: first fit in request order, checker as oracle, no sorting;
- `naive`: one profile per GPU (each profile packed alone, as many as fit on an empty GPU).

The optimum comes from two independent exact methods, neither of which uses the planner's
configuration table: an exhaustive search assigning instances one by one to k GPUs with the
checker as oracle (small instances), and an integer program over GPU x profile x legal start
variables with per-memory-slice capacity, compute, `+me` and per-shape limits (PuLP + CBC).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any

from crossplane.function import logging

from functions.common.gpus import CATALOG, GPUModel, MigProfile
from functions.gpupool import mig, replan

MIG_MODELS = tuple(m for m in CATALOG if m.mig_capable)
Counts = dict[str, int]


def random_request(
    rng: random.Random, max_instances: int, max_count: int = 6
) -> tuple[GPUModel, Counts]:
    """A per-node request: 1-4 profiles of a random MIG model, 1..max_count instances each."""
    model = rng.choice(MIG_MODELS)
    names = rng.sample([p.name for p in model.profiles], rng.randint(1, 4))
    counts = {n: rng.randint(1, max_count) for n in names}
    while sum(counts.values()) > max_instances:
        biggest = max(counts, key=lambda n: (counts[n], n))
        counts[biggest] -= 1
    return model, {n: c for n, c in sorted(counts.items()) if c}


def _items(model: GPUModel, counts: Counts, *, sort: bool) -> list[MigProfile]:
    items = [p for n, c in counts.items() for p in [model.profile(n)] * c if p is not None]
    if sort:
        items.sort(key=lambda p: (-p.shape.memory_slices, -p.shape.compute_slices, p.name))
    return items


def first_fit(model: GPUModel, counts: Counts, *, sort: bool) -> int:
    gpus: list[list[MigProfile]] = []
    for item in _items(model, counts, sort=sort):
        for gpu in gpus:
            if mig.place_on_gpu(model, [*gpu, item]) is not None:
                gpu.append(item)
                break
        else:
            gpus.append([item])
    return len(gpus)


def naive(model: GPUModel, counts: Counts) -> int:
    total = 0
    for name, count in counts.items():
        profile = model.profile(name)
        assert profile is not None
        alone = 0
        while mig.place_on_gpu(model, [profile] * (alone + 1)) is not None:
            alone += 1
        total += ceil(count / alone)
    return total


def exhaustive_optimum(model: GPUModel, counts: Counts) -> int:
    """Fewest GPUs by assigning instances (largest first) to k GPUs, k = 1, 2, ..."""
    items = _items(model, counts, sort=True)

    def place(i: int, bins: list[list[MigProfile]], k: int) -> bool:
        if i == len(items):
            return True
        tried: set[tuple[str, ...]] = set()
        for b in bins:
            key = tuple(sorted(p.name for p in b))
            if key in tried:
                continue
            tried.add(key)
            if mig.place_on_gpu(model, [*b, items[i]]) is not None:
                b.append(items[i])
                if place(i + 1, bins, k):
                    return True
                b.pop()
        if len(bins) < k:
            bins.append([items[i]])
            if place(i + 1, bins, k):
                return True
            bins.pop()
        return False

    k = 1
    while not place(0, [], k):
        k += 1
    return k


def mip_optimum(model: GPUModel, counts: Counts, upper: int) -> int:
    """Integer program over (GPU, profile, start) with the reference's placement rules."""
    pulp: Any = importlib.import_module("pulp")

    prob = pulp.LpProblem("mig", pulp.LpMinimize)
    gpus = range(upper)
    profiles = [model.profile(n) for n in sorted(counts)]
    used = {k: pulp.LpVariable(f"y{k}", cat="Binary") for k in gpus}
    z = {
        (k, p.name, s): pulp.LpVariable(f"z_{k}_{i}_{s}", cat="Binary")
        for k in gpus
        for i, p in enumerate(profiles)
        if p is not None
        for s in p.shape.starts
        if s + p.shape.memory_slices <= model.memory_slices
    }
    prob += pulp.lpSum(used.values())
    for p in profiles:
        assert p is not None
        prob += pulp.lpSum(v for (_, n, _), v in z.items() if n == p.name) == counts[p.name]
    by_name = {p.name: p for p in profiles if p is not None}
    for k in gpus:
        for j in range(model.memory_slices):
            prob += (
                pulp.lpSum(
                    v
                    for (kk, n, s), v in z.items()
                    if kk == k and s <= j < s + by_name[n].shape.memory_slices
                )
                <= used[k]
            )
        prob += (
            pulp.lpSum(
                v * by_name[n].shape.compute_slices for (kk, n, _), v in z.items() if kk == k
            )
            <= model.compute_slices * used[k]
        )
        prob += (
            pulp.lpSum(
                v for (kk, n, _), v in z.items() if kk == k and by_name[n].shape.media_extensions
            )
            <= 1
        )
        for p in by_name.values():
            prob += (
                pulp.lpSum(v for (kk, n, _), v in z.items() if kk == k and n == p.name)
                <= p.shape.max_per_gpu
            )
        if k + 1 < upper:
            prob += used[k] >= used[k + 1]
    status = prob.solve(pulp.PULP_CBC_CMD(msg=False))
    assert pulp.LpStatus[status] == "Optimal", pulp.LpStatus[status]
    value: float = pulp.value(prob.objective)
    return round(value)


def have_pulp() -> bool:
    return importlib.util.find_spec("pulp") is not None


@dataclass
class Row:
    optimum: int
    results: dict[str, int]


def compare(n: int, max_instances: int, seed: int, use_mip: bool, max_count: int = 6) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        model, counts = random_request(rng, max_instances, max_count)
        demand = mig.demand_vector(model, counts)
        results = {
            "planner": len(mig.solve(model, counts)),
            "ffd": len(mig.first_fit_decreasing(model, demand)),
            "first-fit": first_fit(model, counts, sort=False),
            "naive": naive(model, counts),
        }
        if use_mip:
            optimum = mip_optimum(model, counts, results["ffd"])
        else:
            optimum = exhaustive_optimum(model, counts)
        rows.append(Row(optimum, results))
    return rows


def summarize(title: str, rows: Sequence[Row]) -> list[str]:
    total_opt = sum(r.optimum for r in rows)
    out = [
        f"### {title}",
        "",
        f"{len(rows)} instances, {total_opt} GPUs in the optimal plans.",
        "",
        "| planner | optimal on | GPUs used | vs optimum (sum) | mean ratio | worst ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name in rows[0].results:
        used = sum(r.results[name] for r in rows)
        optimal = sum(r.results[name] == r.optimum for r in rows)
        ratios = [r.results[name] / r.optimum for r in rows]
        out.append(
            f"| {name} | {optimal / len(rows):.1%} | {used} | {used / total_opt:.3f} | "
            f"{statistics.fmean(ratios):.3f} | {max(ratios):.2f} |"
        )
    below = sum(r.results["planner"] < r.optimum for r in rows)
    assert below == 0, "planner beat the optimum: the checker or the optimum is wrong"
    return [*out, ""]


Layout = dict[str, int]
WHOLE = replan.Leftover({})


def exact_min_changes(
    model: GPUModel, counts: Counts, previous: Sequence[Layout], gpus: int
) -> int:
    """Fewest GPUs whose layout must change to host `counts` on its fewest GPUs (leftover whole).

    Every subset of the previous MIG GPUs is tried as the kept set: it must hold only requested
    instances, and the rest must pack onto the optimum minus the kept GPUs (exhaustive search,
    independent of the planner); unused GPUs stay whole, so previous whole GPUs not needed for
    fresh layouts are unchanged too.
    """
    k = exhaustive_optimum(model, counts)
    mig_gpus = [i for i in range(gpus) if previous[i]]
    whole = gpus - len(mig_gpus)
    fewest = gpus
    for size in range(min(k, len(mig_gpus)), -1, -1):
        for kept in itertools.combinations(mig_gpus, size):
            rest = dict(counts)
            for i in kept:
                for name, c in previous[i].items():
                    rest[name] = rest.get(name, 0) - c
            if any(c < 0 for c in rest.values()):
                continue
            rest = {n: c for n, c in rest.items() if c}
            if (exhaustive_optimum(model, rest) if rest else 0) != k - size:
                continue
            fewest = min(fewest, gpus - size - min(whole, gpus - k))
    return fewest


def from_scratch(model: GPUModel, counts: Counts, gpus: int) -> tuple[Layout, ...]:
    """Today's planner before stable re-planning: the fewest-GPU plan on indices 0.., whole rest."""
    plan = mig.solve(model, counts).gpus
    return (*plan, *[{}] * (gpus - len(plan)))


def mutate(rng: random.Random, model: GPUModel, counts: Counts, most: int) -> Counts:
    """One pool change: add a profile, remove one, or change one's count."""
    while True:
        out = dict(counts)
        move = rng.choice(["add", "remove", "count", "count"])
        absent = [p.name for p in model.profiles if p.name not in out]
        if move == "add" and absent:
            out[rng.choice(absent)] = rng.randint(1, 3)
        elif move == "remove" and len(out) > 1:
            del out[rng.choice(sorted(out))]
        else:
            name = rng.choice(sorted(out))
            out[name] = max(1, out[name] + rng.choice([-2, -1, 1, 2]))
        if out != counts and sum(out.values()) <= most:
            return dict(sorted(out.items()))


@dataclass
class Change:
    stable: int
    scratch: int
    fewest: int
    used: int
    optimum: int
    flips: int


def reconfiguration(sequences: int, steps: int, seed: int, gpus: int = 8) -> list[Change]:
    """Random sequences of pool changes; each new plan starts from the previous stable plan."""
    rng = random.Random(seed)
    out: list[Change] = []
    while len(out) < sequences * steps:
        model, counts = random_request(rng, 12)
        if len(mig.solve(model, counts)) > gpus:
            continue
        layouts = replan.replan(model, counts, [], gpus, WHOLE).gpus
        for _ in range(steps):
            new = mutate(rng, model, counts, 12)
            if len(mig.solve(model, new)) > gpus:
                continue
            stable = replan.replan(model, new, layouts, gpus, WHOLE)
            scratch = from_scratch(model, new, gpus)
            out.append(
                Change(
                    stable=len(stable.changed),
                    scratch=sum(1 for a, b in zip(scratch, layouts, strict=True) if a != b),
                    fewest=exact_min_changes(model, new, layouts, gpus),
                    used=sum(1 for x in stable.gpus if x),
                    optimum=exhaustive_optimum(model, new),
                    flips=len(stable.flipped),
                )
            )
            counts, layouts = new, stable.gpus
    return out


def summarize_changes(changes: Sequence[Change], sequences: int, steps: int) -> list[str]:
    n = len(changes)
    fewest = sum(c.fewest for c in changes)

    def row(name: str, got: Callable[[Change], int]) -> str:
        total = sum(got(c) for c in changes)
        at_min = sum(got(c) == c.fewest for c in changes)
        over = sum(got(c) > c.scratch for c in changes)
        return (
            f"| {name} | {total} | {total / n:.2f} | {total / max(fewest, 1):.3f} | "
            f"{100 * at_min / n:.1f}% | {max(got(c) - c.fewest for c in changes)} | {over} |"
        )

    at_optimum = sum(c.used == c.optimum for c in changes)
    return [
        "### Reconfiguration (8-GPU nodes, leftover whole)",
        "",
        f"{n} changes in {sequences} random sequences of up to {steps} (add or remove a profile, "
        "or change a count; <= 12 instances per node), each planned from the previous stable "
        "plan; from-scratch is `mig.solve` on the same request, compared with the same "
        "previous layouts.",
        "",
        "| planner | GPUs reconfigured (sum) | per change | vs exact minimum (sum) | "
        "at the minimum | worst excess | more than from-scratch |",
        "|---|---|---|---|---|---|---|",
        row("stable (replan)", lambda c: c.stable),
        row("from scratch (mig.solve)", lambda c: c.scratch),
        row("exact minimum", lambda c: c.fewest),
        "",
        f"Stable plans at the optimum GPU count (exhaustive search): {at_optimum}/{n}; "
        f"changes that flip a GPU's MIG mode: {sum(c.flips > 0 for c in changes)}.",
        "",
    ]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


BASELINE = "a8d8082"
"""The commit before stable re-planning (cd8399c): the planning time the issue holds us to."""
ROOT = Path(__file__).resolve().parents[2]
POOLTIME = Path(__file__).with_name("pooltime.py")
STATE_NAMES = {
    "first": "first plan (new pool, nodes unlabelled)",
    "unchanged": "unchanged request (the usual reconcile)",
    "changed": "right after a change",
}


def _pooltime(root: Path, nodes: int, repeat: int, seed: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(POOLTIME),
            str(root),
            f"--nodes={nodes}",
            f"--repeat={repeat}",
            f"--seed={seed}",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def baseline_tree(rev: str, into: Path) -> Path | None:
    """`functions/` of commit `rev` under `into` (git archive), or None without git or rev."""
    try:
        tar = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "functions"],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into


def pool_timing(nodes: int, rounds: int, repeat: int, seed: int, baseline: str) -> list[str]:
    """CPU time per RunFunction for a pool of `nodes` Nodes in three states (pooltime.py), this
    tree against `baseline`'s in processes alternating round by round."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline_tree(baseline, Path(tmp)) if baseline else None
        trees = {"this tree": ROOT, **({"baseline": base} if base else {})}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for r in range(rounds):
            # ABBA order, so a drift in load weighs on both alike.
            for name in sorted(trees, reverse=bool(r % 2)):
                runs[name].append(_pooltime(trees[name], nodes, repeat, seed))

    def ms(name: str, state: str) -> tuple[float, float, float]:
        """Median of all runs, lowest and highest per-round median, in ms."""
        per_round = [statistics.median(x["times"][state]) for x in runs[name]]
        every = [t for x in runs[name] for t in x["times"][state]]
        return (1000 * statistics.median(every), 1000 * min(per_round), 1000 * max(per_round))

    report = runs["this tree"][-1]
    out = [
        f"### {nodes}-node pool",
        "",
        f"CPU time (`time.process_time`) of one `RunFunction` with {nodes} Nodes as required "
        "resources (8 GPUs each, A100-80GB and H100-80GB, MIG 5x3g + 4x2g + 9x1g per node, "
        f"leftover `fill`, time-slicing ratio 2): {rounds} rounds, each one process per tree "
        f"(alternating), {repeat} runs per state after 2 warm-up runs; median of all runs and "
        f"the range of the per-round medians. Load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after.",
        "",
    ]
    if "baseline" in runs:
        out += [
            f"| state | baseline `{baseline}` (ms) | this tree (ms) | this tree / baseline |",
            "|---|---|---|---|",
        ]
        for state, title in STATE_NAMES.items():
            b, t = ms("baseline", state), ms("this tree", state)
            out.append(
                f"| {title} | {b[0]:.0f} ({b[1]:.0f}-{b[2]:.0f}) | {t[0]:.0f} "
                f"({t[1]:.0f}-{t[2]:.0f}) | {t[0] / b[0]:.2f} |"
            )
    else:
        out += [f"(baseline {baseline!r} not available: git archive failed)", ""]
        out += ["| state | this tree (ms) |", "|---|---|"]
        for state, title in STATE_NAMES.items():
            t = ms("this tree", state)
            out.append(f"| {title} | {t[0]:.0f} ({t[1]:.0f}-{t[2]:.0f}) |")
    out += [
        "",
        "The change reconfigures GPUs per node: "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["changedGPUs"].items()))
        + f"; status.migChanges lists it in {report['migChanges']} entries for {nodes} nodes.",
        "",
    ]
    return out


def planner_alone(nodes: int, seed: int) -> list[str]:
    """Raw planner time: a different random request for every node (no reuse across nodes)."""
    rng = random.Random(seed)
    requests = [random_request(rng, 40, 14) for _ in range(nodes)]
    plan_times = []
    unproven = 0
    for model, counts in requests:
        start = time.perf_counter()
        plan = mig.solve(model, counts)
        plan_times.append(time.perf_counter() - start)
        unproven += not plan.optimal
    # The naive baseline on the same requests (its cost is dominated by checker calls too).
    naive_total = sum(timed(lambda: [naive(m, c) for m, c in requests], 1))
    ffd_total = sum(
        timed(
            lambda: [mig.first_fit_decreasing(m, mig.demand_vector(m, c)) for m, c in requests],
            1,
        )
    )
    plan_total = sum(plan_times)
    plan_times.sort()
    return [
        f"- planner alone, a different random request (up to 40 instances) per node: "
        f"{plan_total * 1000:.0f} ms for {nodes} nodes "
        f"(p50 {plan_times[len(plan_times) // 2] * 1e6:.0f} us, "
        f"p99 {plan_times[int(len(plan_times) * 0.99)] * 1e6:.0f} us, max "
        f"{plan_times[-1] * 1000:.1f} ms); {unproven} plans not proven optimal within the step "
        "budget",
        f"- baselines on the same requests: FFD {ffd_total * 1000:.0f} ms, naive "
        f"{naive_total * 1000:.0f} ms (planner time / FFD time {plan_total / ffd_total:.1f}, "
        f"/ naive time {plan_total / naive_total:.1f})",
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--instances", type=int, default=3000, help="random small instances")
    ap.add_argument("--max-instances", type=int, default=12, help="MIG instances per request")
    ap.add_argument("--large", type=int, default=500, help="larger instances (MIP only)")
    ap.add_argument("--nodes", type=int, default=1000, help="nodes in the pool timing")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--no-mip", action="store_true", help="exhaustive search only")
    ap.add_argument("--sequences", type=int, default=200, help="random pool-change sequences")
    ap.add_argument("--steps", type=int, default=5, help="changes per sequence")
    ap.add_argument("--rounds", type=int, default=3, help="pool timing: processes per tree")
    ap.add_argument("--repeat", type=int, default=7, help="pool timing: runs per state")
    ap.add_argument("--baseline", default=BASELINE, help="commit timed side by side ('' for none)")
    ap.add_argument("--only-pool", action="store_true", help="the pool timing alone")
    args = ap.parse_args(argv)
    use_mip = have_pulp() and not args.no_mip
    logging.configure(level=logging.Level.DISABLED)
    lines = ["## Results", ""]
    start = time.perf_counter()
    if args.only_pool:
        lines += pool_timing(args.nodes, args.rounds, args.repeat, args.seed, args.baseline)
        print("\n".join(lines))
        return 0
    small = compare(args.instances, args.max_instances, args.seed, use_mip=False)
    lines += summarize(
        f"Small instances (<= {args.max_instances} MIG instances), optimum by exhaustive search",
        small,
    )
    if use_mip:
        mip_rows = compare(min(args.instances, 500), args.max_instances, args.seed, use_mip=True)
        agree = sum(a.optimum == b.optimum for a, b in zip(small, mip_rows, strict=False))
        lines.append(
            f"Integer program (PuLP/CBC) on the first {len(mip_rows)} of these: same optimum "
            f"as the exhaustive search on {agree}/{len(mip_rows)}."
        )
        lines.append("")
        if args.large:
            large = compare(args.large, 40, args.seed + 1, use_mip=True, max_count=14)
            lines += summarize(
                "Larger instances (up to 14 per profile, <= 40 MIG instances), optimum by MIP",
                large,
            )
    else:
        lines += ["(PuLP not installed: integer-program comparison skipped.)", ""]
    lines += summarize_changes(
        reconfiguration(args.sequences, args.steps, args.seed), args.sequences, args.steps
    )
    lines += pool_timing(args.nodes, args.rounds, args.repeat, args.seed, args.baseline)
    lines += planner_alone(args.nodes, args.seed)
    lines.append(f"Total benchmark time {time.perf_counter() - start:.0f} s, seed {args.seed}.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
