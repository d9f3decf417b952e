"""Every example pool's device-plugin config, loaded by the NVIDIA device plugin itself
(k8s-device-plugin `nvidia-device-plugin`, `make tools`) under the environment the GPU Operator
gives it with the ClusterPolicy docs/gpupool.md documents.

The environment is derived, not written down: the chart's ClusterPolicy (gpu-operator v26.7.0
deployments/gpu-operator/values.yaml, the fields that reach the plugin) with the documented
`kubectl patch` applied as the JSON merge patch it is, then turned into container env the way
the operator's TransformDevicePlugin does (controllers/object_controls.go). So a change of the
documented ClusterPolicy is tested as it would run.

The plugin has no validate-only mode. It loads the config file, lets set flags and env override
it, validates the result (cmd/nvidia-device-plugin/main.go `validateFlags`) and only then logs
"Updating config with default resource matching patterns." That line is the verdict. Its driver
root holds a stand-in libnvidia-ml.so.1 that loads (the operator's default CDI device-list
strategy is refused without NVML) and answers nvmlInit with "Driver Not Loaded", so the plugin
stops at its first NVML call: for `migStrategy: mixed` that is adding the MIG resource patterns
(internal/rm/rm.go; `none` makes no NVML call there), otherwise after it logs the effective
config, which is compared with what the pool rendered.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fnharness import EXAMPLES, example, run
from tests.toolchain import ROOT, Tools

# DRA pools (allocation: dra) configure no device plugin (tests/unit/test_dra.py).
POOLS = sorted(
    p.name for p in EXAMPLES.glob("*pool*.yaml") if "allocation: dra" not in p.read_text()
)
DOCS = ROOT / "docs" / "gpupool.md"
PATCH = re.compile(
    r"kubectl patch clusterpolicies\.nvidia\.com/cluster-policy --type merge -p '(.*?)'", re.S
)
VALIDATED = "Updating config with default resource matching patterns."
MIXED_NVML = "unable to add default resources to config: failed to initialize NVML"

# What the gpu-operator v26.7.0 chart puts into the ClusterPolicy for the fields that reach the
# device plugin's environment (values.yaml: mig, cdi, toolkit, devicePlugin, gds, gdrcopy).
CHART = {
    "mig": {"strategy": "single"},
    "cdi": {"enabled": True},
    "toolkit": {"enabled": True, "installDir": "/usr/local/nvidia"},
    "devicePlugin": {
        "env": [],
        "config": {"name": "", "default": ""},
        "mps": {"root": "/run/nvidia/mps"},
    },
    "gds": {"enabled": False},
    "gdrcopy": {"enabled": False},
}
# The device-plugin container's env in assets/state-device-plugin/0500_daemonset.yaml.
ASSET_ENV = {
    "PASS_DEVICE_SPECS": "true",
    "FAIL_ON_INIT_ERROR": "true",
    "DEVICE_LIST_STRATEGY": "envvar",
    "DEVICE_ID_STRATEGY": "uuid",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_DRIVER_CAPABILITIES": "all",
    "MPS_ROOT": "/run/nvidia/mps",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what `kubectl patch --type merge` sends)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def documented_spec() -> dict[str, Any]:
    """The ClusterPolicy spec after the chart install and the patch docs/gpupool.md gives."""
    found = PATCH.findall(DOCS.read_text())
    assert len(found) == 1, f"{DOCS}: expected one ClusterPolicy patch, found {len(found)}"
    return dict(merge_patch({"spec": CHART}, json.loads(found[0]))["spec"])


def operator_env(spec: dict[str, Any], config_file: Path, driver_root: Path) -> dict[str, str]:
    """The device-plugin container's env under `spec` (gpu-operator v26.7.0
    controllers/object_controls.go TransformDevicePlugin), then what its entrypoint sources."""
    env = dict(ASSET_ENV)
    if spec["gds"].get("enabled"):
        env |= {"GDS_ENABLED": "true", "MOFED_ENABLED": "true"}
    if spec["gdrcopy"].get("enabled"):
        env["GDRCOPY_ENABLED"] = "true"
    if spec["devicePlugin"].get("config", {}).get("name"):
        env["CONFIG_FILE"] = str(config_file)  # /config/config.yaml, the node's key
    # applyMIGConfiguration: no strategy, no MIG_STRATEGY ("let plugin decide this per node").
    strategy = spec.get("mig", {}).get("strategy") or ""
    if strategy:
        env["MIG_STRATEGY"] = strategy
    if strategy != "none":
        env["NVIDIA_MIG_MONITOR_DEVICES"] = "all"
    if spec["cdi"].get("enabled", True):  # transformDevicePluginCtrForCDI
        env |= {
            "CDI_ENABLED": "true",
            "DEVICE_LIST_STRATEGY": "cdi-annotations,cdi-cri",
            "CDI_ANNOTATION_PREFIX": "cdi.k8s.io/",
        }
        if spec["toolkit"].get("enabled", True):
            env["NVIDIA_CDI_HOOK_PATH"] = spec["toolkit"]["installDir"] + "/toolkit/nvidia-cdi-hook"
    root = spec["devicePlugin"].get("mps", {}).get("root")
    if root:
        env["MPS_ROOT"] = root
    for item in spec["devicePlugin"].get("env", []):  # applied last: it overrides the above
        env[item["name"]] = item.get("value", "")
    # entrypoint.sh sources the validator's driver-ready file (operator-installed driver; its
    # container path /driver-root is the stand-in driver root here).
    env |= {
        "IS_HOST_DRIVER": "false",
        "NVIDIA_DRIVER_ROOT": "/run/nvidia/driver",
        "DRIVER_ROOT_CTR_PATH": str(driver_root),
        "NVIDIA_DEV_ROOT": "/run/nvidia/driver",
        "DEV_ROOT_CTR_PATH": str(driver_root),
    }
    return env


def rendered(name: str) -> dict[str, Any]:
    """The device-plugin config the pool `name` renders for the Nodes its example selects."""
    doc = example(name)
    selector = doc["spec"]["nodeSelector"]
    required = yaml.safe_load_all((ROOT / "examples" / "required" / name).read_text())
    nodes = [
        d
        for d in required
        if d and d["kind"] == "Node" and selector.items() <= d["metadata"].get("labels", {}).items()
    ]
    assert nodes, f"examples/required/{name}: no Node the pool selects"
    data = run(doc, required={"nodes": nodes}).resources["device-plugin-config"]
    (text,) = data["spec"]["forProvider"]["manifest"]["data"].values()
    return dict(yaml.safe_load(text))


def load(tools: Tools, config: dict[str, Any], spec: dict[str, Any], tmp: Path) -> str:
    """The plugin's log for `config` under the env `spec` gives it."""
    (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (tmp / "device-plugins").mkdir(exist_ok=True)
    env = operator_env(spec, tmp / "config.yaml", tools.nvml_root)
    # Not the operator's: the kubelet socket the plugin watches (a hostPath mount in the pod).
    env["KUBELET_SOCKET"] = str(tmp / "device-plugins" / "kubelet.sock")
    done = subprocess.run(
        [str(tools.device_plugin)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


def effective(log: str) -> dict[str, Any] | None:
    """The config the plugin logs it runs with, if it got there."""
    _, found, rest = log.partition("Running with config:\n")
    return json.JSONDecoder().raw_decode(rest)[0] if found else None


@pytest.mark.parametrize("name", POOLS)
def test_the_plugin_runs_every_example_pool_under_the_documented_cluster_policy(
    tools: Tools, tmp_path: Path, name: str
) -> None:
    config = rendered(name)
    log = load(tools, config, documented_spec(), tmp_path)
    assert VALIDATED in log, log
    runs = effective(log)
    ran = "mixed" if MIXED_NVML in log else runs["flags"]["migStrategy"] if runs else None
    wrote = config["flags"]["migStrategy"]
    assert ran == wrote, f"the pool wrote migStrategy {wrote}, the plugin ran {ran}:\n{log}"
    if runs is None:
        return
    # What the pool wrote is what runs; MPS_ROOT comes from the operator.
    assert runs["flags"]["mpsRoot"] == "/run/nvidia/mps"
    for method, shared in config.get("sharing", {}).items():
        got = runs["sharing"][method]
        assert got["renameByDefault"] == shared["renameByDefault"]
        assert got["failRequestsGreaterThanOne"] == shared["failRequestsGreaterThanOne"]
        assert [(r["name"], r["replicas"]) for r in got["resources"]] == [
            (r["name"], r["replicas"]) for r in shared["resources"]
        ]


@pytest.mark.parametrize(
    ("name", "patch", "refusal"),
    [
        # The ClusterPolicy docs/gpupool.md gave before: one strategy for every node.
        (
            "t4-mps-pool.yaml",
            {"mig": {"strategy": "mixed"}},
            "unable to validate flags: using --mig-strategy=mixed is not supported with MPS",
        ),
        # devicePlugin.env cannot unset MIG_STRATEGY: an empty value is a set flag.
        (
            "a100-pool.yaml",
            {"devicePlugin": {"env": [{"name": "MIG_STRATEGY", "value": ""}]}},
            "unable to validate flags: unknown MIG strategy: ",
        ),
    ],
    ids=["mig-strategy-mixed", "empty-MIG_STRATEGY-env"],
)
def test_cluster_policies_the_plugin_refuses_are_caught(
    tools: Tools, tmp_path: Path, name: str, patch: dict[str, Any], refusal: str
) -> None:
    log = load(tools, rendered(name), merge_patch(documented_spec(), patch), tmp_path)
    assert refusal in log, log
    assert VALIDATED not in log
