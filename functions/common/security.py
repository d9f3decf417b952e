"""The one container security context every composed workload uses."""

from __future__ import annotations

from typing import Any


def restricted(user: int, group: int) -> dict[str, Any]:
    """Pod Security "restricted": non-root, no privilege escalation, no capabilities, a
    read-only root filesystem (writable paths come from volumes) and the runtime's seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": group,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
