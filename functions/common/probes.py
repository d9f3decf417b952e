"""HTTP probes shared by the backends."""

from __future__ import annotations

from typing import Any


def http_get(path: str, port: str | int, **timing: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, **timing}


def serving_probes(
    live: str, ready: str, port: str | int, *, startup_seconds: int = 1800
) -> dict[str, Any]:
    """Liveness, readiness and a startup probe generous enough for loading large weights.

    The startup probe holds back liveness until the model is loaded; without it, kubelet kills
    a replica that is still reading 140 GB of weights.
    """
    period = 10
    return {
        "startupProbe": http_get(
            live,
            port,
            periodSeconds=period,
            failureThreshold=startup_seconds // period,
            timeoutSeconds=5,
        ),
        "livenessProbe": http_get(
            live, port, periodSeconds=15, failureThreshold=3, timeoutSeconds=5
        ),
        "readinessProbe": http_get(
            ready, port, periodSeconds=5, failureThreshold=3, timeoutSeconds=5
        ),
    }
