"""dashboards/inference-platform.json: valid Grafana JSON whose queries use real metric names."""

from __future__ import annotations

import itertools
import json
import re

from sidecar.metrics import SPECS
from tests.sidecar.procs import ROOT

DASHBOARD = ROOT / "dashboards" / "inference-platform.json"
NAME = re.compile(r"\b(inference_\w+|vllm:\w+|trtllm_\w+|nv_\w+|DCGM_\w+|process_\w+)")
# The backends' and dcgm-exporter's own names the dashboard may use (reference:
# vLLM vllm/v1/metrics/loggers.py, Triton metrics guide, tensorrt_llm/metrics/collector.py,
# dcgm-exporter etc/default-counters.csv), and prometheus_client's process collector.
FOREIGN = {
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_hits_total",
    "vllm:prefix_cache_queries_total",
    "vllm:time_to_first_token_seconds_bucket",
    "nv_inference_pending_request_count",
    "nv_inference_queue_duration_us",
    "nv_inference_request_success",
    "nv_trt_llm_kv_cache_block_metrics",
    "trtllm_num_requests_waiting",
    "trtllm_kv_cache_utilization",
    "trtllm_time_to_first_token_seconds_bucket",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "process_resident_memory_bytes",
}


def load() -> dict:  # type: ignore[type-arg]
    return json.loads(DASHBOARD.read_text())


def exprs(dashboard: dict) -> list[str]:  # type: ignore[type-arg]
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_metric_names_exist() -> None:
    used = {name for expr in exprs(load()) for name in NAME.findall(expr)}
    used.discard("inference_ai_service")  # the PodMonitor's label, not a metric
    ours = {n for n in used if n.startswith("inference_")}
    assert ours - set(SPECS) == set()
    assert used - ours - FOREIGN == set()
    # Every metric the sidecar exports is on the dashboard.
    assert set(SPECS) - ours == set()


def test_panels_are_well_formed() -> None:
    d = load()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    boxes = [p["gridPos"] for p in d["panels"]]
    for a, b in itertools.combinations(boxes, 2):
        overlap_x = a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
        overlap_y = a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
        assert not (overlap_x and overlap_y), (a, b)
    assert all(g["x"] >= 0 and g["x"] + g["w"] <= 24 for g in boxes)
    for p in d["panels"]:
        for t in p.get("targets", []):
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            assert t["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in d["templating"]["list"]}
    assert variables == {"datasource", "namespace", "service"}
