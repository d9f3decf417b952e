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
from functions.gpupool import mig
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
    pool = {
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
    lines += pool_timing(args.nodes, 5, args.seed)
    lines.append(f"Total benchmark time {time.perf_counter() - start:.0f} s, seed {args.seed}.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
