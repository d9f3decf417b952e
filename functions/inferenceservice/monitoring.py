"""Scraping and disruption: a prometheus-operator PodMonitor and a PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from functions.common import exporter
from functions.common.meta import Owner

# Label every scraped series carries: the InferenceService it belongs to. Autoscaling queries
# and prometheus-adapter rules select on it instead of guessing from pod names.
SERVICE_LABEL = "inference_ai_service"


def pod_monitor(
    owner: Owner, name: str, component: str, endpoints: list[tuple[str, str]]
) -> dict[str, Any]:
    """PodMonitor for the given (port name, path) endpoints of the backend pods."""
    relabel = [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
            "targetLabel": SERVICE_LABEL,
        }
    ]
    return exporter.pod_monitor(
        owner.metadata(name, component),
        owner.selector(component),
        [exporter.endpoint(port, path, relabelings=relabel) for port, path in endpoints],
    )


def disruption_budget(owner: Owner, name: str, component: str) -> dict[str, Any]:
    # One replica at a time: voluntary evictions (drains, upgrades) never take the service down
    # while more than one replica runs.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": owner.metadata(name, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": owner.selector(component)}},
    }
