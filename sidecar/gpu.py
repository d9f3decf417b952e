"""GPU metrics from NVML, read at scrape time (read-only: no call changes a GPU setting).

- `inference_gpu_up`: 1 when NVML answered this scrape; 0 without driver, without the NVML
  library (a container the NVIDIA runtime did not prepare) or when NVML failed. Never a crash;
  initialisation is retried every `retry_interval` seconds.
- `inference_gpu_utilization`: nvmlDeviceGetUtilizationRates().gpu / 100, a ratio 0-1 (the
  Prometheus base unit; Triton's nv_gpu_utilization is 0-1 too, DCGM's GPU_UTIL is 0-100).
  Asked for every whole GPU and every MIG device, exported only where NVML answers: NVML says
  NOT_SUPPORTED on a MIG-enabled GPU and on its MIG devices, so MIG has no utilization series.
- `inference_gpu_memory_used_bytes` / `_total_bytes`: per whole GPU, and per MIG device of a
  MIG-enabled GPU. A MIG-enabled parent is not reported itself (its aggregate needs
  privileges and would double-count in sum()). nvmlMemory_v2 where the driver has it (its
  `used` leaves out driver-reserved memory), else v1.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field

import pynvml

from sidecar import log
from sidecar.metrics import GPU_DEVICE_LABELS, Sample, sample
from sidecar.nvml import Nvml

SOURCE = "gpu"

# "This version of the call is unavailable here": fall back to nvmlMemory v1.
_V2_UNAVAILABLE = (
    pynvml.NVMLError_FunctionNotFound,
    pynvml.NVMLError_NotSupported,
    pynvml.NVMLError_ArgumentVersionMismatch,
)
_MIG_NAME = re.compile(r"\bMIG\s+(\S+)$")


@dataclass
class Device:
    """A whole GPU or a MIG device, as one scrape saw it."""

    gpu: str  # index of the physical GPU
    uuid: str
    gpu_model: str  # name of the physical GPU
    mig_profile: str = ""
    gpu_instance_id: str = ""
    compute_instance_id: str = ""
    utilization: float | None = None  # ratio 0-1; None where NVML does not support it
    memory_used: int | None = None
    memory_total: int | None = None

    def labels(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in GPU_DEVICE_LABELS}


@dataclass
class GpuReading:
    up: bool
    driver_version: str = ""
    gpus: list[tuple[str, str, str, bool]] = field(default_factory=list)  # gpu, uuid, name, mig
    devices: list[Device] = field(default_factory=list)


def mig_profile(name: str, attrs: object | None) -> str:
    """MIG profile of a MIG device, e.g. "3g.20gb" or "1c.3g.20gb".

    NVML names a MIG device "<GPU name> MIG <profile>"; without that suffix the profile is
    rebuilt from its attributes (slice counts, memory rounded to whole GB: approximate).
    """
    match = _MIG_NAME.search(name)
    if match:
        return match.group(1)
    if attrs is None:
        return ""
    gi = int(getattr(attrs, "gpuInstanceSliceCount", 0))
    ci = int(getattr(attrs, "computeInstanceSliceCount", 0))
    mem_gb = round(int(getattr(attrs, "memorySizeMB", 0)) / 1024)
    profile = f"{gi}g.{mem_gb}gb"
    return f"{ci}c.{profile}" if 0 < ci < gi else profile


class GpuSource:
    name = SOURCE

    def __init__(self, nvml: Nvml, retry_interval: float = 60.0) -> None:
        self.nvml = nvml
        self.retry_interval = retry_interval
        self._initialised = False
        self._next_init = 0.0
        self._lock = threading.Lock()
        self._states = log.Transitions(SOURCE)

    def read(self) -> list[Sample]:
        return samples(self.reading())

    def reading(self) -> GpuReading:
        with self._lock:
            if not self._ensure_init():
                return GpuReading(up=False)
            try:
                return self._read()
            except pynvml.NVMLError as err:
                # Node-wide failures (GPU lost, driver unloaded): re-initialise next scrape.
                self._states.report(
                    "state",
                    f"read failed: {err}",
                    logging.WARNING,
                    f"NVML read failed ({err}): inference_gpu_up 0 until it recovers",
                    error_class=type(err).__name__,
                )
                self._shutdown()
                self._next_init = 0.0
                return GpuReading(up=False)

    def close(self) -> None:
        with self._lock:
            self._shutdown()

    # -- NVML lifecycle ---------------------------------------------------------------------

    def _ensure_init(self) -> bool:
        if self._initialised:
            return True
        now = time.monotonic()
        if now < self._next_init:
            return False
        self._next_init = now + self.retry_interval
        try:
            self.nvml.init()
        except pynvml.NVMLError as err:
            self._states.report(
                "state",
                f"init failed: {err}",
                logging.WARNING,
                f"NVML unavailable ({err}): no GPU metrics, inference_gpu_up 0; "
                f"retrying every {self.retry_interval:g}s",
                error_class=type(err).__name__,
            )
            return False
        self._initialised = True
        return True

    def _shutdown(self) -> None:
        if self._initialised:
            with contextlib.suppress(pynvml.NVMLError):
                self.nvml.shutdown()
            self._initialised = False

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> GpuReading:
        nvml = self.nvml
        try:
            driver = nvml.driver_version()
        except pynvml.NVMLError:
            driver = ""
        reading = GpuReading(up=True, driver_version=driver)
        count = nvml.device_count()
        for index in range(count):
            handle = nvml.handle_by_index(index)
            gpu = str(index)
            name = nvml.name(handle)
            uuid = nvml.uuid(handle)
            try:
                mig = nvml.mig_mode(handle)[0] == pynvml.NVML_DEVICE_MIG_ENABLE
            except pynvml.NVMLError:
                mig = False  # NOT_SUPPORTED: a GPU without MIG
            reading.gpus.append((gpu, uuid, name, mig))
            if not mig:
                reading.devices.append(self._device(handle, Device(gpu, uuid, name)))
                continue
            # The parent's utilization is asked only to log NVML's answer once.
            self._utilization(handle, f"GPU {gpu} (MIG enabled)", uuid)
            for slot in range(nvml.max_mig_device_count(handle)):
                try:
                    mig_handle = nvml.mig_handle_by_index(handle, slot)
                except pynvml.NVMLError_NotFound:
                    continue  # empty slot
                mig_name = nvml.name(mig_handle)
                attrs = None if _MIG_NAME.search(mig_name) else nvml.attributes(mig_handle)
                dev = Device(
                    gpu,
                    nvml.uuid(mig_handle),
                    name,
                    mig_profile=mig_profile(mig_name, attrs),
                    gpu_instance_id=str(nvml.gpu_instance_id(mig_handle)),
                    compute_instance_id=str(nvml.compute_instance_id(mig_handle)),
                )
                reading.devices.append(self._device(mig_handle, dev))
        self._states.report(
            "state",
            f"up {count}",
            logging.INFO,
            "NVML answering",
            driver_version=driver,
            gpus=count,
            mig_devices=sum(1 for d in reading.devices if d.mig_profile),
        )
        return reading

    def _device(self, handle: object, dev: Device) -> Device:
        what = (
            f"MIG device {dev.mig_profile} of GPU {dev.gpu}"
            if dev.mig_profile
            else f"GPU {dev.gpu}"
        )
        dev.utilization = self._utilization(handle, what, dev.uuid)
        try:
            try:
                mem = self.nvml.memory_info(handle, v2=True)
            except _V2_UNAVAILABLE:
                mem = self.nvml.memory_info(handle, v2=False)
            dev.memory_used, dev.memory_total = int(mem.used), int(mem.total)
        except pynvml.NVMLError as err:
            self._states.report(
                f"memory {dev.uuid}",
                str(err),
                logging.WARNING,
                f"NVML has no memory info for {what} ({err}); not exported",
                uuid=dev.uuid,
            )
        return dev

    def _utilization(self, handle: object, what: str, uuid: str) -> float | None:
        try:
            util = self.nvml.utilization(handle)
        except pynvml.NVMLError as err:
            self._states.report(
                f"utilization {uuid}",
                str(err),
                logging.INFO,
                f"NVML reports no utilization for {what} ({err}); "
                "inference_gpu_utilization not exported for it",
                uuid=uuid,
            )
            return None
        return int(util.gpu) / 100.0


def samples(r: GpuReading) -> list[Sample]:
    out = [sample("inference_gpu_up", 1.0 if r.up else 0.0)]
    for gpu, uuid, name, mig in r.gpus:
        out.append(
            sample(
                "inference_gpu_info",
                1.0,
                gpu=gpu,
                uuid=uuid,
                gpu_model=name,
                driver_version=r.driver_version,
                mig_mode="enabled" if mig else "",
            )
        )
    for dev in r.devices:
        labels = dev.labels()
        if dev.utilization is not None:
            out.append(sample("inference_gpu_utilization", dev.utilization, **labels))
        if dev.memory_used is not None and dev.memory_total is not None:
            out.append(sample("inference_gpu_memory_used_bytes", dev.memory_used, **labels))
            out.append(sample("inference_gpu_memory_total_bytes", dev.memory_total, **labels))
    return out
