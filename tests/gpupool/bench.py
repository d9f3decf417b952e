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
import copy
import importlib
import importlib.util
import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import ceil
from typing import Any

from crossplane.function import logging, resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common.gpus import CATALOG, GPUModel, MigProfile
from functions.gpupool import mig, replan
from functions.gpupool.fn import runner

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


def node(name: str, product: str, gpus: int, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                **selector,
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(gpus),
                "nvidia.com/mig.config.state": "success",
            },
        },
    }


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


def pool_timing(nodes: int, repeat: int, seed: int) -> list[str]:
    """Whole-function time for a pool of `nodes` Nodes, and raw planner time per node."""
    rng = random.Random(seed)
    selector = {"pool": "big"}
    # A100-80GB and H100-80GB share profile names, so one pool can span both models.
    products = ["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"]
    all_nodes = [node(f"gpu-{i:04d}", rng.choice(products), 8, selector) for i in range(nodes)]
    pool: dict[str, Any] = {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": "big"},
        "spec": {
            "nodeSelector": selector,
            "sharing": {
                "mode": "mig",
                "profiles": [
                    {"name": "3g.40gb", "count": 5},
                    {"name": "2g.20gb", "count": 4},
                    {"name": "1g.10gb", "count": 9},
                ],
                "leftover": "fill",
            },
            "oversubscription": {"enabled": True, "ratio": "2"},
        },
    }
    req = fnv1.RunFunctionRequest(
        observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(pool))),
        required_resources={
            "nodes": fnv1.Resources(
                items=[fnv1.Resource(resource=resource.dict_to_struct(n)) for n in all_nodes]
            )
        },
    )
    function = runner()
    fn_times = timed(lambda: function.run(req), repeat)
    rsp = function.run(req)
    assert not [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL], rsp.results
    objects = len(rsp.desired.resources)

    # A changed request planned from the pool's previous plan (its status) vs from scratch, on
    # nodes that run the previous plan (labelled, success), as before a real change.
    status = resource.struct_to_dict(rsp.desired.composite.resource)["status"]
    configs = {m: p["configName"] for m, p in status["migPlans"].items()}
    model_of = {"NVIDIA-A100-SXM4-80GB": "a100-80gb", "NVIDIA-H100-80GB-HBM3": "h100-80gb"}
    settled = copy.deepcopy(all_nodes)
    for n in settled:
        labels = n["metadata"]["labels"]
        labels["nvidia.com/mig.config"] = configs[model_of[labels["nvidia.com/gpu.product"]]]
        labels["nvidia.com/mig.config.state"] = "success"
    changed: dict[str, Any] = copy.deepcopy(pool)
    changed["spec"]["sharing"]["profiles"] = [
        {"name": "3g.40gb", "count": 5},
        {"name": "2g.20gb", "count": 2},
        {"name": "1g.10gb", "count": 12},
    ]

    def request(composite: dict[str, Any]) -> fnv1.RunFunctionRequest:
        return fnv1.RunFunctionRequest(
            observed=fnv1.State(
                composite=fnv1.Resource(resource=resource.dict_to_struct(composite))
            ),
            required_resources={
                "nodes": fnv1.Resources(
                    items=[fnv1.Resource(resource=resource.dict_to_struct(n)) for n in settled]
                )
            },
        )

    steady = function.run(request({**pool, "status": status}))
    status = resource.struct_to_dict(steady.desired.composite.resource)["status"]
    assert status["migChanges"] == {}, "the settled pool has no pending change"

    stable_req = request({**changed, "status": status})
    scratch_req = request(changed)
    stable_times: list[float] = []
    scratch_times: list[float] = []
    for _ in range(repeat):
        stable_times += timed(lambda: function.run(stable_req), 1)
        scratch_times += timed(lambda: function.run(scratch_req), 1)
    plans = resource.struct_to_dict(function.run(stable_req).desired.composite.resource)
    changed_gpus = {
        k: len(v.get("changedGPUs", [])) for k, v in plans["status"]["migPlans"].items()
    }

    # Raw planner: a different random request for every node (no reuse across nodes).
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
        f"### {nodes}-node pool",
        "",
        f"- whole function (`RunFunction` with {nodes} Nodes as required resources, 8 GPUs each, "
        f"A100-80GB and H100-80GB, leftover `fill`, MIG time-slicing; {objects} desired "
        f"resources): median {statistics.median(fn_times) * 1000:.0f} ms, "
        f"max {max(fn_times) * 1000:.0f} ms over {repeat} runs",
        f"- the same pool after a change (3g.40gb x5, 2g.20gb x4 -> x2, 1g.10gb x9 -> x12), "
        f"on nodes running the previous plan, planned from it (status): median "
        f"{statistics.median(stable_times) * 1000:.0f} ms (max {max(stable_times) * 1000:.0f}); "
        f"from scratch, alternating with it: median "
        f"{statistics.median(scratch_times) * 1000:.0f} ms (max "
        f"{max(scratch_times) * 1000:.0f}); GPUs reconfigured per node by the stable plan: "
        + ", ".join(f"{k} {v}" for k, v in sorted(changed_gpus.items())),
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
    args = ap.parse_args(argv)
    use_mip = have_pulp() and not args.no_mip
    logging.configure(level=logging.Level.DISABLED)
    lines = ["## Results", ""]
    start = time.perf_counter()
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
    lines += pool_timing(args.nodes, 5, args.seed)
    lines.append(f"Total benchmark time {time.perf_counter() - start:.0f} s, seed {args.seed}.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
