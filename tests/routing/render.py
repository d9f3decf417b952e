"""What our InferenceService function renders for a prefix-aware service, as the benchmark
uses it: the engine's vLLM arguments and environment, and (once the function renders routing)
the InferencePool, the endpoint picker's configuration, RBAC and Deployment arguments.

The function runs in process (tests/fnharness.py), on the example claim below with
`spec.routing.mode: prefix-aware`. Where the render has no routing objects yet, the picker's
configuration is the minimal one of docs/routing-upstream.md (`epp_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from functions.common.quantity import to_bytes
from tests.fnharness import EXAMPLES, example, run, with_spec

PREFIX_AWARE_EXAMPLE = "llama-8b-prefix-aware.yaml"
FALLBACK_EXAMPLE = "llama-8b-h100-exclusive.yaml"  # before the prefix-aware example exists
EPP_CONFIG_KEY = "epp.yaml"

# Llama-3.1-8B (the example's model): 32 layers, 8 KV heads of dimension 128, bf16 K and V:
# 2 * 32 * 8 * 128 * 2 bytes = 128 KiB of KV cache per token (config.json of the model).
KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2

# docs/routing-upstream.md, "Minimal config with the four plugins the issue names".
MINIMAL_EPP_CONFIG: dict[str, Any] = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [
        {
            "type": "prefix-cache-scorer",
            "parameters": {"autoTune": False, "blockSizeTokens": 16, "maxPrefixBlocksToMatch": 256},
        },
        {"type": "queue-scorer"},
        {"type": "kv-cache-utilization-scorer"},
        {"type": "max-score-picker"},
    ],
    "schedulingProfiles": [
        {
            "name": "default",
            "plugins": [
                {"pluginRef": "prefix-cache-scorer", "weight": 3},
                {"pluginRef": "queue-scorer", "weight": 2},
                {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
                {"pluginRef": "max-score-picker"},
            ],
        }
    ],
}


@dataclass
class Rendered:
    example: str
    model: str
    engine_args: list[str]
    engine_env: dict[str, str]
    pod_labels: dict[str, str]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r.get("kind") == kind]

    def arg(self, name: str) -> str | None:
        """The value of `--name=value` (or `--name value`) in the engine's arguments."""
        for i, a in enumerate(self.engine_args):
            if a == f"--{name}" and i + 1 < len(self.engine_args):
                return self.engine_args[i + 1]
            if a.startswith(f"--{name}="):
                return a.split("=", 1)[1]
        return None

    def flag(self, name: str) -> bool:
        return f"--{name}" in self.engine_args

    @property
    def block_size(self) -> int:
        return int(self.arg("block-size") or 16)  # vLLM's default block size

    def kv_cache_blocks(self, kv_bytes_per_token: int = KV_BYTES_PER_TOKEN) -> int:
        """The engine's KV-cache capacity in blocks: `--kv-cache-memory-bytes` is per GPU and
        each of the tensor-parallel GPUs holds its share of every token's KV, so a replica holds
        bytes * TP / (bytes per token * block size) blocks."""
        per_gpu = self.arg("kv-cache-memory-bytes")
        if per_gpu is None:
            raise ValueError(f"{self.example}: the render sets no --kv-cache-memory-bytes")
        tp = int(self.arg("tensor-parallel-size") or 1)
        return to_bytes(per_gpu) * tp // (kv_bytes_per_token * self.block_size)

    @property
    def pool(self) -> dict[str, Any] | None:
        pools = self.of_kind("InferencePool")
        return pools[0] if pools else None

    @property
    def epp_deployment(self) -> dict[str, Any] | None:
        for d in self.of_kind("Deployment"):
            containers = d["spec"]["template"]["spec"]["containers"]
            if any(c["name"] == "epp" for c in containers):
                return d
        return None

    def epp_args(self) -> list[str]:
        dep = self.epp_deployment
        if dep is None:
            return []
        c = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "epp")
        return list(c.get("args", []))

    @property
    def epp_config_source(self) -> str:
        return (
            f"rendered ConfigMap key {EPP_CONFIG_KEY}"
            if self._epp_config_map()
            else "docs/routing-upstream.md minimal config (the render has no picker yet)"
        )

    def _epp_config_map(self) -> dict[str, Any] | None:
        for cm in self.of_kind("ConfigMap"):
            if EPP_CONFIG_KEY in cm.get("data", {}):
                return cm
        return None

    def epp_config(self) -> dict[str, Any]:
        """The EndpointPickerConfig the picker runs with: the rendered one, else the minimal
        config of the facts file."""
        cm = self._epp_config_map()
        if cm is None:
            return MINIMAL_EPP_CONFIG
        return dict(yaml.safe_load(cm["data"][EPP_CONFIG_KEY]))


def example_name() -> str:
    return PREFIX_AWARE_EXAMPLE if (EXAMPLES / PREFIX_AWARE_EXAMPLE).exists() else FALLBACK_EXAMPLE


def render(name: str | None = None) -> Rendered:
    name = name or example_name()
    doc = example(name)
    if doc["spec"].get("routing", {}).get("mode") != "prefix-aware":
        doc = with_spec(doc, **{"routing.mode": "prefix-aware"})
    result = run(doc)
    if result.fatal:
        raise RuntimeError(f"{name}: the function failed: {result.fatal}")
    resources = result.resources
    engine = next(
        d
        for d in resources.values()
        if d.get("kind") == "Deployment"
        and any(c["name"] == "vllm" for c in d["spec"]["template"]["spec"]["containers"])
    )
    containers = engine["spec"]["template"]["spec"]["containers"]
    container = next(c for c in containers if c["name"] == "vllm")
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return Rendered(
        example=name,
        model=doc["spec"]["model"]["name"],
        engine_args=list(container["args"]),
        engine_env=env,
        pod_labels=dict(engine["spec"]["template"]["metadata"]["labels"]),
        resources=resources,
    )


def dump_config(config: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
