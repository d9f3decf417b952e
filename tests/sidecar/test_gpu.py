"""GPU metrics on recorded NVML answers: whole GPUs (H100), a MIG-enabled A100, no driver."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pynvml
import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from sidecar.gpu import GpuSource, mig_profile
from sidecar.metrics import families
from sidecar.nvml import PynvmlNvml, RecordedNvml, RecordingNvml, decode, encode, make_error
from tests.sidecar.procs import FIXTURES, Metrics

MiB = 1024 * 1024


def scrape(source: GpuSource) -> Metrics:
    class Once(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return iter(families(source.read()))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Once())
    return Metrics.parse(generate_latest(registry).decode())


def load(name: str) -> RecordedNvml:
    return RecordedNvml.load(FIXTURES / f"{name}.json")


def test_whole_gpus() -> None:
    m = scrape(GpuSource(load("h100-whole")))
    assert m.get("inference_gpu_up") == 1
    busy = {"gpu": "0", "uuid": "GPU-5c7a1f3e-2b8d-4e6a-9f1c-0d3b7a8e4c21"}
    assert m.get("inference_gpu_utilization", **busy) == 0.87
    assert m.get("inference_gpu_utilization", gpu="1") == 0.0
    labels, used = m.all("inference_gpu_memory_used_bytes", **busy)[0]
    assert used == 69632 * MiB
    assert labels == {
        **busy,
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "mig_profile": "",
        "gpu_instance_id": "",
        "compute_instance_id": "",
    }
    assert m.get("inference_gpu_memory_total_bytes", **busy) == 81559 * MiB
    assert m.get("inference_gpu_info", gpu="1")
    assert m.all("inference_gpu_info", gpu="0")[0][0]["driver_version"] == "580.95.05"
    assert m.all("inference_gpu_info", gpu="0")[0][0]["mig_mode"] == ""


def test_mig_gpu_has_memory_per_instance_and_no_utilization(caplog: Any) -> None:
    nvml = load("a100-mig")
    source = GpuSource(nvml)
    with caplog.at_level(logging.INFO, logger="inference-sidecar"):
        m = scrape(source)
        scrape(source)
    assert m.get("inference_gpu_up") == 1
    assert not m.has("inference_gpu_utilization")
    series = {
        lbls["mig_profile"]: (lbls, v) for lbls, v in m.all("inference_gpu_memory_used_bytes")
    }
    assert sorted(series) == ["1g.5gb", "2g.10gb", "3g.20gb"]  # parent not reported itself
    lbls, used = series["3g.20gb"]
    assert used == 16384 * MiB
    assert lbls["uuid"] == "MIG-8e2f4a61-0b7d-5c39-a1e4-27f6d8b3c905"
    assert lbls["gpu"] == "0"
    assert lbls["gpu_model"] == "NVIDIA A100-SXM4-40GB"
    assert (lbls["gpu_instance_id"], lbls["compute_instance_id"]) == ("2", "0")
    assert m.get("inference_gpu_memory_total_bytes", mig_profile="1g.5gb") == 4864 * MiB
    assert m.all("inference_gpu_info")[0][0]["mig_mode"] == "enabled"
    # NVML's NOT_SUPPORTED is logged once per device, not per scrape.
    unsupported = [r for r in caplog.records if "no utilization" in r.getMessage()]
    assert len(unsupported) == 4  # parent + three MIG devices
    assert "MIG enabled" in unsupported[0].getMessage()
    # The parent's aggregate memory (privileged) is never asked for.
    assert "memory_info_v2 gpu[0]" not in nvml.calls


def test_no_driver_is_up_zero_and_retried_on_interval(caplog: Any) -> None:
    nvml = load("no-driver")
    source = GpuSource(nvml, retry_interval=3600)
    with caplog.at_level(logging.WARNING, logger="inference-sidecar"):
        m = scrape(source)
        scrape(source)
    assert m.get("inference_gpu_up") == 0
    assert set(m.samples) == {"inference_gpu_up"}
    assert nvml.calls.count("init") == 1  # second scrape inside the retry interval: no call
    [record] = [r for r in caplog.records if "NVML unavailable" in r.getMessage()]
    assert "NVML Shared Library Not Found" in record.getMessage()


def test_driver_not_loaded_then_loaded() -> None:
    fixture = json.loads((FIXTURES / "h100-whole.json").read_text())["answers"]
    answers = {**fixture, "init": {"_error": "NVML_ERROR_DRIVER_NOT_LOADED"}}
    nvml = RecordedNvml(answers)
    source = GpuSource(nvml, retry_interval=0)
    assert scrape(source).get("inference_gpu_up") == 0
    nvml.answers["init"] = None  # the driver came up
    assert scrape(source).get("inference_gpu_up") == 1


def test_gpu_lost_mid_read_reinitialises() -> None:
    answers = json.loads((FIXTURES / "h100-whole.json").read_text())["answers"]
    nvml = RecordedNvml(dict(answers))
    source = GpuSource(nvml, retry_interval=0)
    nvml.answers["name gpu[1]"] = {"_error": "NVML_ERROR_GPU_IS_LOST"}
    assert scrape(source).get("inference_gpu_up") == 0
    assert "shutdown" in nvml.calls
    nvml.answers["name gpu[1]"] = answers["name gpu[1]"]
    assert scrape(source).get("inference_gpu_up") == 1
    assert nvml.calls.count("init") == 2


def test_memory_v1_fallback_on_old_driver() -> None:
    answers = dict(json.loads((FIXTURES / "h100-whole.json").read_text())["answers"])
    answers["memory_info_v2 gpu[1]"] = {"_error": "NVML_ERROR_FUNCTION_NOT_FOUND"}
    answers["memory_info_v1 gpu[1]"] = {
        "_type": "c_nvmlMemory_t",
        "total": 81559 * MiB,
        "free": 81000 * MiB,
        "used": 559 * MiB,
    }
    m = scrape(GpuSource(RecordedNvml(answers)))
    assert m.get("inference_gpu_memory_used_bytes", gpu="1") == 559 * MiB


def test_gpu_without_mig_support() -> None:
    answers = dict(json.loads((FIXTURES / "h100-whole.json").read_text())["answers"])
    answers["mig_mode gpu[1]"] = {"_error": "NVML_ERROR_NOT_SUPPORTED"}  # e.g. an L4
    m = scrape(GpuSource(RecordedNvml(answers)))
    assert m.get("inference_gpu_utilization", gpu="1") == 0.0


@pytest.mark.parametrize("name", ["h100-whole", "a100-mig", "no-driver", "h100-recorded"])
def test_fixture_is_exactly_what_the_collector_asks(name: str) -> None:
    """Re-recording the replayed answers gives the fixture back: no stale or missing answer."""
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    recorder = RecordingNvml(RecordedNvml(fixture["answers"]))
    GpuSource(recorder).reading()
    assert recorder.fixture(fixture["description"]) == fixture


def test_recorded_answers_have_pynvml_types() -> None:
    answers = json.loads((FIXTURES / "h100-whole.json").read_text())["answers"]
    mem = decode(answers["memory_info_v2 gpu[0]"])
    assert isinstance(mem, pynvml.c_nvmlMemory_v2_t)
    assert mem.version == pynvml.nvmlMemory_v2
    assert mem.total == mem.reserved + mem.free + mem.used
    util = decode(answers["utilization gpu[0]"])
    assert isinstance(util, pynvml.c_nvmlUtilization_t)
    assert encode(util) == answers["utilization gpu[0]"]
    with pytest.raises(pynvml.NVMLError_NotFound):
        decode({"_error": "NVML_ERROR_NOT_FOUND"})
    assert isinstance(make_error("NVML_ERROR_NOT_SUPPORTED"), pynvml.NVMLError_NotSupported)
    with pytest.raises(ValueError, match="unknown NVML error"):
        make_error("NVML_ERROR_NOPE")


def test_unrecorded_call_fails_loudly() -> None:
    with pytest.raises(KeyError, match="no recorded NVML answer"):
        RecordedNvml({}).device_count()


@pytest.mark.parametrize(
    ("name", "attrs", "want"),
    [
        ("NVIDIA A100-SXM4-40GB MIG 3g.20gb", None, "3g.20gb"),
        ("NVIDIA H100 80GB HBM3 MIG 1c.3g.40gb", None, "1c.3g.40gb"),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", None, "1g.10gb+me"),
        (
            "weird",
            pynvml.c_nvmlDeviceAttributes(
                gpuInstanceSliceCount=2, computeInstanceSliceCount=2, memorySizeMB=9984
            ),
            "2g.10gb",
        ),
        (
            "weird",
            pynvml.c_nvmlDeviceAttributes(
                gpuInstanceSliceCount=3, computeInstanceSliceCount=1, memorySizeMB=19968
            ),
            "1c.3g.20gb",
        ),
        ("weird", None, ""),
    ],
)
def test_mig_profile(name: str, attrs: object, want: str) -> None:
    assert mig_profile(name, attrs) == want


def test_real_pynvml() -> None:
    """The real library: up 0 and no exception where there is no driver (CI), up 1 on a GPU."""
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        present = True
    except pynvml.NVMLError:
        present = False
    source = GpuSource(PynvmlNvml())
    assert scrape(source).get("inference_gpu_up") == (1 if present else 0)
    source.close()


def test_fixture_files_are_the_three_documented_ones() -> None:
    assert sorted(p.name for p in Path(FIXTURES).glob("*.json")) == [
        "a100-mig.json",
        "h100-recorded.json",
        "h100-whole.json",
        "no-driver.json",
    ]


def test_answers_recorded_on_a_real_h100_replay_to_what_nvidia_smi_showed() -> None:
    """h100-recorded.json was recorded by hack/gpu-check.sh on an H100 (driver 580.159.04)
    running a matmul load; nvidia-smi then showed 100% utilization and 5747 MiB used of
    81559 MiB."""
    m = scrape(GpuSource(load("h100-recorded")))
    gpu = {"gpu": "0", "uuid": "GPU-c582ffa5-e07e-b796-be44-50936d863909"}
    assert m.get("inference_gpu_utilization", **gpu) == 1.0
    assert round(m.get("inference_gpu_memory_used_bytes", **gpu) / MiB) == 5747
    assert m.get("inference_gpu_memory_total_bytes", **gpu) == 81559 * MiB
