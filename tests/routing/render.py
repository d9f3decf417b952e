"""What our InferenceService function renders for a prefix-aware service, as the benchmark
and the routing test use it: the engine's vLLM arguments and environment and pod labels, the
InferencePool, the endpoint picker's configuration (ConfigMap key `epp.yaml`), its RBAC and its
Deployment's arguments.

The function runs in process (tests/fnharness.py) on examples/claims/llama-8b-prefix-aware.yaml
(`spec.routing.mode: prefix-aware`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from functions.common.quantity import to_bytes
from tests.fnharness import example, run, with_spec

EXAMPLE = "llama-8b-prefix-aware.yaml"
EPP_CONFIG_KEY = "epp.yaml"

# Llama-3.1-8B (the example's model): 32 layers, 8 KV heads of dimension 128, bf16 K and V:
# 2 * 32 * 8 * 128 * 2 bytes = 128 KiB of KV cache per token (config.json of the model).
KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2


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

    def one(self, kind: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        if len(found) != 1:
            raise ValueError(f"{self.example}: {len(found)} {kind} objects rendered, want one")
        return found[0]

    @property
    def pool(self) -> dict[str, Any]:
        return self.one("InferencePool")

    @property
    def rbac(self) -> list[dict[str, Any]]:
        return [self.one(k) for k in ("ServiceAccount", "Role", "RoleBinding")]

    def epp_args(self) -> list[str]:
        """The picker container's arguments in the rendered Deployment."""
        for d in self.of_kind("Deployment"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["name"] == "epp":
                    return list(c.get("args", []))
        raise ValueError(f"{self.example}: no endpoint picker Deployment rendered")

    def epp_config(self) -> dict[str, Any]:
        """The EndpointPickerConfig the picker runs with (ConfigMap key epp.yaml)."""
        for cm in self.of_kind("ConfigMap"):
            if EPP_CONFIG_KEY in cm.get("data", {}):
                return dict(yaml.safe_load(cm["data"][EPP_CONFIG_KEY]))
        raise ValueError(f"{self.example}: no ConfigMap with key {EPP_CONFIG_KEY} rendered")


def ints(value: Any) -> Any:
    """`value` with integral floats made ints: protobuf Structs carry every number as a double,
    and the API server wants integers where the schemas say so."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [ints(v) for v in value]
    return value


def render(name: str = EXAMPLE) -> Rendered:
    doc = example(name)
    if doc["spec"].get("routing", {}).get("mode") != "prefix-aware":
        doc = with_spec(doc, **{"routing.mode": "prefix-aware"})
    result = run(doc)
    if result.fatal:
        raise RuntimeError(f"{name}: the function failed: {result.fatal}")
    resources: dict[str, dict[str, Any]] = ints(result.resources)
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
