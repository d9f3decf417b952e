"""A thin, swappable interface over the NVML calls the sidecar makes.

`Nvml` names the pynvml functions the GPU collector uses, one method each, with pynvml's own
argument and return types (ctypes structures, `str`, `int`, lists) and pynvml's own exceptions
(`pynvml.NVMLError` subclasses). Three implementations:

- `PynvmlNvml`: the real library (`nvidia-ml-py`, import name `pynvml`);
- `RecordingNvml`: wraps another implementation and records every answer, so a real GPU's
  answers can be saved as a fixture (`inference-sidecar record-nvml`, `hack/gpu-check.sh`);
- `RecordedNvml`: replays such a fixture (tests/fixtures/nvml/*.json), rebuilding the same
  ctypes structures and raising the same exception classes as pynvml would.

Fixture format (JSON): `{"description": ..., "answers": {"<call> <handle>": <answer>}}`, where a
handle is a path such as `gpu[0]` or `gpu[1]/mig[2]`, and an answer is a JSON value, a
structure `{"_type": "c_nvmlMemory_v2_t", "total": ..., ...}` or an error
`{"_error": "NVML_ERROR_NOT_SUPPORTED"}`.
"""

from __future__ import annotations

import ctypes
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pynvml

T = TypeVar("T")

# ctypes structures an answer may be; `_type` in a fixture names one of these.
_STRUCTS: dict[str, type[ctypes.Structure]] = {
    cls.__name__: cls
    for cls in (
        pynvml.c_nvmlUtilization_t,
        pynvml.c_nvmlMemory_t,
        pynvml.c_nvmlMemory_v2_t,
        pynvml.c_nvmlDeviceAttributes,
    )
}


class Nvml(Protocol):
    """The NVML calls the GPU collector makes (pynvml names in the docstrings)."""

    def init(self) -> None:
        """nvmlInit"""

    def shutdown(self) -> None:
        """nvmlShutdown"""

    def driver_version(self) -> str:
        """nvmlSystemGetDriverVersion"""

    def device_count(self) -> int:
        """nvmlDeviceGetCount"""

    def handle_by_index(self, index: int) -> object:
        """nvmlDeviceGetHandleByIndex"""

    def name(self, handle: object) -> str:
        """nvmlDeviceGetName (MIG handles: "<GPU name> MIG <profile>")"""

    def uuid(self, handle: object) -> str:
        """nvmlDeviceGetUUID ("GPU-..." or "MIG-...")"""

    def utilization(self, handle: object) -> Any:
        """nvmlDeviceGetUtilizationRates -> c_nvmlUtilization_t (.gpu, .memory in percent);
        NVMLError_NotSupported on MIG-enabled GPUs and MIG devices."""

    def memory_info(self, handle: object, v2: bool) -> Any:
        """nvmlDeviceGetMemoryInfo(handle, version=nvmlMemory_v2 if v2 else None) ->
        c_nvmlMemory_v2_t (.total, .reserved, .free, .used) or c_nvmlMemory_t."""

    def mig_mode(self, handle: object) -> list[int]:
        """nvmlDeviceGetMigMode -> [current, pending]; NotSupported on GPUs without MIG."""

    def max_mig_device_count(self, handle: object) -> int:
        """nvmlDeviceGetMaxMigDeviceCount"""

    def mig_handle_by_index(self, handle: object, index: int) -> object:
        """nvmlDeviceGetMigDeviceHandleByIndex; NVMLError_NotFound for an empty slot."""

    def gpu_instance_id(self, handle: object) -> int:
        """nvmlDeviceGetGpuInstanceId (MIG handles)"""

    def compute_instance_id(self, handle: object) -> int:
        """nvmlDeviceGetComputeInstanceId (MIG handles)"""

    def attributes(self, handle: object) -> Any:
        """nvmlDeviceGetAttributes -> c_nvmlDeviceAttributes (MIG handles)"""


class PynvmlNvml:
    """The real NVML through pynvml. Read-only: no call here changes any GPU setting."""

    def init(self) -> None:
        pynvml.nvmlInit()

    def shutdown(self) -> None:
        pynvml.nvmlShutdown()

    def driver_version(self) -> str:
        return str(pynvml.nvmlSystemGetDriverVersion())

    def device_count(self) -> int:
        return int(pynvml.nvmlDeviceGetCount())

    def handle_by_index(self, index: int) -> object:
        return pynvml.nvmlDeviceGetHandleByIndex(index)

    def name(self, handle: object) -> str:
        return str(pynvml.nvmlDeviceGetName(handle))

    def uuid(self, handle: object) -> str:
        return str(pynvml.nvmlDeviceGetUUID(handle))

    def utilization(self, handle: object) -> Any:
        return pynvml.nvmlDeviceGetUtilizationRates(handle)

    def memory_info(self, handle: object, v2: bool) -> Any:
        if v2:
            return pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        return pynvml.nvmlDeviceGetMemoryInfo(handle)

    def mig_mode(self, handle: object) -> list[int]:
        return list(pynvml.nvmlDeviceGetMigMode(handle))

    def max_mig_device_count(self, handle: object) -> int:
        return int(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle))

    def mig_handle_by_index(self, handle: object, index: int) -> object:
        return pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)

    def gpu_instance_id(self, handle: object) -> int:
        return int(pynvml.nvmlDeviceGetGpuInstanceId(handle))

    def compute_instance_id(self, handle: object) -> int:
        return int(pynvml.nvmlDeviceGetComputeInstanceId(handle))

    def attributes(self, handle: object) -> Any:
        return pynvml.nvmlDeviceGetAttributes(handle)


def error_name(err: pynvml.NVMLError) -> str:
    """NVML_ERROR_* constant name of an NVMLError (e.g. NVML_ERROR_NOT_SUPPORTED)."""
    for name in dir(pynvml):
        if name.startswith("NVML_ERROR_") and getattr(pynvml, name) == err.value:
            return name
    return f"NVML_ERROR_{err.value}"


def make_error(name: str) -> pynvml.NVMLError:
    """The pynvml exception for an NVML_ERROR_* name: the same subclass pynvml raises."""
    code = getattr(pynvml, name, None)
    if not isinstance(code, int):
        raise ValueError(f"unknown NVML error {name!r}")
    return pynvml.NVMLError(code)


def encode(value: Any) -> Any:
    """JSON form of a pynvml answer."""
    if isinstance(value, ctypes.Structure):
        out: dict[str, Any] = {"_type": type(value).__name__}
        for field in value._fields_:
            out[field[0]] = getattr(value, field[0])
        return out
    return value


def decode(answer: Any) -> Any:
    """pynvml answer from its JSON form; raises the recorded NVMLError."""
    if isinstance(answer, dict) and "_error" in answer:
        raise make_error(answer["_error"])
    if isinstance(answer, dict) and "_type" in answer:
        cls = _STRUCTS[answer["_type"]]
        return cls(**{k: v for k, v in answer.items() if k != "_type"})
    return answer


class _Handle:
    """Opaque device handle of the recorded and recording implementations."""

    __slots__ = ("inner", "path")

    def __init__(self, path: str, inner: object = None) -> None:
        self.path = path
        self.inner = inner

    def __repr__(self) -> str:
        return f"<nvml handle {self.path}>"


def _path(handle: object) -> str:
    if not isinstance(handle, _Handle):
        raise TypeError(f"not a recorded NVML handle: {handle!r}")
    return handle.path


class RecordedNvml:
    """Replays recorded NVML answers (see the module docstring for the format)."""

    def __init__(self, answers: dict[str, Any], description: str = "") -> None:
        self.answers = answers
        self.description = description
        self.calls: list[str] = []

    @classmethod
    def load(cls, path: str | Path) -> RecordedNvml:
        data = json.loads(Path(path).read_text())
        return cls(data["answers"], data.get("description", ""))

    def _answer(self, key: str) -> Any:
        self.calls.append(key)
        if key not in self.answers:
            raise KeyError(f"no recorded NVML answer for {key!r}")
        return decode(self.answers[key])

    def init(self) -> None:
        self._answer("init")

    def shutdown(self) -> None:
        self.calls.append("shutdown")

    def driver_version(self) -> str:
        return str(self._answer("driver_version"))

    def device_count(self) -> int:
        return int(self._answer("device_count"))

    def handle_by_index(self, index: int) -> object:
        path = f"gpu[{index}]"
        self._answer(f"handle {path}")
        return _Handle(path)

    def name(self, handle: object) -> str:
        return str(self._answer(f"name {_path(handle)}"))

    def uuid(self, handle: object) -> str:
        return str(self._answer(f"uuid {_path(handle)}"))

    def utilization(self, handle: object) -> Any:
        return self._answer(f"utilization {_path(handle)}")

    def memory_info(self, handle: object, v2: bool) -> Any:
        return self._answer(f"memory_info_{'v2' if v2 else 'v1'} {_path(handle)}")

    def mig_mode(self, handle: object) -> list[int]:
        return list(self._answer(f"mig_mode {_path(handle)}"))

    def max_mig_device_count(self, handle: object) -> int:
        return int(self._answer(f"max_mig_device_count {_path(handle)}"))

    def mig_handle_by_index(self, handle: object, index: int) -> object:
        path = f"{_path(handle)}/mig[{index}]"
        self._answer(f"handle {path}")
        return _Handle(path)

    def gpu_instance_id(self, handle: object) -> int:
        return int(self._answer(f"gpu_instance_id {_path(handle)}"))

    def compute_instance_id(self, handle: object) -> int:
        return int(self._answer(f"compute_instance_id {_path(handle)}"))

    def attributes(self, handle: object) -> Any:
        return self._answer(f"attributes {_path(handle)}")


class RecordingNvml:
    """Delegates to another implementation and records each answer in RecordedNvml's format."""

    def __init__(self, inner: Nvml) -> None:
        self.inner = inner
        self.answers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _record(self, key: str, call: Callable[[], T]) -> T:
        try:
            value = call()
        except pynvml.NVMLError as err:
            with self._lock:
                self.answers[key] = {"_error": error_name(err)}
            raise
        with self._lock:
            self.answers[key] = None if isinstance(value, _Handle) else encode(value)
        return value

    def fixture(self, description: str) -> dict[str, Any]:
        return {"description": description, "answers": dict(sorted(self.answers.items()))}

    def init(self) -> None:
        self._record("init", self.inner.init)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def driver_version(self) -> str:
        return self._record("driver_version", self.inner.driver_version)

    def device_count(self) -> int:
        return self._record("device_count", self.inner.device_count)

    def handle_by_index(self, index: int) -> object:
        path = f"gpu[{index}]"
        return self._record(
            f"handle {path}", lambda: _Handle(path, self.inner.handle_by_index(index))
        )

    def _inner(self, handle: object) -> object:
        assert isinstance(handle, _Handle)
        return handle.inner

    def name(self, handle: object) -> str:
        return self._record(f"name {_path(handle)}", lambda: self.inner.name(self._inner(handle)))

    def uuid(self, handle: object) -> str:
        return self._record(f"uuid {_path(handle)}", lambda: self.inner.uuid(self._inner(handle)))

    def utilization(self, handle: object) -> Any:
        return self._record(
            f"utilization {_path(handle)}", lambda: self.inner.utilization(self._inner(handle))
        )

    def memory_info(self, handle: object, v2: bool) -> Any:
        return self._record(
            f"memory_info_{'v2' if v2 else 'v1'} {_path(handle)}",
            lambda: self.inner.memory_info(self._inner(handle), v2),
        )

    def mig_mode(self, handle: object) -> list[int]:
        return self._record(
            f"mig_mode {_path(handle)}", lambda: self.inner.mig_mode(self._inner(handle))
        )

    def max_mig_device_count(self, handle: object) -> int:
        return self._record(
            f"max_mig_device_count {_path(handle)}",
            lambda: self.inner.max_mig_device_count(self._inner(handle)),
        )

    def mig_handle_by_index(self, handle: object, index: int) -> object:
        path = f"{_path(handle)}/mig[{index}]"
        return self._record(
            f"handle {path}",
            lambda: _Handle(path, self.inner.mig_handle_by_index(self._inner(handle), index)),
        )

    def gpu_instance_id(self, handle: object) -> int:
        return self._record(
            f"gpu_instance_id {_path(handle)}",
            lambda: self.inner.gpu_instance_id(self._inner(handle)),
        )

    def compute_instance_id(self, handle: object) -> int:
        return self._record(
            f"compute_instance_id {_path(handle)}",
            lambda: self.inner.compute_instance_id(self._inner(handle)),
        )

    def attributes(self, handle: object) -> Any:
        return self._record(
            f"attributes {_path(handle)}", lambda: self.inner.attributes(self._inner(handle))
        )
