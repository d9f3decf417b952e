"""Model weights: one PersistentVolumeClaim, one download Job, replicas that wait for it.

The Job pulls the snapshot into the Hugging Face cache on the volume and then writes a marker
file; each replica's init container waits for the marker and the engine runs with
HF_HUB_OFFLINE=1, so three replicas never pull the same 140 GB three times.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.meta import Owner
from functions.common.peers import Requirement
from functions.inferenceservice import pod

COMPONENT = "model-download"
STORAGE_CLASSES = "storageclasses"
# The model claim's readiness depends on its class's volumeBindingMode (readiness.py).
STORAGE_CLASS_REQUIREMENT = Requirement(STORAGE_CLASSES, "storage.k8s.io/v1", "StorageClass")
MARKER_DIR = f"{pod.MODEL_CACHE_PATH}/.inference-ai"

DOWNLOAD = """\
import os, pathlib
from huggingface_hub import snapshot_download

path = snapshot_download(repo_id=os.environ["MODEL"], revision=os.environ.get("REVISION") or None)
marker = pathlib.Path(os.environ["MARKER"])
marker.parent.mkdir(parents=True, exist_ok=True)
marker.write_text(path + "\\n")
print("downloaded", os.environ["MODEL"], "to", path)
"""


@dataclass(frozen=True)
class ModelStore:
    claim: str
    job: str
    marker: str


def store(owner: Owner, spec: InferenceServiceSpec) -> ModelStore | None:
    if not spec.model.storage.enabled:
        return None
    # The Job's name changes with the model and revision, so a change downloads again.
    key = hashlib.sha256(f"{spec.model.name}@{spec.model.revision or ''}".encode()).hexdigest()
    return ModelStore(
        claim=owner.child("models"),
        job=owner.child(f"download-{key[:8]}"),
        marker=f"{MARKER_DIR}/{key[:16]}.complete",
    )


def claim(owner: Owner, spec: InferenceServiceSpec, ms: ModelStore) -> dict[str, Any]:
    storage = spec.model.storage
    body: dict[str, Any] = {
        "accessModes": [storage.accessMode],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storageClassName:
        body["storageClassName"] = storage.storageClassName
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": owner.metadata(ms.claim, COMPONENT),
        "spec": body,
    }


def download_job(
    owner: Owner, spec: InferenceServiceSpec, ms: ModelStore, engine: dict[str, Any]
) -> dict[str, Any]:
    """The download runs in the engine's own image (it ships huggingface_hub) as its user."""
    env = [
        *pod.hf_env(spec),
        {"name": "MODEL", "value": spec.model.name},
        {"name": "MARKER", "value": ms.marker},
    ]
    if spec.model.revision:
        env.append({"name": "REVISION", "value": spec.model.revision})
    container = {
        "name": "download",
        "image": engine["image"],
        "command": ["python3", "-c", DOWNLOAD],
        "env": env,
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        "securityContext": engine["securityContext"],
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "model-cache", "mountPath": pod.MODEL_CACHE_PATH},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": owner.metadata(ms.job, COMPONENT),
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": 4 * 3600,
            "template": {
                "metadata": {"labels": owner.labels(COMPONENT)},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "fsGroup": 0},
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {}},
                        model_volume(ms),
                    ],
                },
            },
        },
    }


def model_volume(ms: ModelStore) -> dict[str, Any]:
    return {"name": "model-cache", "persistentVolumeClaim": {"claimName": ms.claim}}


def wait_for_weights(ms: ModelStore, engine: dict[str, Any]) -> dict[str, Any]:
    """Init container: hold the replica until the download Job has finished."""
    return {
        "name": "wait-for-weights",
        "image": engine["image"],
        "command": [
            "sh",
            "-c",
            'until [ -f "$MARKER" ]; do echo "waiting for $MARKER"; sleep 10; done',
        ],
        "env": [{"name": "MARKER", "value": ms.marker}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": engine["securityContext"],
        "volumeMounts": [
            {"name": "model-cache", "mountPath": pod.MODEL_CACHE_PATH, "readOnly": True}
        ],
    }


def warnings(spec: InferenceServiceSpec) -> list[str]:
    storage = spec.model.storage
    most = spec.autoscaling.maxReplicas if spec.autoscaling else spec.replicas
    if storage.enabled and storage.accessMode == "ReadWriteOnce" and most > 1:
        return [
            "model.storage.accessMode ReadWriteOnce: replicas on other nodes cannot mount the "
            "model volume and stay Pending; use ReadWriteMany for more than one replica"
        ]
    return []
