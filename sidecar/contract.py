"""What the composition functions render for the programs of this image: their entry points,
the plan file the warmup Job reads and the Redis setting the expirer needs.

Standard library only, so a function imports it without pulling in a program (the redis
client, prometheus_client, click) that it only renders; the programs import it too, so both
sides read one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Console scripts of the project (pyproject.toml) in the image's venv (Dockerfile).
EXPIRER_COMMAND = "/venv/bin/inference-cache-expirer"
WARMUP_COMMAND = "/venv/bin/inference-cache-warmup"
NONROOT_USER = 65532  # the image's nonroot user (distroless)

# The keyspace events the expirer listens to (`new` for any created key, `set` because a plain
# SET of an existing key drops its expiry); redis.conf must enable them.
NOTIFY_KEYSPACE_EVENTS = "E$n"


@dataclass(frozen=True)
class Target:
    """An engine the warmup Job sends the prefixes to."""

    url: str
    """OpenAI-compatible base URL, as an InferenceService's status reports it (`.../v1`)."""
    model: str


@dataclass(frozen=True)
class Plan:
    """The warmup Job's work: every prefix to every target."""

    targets: tuple[Target, ...]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Plan:
        targets = tuple(Target(str(t["url"]).rstrip("/"), str(t["model"])) for t in doc["targets"])
        return cls(targets, tuple(str(p) for p in doc["prefixes"]))

    def to_json(self) -> str:
        """Canonical JSON (the rendered ConfigMap; its hash names the Job)."""
        doc = {
            "targets": [{"url": t.url, "model": t.model} for t in self.targets],
            "prefixes": list(self.prefixes),
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"
