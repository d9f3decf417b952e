#!/usr/bin/env python3
"""Check the metrics sidecar's GPU values against nvidia-smi on a real GPU machine. Read-only.

Run through hack/gpu-check.sh (it finds a Python that can import the sidecar). Steps:

1. records the settings that must not change (MIG mode current/pending, compute mode,
   application clocks, persistence mode) with `nvidia-smi --query-gpu`;
2. starts the sidecar (GPU source only, free localhost ports), scrapes /metrics a few times and
   queries nvidia-smi right after each scrape;
3. compares: GPU set (UUIDs), names, driver version, MIG mode, memory total and used per GPU
   (and per MIG device from `nvidia-smi -q -x`), utilization where NVML reports it;
4. stops the sidecar, records the settings again and checks nothing changed;
5. saves this machine's NVML answers as a fixture (`inference-sidecar record-nvml`), the
   sidecar's log and the report under --out.

Nothing here writes to a GPU: the only commands are `nvidia-smi --query-gpu=...`,
`nvidia-smi -q -x` and `nvidia-smi -L`, and the sidecar only calls NVML getters
(sidecar/nvml.py). Exit status 0 when every check passes, 1 otherwise, 2 when the check
could not run (no nvidia-smi, sidecar did not start).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
SETTINGS = (
    "index,uuid,mig.mode.current,mig.mode.pending,compute_mode,"
    "clocks.applications.graphics,clocks.applications.memory,persistence_mode"
)
VALUES = "index,uuid,name,driver_version,mig.mode.current,utilization.gpu,memory.total,memory.used"

# Tolerances: memory used and utilization move between the two reads.
MEMORY_USED_TOLERANCE_MIB = 64
UTILIZATION_TOLERANCE_POINTS = 15


def smi(*args: str) -> str:
    return subprocess.run(
        ["nvidia-smi", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def query(fields: str) -> list[dict[str, str]]:
    names = fields.split(",")
    out = smi(f"--query-gpu={fields}", "--format=csv,noheader,nounits")
    rows = []
    for line in out.strip().splitlines():
        values = [v.strip() for v in line.split(",")]
        rows.append(dict(zip(names, values, strict=False)))
    return rows


def mig_devices() -> dict[tuple[str, str, str], dict[str, int]]:
    """(gpu index, GI, CI) -> fb memory total/used MiB, from `nvidia-smi -q -x`."""
    out: dict[tuple[str, str, str], dict[str, int]] = {}
    root = ET.fromstring(smi("-q", "-x"))
    for index, gpu in enumerate(root.findall("gpu")):
        for dev in gpu.findall("./mig_devices/mig_device"):
            gi = (dev.findtext("gpu_instance_id") or "").strip()
            ci = (dev.findtext("compute_instance_id") or "").strip()
            fb = dev.find("fb_memory_usage")
            if fb is None:
                continue
            try:
                total = int((fb.findtext("total") or "").split()[0])
                used = int((fb.findtext("used") or "").split()[0])
            except (ValueError, IndexError):
                continue
            out[(str(index), gi, ci)] = {"total": total, "used": used}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except OSError as err:
        return 0, str(err)


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # [N/A], [Not Supported]


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    checks: int = 0

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def check(self, ok: bool, what: str) -> None:
        self.checks += 1
        self.say(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            self.failures.append(what)


def direct_memory(fixture: str | None) -> dict[str, dict[str, int]]:
    """uuid -> v1 used / v2 used / v2 reserved, read with NVML directly (diagnosis only)."""
    sys.path.insert(0, str(ROOT))
    from sidecar.nvml import Nvml, PynvmlNvml, RecordedNvml  # noqa: PLC0415

    nvml: Nvml = RecordedNvml.load(fixture) if fixture else PynvmlNvml()
    out: dict[str, dict[str, int]] = {}
    try:
        nvml.init()
        for i in range(nvml.device_count()):
            h = nvml.handle_by_index(i)
            row: dict[str, int] = {}
            for key, v2 in (("v1", False), ("v2", True)):
                try:
                    mem = nvml.memory_info(h, v2)
                    row[f"{key}_used"] = int(mem.used)
                    if v2:
                        row["v2_reserved"] = int(mem.reserved)
                except Exception:
                    pass
            out[nvml.uuid(h)] = row
        nvml.shutdown()
    except Exception as err:
        print(f"  (direct NVML read for diagnosis failed: {err})")
    return out


def compare(report: Report, metrics: dict[str, Any], rows: list[dict[str, str]]) -> None:
    info = {lbl["uuid"]: lbl for lbl, _ in metrics.get("inference_gpu_info", [])}
    mem_used = {
        (lbl["uuid"]): v
        for lbl, v in metrics.get("inference_gpu_memory_used_bytes", [])
        if not lbl.get("mig_profile")
    }
    mem_total = {
        lbl["uuid"]: v
        for lbl, v in metrics.get("inference_gpu_memory_total_bytes", [])
        if not lbl.get("mig_profile")
    }
    util = {lbl["uuid"]: v for lbl, v in metrics.get("inference_gpu_utilization", [])}
    up = metrics.get("inference_gpu_up", [({}, 0.0)])[0][1]
    report.check(up == 1, f"inference_gpu_up = {up:g}")
    report.check(
        set(info) == {r["uuid"] for r in rows},
        f"same GPUs: sidecar {sorted(info)} / nvidia-smi {sorted(r['uuid'] for r in rows)}",
    )
    for r in rows:
        uuid = r["uuid"]
        mine = info.get(uuid)
        if mine is None:
            continue
        report.say(f"GPU {r['index']} {r['name']} {uuid}")
        report.check(mine["gpu"] == r["index"], f"index {mine['gpu']} = {r['index']}")
        report.check(mine["gpu_model"] == r["name"], f"name {mine['gpu_model']!r} = {r['name']!r}")
        report.check(
            mine["driver_version"] == r["driver_version"],
            f"driver {mine['driver_version']} = {r['driver_version']}",
        )
        smi_mig = r["mig.mode.current"].strip().lower() == "enabled"
        report.check(
            (mine["mig_mode"] == "enabled") == smi_mig,
            f"MIG mode sidecar {mine['mig_mode'] or 'disabled'} / "
            f"nvidia-smi {r['mig.mode.current']}",
        )
        if smi_mig:
            report.check(
                uuid not in util,
                "no utilization exported for the MIG-enabled GPU (NVML: NOT_SUPPORTED); "
                f"nvidia-smi utilization.gpu = {r['utilization.gpu']}",
            )
            continue
        total = number(r["memory.total"])
        if uuid in mem_total and total is not None:
            report.check(
                abs(mem_total[uuid] / MiB - total) <= 1,
                f"memory total {mem_total[uuid] / MiB:.0f} MiB = nvidia-smi {total:.0f} MiB",
            )
        used = number(r["memory.used"])
        if uuid in mem_used and used is not None:
            report.check(
                abs(mem_used[uuid] / MiB - used) <= MEMORY_USED_TOLERANCE_MIB,
                f"memory used {mem_used[uuid] / MiB:.0f} MiB ~ nvidia-smi {used:.0f} MiB "
                f"(+-{MEMORY_USED_TOLERANCE_MIB} MiB)",
            )
        smi_util = number(r["utilization.gpu"])
        if smi_util is None:
            report.check(uuid not in util, "utilization n/a in nvidia-smi and absent here")
        else:
            report.check(
                uuid in util and abs(util[uuid] * 100 - smi_util) <= UTILIZATION_TOLERANCE_POINTS,
                f"utilization {util.get(uuid, float('nan')) * 100:.0f}% ~ nvidia-smi "
                f"{smi_util:.0f}% (+-{UTILIZATION_TOLERANCE_POINTS} points; sampled apart)",
            )


def compare_mig(report: Report, metrics: dict[str, Any]) -> None:
    try:
        smi_migs = mig_devices()
    except (subprocess.SubprocessError, ET.ParseError, OSError) as err:
        report.say(f"  (nvidia-smi -q -x unreadable: {err}; MIG devices not compared)")
        return
    mine = {
        (lbl["gpu"], lbl["gpu_instance_id"], lbl["compute_instance_id"]): (lbl, v)
        for lbl, v in metrics.get("inference_gpu_memory_used_bytes", [])
        if lbl.get("mig_profile")
    }
    if not smi_migs and not mine:
        return
    report.say("MIG devices (gpu, GPU instance, compute instance)")
    report.check(
        set(mine) == set(smi_migs),
        f"same MIG devices: sidecar {sorted(mine)} / nvidia-smi {sorted(smi_migs)}",
    )
    totals = {
        (lbl["gpu"], lbl["gpu_instance_id"], lbl["compute_instance_id"]): v
        for lbl, v in metrics.get("inference_gpu_memory_total_bytes", [])
        if lbl.get("mig_profile")
    }
    for key in sorted(set(mine) & set(smi_migs)):
        lbl, used = mine[key]
        s = smi_migs[key]
        report.check(
            abs(totals[key] / MiB - s["total"]) <= 1,
            f"{key} {lbl['mig_profile']}: total {totals[key] / MiB:.0f} MiB = {s['total']} MiB",
        )
        report.check(
            abs(used / MiB - s["used"]) <= MEMORY_USED_TOLERANCE_MIB,
            f"{key} {lbl['mig_profile']}: used {used / MiB:.0f} MiB ~ {s['used']} MiB",
        )
    report.check(
        not any(lbl.get("mig_profile") for lbl, _ in metrics.get("inference_gpu_utilization", [])),
        "no utilization series for MIG devices",
    )


def main() -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out")
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument(
        "--nvml-fixture",
        default=os.environ.get("GPU_CHECK_NVML_FIXTURE"),
        help="self-test only: recorded NVML answers instead of the real library",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report()

    if not shutil.which("nvidia-smi"):
        print("error: nvidia-smi not found: run this on a machine with the NVIDIA driver")
        return 2
    report.say("# inference-sidecar GPU check (read-only)")
    report.say(f"host {platform.node()}, Python {platform.python_version()} ({sys.executable})")
    try:
        import pynvml  # noqa: PLC0415

        report.say(f"pynvml from {Path(pynvml.__file__).parent}")
    except ImportError as err:
        print(f"error: cannot import pynvml ({err}); see hack/gpu-check.sh")
        return 2
    report.say("nvidia-smi -L:")
    for line in smi("-L").strip().splitlines():
        report.say(f"  {line}")
    settings_before = query(SETTINGS)

    mport, hport = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "METRICS_BIND_ADDRESS": f"127.0.0.1:{mport}",
        "HEALTH_PROBE_BIND_ADDRESS": f"127.0.0.1:{hport}",
        "GPU_METRICS": "auto",
        "SIDECAR_MODE": "pod",
    }
    for var in ("ENGINE_METRICS_URL", "REDIS_URL", "LOCAL_CACHE_DIR", "NVML_FIXTURE"):
        env.pop(var, None)
    if args.nvml_fixture:
        env["NVML_FIXTURE"] = args.nvml_fixture
    log_path = out / "sidecar.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while get(f"http://127.0.0.1:{hport}/readyz")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"error: the sidecar did not become ready; log:\n{log_path.read_text()}")
                return 2
            time.sleep(0.1)
        for n in range(1, args.scrapes + 1):
            status, text = get(f"http://127.0.0.1:{mport}/metrics")
            rows = query(VALUES)
            metrics = parse_metrics(text)
            report.say(f"\n## scrape {n}: /metrics {status}, nvidia-smi --query-gpu right after")
            compare(report, metrics, rows)
            compare_mig(report, metrics)
            (out / f"metrics-{n}.txt").write_text(text)
            time.sleep(1)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    report.say("\n## memory semantics (direct NVML, for diagnosis)")
    direct = direct_memory(args.nvml_fixture)
    try:
        memory_rows = query("uuid,memory.used,memory.reserved")
    except subprocess.CalledProcessError:  # nvidia-smi without memory.reserved
        memory_rows = query("uuid,memory.used")
    for row in memory_rows:
        d = direct.get(row["uuid"], {})

        def mib(key: str, d: dict[str, int] = d) -> str:
            return f"{d[key] / MiB:.0f} MiB" if key in d else "n/a"

        report.say(
            f"  {row['uuid']}: nvidia-smi used {row.get('memory.used')} MiB, reserved "
            f"{row.get('memory.reserved', '?')} MiB; NVML v2 used {mib('v2_used')}, "
            f"v2 reserved {mib('v2_reserved')}, v1 used {mib('v1_used')}"
        )

    report.say("\n## read-only: settings before and after")
    settings_after = query(SETTINGS)
    report.check(
        settings_before == settings_after,
        "MIG mode (current, pending), compute mode, application clocks, persistence mode unchanged",
    )
    if settings_before != settings_after:
        report.say(f"  before {json.dumps(settings_before)}")
        report.say(f"  after  {json.dumps(settings_after)}")
    sidecar_log = log_path.read_text()
    report.say("\n## sidecar log")
    for line in sidecar_log.splitlines():
        report.say(f"  {line}")

    fixture = out / f"nvml-{platform.node() or 'gpu'}.json"
    record = subprocess.run(
        [sys.executable, "-m", "sidecar", "record-nvml", "--out", str(fixture)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report.say(f"\nNVML answers recorded: {record.stdout.strip() or record.stderr.strip()}")

    verdict = "PASS" if not report.failures else f"FAIL ({len(report.failures)})"
    report.say(f"\n{verdict}: {report.checks - len(report.failures)}/{report.checks} checks")
    for failure in report.failures:
        report.say(f"  failed: {failure}")
    (out / "report.txt").write_text("\n".join(report.lines) + "\n")
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
