"""The pool's Nodes as GPU feature discovery labels them, and which of them this pool configures."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from functions.common.gpus import GPUModel, model_for_product
from functions.common.peers import GPUPoolPeer

PRODUCT_LABEL = "nvidia.com/gpu.product"
COUNT_LABEL = "nvidia.com/gpu.count"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
MIG_STATE_LABEL = "nvidia.com/mig.config.state"
PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MAX_LISTED = 5


def listed(names: Iterable[str]) -> str:
    """At most five names for a message, then how many more."""
    names = sorted(names)
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


@dataclass(frozen=True)
class Node:
    name: str
    model: GPUModel | None
    """Catalog model of nvidia.com/gpu.product; None when unlabelled or not in the catalog."""
    product: str | None
    gpus: int | None
    """nvidia.com/gpu.count; None when unlabelled or not a number."""
    labels: Mapping[str, str]

    @property
    def mig_state(self) -> str:
        return self.labels.get(MIG_STATE_LABEL, "unknown")

    @property
    def wired(self) -> bool:
        """Whether GPU feature discovery has told us enough to plan and label the node."""
        return self.model is not None and self.gpus is not None


def read_nodes(objs: Iterable[dict[str, Any]]) -> list[Node]:
    """Nodes (as Crossplane sent them) by name."""
    out = []
    for obj in objs:
        meta = obj.get("metadata", {})
        labels = meta.get("labels") or {}
        product = labels.get(PRODUCT_LABEL)
        try:
            gpus: int | None = int(labels[COUNT_LABEL])
        except (KeyError, ValueError):
            gpus = None
        model = model_for_product(product) if product else None
        out.append(Node(meta.get("name", ""), model, product, gpus, labels))
    return sorted(out, key=lambda n: n.name)


def selects(pool: GPUPoolPeer, node: Node) -> bool:
    return all(node.labels.get(k) == v for k, v in pool.spec.nodeSelector.items())


def owned(
    name: str, created: str, nodes: list[Node], pools: Iterable[GPUPoolPeer]
) -> tuple[list[Node], list[str]]:
    """The nodes pool `name` (created at `created`) configures, and a warning per shared node.

    A node that other pools' selectors match too would get conflicting labels (the provider
    Objects would overwrite each other's device-plugin and MIG configs on every poll, and
    mig-manager would repartition it each time), so it belongs to the oldest of them (name
    breaks ties): the others leave it alone, and each of them warns.
    """
    others = [p for p in pools if p.name != name]
    mine, warnings = [], []
    for node in nodes:
        rivals = [p for p in others if selects(p, node)]
        oldest = min([(created, name), *((p.created, p.name) for p in rivals)])
        if oldest == (created, name):
            mine.append(node)
        if not rivals:
            continue
        verdict = (
            "it stays with this pool, the oldest"
            if oldest == (created, name)
            else f"it is left to the oldest, {oldest[1]}, and not configured here"
        )
        warnings.append(
            f"node {node.name} is also selected by GPUPool {listed(p.name for p in rivals)}; "
            f"{verdict}; make the pools' nodeSelectors disjoint"
        )
    return mine, warnings
