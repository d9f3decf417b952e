"""GPUPool function: device-plugin and mig-parted configs per sharing mode."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fnharness import ROOT, claim_metadata, example, run, with_spec

SAMPLE = example("a100-pool.yaml")


def mig_config(res: Any) -> dict[str, Any]:
    obj = res.resources["mig-parted-config"]
    assert obj["kind"] == "Object"
    assert obj["spec"]["managementPolicies"] == ["Observe", "Create", "Update"]
    manifest = obj["spec"]["forProvider"]["manifest"]
    assert manifest["metadata"] == {
        "name": "inference-platform-mig-parted",
        "namespace": "gpu-operator",
    }
    return dict(yaml.safe_load(manifest["data"]["config.yaml"]))


def config_name(res: Any, model: str = "a100-80gb") -> str:
    name = res.status["migPlans"][model]["configName"]
    # <pool>-<model>-<content digest>: a changed layout changes the node label.
    assert re.fullmatch(rf"a100-pool-{model}-[0-9a-f]{{6}}", name), name
    return str(name)


def plugin_config(doc: dict[str, Any]) -> dict[str, Any]:
    obj = run(doc).resources["device-plugin-config"]
    (text,) = obj["spec"]["forProvider"]["manifest"]["data"].values()
    return dict(yaml.safe_load(text))


def test_sample_plans_mig_layout_on_fewest_gpus_per_model() -> None:
    res = run(SAMPLE)
    assert res.fatal == []
    cfg = mig_config(res)
    assert cfg["version"] == "v1"
    entries = cfg["mig-configs"][config_name(res)]
    # 2 x 3g.40gb fill all 8 memory slices of one GPU; the 4 x 1g.10gb go on a second.
    a100 = [e for e in entries if "0x20B210DE" in e["device-filter"]]
    assert [(e["devices"], e["mig-devices"]) for e in a100] == [
        ([0], {"3g.40gb": 2}),
        ([1], {"1g.10gb": 4}),
    ]
    assert all(e["mig-enabled"] for e in entries)
    assert cfg["mig-configs"]["all-disabled"] == [{"devices": "all", "mig-enabled": False}]


def test_sample_time_slices_mig_devices_with_whole_replicas() -> None:
    res = run(SAMPLE)
    cfg = plugin_config(SAMPLE)
    assert cfg["flags"] == {"migStrategy": "mixed"}
    ts = cfg["sharing"]["timeSlicing"]
    assert ts["renameByDefault"] is True
    assert ts["resources"] == [
        {"name": "nvidia.com/mig-1g.10gb", "replicas": 2},
        {"name": "nvidia.com/mig-3g.40gb", "replicas": 2},
    ]
    assert any("ratio 1.5" in w and "2 replicas" in w for w in res.warnings)
    assert res.status["resources"] == {
        "nvidia.com/mig-3g.40gb.shared": 4,
        "nvidia.com/mig-1g.10gb.shared": 8,
    }


@pytest.mark.parametrize(
    ("sharing", "oversub", "expected"),
    [
        (
            {"mode": "exclusive"},
            {"enabled": False},
            {"version": "v1", "flags": {"migStrategy": "none"}},
        ),
        (
            {"mode": "timeslice"},
            {"enabled": True, "ratio": "4"},
            {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {
                    "timeSlicing": {
                        "renameByDefault": True,
                        "failRequestsGreaterThanOne": True,
                        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
                    }
                },
            },
        ),
        (
            {"mode": "mps"},
            {"enabled": True, "ratio": "3"},
            {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {
                    "mps": {
                        "renameByDefault": True,
                        "failRequestsGreaterThanOne": True,
                        "resources": [{"name": "nvidia.com/gpu", "replicas": 3}],
                    }
                },
            },
        ),
        (
            {"mode": "mig", "profiles": [{"name": "7g.80gb", "count": 1}]},
            {"enabled": False},
            {"version": "v1", "flags": {"migStrategy": "mixed"}},
        ),
    ],
)
def test_device_plugin_config_per_mode(
    sharing: dict[str, Any], oversub: dict[str, Any], expected: dict[str, Any]
) -> None:
    doc = with_spec(SAMPLE, sharing=sharing, oversubscription=oversub)
    assert plugin_config(doc) == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"sharing.profiles": [{"name": "3g.40gb", "count": 3}]},
            "3g.40gb",
            id="more-3g-than-one-gpu-but-fine",
        ),
    ],
)
def test_counts_beyond_one_gpu_spill_onto_more_gpus(changes: dict[str, Any], message: str) -> None:
    res = run(with_spec(SAMPLE, **changes))
    cfg = mig_config(res)
    a100 = cfg["mig-configs"][config_name(res)]
    assert [e["mig-devices"] for e in a100] == [{message: 2}, {message: 1}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {
                "sharing.profiles": [
                    {"name": "3g.40gb", "count": 1},
                    {"name": "3g.20gb", "count": 1},
                ]
            },
            "no MIG-capable GPU offers all of 3g.20gb, 3g.40gb",
            id="mixed-models",
        ),
        pytest.param(
            {"sharing.profiles": []},
            "profiles must list at least one MIG profile when mode is mig",
            id="empty",
        ),
        pytest.param(
            {"sharing.mode": "mps", "oversubscription.ratio": "64"},
            "MPS allows at most 48 clients per GPU",
            id="mps-limit",
        ),
        pytest.param(
            {"sharing.mode": "exclusive"},
            "profiles are only allowed when mode is mig",
            id="profiles-without-mig",
        ),
        pytest.param(
            {"oversubscription.ratio": "1,5"}, "spec.oversubscription.ratio", id="bad-ratio"
        ),
    ],
)
def test_invalid_pools_fail_with_the_field(changes: dict[str, Any], message: str) -> None:
    doc = with_spec(SAMPLE, **changes)
    if changes.get("sharing.mode") == "mps":
        doc["spec"]["sharing"].pop("profiles")
    res = run(doc)
    assert len(res.fatal) == 1
    assert message in res.fatal[0]
    assert res.resources == {}


def test_same_request_same_bytes() -> None:
    assert run(SAMPLE).wire() == run(SAMPLE).wire()


# --- nodes as required resources -----------------------------------------------------------

CONDITIONS = (fnv1.CAPABILITY_CONDITIONS,)


def node(name: str, product: str, count: int, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "gpu-type": "nvidia-a100",
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(count),
                **labels,
            },
        },
    }


A100_CONFIG = config_name(run(SAMPLE, required={"nodes": [node("x", "NVIDIA-A100-SXM4-80GB", 8)]}))
A100_NODES = [
    node(
        "a",
        "NVIDIA-A100-SXM4-80GB",
        8,
        **{
            "nvidia.com/mig.config": A100_CONFIG,
            "nvidia.com/mig.config.state": "success",
        },
    ),
    node("b", "NVIDIA-A100-SXM4-80GB", 4),
]


def isvc(
    name: str, pool: str, resource: str, replicas: int, per_replica: int = 1
) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "XInferenceService",
        "metadata": claim_metadata(name, "team-a"),
        "spec": {
            "model": {"name": f"org/{name}"},
            "replicas": replicas,
            "gpu": {"poolRef": {"name": pool}},
        },
        "status": {"gpuResource": resource, "gpusPerReplica": per_replica},
    }


def conditions(res: Any) -> dict[str, tuple[str, str, str]]:
    return {c.type: (fnv1.Status.Name(c.status), c.reason, c.message) for c in res.raw.conditions}


def test_requires_the_pools_nodes_and_the_inference_services() -> None:
    req = run(SAMPLE).raw.requirements.resources
    assert req["nodes"].kind == "Node"
    assert dict(req["nodes"].match_labels.labels) == {"gpu-type": "nvidia-a100"}
    assert req["inferenceservices"].kind == "XInferenceService"
    v2 = with_spec(SAMPLE, crossplane={"compositionRef": {"name": "x"}})
    assert run(v2).raw.requirements.resources["inferenceservices"].kind == "InferenceService"


def test_nodes_get_only_our_labels_through_observe_update_objects() -> None:
    res = run(SAMPLE, required={"nodes": A100_NODES})
    assert res.fatal == []
    objs = {k: v for k, v in res.resources.items() if k.startswith("node-")}
    assert sorted(objs) == ["node-a", "node-b"]
    for obj in objs.values():
        assert obj["apiVersion"] == "kubernetes.crossplane.io/v1alpha2"
        assert obj["spec"]["managementPolicies"] == ["Observe", "Update"]
        manifest = obj["spec"]["forProvider"]["manifest"]
        assert set(manifest) == {"apiVersion", "kind", "metadata"}
        assert set(manifest["metadata"]) == {"name", "labels"}
        assert manifest["metadata"]["labels"] == {
            "nvidia.com/device-plugin.config": res.status["devicePluginConfig"],
            "nvidia.com/mig.config": A100_CONFIG,
            "inference.ai/gpupool": "a100-pool",
        }
    shared = res.resources["device-plugin-config"]["spec"]
    assert "Delete" not in shared["managementPolicies"]
    assert shared["forProvider"]["manifest"]["metadata"] == {
        "name": "inference-platform-device-plugin",
        "namespace": "gpu-operator",
    }
    assert list(shared["forProvider"]["manifest"]["data"]) == [res.status["devicePluginConfig"]]
    assert re.fullmatch(r"a100-pool-[0-9a-f]{6}", res.status["devicePluginConfig"])


def test_unused_gpus_stay_whole_up_to_the_largest_node() -> None:
    res = run(SAMPLE, required={"nodes": A100_NODES})
    cfg = mig_config(res)
    entries = cfg["mig-configs"][config_name(res)]
    assert [(e["devices"], e["mig-enabled"], e.get("mig-devices")) for e in entries] == [
        ([0], True, {"3g.40gb": 2}),
        ([1], True, {"1g.10gb": 4}),
        *[([i], False, None) for i in range(2, 8)],
    ]
    assert res.status["migPlans"]["a100-80gb"] == {
        "configName": A100_CONFIG,
        "gpusUsed": 2,
        "optimalGPUs": 2,
        "optimal": True,
        "nodes": 2,
        "gpusPerNode": 8,
    }


@pytest.mark.parametrize(
    ("leftover", "spare", "partial"),
    [
        ("balanced", {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}, {"1g.10gb": 4}),
        ("fill", {"3g.40gb": 2}, {"1g.10gb": 4, "3g.40gb": 1}),
    ],
)
def test_leftover_policy_fills_spare_gpus(
    leftover: str, spare: dict[str, int], partial: dict[str, int]
) -> None:
    doc = with_spec(SAMPLE, **{"sharing.leftover": leftover})
    res = run(doc, required={"nodes": A100_NODES})
    cfg = mig_config(res)
    entries = cfg["mig-configs"][config_name(res)]
    assert entries[1]["mig-devices"] == partial
    assert [e["devices"] for e in entries[2:]] == [[i] for i in range(2, 8)]
    assert all(e["mig-devices"] == spare for e in entries[2:])


def test_capacity_counts_physical_schedulable_requested_and_left() -> None:
    services = [
        isvc("chat", "a100-pool", "nvidia.com/mig-3g.40gb.shared", replicas=3),
        isvc("other-pool", "h100", "nvidia.com/mig-3g.40gb.shared", replicas=9),
    ]
    res = run(
        SAMPLE,
        required={"nodes": A100_NODES, "inferenceservices": services},
        capabilities=CONDITIONS,
    )
    # Node a: 8 GPUs (2 planned + 6 whole); node b: 4 GPUs (2 planned + 2 whole). Ratio 1.5
    # rounds to 2 replicas per MIG device; whole GPUs are not time-sliced.
    assert res.status["capacity"] == {
        "nvidia.com/gpu": {"physical": 8, "schedulable": 8, "requested": 0, "available": 8},
        "nvidia.com/mig-1g.10gb.shared": {
            "physical": 8,
            "schedulable": 16,
            "requested": 0,
            "available": 16,
        },
        "nvidia.com/mig-3g.40gb.shared": {
            "physical": 4,
            "schedulable": 8,
            "requested": 3,
            "available": 5,
        },
    }
    assert res.status["nodes"] == 2
    assert res.status["gpuProducts"] == ["NVIDIA-A100-SXM4-80GB"]
    assert res.status["nodeStates"] == {"success": 1, "unknown": 1}
    conds = conditions(res)
    assert conds["CapacityAvailable"][:2] == ("STATUS_CONDITION_TRUE", "WithinCapacity")
    assert conds["MigConfigApplied"] == (
        "STATUS_CONDITION_FALSE",
        "Pending",
        "waiting for mig-manager on b",
    )


def test_overcommitted_pool_and_failed_nodes_show_in_conditions() -> None:
    nodes = [
        node("a", "NVIDIA-A100-SXM4-80GB", 2, **{"nvidia.com/mig.config.state": "failed"}),
    ]
    services = [
        isvc("big", "a100-pool", "nvidia.com/mig-3g.40gb.shared", replicas=3, per_replica=2)
    ]
    res = run(
        SAMPLE,
        required={"nodes": nodes, "inferenceservices": services},
        capabilities=CONDITIONS,
    )
    conds = conditions(res)
    assert conds["CapacityAvailable"] == (
        "STATUS_CONDITION_FALSE",
        "Overcommitted",
        "bound InferenceServices request more than the pool advertises: "
        "nvidia.com/mig-3g.40gb.shared 6/4",
    )
    assert conds["MigConfigApplied"][:2] == ("STATUS_CONDITION_FALSE", "Failed")


def test_services_bound_without_pool_ref_count_through_their_status_pool() -> None:
    bound = isvc("auto", "elsewhere", "nvidia.com/mig-1g.10gb.shared", replicas=2)
    bound["spec"]["gpu"] = {}
    bound["status"]["pool"] = "a100-pool"
    res = run(SAMPLE, required={"nodes": A100_NODES, "inferenceservices": [bound]})
    assert res.status["capacity"]["nvidia.com/mig-1g.10gb.shared"]["requested"] == 2


def test_requests_for_resources_the_pool_does_not_advertise_warn() -> None:
    services = [isvc("llama", "a100-pool", "nvidia.com/mig-3g.40gb", replicas=1)]
    res = run(SAMPLE, required={"nodes": A100_NODES, "inferenceservices": services})
    assert any("request nvidia.com/mig-3g.40gb, which its nodes" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        pytest.param(
            [node("small", "NVIDIA-A100-SXM4-80GB", 1)],
            "1g.10gb x4, 3g.40gb x2 per node needs 2 a100-80gb GPUs, but node(s) small have 1; "
            "what fits on 1 (each profile alone reduced, the others kept): 1g.10gb x0, "
            "3g.40gb x1",
            id="node-too-small",
        ),
        pytest.param(
            [node("l4", "NVIDIA-L4", 4)],
            "node l4 has NVIDIA-L4 (l4-24gb), which does not support MIG",
            id="not-mig-capable",
        ),
        pytest.param(
            [node("old", "NVIDIA-A100-SXM4-40GB", 8)],
            "3g.40gb does not exist on node old's a100-40gb (profiles there: 1g.5gb, ",
            id="profile-absent-on-model",
        ),
    ],
)
def test_infeasible_nodes_are_fatal_naming_profile_and_what_fits(
    nodes: list[dict[str, Any]], message: str
) -> None:
    res = run(SAMPLE, required={"nodes": nodes})
    assert len(res.fatal) == 1
    assert message in res.fatal[0]
    assert res.resources == {}


def test_undiscovered_nodes_are_skipped_with_a_warning() -> None:
    bare = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "new", "labels": {}}}
    res = run(SAMPLE, required={"nodes": [*A100_NODES, bare]})
    assert "node-new" not in res.resources
    assert any("nodes new have no known" in w for w in res.warnings)


def test_no_matching_nodes_warns_and_reports_zero_capacity() -> None:
    res = run(SAMPLE, required={"nodes": []})
    assert res.status["nodes"] == 0
    assert any("no Node matches spec.nodeSelector" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("sharing", "oversub", "capacity"),
    [
        ({"mode": "exclusive"}, {"enabled": False}, {"nvidia.com/gpu": (12, 12)}),
        (
            {"mode": "timeslice"},
            {"enabled": True, "ratio": "4"},
            {"nvidia.com/gpu.shared": (12, 48)},
        ),
        ({"mode": "mps"}, {"enabled": True, "ratio": "3"}, {"nvidia.com/gpu.shared": (12, 36)}),
    ],
)
def test_whole_gpu_modes_label_only_the_device_plugin_config(
    sharing: dict[str, Any], oversub: dict[str, Any], capacity: dict[str, tuple[int, int]]
) -> None:
    doc = with_spec(SAMPLE, sharing=sharing, oversubscription=oversub)
    res = run(doc, required={"nodes": A100_NODES})
    assert res.fatal == []
    # MIG-capable nodes select all-disabled from the shared mig-parted ConfigMap: whole GPUs.
    assert mig_config(res)["mig-configs"] == {
        "all-disabled": [{"devices": "all", "mig-enabled": False}]
    }
    labels = res.resources["node-a"]["spec"]["forProvider"]["manifest"]["metadata"]["labels"]
    assert labels == {
        "nvidia.com/device-plugin.config": res.status["devicePluginConfig"],
        "nvidia.com/mig.config": "all-disabled",
        "inference.ai/gpupool": "a100-pool",
    }
    got = {r: (c["physical"], c["schedulable"]) for r, c in res.status["capacity"].items()}
    assert got == capacity


def test_one_layout_per_gpu_model_in_a_mixed_pool() -> None:
    nodes = [*A100_NODES, node("h", "NVIDIA-H100-80GB-HBM3", 8)]
    res = run(SAMPLE, required={"nodes": nodes})
    cfg = mig_config(res)
    assert sorted(cfg["mig-configs"]) == sorted(
        [config_name(res), config_name(res, "h100-80gb"), "all-disabled"]
    )
    labels = res.resources["node-h"]["spec"]["forProvider"]["manifest"]["metadata"]["labels"]
    assert labels["nvidia.com/mig.config"] == config_name(res, "h100-80gb")
    h100 = cfg["mig-configs"][config_name(res, "h100-80gb")]
    assert all("0x233010DE" in e["device-filter"] for e in h100)


def test_mig_parted_config_merges_the_layouts_other_mig_pools_publish() -> None:
    own = run(SAMPLE, required={"nodes": A100_NODES})
    published = own.status["migPartedConfigs"]
    assert list(yaml.safe_load(published)) == [A100_CONFIG]
    other = with_spec(SAMPLE, nodeSelector={"gpu-type": "other"})
    other["metadata"]["name"] = "other"
    not_mig = with_spec(SAMPLE, sharing={"mode": "exclusive"})
    not_mig["metadata"]["name"] = "stale"
    pools = [
        {**SAMPLE, "status": {"migPartedConfigs": published}},
        {**other, "status": {"migPartedConfigs": "other-a100-80gb: []\n"}},
        {**not_mig, "status": {"migPartedConfigs": "stale-a100-80gb: []\n"}},
    ]
    res = run(SAMPLE, required={"nodes": A100_NODES, "gpupools": pools})
    assert sorted(mig_config(res)["mig-configs"]) == [
        A100_CONFIG,
        "all-disabled",
        "other-a100-80gb",
    ]
    # Once each has read the other's status, both pools apply the same document.
    theirs = run(other, required={"nodes": [], "gpupools": pools[:1]}).status["migPartedConfigs"]
    both = [pools[0], {**other, "status": {"migPartedConfigs": theirs}}]
    mine = run(SAMPLE, required={"nodes": A100_NODES, "gpupools": both})
    their_view = run(other, required={"nodes": [], "gpupools": both})
    assert mig_config(mine) == mig_config(their_view)


def test_whole_gpu_pools_without_mig_capable_nodes_leave_mig_alone() -> None:
    doc = with_spec(SAMPLE, sharing={"mode": "timeslice"})
    res = run(doc, required={"nodes": [node("l4", "NVIDIA-L4", 4)]}, capabilities=CONDITIONS)
    assert "mig-parted-config" not in res.resources
    labels = res.resources["node-l4"]["spec"]["forProvider"]["manifest"]["metadata"]["labels"]
    assert sorted(labels) == ["inference.ai/gpupool", "nvidia.com/device-plugin.config"]
    assert "MigConfigApplied" not in conditions(res)


def test_unknown_profile_is_rejected_by_the_schema() -> None:
    res = run(with_spec(SAMPLE, **{"sharing.profiles": [{"name": "9g.99gb", "count": 1}]}))
    assert len(res.fatal) == 1
    assert "spec.sharing.profiles[0].name: Input should be" in res.fatal[0]


def pool_doc(name: str, created: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": "GPUPool",
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"nodeSelector": selector, "sharing": {"mode": "exclusive"}},
    }


@pytest.mark.parametrize(
    ("rival_created", "keeps"),
    [
        pytest.param("2026-01-02T00:00:00Z", True, id="this-pool-is-older"),
        pytest.param("2026-01-01T00:00:00Z", False, id="the-other-pool-is-older"),
    ],
)
def test_a_node_two_pools_select_is_configured_by_the_older_pool_only(
    rival_created: str, keeps: bool
) -> None:
    # Both A100 nodes carry gpu-type nvidia-a100; the rival selects node "a" only.
    doc = copy.deepcopy(SAMPLE)
    doc["metadata"]["creationTimestamp"] = "2026-01-01T12:00:00Z"
    rival = pool_doc("rival", rival_created, {"nvidia.com/mig.config": A100_CONFIG})
    res = run(doc, required={"nodes": A100_NODES, "gpupools": [rival]})
    assert ("node-a" in res.resources) is keeps
    assert "node-b" in res.resources  # the rival does not select it
    assert res.status["nodes"] == (2 if keeps else 1)
    (warning,) = [w for w in res.warnings if "also selected" in w]
    assert warning.startswith("node a is also selected by GPUPool rival; ")
    assert ("stays with this pool" in warning) is keeps
    assert warning.endswith("make the pools' nodeSelectors disjoint")


GROWN = example("a100-pool-grown.yaml")
GROWN_NODES = list(
    yaml.safe_load_all((ROOT / "examples" / "required" / "a100-pool-grown.yaml").read_text())
)


def entries(text: str, name: str) -> list[str]:
    """Each GPU's entry of config `name`, as the YAML text mig-manager reads."""
    return [yaml.safe_dump(e) for e in yaml.safe_load(text)[name]]


def test_changed_pool_keeps_the_entries_of_gpus_whose_layout_stays_byte_identical() -> None:
    res = run(GROWN, required={"nodes": GROWN_NODES})
    plan = res.status["migPlans"]["a100-80gb"]
    before = GROWN["status"]["migPlans"]["a100-80gb"]["configName"]
    assert plan["previousConfigName"] == before != plan["configName"]
    old = entries(GROWN["status"]["migPartedConfigs"], before)
    new = entries(res.status["migPartedConfigs"], plan["configName"])
    assert [i for i in range(8) if old[i] != new[i]] == plan["changedGPUs"] == [2]
    assert plan["gpusUsed"] == plan["optimalGPUs"] == 3
    # Balanced spares keep MIG on: no GPU's mode flips, so mig-parted touches GPU 2 only.
    # Both nodes change alike: one entry names them.
    assert res.status["migChanges"] == [
        {
            "nodes": ["gpu-a100-2", "gpu-a100-3"],
            "config": plan["configName"],
            "gpus": [2],
            "migModeFlips": [],
            "services": [],
        }
    ]


def test_unchanged_pool_plans_the_same_config_and_reports_no_pending_change() -> None:
    first = run(GROWN, required={"nodes": GROWN_NODES})
    name = first.status["migPlans"]["a100-80gb"]["configName"]
    nodes = copy.deepcopy(GROWN_NODES)
    for n in nodes:
        n["metadata"]["labels"]["nvidia.com/mig.config"] = name
        n["metadata"]["labels"]["nvidia.com/mig.config.state"] = "pending"
    again = run(
        {**GROWN, "status": first.status}, required={"nodes": nodes}, capabilities=CONDITIONS
    )
    assert again.status["migPlans"]["a100-80gb"]["configName"] == name
    assert again.status["migPartedConfigs"] == first.status["migPartedConfigs"]
    # Relabelled, mig-manager still applying: the change stays listed until success.
    assert again.status["migChanges"] == first.status["migChanges"]
    for n in nodes:
        n["metadata"]["labels"]["nvidia.com/mig.config.state"] = "success"
    done = run(
        {**GROWN, "status": again.status}, required={"nodes": nodes}, capabilities=CONDITIONS
    )
    assert "migChanges" not in done.status
    status, reason, _ = conditions(done)["ReplicasUndisturbed"]
    assert (status, reason) == ("STATUS_CONDITION_TRUE", "NoPendingChange")


def test_nodes_whose_pending_changes_differ_are_listed_in_separate_entries() -> None:
    first = run(GROWN, required={"nodes": GROWN_NODES})
    name = first.status["migPlans"]["a100-80gb"]["configName"]
    nodes = copy.deepcopy(GROWN_NODES)
    # gpu-a100-2 relabelled and still applying; gpu-a100-3 back on all-disabled (MIG off).
    nodes[0]["metadata"]["labels"].update(
        {"nvidia.com/mig.config": name, "nvidia.com/mig.config.state": "pending"}
    )
    nodes[1]["metadata"]["labels"]["nvidia.com/mig.config"] = "all-disabled"
    again = run(
        {**GROWN, "status": first.status}, required={"nodes": nodes}, capabilities=CONDITIONS
    )
    every = list(range(8))
    assert again.status["migChanges"] == [
        {"nodes": ["gpu-a100-2"], "config": name, "gpus": [2], "migModeFlips": [], "services": []},
        # Balanced spares: every GPU of the plan has MIG on, so every GPU's mode flips.
        {
            "nodes": ["gpu-a100-3"],
            "config": name,
            "gpus": every,
            "migModeFlips": every,
            "services": [],
        },
    ]


def test_a_pending_change_of_another_shape_in_status_is_not_carried_over() -> None:
    first = run(GROWN, required={"nodes": GROWN_NODES})
    name = first.status["migPlans"]["a100-80gb"]["configName"]
    nodes = copy.deepcopy(GROWN_NODES)
    for n in nodes:
        n["metadata"]["labels"].update(
            {"nvidia.com/mig.config": name, "nvidia.com/mig.config.state": "pending"}
        )
    odd = [
        {"gpu-a100-2": {"config": name, "gpus": [2]}},
        {
            "nodes": ["gpu-a100-2"],
            "config": name,
            "gpus": [2.5],
            "migModeFlips": [],
            "services": [],
        },
        {"nodes": "gpu-a100-3", "config": name, "gpus": [2], "migModeFlips": [], "services": []},
    ]
    for entries in ({"gpu-a100-2": odd[0]["gpu-a100-2"]}, odd):
        status = {**first.status, "migChanges": entries}
        res = run({**GROWN, "status": status}, required={"nodes": nodes})
        assert "migChanges" not in res.status
        assert not res.fatal


def test_a_mode_flip_disrupts_the_whole_node_and_names_the_services_using_it() -> None:
    # Leftover whole: the 2g.20gb GPU is carved out of a whole GPU, whose MIG mode flips, and
    # mig-parted then clears every MIG GPU of the node (apply/mode.go) before resetting them.
    doc = with_spec(GROWN, **{"sharing.leftover": None})
    first = run(
        with_spec(doc, **{"sharing.profiles": GROWN["spec"]["sharing"]["profiles"][:2]}),
        required={"nodes": GROWN_NODES},
    )
    nodes = copy.deepcopy(GROWN_NODES)
    for n in nodes:
        n["metadata"]["labels"]["nvidia.com/mig.config"] = first.status["migPlans"]["a100-80gb"][
            "configName"
        ]
    services = [
        isvc("chat", "a100-pool-grown", "nvidia.com/mig-1g.10gb", 2),
        isvc("idle", "a100-pool-grown", "nvidia.com/mig-1g.10gb", 0),
        isvc("other", "another-pool", "nvidia.com/mig-1g.10gb", 1),
    ]
    res = run(
        {**doc, "status": first.status},
        required={"nodes": nodes, "inferenceservices": services},
        capabilities=CONDITIONS,
    )
    [change] = res.status["migChanges"]
    assert change["nodes"] == ["gpu-a100-2", "gpu-a100-3"]
    assert change["migModeFlips"] == [2]
    assert change["gpus"] == list(range(8))
    assert change["services"] == ["team-a/chat"]
    status, reason, message = conditions(res)["ReplicasUndisturbed"]
    assert (status, reason) == ("STATUS_CONDITION_FALSE", "MigChangeDisruptsReplicas")
    assert "gpu-a100-2, gpu-a100-3" in message
    assert "team-a/chat" in message
