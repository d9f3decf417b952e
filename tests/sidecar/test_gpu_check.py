"""hack/gpu-check.sh without a GPU: recorded NVML answers and a FAKE nvidia-smi.

The real check runs on a GPU machine (docs/metrics.md, "On a GPU machine"). Here a stand-in
`nvidia-smi` (a Python script written by the test, first on PATH) answers the three read-only
queries the check makes from a JSON state whose values agree, or on purpose disagree, with
the recorded fixtures; this exercises the script's plumbing and comparisons, not NVIDIA's
tools.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.sidecar.procs import FIXTURES, ROOT

FAKE_SMI = """#!{python}
import json, os, sys
state_path = os.environ["FAKE_SMI_STATE"]
state = json.load(open(state_path))
calls = state.get("calls", 0) + 1
state["calls"] = calls
json.dump(state, open(state_path, "w"))
args = sys.argv[1:]
if args == ["-L"]:
    for i, g in enumerate(state["gpus"]):
        print(f"GPU {{i}}: {{g['name']}} (UUID: {{g['uuid']}})")
elif args[:2] == ["-q", "-x"]:
    print("<nvidia_smi_log>")
    for g in state["gpus"]:
        print("<gpu><mig_devices>")
        for m in g.get("mig_devices", []):
            print(
                f"<mig_device><gpu_instance_id>{{m['gi']}}</gpu_instance_id>"
                f"<compute_instance_id>{{m['ci']}}</compute_instance_id><fb_memory_usage>"
                f"<total>{{m['total']}} MiB</total><used>{{m['used']}} MiB</used>"
                "</fb_memory_usage></mig_device>"
            )
        print("</mig_devices></gpu>")
    print("</nvidia_smi_log>")
elif args[0].startswith("--query-gpu="):
    fields = args[0].split("=", 1)[1].split(",")
    for i, g in enumerate(state["gpus"]):
        row = {{"index": str(i), **g}}
        if "compute_mode" in fields and calls >= state.get("change_compute_mode_at", 10**9):
            row["compute_mode"] = "Exclusive_Process"
        print(", ".join(str(row.get(f, "[N/A]")) for f in fields))
else:
    sys.exit(f"fake nvidia-smi: unexpected arguments {{args}}")
"""

H100 = {
    "name": "NVIDIA H100 80GB HBM3",
    "driver_version": "580.95.05",
    "mig.mode.current": "Disabled",
    "mig.mode.pending": "Disabled",
    "compute_mode": "Default",
    "clocks.applications.graphics": "1755",
    "clocks.applications.memory": "2619",
    "persistence_mode": "Enabled",
    "memory.total": "81559",
    "memory.reserved": "544",
}
H100_GPUS = [
    {
        **H100,
        "uuid": "GPU-5c7a1f3e-2b8d-4e6a-9f1c-0d3b7a8e4c21",
        "utilization.gpu": "85",
        "memory.used": "69630",
    },
    {
        **H100,
        "uuid": "GPU-a04e9b12-6f3d-4c8a-b5e7-3d92c1f0a6b8",
        "utilization.gpu": "0",
        "memory.used": "1",
    },
]
A100_GPUS = [
    {
        "name": "NVIDIA A100-SXM4-40GB",
        "uuid": "GPU-1f6b8d2a-93c4-4e7b-8a05-6c2d9e3f7b14",
        "driver_version": "580.95.05",
        "mig.mode.current": "Enabled",
        "mig.mode.pending": "Enabled",
        "compute_mode": "Default",
        "utilization.gpu": "[N/A]",
        "memory.total": "40960",
        "memory.used": "16410",
        "mig_devices": [
            {"gi": 2, "ci": 0, "total": 19968, "used": 16384},
            {"gi": 3, "ci": 0, "total": 9984, "used": 13},
            {"gi": 9, "ci": 0, "total": 4864, "used": 4352},
        ],
    }
]


def run_check(
    tmp_path: Path, fixture: str, gpus: list[dict[str, Any]], **state: Any
) -> tuple[int, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(python=sys.executable))
    smi.chmod(0o755)
    state_path = tmp_path / "smi.json"
    state_path.write_text(json.dumps({"gpus": gpus, **state}))
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FAKE_SMI_STATE": str(state_path),
        "GPU_CHECK_NVML_FIXTURE": str(FIXTURES / f"{fixture}.json"),
        "GPU_CHECK_PYTHON": sys.executable,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "gpu-check.sh"), "--out", str(out), "--scrapes", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = (out / "report.txt").read_text() if (out / "report.txt").exists() else ""
    return result.returncode, report + result.stdout + result.stderr


def test_whole_gpus_pass(tmp_path: Path) -> None:
    code, out = run_check(tmp_path, "h100-whole", H100_GPUS)
    assert code == 0, out
    assert "PASS" in out
    assert "[ok] utilization 87% ~ nvidia-smi 85%" in out
    assert "[ok] memory used 69632 MiB ~ nvidia-smi 69630 MiB" in out
    assert "unchanged" in out
    assert (tmp_path / "out" / "sidecar.log").exists()
    assert (tmp_path / "out" / "metrics-1.txt").exists()


def test_mig_gpu_pass(tmp_path: Path) -> None:
    code, out = run_check(tmp_path, "a100-mig", A100_GPUS)
    assert code == 0, out
    assert "no utilization exported for the MIG-enabled GPU" in out
    assert "('0', '2', '0') 3g.20gb: used 16384 MiB ~ 16384 MiB" in out


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"gpus": [{**H100_GPUS[0], "memory.used": "40000"}, H100_GPUS[1]]}, "memory used"),
        ({"gpus": [{**H100_GPUS[0], "name": "NVIDIA H200"}, H100_GPUS[1]]}, "name"),
        ({"gpus": H100_GPUS[:1]}, "same GPUs"),
        ({"gpus": H100_GPUS, "change_compute_mode_at": 4}, "compute mode"),
    ],
)
def test_disagreement_fails(tmp_path: Path, change: dict[str, Any], expect: str) -> None:
    gpus = change.pop("gpus")
    code, out = run_check(tmp_path, "h100-whole", gpus, **change)
    assert code == 1, out
    assert "FAIL" in out
    assert any(expect in line for line in out.splitlines() if "[FAIL]" in line), out
