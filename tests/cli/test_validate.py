"""`crossplane resource validate` (offline) of every example against both XRD forms, and the
same verdict from the API server's CEL rules and the function's own checks."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from functions.common.quantity import DURATION_RANGE_MESSAGE, QUANTITY_RANGE_MESSAGE
from tests.fnharness import example, run, with_spec
from tests.toolchain import ROOT, Tools


def validate(tools: Tools, form: str, resources: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(tools.crossplane),
            "resource",
            "validate",
            str(ROOT / "xrds" / form),
            str(resources),
            *tools.validate_args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("form", ["claims", "v2"])
def test_every_example_validates(tools: Tools, form: str) -> None:
    result = validate(tools, form, ROOT / "examples" / "claims")
    assert result.returncode == 0, result.stdout + result.stderr
    examples = list((ROOT / "examples" / "claims").glob("*.yaml"))
    assert f"{len(examples)} success cases, 0 failure cases" in result.stdout


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("llama-70b.yaml", {"gpu.migProfile": None}, "migProfile is required when sharing is mig"),
    (
        "llama-70b.yaml",
        {"autoscaling.minReplicas": 20},
        "minReplicas must be less than or equal to maxReplicas",
    ),
    (
        "llama-8b-h100-exclusive.yaml",
        {"gpu.migProfile": "3g.40gb"},
        "migProfile is only allowed when sharing is mig",
    ),
    (
        "a100-pool.yaml",
        {"sharing.profiles": []},
        "profiles must list at least one MIG profile when mode is mig",
    ),
    (
        "h100-exclusive-pool.yaml",
        {"oversubscription": {"enabled": True}},
        "oversubscription needs sharing.mode mig, mps or timeslice",
    ),
    (
        "l4-timeslice-pool.yaml",
        {"oversubscription.ratio": "0.5"},
        "ratio must be at least 1 (shares per physical device)",
    ),
    (
        "l4-timeslice-pool.yaml",
        {"sharing.leftover": "balanced"},
        "leftover is only allowed when mode is mig",
    ),
    (
        "h100-exclusive-pool.yaml",
        {"dra": {"dynamicMig": True}},
        "dra settings are only allowed when allocation is dra",
    ),
    (
        "l4-timeslice-dra-pool.yaml",
        {"sharing.mode": "mps"},
        "dra.timeSlicingInterval needs sharing.mode timeslice",
    ),
    (
        "l4-timeslice-dra-pool.yaml",
        {"dra.mps": {"activeThreadPercentage": 50}},
        "dra.mps needs sharing.mode mps",
    ),
    (
        "h100-mig-dra-pool.yaml",
        {"sharing": {"mode": "exclusive"}},
        "dra.dynamicMig needs sharing.mode mig",
    ),
    (
        "h100-mig-dra-pool.yaml",
        {"sharing.leftover": "balanced"},
        "with allocation dra the pool does not partition GPUs",
    ),
    (
        "shared-cache.yaml",
        {"warmup": {"enabled": True, "commonPrefixes": []}},
        "commonPrefixes must not be empty when warmup is enabled",
    ),
    (
        "session-cache-lfu.yaml",
        {
            "tiers": [
                {"name": "a", "type": "redis", "size": "1Gi"},
                {"name": "b", "type": "redis", "size": "2Gi"},
            ]
        },
        "at most one tier of each type",
    ),
    (
        "session-cache-lfu.yaml",
        {"tiers": [{"name": "a", "type": "local", "size": "1Gi", "replicas": 3}]},
        "replicas is only meaningful for the redis tier",
    ),
    (
        "session-cache-lfu.yaml",
        {"tiers": [{"name": "a", "type": "redis", "size": "8Mi"}]},
        "size must be at least 16Mi",
    ),
    (
        "session-cache-lfu.yaml",
        {"tiers": [{"name": "a", "type": "local", "size": "16M"}]},
        "size must be at least 16Mi",
    ),
    (
        "session-cache-lfu.yaml",
        {"evictionPolicy": "ttl"},
        "evictionPolicy ttl needs a ttl on the redis tier",
    ),
    (
        "session-cache-lfu.yaml",
        {
            "tiers": [
                {"name": "a", "type": "local", "size": "1Gi", "passwordSecretRef": {"name": "s"}}
            ]
        },
        "passwordSecretRef is only meaningful for the redis tier",
    ),
    (
        "session-cache-lfu.yaml",
        {"tiers": [{"name": "a", "type": "redis", "size": "1Gi", "hostPath": "/mnt/a"}]},
        "hostPath and storageClassName are only meaningful for the local tier",
    ),
    (
        "session-cache-lfu.yaml",
        {
            "tiers": [
                {
                    "name": "a",
                    "type": "local",
                    "size": "1Gi",
                    "hostPath": "/mnt/a",
                    "storageClassName": "local",
                }
            ]
        },
        "set either hostPath or storageClassName, not both",
    ),
    # nodeSelector keys Kubernetes would refuse in the node requirement's label selector.
    *(
        ("h100-exclusive-pool.yaml", {"nodeSelector": {key: "x"}}, "nodeSelector keys must be")
        for key in ("a b", "x/y/z", "/a", "a/", "-a", "A.b/c", "a" * 254 + "/b", "a" * 64)
    ),
    # Durations beyond what the consumer takes: the HPA's window, Go's int64 nanoseconds.
    (
        "llama-8b-prefix-aware.yaml",
        {"autoscaling.scaleDownStabilization": "61m"},
        "scaleDownStabilization must be at most 1h",
    ),
    (
        "session-cache-lfu.yaml",
        {"tiers": [{"name": "a", "type": "redis", "size": "1Gi", "ttl": "2562048h"}]},
        DURATION_RANGE_MESSAGE,
    ),
    # Sizes the grammar allows but no engine could use, or beyond int64 once in bytes.
    *(
        (
            "session-cache-lfu.yaml",
            {"tiers": [{"name": "a", "type": "redis", "size": size}]},
            QUANTITY_RANGE_MESSAGE,
        )
        for size in ("1e400", "8Ei", "1e19", "2Pi", 2**60)
    ),
    ("llama-70b.yaml", {"resources.memory": "1e308"}, QUANTITY_RANGE_MESSAGE),
    ("llama-70b.yaml", {"resources.cpu": "-1"}, QUANTITY_RANGE_MESSAGE),
    ("llama-70b.yaml", {"cache.prefixCacheSize": "9Ei"}, QUANTITY_RANGE_MESSAGE),
    ("llama-70b.yaml", {"model.storage.size": "1E20"}, QUANTITY_RANGE_MESSAGE),
]


@pytest.mark.parametrize(("name", "changes", "message"), INVALID, ids=[m for _, _, m in INVALID])
def test_schema_and_function_reject_the_same_specs_with_the_same_message(
    tools: Tools, tmp_path: Path, name: str, changes: dict[str, Any], message: str
) -> None:
    doc = with_spec(example(name), **changes)
    (tmp_path / name).write_text(yaml.safe_dump(doc))
    for form in ("claims", "v2"):
        result = validate(tools, form, tmp_path)
        assert "1 failure cases" in result.stdout, result.stdout + result.stderr
        assert message in result.stdout
    fatal = run(doc).fatal
    assert len(fatal) == 1
    assert message in fatal[0]
