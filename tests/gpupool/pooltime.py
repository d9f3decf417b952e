"""CPU time of the GPUPool function on a large MIG pool in three states, for one source tree.

`make bench` runs this file once per tree and round, alternating this checkout with a baseline
commit's `functions/` (extracted by `git archive`), so the two are measured side by side under
the same load. It imports nothing from the project before putting the tree's root first on
`sys.path`, so the same file times either tree:

    python tests/gpupool/pooltime.py ROOT --nodes 1000 --repeat 7

States, each a `RunFunction` with every Node as a required resource (8 GPUs each, A100-80GB and
H100-80GB, MIG 5x3g + 4x2g + 9x1g per node, leftover `fill`, time-slicing ratio 2):

- `first`: a new pool, no status, nodes not yet labelled (every node gets a new config);
- `unchanged`: the usual reconcile, nodes running the pool's plan and the status of the
  reconcile before (which listed no pending change);
- `changed`: the request changed (2g.20gb x4 -> x2, 1g.10gb x9 -> x12), nodes and status as
  in `unchanged`: the first reconcile of a change.

Prints one JSON object: per state the CPU seconds (`time.process_time`) of each timed run, and
what the current tree reports about the change (absent from trees before stable planning).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

SELECTOR = {"pool": "big"}
PRODUCTS = {"NVIDIA-A100-SXM4-80GB": "a100-80gb", "NVIDIA-H100-80GB-HBM3": "h100-80gb"}
PROFILES = [
    {"name": "3g.40gb", "count": 5},
    {"name": "2g.20gb", "count": 4},
    {"name": "1g.10gb", "count": 9},
]
CHANGED = [
    {"name": "3g.40gb", "count": 5},
    {"name": "2g.20gb", "count": 2},
    {"name": "1g.10gb", "count": 12},
]
STATES = ("first", "unchanged", "changed")


def node(name: str, product: str, gpus: int, selector: dict[str, str]) -> dict[str, Any]:
    """A Node as the pool reads it: GPU feature discovery's product and count, mig-manager's
    state; nothing else (tests/serving/bench.py builds its large pools from it too)."""
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


def pool(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": "big"},
        "spec": {
            "nodeSelector": SELECTOR,
            "sharing": {"mode": "mig", "profiles": profiles, "leftover": "fill"},
            "oversubscription": {"enabled": True, "ratio": "2"},
        },
    }


def measure(root: str, nodes: int, repeat: int, seed: int) -> dict[str, Any]:
    sys.path.insert(0, root)
    resource: Any = importlib.import_module("crossplane.function.resource")
    logging: Any = importlib.import_module("crossplane.function.logging")
    fnv1: Any = importlib.import_module("crossplane.function.proto.v1.run_function_pb2")
    runner: Any = importlib.import_module("functions.gpupool.fn").runner
    logging.configure(level=logging.Level.DISABLED)

    def request(composite: dict[str, Any], items: list[dict[str, Any]]) -> Any:
        return fnv1.RunFunctionRequest(
            observed=fnv1.State(
                composite=fnv1.Resource(resource=resource.dict_to_struct(composite))
            ),
            required_resources={
                "nodes": fnv1.Resources(
                    items=[fnv1.Resource(resource=resource.dict_to_struct(n)) for n in items]
                )
            },
        )

    def status(rsp: Any) -> dict[str, Any]:
        fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
        assert not fatal, fatal
        out: dict[str, Any] = resource.struct_to_dict(rsp.desired.composite.resource)["status"]
        return out

    rng = random.Random(seed)
    fresh = [node(f"gpu-{i:04d}", rng.choice(sorted(PRODUCTS)), 8, SELECTOR) for i in range(nodes)]
    function = runner()
    first = request(pool(PROFILES), fresh)
    planned = status(function.run(first))
    # The nodes as mig-manager leaves them once it applied the plan.
    settled = copy.deepcopy(fresh)
    for n in settled:
        labels = n["metadata"]["labels"]
        labels["nvidia.com/mig.config"] = planned["migPlans"][
            PRODUCTS[labels["nvidia.com/gpu.product"]]
        ]["configName"]
    steady = status(function.run(request({**pool(PROFILES), "status": planned}, settled)))
    assert not steady.get("migChanges"), "a settled pool has no pending change"
    requests = {
        "first": first,
        "unchanged": request({**pool(PROFILES), "status": steady}, settled),
        "changed": request({**pool(CHANGED), "status": steady}, settled),
    }
    times: dict[str, list[float]] = {}
    for state, req in requests.items():
        for _ in range(2):  # warm-up: caches, allocator
            function.run(req)
        times[state] = []
        for _ in range(repeat):
            start = time.process_time()
            function.run(req)
            times[state].append(time.process_time() - start)
    changed = status(function.run(requests["changed"]))
    return {
        "times": times,
        "changedGPUs": {
            model: len(plan.get("changedGPUs") or ()) for model, plan in changed["migPlans"].items()
        },
        "migChanges": len(changed.get("migChanges") or ()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("root", help="source tree whose functions/ is timed")
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)
    print(json.dumps(measure(args.root, args.nodes, args.repeat, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
