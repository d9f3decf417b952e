"""Small builders for Kubernetes objects every function composes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from functions.common.meta import Owner

CONFIG_HASH_ANNOTATION = "inference.ai/config-hash"


def config_map(
    owner: Owner, name: str, component: str, data: dict[str, str], *, namespace: str | None = None
) -> dict[str, Any]:
    metadata = owner.metadata(name, component)
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def content_digest(*config_maps: dict[str, Any]) -> str:
    """A digest of the ConfigMaps' data: it changes whenever their content does."""
    data = [cm["data"] for cm in config_maps]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def config_hash(*config_maps: dict[str, Any]) -> dict[str, str]:
    """Pod-template annotation that changes whenever the mounted configuration does.

    Engines read their config files once at start; without this a ConfigMap edit would never
    reach running pods, because the Deployment's template would not change.
    """
    return {CONFIG_HASH_ANNOTATION: content_digest(*config_maps)}
