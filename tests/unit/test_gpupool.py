"""GPUPool function: device-plugin and mig-parted configs per sharing mode."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.fnharness import example, run, with_spec

SAMPLE = example("a100-pool.yaml")


def plugin_config(doc: dict[str, Any]) -> dict[str, Any]:
    cm = run(doc).resources["device-plugin-config"]
    (text,) = cm["data"].values()
    return dict(yaml.safe_load(text))


def test_sample_plans_mig_layout_on_fewest_gpus_per_model() -> None:
    res = run(SAMPLE)
    assert res.fatal == []
    cfg = yaml.safe_load(res.resources["mig-parted-config"]["data"]["config.yaml"])
    assert cfg["version"] == "v1"
    entries = cfg["mig-configs"]["a100-pool"]
    # 2 x 3g.40gb fill all 8 memory slices of one GPU; the 4 x 1g.10gb go on a second.
    a100 = [e for e in entries if "0x20B210DE" in e["device-filter"]]
    assert [(e["devices"], e["mig-devices"]) for e in a100] == [
        ([0], {"3g.40gb": 2}),
        ([1], {"1g.10gb": 4}),
    ]
    assert all(e["mig-enabled"] for e in entries)
    assert res.resources["mig-parted-config"]["metadata"]["namespace"] == "gpu-operator"


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
                "flags": {"migStrategy": "none", "mpsRoot": "/run/nvidia/mps"},
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
    cfg = yaml.safe_load(res.resources["mig-parted-config"]["data"]["config.yaml"])
    a100 = [e for e in cfg["mig-configs"]["a100-pool"] if "0x20B210DE" in e["device-filter"]]
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
