"""The device-plugin and mig-parted documents (functions/gpupool/deviceplugin.py).

These are the structures the upstream parsers read (their tests load them with the device
plugin's and mig-parted's own code); here, what each spec turns into.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from functions.common.api.gpupool import GPUPoolSpec
from functions.common.gpus import CATALOG
from functions.gpupool.deviceplugin import (
    device_plugin_config,
    layouts_of,
    mig_parted_config,
    replicas,
)
from functions.gpupool.wiring import to_yaml

SHARED = {"renameByDefault": True, "failRequestsGreaterThanOne": True}


def pool(mode: str, ratio: str | None = None, **sharing: Any) -> GPUPoolSpec:
    over = {"enabled": True, "ratio": ratio} if ratio else {}
    return GPUPoolSpec.model_validate(
        {"nodeSelector": {"a": "b"}, "sharing": {"mode": mode, **sharing}, "oversubscription": over}
    )


MIG_PROFILES = {"profiles": [{"name": "3g.40gb", "count": 2}]}


@pytest.mark.parametrize(
    ("spec", "shares", "warnings"),
    [
        (pool("timeslice"), 2, []),  # not oversubscribed: the plugin's minimum
        (pool("timeslice", "4"), 4, []),
        (
            pool("mps", "1.5"),
            2,
            [
                "oversubscription.ratio 1.5: the device plugin shares each device a whole number "
                "of times (at least 2), so it advertises 2 replicas per device (effective ratio 2)"
            ],
        ),
        (
            pool("mig", "2.5", **MIG_PROFILES),
            3,
            [
                "oversubscription.ratio 2.5: the device plugin shares each device a whole number "
                "of times (at least 2), so it advertises 3 replicas per device (effective ratio 3)"
            ],
        ),
    ],
    ids=["default", "whole", "rounded-up-to-two", "rounded-half-up"],
)
def test_shares_per_device_are_whole_and_at_least_two(
    spec: GPUPoolSpec, shares: int, warnings: list[str]
) -> None:
    assert replicas(spec) == (shares, warnings)


def test_mps_refuses_more_clients_than_a_gpu_takes() -> None:
    with pytest.raises(ValueError, match="MPS allows at most 48 clients per GPU; 49 asks for 49"):
        replicas(pool("mps", "49"))


@pytest.mark.parametrize(
    ("spec", "resources", "config"),
    [
        (pool("exclusive"), [], {"version": "v1", "flags": {"migStrategy": "none"}}),
        (
            pool("timeslice"),
            [],
            {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {
                    "timeSlicing": {
                        **SHARED,
                        "resources": [{"name": "nvidia.com/gpu", "replicas": 3}],
                    }
                },
            },
        ),
        (
            pool("mps"),
            [],
            {
                "version": "v1",
                "flags": {"migStrategy": "none"},
                "sharing": {
                    "mps": {**SHARED, "resources": [{"name": "nvidia.com/gpu", "replicas": 3}]}
                },
            },
        ),
        (
            pool("mig", **MIG_PROFILES),
            ["nvidia.com/mig-3g.40gb"],
            {"version": "v1", "flags": {"migStrategy": "mixed"}},
        ),
        # Oversubscribed MIG instances are time-sliced (MPS does not run on MIG devices).
        (
            pool("mig", "2", **MIG_PROFILES),
            ["nvidia.com/mig-3g.40gb", "nvidia.com/mig-1g.10gb"],
            {
                "version": "v1",
                "flags": {"migStrategy": "mixed"},
                "sharing": {
                    "timeSlicing": {
                        **SHARED,
                        "resources": [
                            {"name": "nvidia.com/mig-1g.10gb", "replicas": 3},
                            {"name": "nvidia.com/mig-3g.40gb", "replicas": 3},
                        ],
                    }
                },
            },
        ),
    ],
    ids=["exclusive", "timeslice", "mps", "mig", "mig-oversubscribed"],
)
def test_device_plugin_config_per_sharing_mode(
    spec: GPUPoolSpec, resources: list[str], config: dict[str, Any]
) -> None:
    assert device_plugin_config(spec, resources, 3) == config


def test_mig_parted_has_one_entry_per_gpu_filtered_to_the_models_devices() -> None:
    a100 = next(m for m in CATALOG if m.key == "a100-80gb")
    layout = [{"3g.40gb": 2}, {"3g.40gb": 2}, {"1g.10gb": 7}, {}]
    ids = list(a100.device_ids)
    assert mig_parted_config({"pool-a100-80gb-abc123": (a100, layout)}) == {
        "version": "v1",
        "mig-configs": {
            "pool-a100-80gb-abc123": [
                # Equal GPUs are not grouped: a GPU's entry does not depend on its neighbours.
                {
                    "device-filter": ids,
                    "devices": [0],
                    "mig-enabled": True,
                    "mig-devices": {"3g.40gb": 2},
                },
                {
                    "device-filter": ids,
                    "devices": [1],
                    "mig-enabled": True,
                    "mig-devices": {"3g.40gb": 2},
                },
                {
                    "device-filter": ids,
                    "devices": [2],
                    "mig-enabled": True,
                    "mig-devices": {"1g.10gb": 7},
                },
                # An unused GPU keeps MIG off: a whole GPU.
                {"device-filter": ids, "devices": [3], "mig-enabled": False},
            ]
        },
    }


@pytest.mark.parametrize(
    ("entries", "layouts"),
    [
        (None, None),
        ("all", None),
        ([{"devices": "all", "mig-enabled": False}], None),
        ([{"devices": [0], "mig-enabled": True, "mig-devices": {"1g.10gb": "7"}}], None),
        ([{"devices": [0]}, {"devices": [0]}], None),
        (
            [{"devices": [1], "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}],
            [None, {"1g.10gb": 7}],
        ),
        ([{"devices": [0, 2], "mig-enabled": False}], [{}, None, {}]),
    ],
    ids=["none", "string", "devices-all", "count-not-int", "index-twice", "gap", "disabled"],
)
def test_layouts_are_read_back_only_from_per_index_entries(
    entries: Any, layouts: list[dict[str, int] | None] | None
) -> None:
    assert layouts_of(entries) == layouts


def test_layouts_read_back_what_was_written() -> None:
    a100 = next(m for m in CATALOG if m.key == "a100-80gb")
    layout = [{"3g.40gb": 2}, {}, {"1g.10gb": 4, "2g.20gb": 1}]
    config = mig_parted_config({"c": (a100, layout)})["mig-configs"]["c"]
    assert layouts_of(config) == layout


@pytest.mark.parametrize(
    "document",
    [
        mig_parted_config({"p-a100": (CATALOG[1], [{"1g.10gb": 7}, {"3g.40gb": 2}, {}])}),
        mig_parted_config(
            {
                "p-a30": (
                    next(m for m in CATALOG if m.key == "a30-24gb"),
                    [{"1g.6gb+me": 1, "2g.12gb": 1}, {}],
                )
            }
        ),
        device_plugin_config(pool("mig", "3", **MIG_PROFILES), ["nvidia.com/mig-3g.40gb"], 3),
        device_plugin_config(pool("mps", "4"), [], 4),
    ],
)
def test_configs_are_the_same_text_with_libyaml_or_the_pure_python_emitter(
    document: dict[str, Any],
) -> None:
    # to_yaml uses libyaml where the yaml package has it; the text must not depend on that.
    assert to_yaml(document) == yaml.safe_dump(document, sort_keys=False, width=1000)
