"""What the composition functions render for the programs of this image: their entry points,
the plan file the warmup Job reads and the Redis setting the expirer needs.

Standard library only, so a function imports it without pulling in a program (the redis
client, prometheus_client, click) that it only renders; the programs import it too, so both
sides read one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

WarmupApi = Literal["chat", "completions"]
WARMUP_USER_MESSAGE = "Hello."

# Console scripts of the project (pyproject.toml) in the image's venv (Dockerfile).
EXPIRER_COMMAND = "/venv/bin/inference-cache-expirer"
WARMUP_COMMAND = "/venv/bin/inference-cache-warmup"
NONROOT_USER = 65532  # the image's nonroot user (distroless)

# Node mode (the GPUPool's metrics agent): the variables that name the node and the pool, and
# the constant labels they give every exported sample.
NODE_NAME_ENV = "NODE_NAME"
POOL_ENV = "GPU_POOL"
NODE_LABEL = "node"
POOL_LABEL = "inference_ai_gpupool"

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
    api: WarmupApi = "completions"
    """How each prefix is sent: as the system message of a chat completion, or as the prompt
    of a completion (older plans carry no api: completions)."""

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> Plan:
        targets = tuple(Target(str(t["url"]).rstrip("/"), str(t["model"])) for t in doc["targets"])
        api = doc.get("api", "completions")
        if api not in ("chat", "completions"):
            raise ValueError(f"api: {api!r} is neither chat nor completions")
        return cls(targets, tuple(str(p) for p in doc["prefixes"]), api)

    def to_json(self) -> str:
        """Canonical JSON (the rendered ConfigMap; its hash names the Job)."""
        doc = {
            "api": self.api,
            "targets": [{"url": t.url, "model": t.model} for t in self.targets],
            "prefixes": list(self.prefixes),
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def warmup_request(api: WarmupApi, model: str, prefix: str) -> tuple[str, dict[str, Any]]:
    """(path under the base URL, JSON body) of one warmup request: a one-token answer.

    A chat request carries the prefix as its system message, followed by a short user message
    (chat templates want one): the engine's chat template puts the system message first, so
    the tokens up to its end are the ones every later conversation with that system prompt
    starts with, and the endpoint picker sees the same leading bytes of `messages`. A raw
    completion of the same text would be another token sequence and warm neither.
    """
    if api == "chat":
        messages = [
            {"role": "system", "content": prefix},
            {"role": "user", "content": WARMUP_USER_MESSAGE},
        ]
        return "/chat/completions", {"model": model, "messages": messages, "max_tokens": 1}
    return "/completions", {"model": model, "prompt": prefix, "max_tokens": 1}
