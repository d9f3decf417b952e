"""The scale benchmark's own parts (`make bench-scale` runs them against a control plane): the
objects it creates, how it reads /proc and Crossplane core's metrics, and how it decides that a
service was re-rendered."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.scale import metrics, procstat, workload
from tests.scale.workload import Workload


@pytest.mark.parametrize(
    ("services", "namespaces", "nodes_per_pool"),
    [
        (1, 1, (2, 1)),  # bench-a hosts the one service; every pool keeps a spare node
        (100, 2, (8, 8)),  # 50 each: ceil(50 / 8) + 1
        (500, 10, (33, 33)),  # 250 each: ceil(250 / 8) + 1
    ],
)
def test_every_service_fits_on_its_pools_nodes(
    services: int, namespaces: int, nodes_per_pool: tuple[int, int]
) -> None:
    w = Workload(services)
    assert len(w.namespaces) == namespaces
    nodes = Counter(n.labels[workload.POOL_LABEL] for n in w.nodes())
    assert (nodes["bench-a"], nodes["bench-b"]) == nodes_per_pool
    for pool in workload.POOLS:
        assert nodes[pool] * workload.GPUS_PER_NODE >= w.bound(pool)


def test_services_alternate_pools_and_bind_their_namespaces_cache() -> None:
    w = Workload(120)
    docs = w.services_manifests()
    assert len({(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs}) == 120
    assert Counter(d["spec"]["gpu"]["poolRef"]["name"] for d in docs) == {
        "bench-a": 60,
        "bench-b": 60,
    }
    assert Counter(d["metadata"]["namespace"] for d in docs) == {
        "bench-00": 50,
        "bench-01": 50,
        "bench-02": 20,
    }
    caches = {(c["metadata"]["namespace"], c["metadata"]["name"]) for c in w.caches()}
    for d in docs:
        assert (d["metadata"]["namespace"], d["spec"]["cache"]["tokenCacheRef"]["name"]) in caches


def test_the_pool_change_selects_a_label_every_node_of_the_pool_already_carries() -> None:
    w = Workload(10)
    added = workload.pool_change()["spec"]["nodeSelector"]
    changed = workload.pool(workload.CHANGED)["spec"]["nodeSelector"] | added
    pool_nodes = [n for n in w.nodes() if n.labels[workload.POOL_LABEL] == workload.CHANGED]
    assert pool_nodes
    for node in pool_nodes:
        labels = node.manifest()["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in changed.items())


def test_a_workload_needs_a_service() -> None:
    with pytest.raises(ValueError, match="services: at least 1"):
        Workload(0)


def deployment(*keys: str) -> dict[str, object]:
    terms = [{"matchExpressions": [{"key": k, "operator": "In", "values": ["x"]} for k in keys]}]
    return {
        "spec": {
            "template": {
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": terms
                            }
                        }
                    }
                }
            }
        }
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (deployment(workload.POOL_LABEL, workload.REV_LABEL), True),
        (deployment(workload.POOL_LABEL), False),
        ({"spec": {"template": {"spec": {}}}}, False),  # no affinity at all
        ({}, False),
    ],
)
def test_a_deployment_is_rerendered_once_its_affinity_carries_the_new_label(
    obj: dict[str, object], expected: bool
) -> None:
    assert workload.rerendered(obj) is expected


@pytest.mark.parametrize(
    ("conditions", "counted"),
    [
        ([{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "True"}], 1),
        ([{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}], 0),
        ([{"type": "Synced", "status": "True"}], 0),
        ([], 0),
    ],
)
def test_ready_and_synced_counts_only_objects_with_both_true(
    conditions: list[dict[str, str]], counted: int
) -> None:
    assert workload.ready_and_synced([{"status": {"conditions": conditions}}, {}]) == counted


def test_stat_fields_are_counted_after_the_last_parenthesis_of_the_command() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    ticks = procstat.TICKS
    text = f"4242 (odd) name)) S 1 777 777 0 -1 0 0 0 0 0 {3 * ticks} {ticks} 0 0 20 0 1 0"
    assert procstat.parse_stat(text) == (777, 4.0)


def test_status_reads_resident_and_peak_memory_in_mib() -> None:
    text = "Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t3\n"
    assert procstat.parse_status(text) == (100.0, 200.0)
    assert procstat.parse_status("Name:\tkthreadd\n") == (0.0, 0.0)


def test_group_usage_counts_this_process_in_its_own_group() -> None:
    mine = procstat.group_usage(os.getpgrp())
    assert mine.cpu_s > 0
    assert mine.peak_rss_mib >= mine.rss_mib > 0
    assert procstat.group_usage(2**22 + 1, Path("/proc")) == procstat.ZERO  # above pid_max


CORE_METRICS = "\n".join(
    [
        "# HELP function_run_function_request_total Total number of RunFunctionRequests sent.",
        "# TYPE function_run_function_request_total counter",
        'function_run_function_request_total{function_name="function-gpupool",'
        'function_package="p",grpc_method="/m",grpc_target="t"} 7',
        'function_run_function_request_total{function_name="function-inferenceservice",'
        'function_package="p",grpc_method="/m",grpc_target="t"} 40',
        "function_run_function_response_cache_hits_total"
        '{function_name="function-inferenceservice"} 3',
        'function_run_function_seconds_sum{function_name="function-gpupool",grpc_code="OK",'
        'result_severity="Normal"} 0.5',
        'function_run_function_seconds_sum{function_name="function-gpupool",grpc_code="OK",'
        'result_severity="Warning"} 0.25',
        'workqueue_depth{name="x"} 9',
    ]
)


def test_core_metrics_are_summed_per_function() -> None:
    counts = metrics.parse(CORE_METRICS)
    assert counts == {
        "calls": {"function-gpupool": 7.0, "function-inferenceservice": 40.0},
        "hits": {"function-inferenceservice": 3.0},
        "seconds": {"function-gpupool": 0.75},
    }
    later = metrics.parse(CORE_METRICS.replace("} 40", "} 45"))
    assert metrics.delta(later, counts)["calls"] == {
        "function-gpupool": 0.0,
        "function-inferenceservice": 5.0,
    }
