"""The container security contexts composed workloads use: restricted, or root without
capabilities where a host socket leaves no other way."""

from __future__ import annotations

from typing import Any


def restricted(user: int, group: int) -> dict[str, Any]:
    """Pod Security "restricted": non-root, no privilege escalation, no capabilities, a
    read-only root filesystem (writable paths come from volumes) and the runtime's seccomp."""
    return {"runAsNonRoot": True, **_confined(user, group)}


def root_without_capabilities() -> dict[str, Any]:
    """Everything of `restricted` but the user: uid 0 with every capability dropped.

    For a node agent that must connect to a root-owned host socket: the kubelet creates its
    PodResources directory 0750 and the socket without write permission for group or others
    (k8s.io/kubernetes pkg/kubelet/util/util_unix.go CreateListener), and connecting needs
    write permission. The owner's bits let uid 0 in without CAP_DAC_OVERRIDE; nothing else of
    root's power remains.
    """
    return {"runAsNonRoot": False, **_confined(0, 0)}


def _confined(user: int, group: int) -> dict[str, Any]:
    return {
        "runAsUser": user,
        "runAsGroup": group,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
