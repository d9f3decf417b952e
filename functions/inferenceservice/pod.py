"""Pod building blocks every backend shares: security, scratch volumes, Hugging Face env."""

from __future__ import annotations

from typing import Any

from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.security import restricted

MODEL_CACHE_PATH = "/models"
HF_HOME = f"{MODEL_CACHE_PATH}/huggingface"

# Writable scratch for an otherwise read-only root filesystem: engines write compiled
# kernels (torch.compile, Triton) and temp files under $HOME and /tmp.
SCRATCH_MOUNTS = [
    {"name": "tmp", "mountPath": "/tmp"},
    {"name": "model-cache", "mountPath": MODEL_CACHE_PATH},
    {"name": "dshm", "mountPath": "/dev/shm"},
]


def volumes(shm_size: str) -> list[dict[str, Any]]:
    return [
        {"name": "tmp", "emptyDir": {}},
        {"name": "model-cache", "emptyDir": {}},
        # NCCL and PyTorch exchange tensors through /dev/shm; the container default is 64Mi.
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}},
    ]


def container_security(run_as_user: int) -> dict[str, Any]:
    # Group 0: the engine images give their writable paths to the root group (OpenShift style).
    return restricted(run_as_user, 0)


def hf_env(spec: InferenceServiceSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "HF_HOME", "value": HF_HOME},
    ]
    ref = spec.model.tokenSecretRef
    if ref is not None:
        # Both names: huggingface_hub reads HF_TOKEN, older tooling HUGGING_FACE_HUB_TOKEN.
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
            env.append(
                {
                    "name": name,
                    "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
                }
            )
    return env


def shm_size(tensor_parallel: int) -> str:
    return "2Gi" if tensor_parallel <= 1 else f"{8 * tensor_parallel}Gi"
