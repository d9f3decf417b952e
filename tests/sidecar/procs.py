"""The metrics sidecar as a process, and reading its exposition.

redis-server, llm-d-inference-sim and the process helpers live in tests/procs.py (the
TokenCache tests start them too); they are re-exported here for the sidecar tests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.procs import (
    ROOT,
    SIM_MODEL,
    Proc,
    Redis,
    Sim,
    free_port,
    http_get,
    redis_proc,
    running,
    sim_proc,
    wait_for,
    wait_redis,
    wait_sim,
)

__all__ = [
    "FIXTURES",
    "ROOT",
    "SIM_MODEL",
    "Metrics",
    "Proc",
    "Redis",
    "Sidecar",
    "Sim",
    "free_port",
    "http_get",
    "redis_proc",
    "running",
    "sidecar_command",
    "sidecar_proc",
    "sim_proc",
    "wait_for",
    "wait_redis",
    "wait_sidecar",
    "wait_sim",
]

FIXTURES = ROOT / "tests" / "fixtures" / "nvml"


def sidecar_command() -> list[str]:
    script = Path(sys.executable).parent / "inference-sidecar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sidecar"]


@dataclass
class Sidecar:
    proc: Proc
    metrics_port: int
    health_port: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def health(self, path: str) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{self.health_port}{path}")

    def scrape(self) -> Metrics:
        status, text = http_get(self.metrics_url)
        assert status == 200, text
        return Metrics.parse(text)


def sidecar_proc(tmp: Path, env: dict[str, str], args: list[str] | None = None) -> Sidecar:
    mport, hport = free_port(), free_port()
    full_env = {
        "METRICS_BIND_ADDRESS": f"127.0.0.1:{mport}",
        "HEALTH_PROBE_BIND_ADDRESS": f"127.0.0.1:{hport}",
        "NVML_FIXTURE": str(FIXTURES / "no-driver.json"),
        **env,
    }
    proc = Proc([*sidecar_command(), *(args or [])], tmp / f"sidecar-{mport}.log", env=full_env)
    return Sidecar(proc, mport, hport)


def wait_sidecar(s: Sidecar) -> None:
    wait_for(lambda: s.health("/readyz")[0] == 200, 20, "sidecar /readyz", s.proc.log)


# -- reading an exposition ---------------------------------------------------------------------


@dataclass
class Metrics:
    samples: dict[str, list[tuple[dict[str, str], float]]]
    types: dict[str, str]
    text: str

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for s in family.samples:
                samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return cls(samples, types, text)

    def get(self, name: str, **labels: str) -> float:
        found = self.all(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {len(found)} series in\n{self.text}"
        return found[0][1]

    def all(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (lbls, v)
            for lbls, v in self.samples.get(name, [])
            if all(lbls.get(k) == val for k, val in labels.items())
        ]

    def has(self, name: str) -> bool:
        return bool(self.samples.get(name))
