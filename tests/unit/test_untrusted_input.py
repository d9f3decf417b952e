"""What a function reads besides its spec (Nodes, peer composites, observed resources) is
validated where it enters: an implausible value is a warning naming it, never a crash, never a
number or a layout sized by a label (issue 14's examples, one row each)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from functions.common.composer import Composed, CompositionFunction, Request
from functions.common.kinds import GPU_POOL
from tests.fnharness import ROOT, example, run

INT64_MAX = 2**63 - 1
COUNT = "nvidia.com/gpu.count"
PRODUCT = "nvidia.com/gpu.product"


def required(file: str) -> list[dict[str, Any]]:
    text = Path(ROOT / "examples" / "required" / file).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def nodes(file: str) -> list[dict[str, Any]]:
    return [d for d in required(file) if d["kind"] == "Node"]


def numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


@pytest.mark.parametrize("pool", ["h100-mig-balanced-pool.yaml", "h100-exclusive-pool.yaml"])
@pytest.mark.parametrize(
    "value",
    ["999999999", "1000000", "9223372036854775807", "-3", "1e3", "0", "65", "", " 8", 8, None],
)
def test_an_implausible_gpu_count_is_a_warning_naming_node_and_label(pool: str, value: Any) -> None:
    found = nodes(pool)
    found[0]["metadata"]["labels"][COUNT] = value
    name = found[0]["metadata"]["name"]
    res = run(example(pool), required={"nodes": found})
    assert res.fatal == []
    assert any(w.startswith(f"node {name}: label {COUNT}=") for w in res.warnings)
    # The node is not planned for or labelled; the others are.
    assert f"node-{name}" not in res.resources
    assert f"node-{found[1]['metadata']['name']}" in res.resources
    assert max(numbers(res.status)) <= 64 * 8


@pytest.mark.parametrize("value", [5, "NVIDIA H100", "x" * 64, "-H100"])
def test_a_product_label_that_is_not_a_label_value_is_a_warning(value: Any) -> None:
    found = nodes("h100-exclusive-pool.yaml")
    found[0]["metadata"]["labels"][PRODUCT] = value
    name = found[0]["metadata"]["name"]
    res = run(example("h100-exclusive-pool.yaml"), required={"nodes": found})
    assert res.fatal == []
    assert any(w.startswith(f"node {name}: label {PRODUCT}=") for w in res.warnings)
    assert f"node-{name}" not in res.resources


def test_a_mig_state_mig_manager_never_writes_counts_as_unknown() -> None:
    found = nodes("h100-mig-balanced-pool.yaml")
    for node in found:
        node["metadata"]["labels"]["nvidia.com/mig.config.state"] = "x" * 60
    res = run(example("h100-mig-balanced-pool.yaml"), required={"nodes": found})
    assert res.status["nodeStates"] == {"unknown": len(found)}


def many_nodes(
    count: int, name_length: int = 6, example_file: str = "h100-exclusive-pool.yaml", **extra: str
) -> list[dict[str, Any]]:
    """`count` Nodes with names of `name_length` characters (253 is the most the API allows),
    labelled as the example's first Node plus `extra`."""
    labels = {**nodes(example_file)[0]["metadata"]["labels"], **extra}

    def name(i: int) -> str:
        # DNS labels of 63 characters at most: every 64th character a dot.
        full = (f"n{i:05d}" + "x" * name_length)[:name_length]
        return "".join("." if j % 64 == 63 else c for j, c in enumerate(full))

    return [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name(i), "labels": labels}}
        for i in range(count)
    ]


MAX_RESPONSE = 4 * 2**20  # Crossplane's gRPC receive limit


def settled(example_file: str) -> dict[str, str]:
    """The labels a MIG pool's Nodes carry once it has configured them and mig-manager is done:
    no change pending, the state in which a pool's response is smallest."""
    first = run(example(example_file), required={"nodes": many_nodes(1, 8, example_file)})
    (obj,) = [o for n, o in first.resources.items() if n.startswith("node-")]
    labels = obj["spec"]["forProvider"]["manifest"]["metadata"]["labels"]
    return {**labels, "nvidia.com/mig.config.state": "success"}


@pytest.mark.parametrize(
    ("example_file", "mig"),
    [("h100-exclusive-pool.yaml", False), ("a100-pool.yaml", True)],
)
def test_a_pool_renders_up_to_its_measured_ceiling_and_one_node_more_is_fatal_naming_it(
    example_file: str, mig: bool
) -> None:
    # Names of the longest length the API allows: the most bytes per node Object. A MIG pool's
    # Nodes are settled (nothing pending), yet its ceiling leaves room to list every node in a
    # pending change: it must not render now and fail on the next change.
    pool = example(example_file)
    extra = settled(example_file) if mig else {}

    def pool_of(count: int) -> Any:
        return run(pool, required={"nodes": many_nodes(count, 253, example_file, **extra)})

    over = pool_of(5000)
    (message,) = over.fatal
    assert message.startswith("spec.nodeSelector: the pool's 5000 Nodes take ")
    assert ("and its name while a MIG change is pending" in message) is mig
    assert "4 MiB" in message
    assert "nvidia.com/gpu.product" in message
    found = re.search(r"configures at most (\d+)\.", message)
    assert found, message
    ceiling = int(found[1])
    assert 2000 < ceiling < 5000, message
    assert over.resources == {}

    at = pool_of(ceiling)
    assert at.fatal == []
    assert len(at.resources) > ceiling
    assert len(at.raw.SerializeToString()) <= MAX_RESPONSE
    assert "migChanges" not in at.status

    beyond = pool_of(ceiling + 1)
    (message,) = beyond.fatal
    assert message.startswith(f"spec.nodeSelector: the pool's {ceiling + 1} Nodes take ")
    assert f"configures at most {ceiling}. Split it into GPUPools" in message
    assert len(beyond.raw.SerializeToString()) <= MAX_RESPONSE


def test_five_thousand_nodes_of_typical_names_fit_one_pool() -> None:
    # ip-10-0-8-179.ec2.internal: 26 characters, as cloud providers name nodes.
    res = run(example("h100-exclusive-pool.yaml"), required={"nodes": many_nodes(5000, 26)})
    assert res.fatal == []
    assert len(res.raw.SerializeToString()) <= MAX_RESPONSE


@pytest.mark.parametrize(
    "metadata",
    [{"name": 5}, {}, {"name": "Pool_A"}, {"name": "a" * 254}, "not an object"],
)
def test_a_peer_without_a_valid_name_is_skipped_with_a_warning(metadata: Any) -> None:
    pool = {**copy.deepcopy(example("h100-exclusive-pool.yaml")), "metadata": metadata}
    service = example("llama-8b-h100-exclusive.yaml")
    res = run(
        {**service, "metadata": {"name": "svc", "namespace": "default"}},
        required={"gpupools": [pool]},
    )
    assert any("a required GPUPool named" in w and "is ignored" in w for w in res.warnings) or (
        res.fatal and "pools: none" in res.fatal[0]
    )
    assert not any("GPUPool 5" in m for m in [*res.fatal, *res.warnings])


@pytest.mark.parametrize(
    ("deployment", "why"),
    [
        ({"status": "x"}, "status is not an object"),
        ({"spec": []}, "spec is not an object"),
        ({"status": {"conditions": "x"}}, "status.conditions is not a list of conditions"),
        ({"status": {"conditions": ["x"]}}, "status.conditions is not a list of conditions"),
        ({"spec": {"replicas": "2"}}, "spec.replicas is not a count"),
        ({"status": {"availableReplicas": 1e300}}, "status.availableReplicas is not a count"),
        ({"status": {"availableReplicas": 1.5}}, "status.availableReplicas is not a count"),
        ({"metadata": {"generation": -1}}, "metadata.generation is not a count"),
    ],
)
def test_an_observed_resource_of_unexpected_shape_is_not_ready_with_the_reason(
    deployment: dict[str, Any], why: str
) -> None:
    observed = {"apiVersion": "apps/v1", "kind": "Deployment", **deployment}
    res = run(
        example("llama-8b-h100-exclusive.yaml"),
        observed={"deployment": observed},
        required={"gpupools": [example("h100-exclusive-pool.yaml")]},
    )
    assert res.fatal == []
    assert res.ready["deployment"] is False
    reason = f"observed Deployment 'deployment' is treated as not ready: {why}"
    assert any(w.startswith(reason) for w in res.warnings)
    assert 0 <= res.status["readyReplicas"] <= 2**31


@pytest.mark.parametrize(("size", "fatal"), [(3 * 2**20, False), (5 * 2**20, True)])
def test_a_response_over_the_grpc_limit_is_a_fatal_naming_the_limit(size: int, fatal: bool) -> None:
    def compose(_: Request[Any]) -> Composed:
        data = {"data": "x" * size}
        return Composed(resources={"big": {"apiVersion": "v1", "kind": "ConfigMap", **data}})

    fn = CompositionFunction(GPU_POOL, compose)
    pool = {"kind": "GPUPool", "metadata": {"name": "p"}, "spec": {"nodeSelector": {"a": "b"}}}
    rsp = fn.run(
        fnv1.RunFunctionRequest(
            observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(pool)))
        )
    )
    fatals = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
    if fatal:
        (message,) = fatals
        assert "more than the 4194304 bytes (4 MiB) Crossplane accepts" in message
        assert "split this GPUPool" in message
        assert not rsp.desired.resources
    else:
        assert fatals == []
        assert rsp.ByteSize() < 4 * 2**20
