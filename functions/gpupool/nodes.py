"""The pool's Nodes as GPU feature discovery labels them, and which of them this pool configures."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from functions.common import names
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


MAX_GPUS_PER_NODE = 64
"""The most GPUs a node may report (nvidia.com/gpu.count); the largest servers have 8 or 16.
A larger value is a mislabelled node: planning for it would size layouts by the label."""
MIG_STATES = frozenset({"pending", "rebooting", "success", "failed"})
"""Values mig-manager writes to nvidia.com/mig.config.state; any other reads as unknown."""


def read_nodes(objs: Iterable[Any]) -> list[Node]:
    """Nodes (as Crossplane sent them) by name; see parse_nodes for what is left out."""
    return parse_nodes(objs)[0]


def parse_nodes(objs: Iterable[Any]) -> tuple[list[Node], list[str]]:
    """Nodes by name, and a warning naming each node and label that is not what GPU feature
    discovery writes. A node without a valid name is left out; a label of the wrong type or an
    implausible GPU count reads as absent (the node is then not planned or labelled)."""
    out, warnings = [], []
    for obj in objs:
        meta = obj.get("metadata") if isinstance(obj, Mapping) else None
        meta = meta if isinstance(meta, Mapping) else {}
        name = meta.get("name")
        if not names.is_dns_subdomain(name):
            warnings.append(f"a required Node named {names.shorten(name)!r} is ignored")
            continue
        raw = meta.get("labels")
        raw = raw if isinstance(raw, Mapping) else {}
        labels = {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}
        product = labels.get(PRODUCT_LABEL)
        if PRODUCT_LABEL in raw and not names.is_label_value(product):
            warnings.append(
                f"node {name}: label {PRODUCT_LABEL}={names.shorten(raw[PRODUCT_LABEL])!r} is "
                "not a GPU product name; the node is treated as unlabelled"
            )
            product = None
        gpus = gpu_count(raw.get(COUNT_LABEL))
        if COUNT_LABEL in raw and gpus is None:
            warnings.append(
                f"node {name}: label {COUNT_LABEL}={names.shorten(raw[COUNT_LABEL])!r} is not a "
                f"GPU count from 1 to {MAX_GPUS_PER_NODE}; the node is treated as unlabelled"
            )
        state = labels.get(MIG_STATE_LABEL)
        if state is not None and state not in MIG_STATES:
            labels[MIG_STATE_LABEL] = "unknown"
        model = model_for_product(product) if product else None
        out.append(Node(str(name), model, product, gpus, labels))
    return sorted(out, key=lambda n: n.name), warnings


def gpu_count(value: Any) -> int | None:
    """nvidia.com/gpu.count as GPU feature discovery writes it (a decimal integer), else None."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,3}", value):
        return None
    count = int(value)
    return count if 1 <= count <= MAX_GPUS_PER_NODE else None


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
