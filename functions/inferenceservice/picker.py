"""The endpoint picker (EPP) of the Gateway API Inference Extension for one InferencePool.

The gateway asks the picker (Envoy ext-proc over gRPC) which replica should serve each request;
the picker scores the pool's ready pods on the engines' own metrics and on which prefixes it sent
where (docs/routing-upstream.md has the upstream facts, GIE v1.5.0). Rendered: its
EndpointPickerConfig (ConfigMap), ServiceAccount, Role and RoleBinding (it watches the pool and
its pods), Deployment and Service.
"""

from __future__ import annotations

from typing import Any

import yaml

from functions.common.api.inferenceservice import Scorers
from functions.common.meta import Owner
from functions.common.objects import config_hash, config_map
from functions.common.security import restricted

IMAGE = "registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0"
COMPONENT = "endpoint-picker"
POOL_GROUP = "inference.networking.k8s.io"
CONFIG_DIR = "/config"
CONFIG_KEY = "epp.yaml"
GRPC_PORT = 9002  # ext-proc, what the gateway calls (TLS, self-signed)
HEALTH_PORT = 9003  # grpc.health.v1; SERVING once the pool is synced
METRICS_PORT = 9090
RUN_AS = 65532  # distroless nonroot
# Scorer plugin types of the EPP, by our weight name.
SCORERS = {
    "prefixCache": "prefix-cache-scorer",
    "queue": "queue-scorer",
    "kvCacheUtilization": "kv-cache-utilization-scorer",
}
PICKER = "max-score-picker"
MAX_PREFIX_BLOCKS = 256  # the EPP's default: prompts beyond 256 blocks match on their start


def config(scorers: Scorers, block_size: int) -> dict[str, Any]:
    """EndpointPickerConfig: the weighted scorers and the max-score picker.

    The prefix scorer tunes itself from each engine's `vllm:cache_config_info` (block size and
    block count); `blockSizeTokens` is its fallback and equals the engine's `--block-size`, so
    both say the same either way. A scorer with weight 0 is left out: the EPP would still run it
    for every request for nothing (a missing weight, by contrast, would count as 1).
    """
    weights = {SCORERS[name]: weight for name, weight in scorers if weight > 0}
    plugins: list[dict[str, Any]] = []
    for scorer in weights:
        plugin: dict[str, Any] = {"type": scorer}
        if scorer == SCORERS["prefixCache"]:
            plugin["parameters"] = {
                "autoTune": True,
                "blockSizeTokens": block_size,
                "maxPrefixBlocksToMatch": MAX_PREFIX_BLOCKS,
            }
        plugins.append(plugin)
    plugins.append({"type": PICKER})
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": plugins,
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [
                    *({"pluginRef": s, "weight": w} for s, w in weights.items()),
                    {"pluginRef": PICKER},
                ],
            }
        ],
    }


def rbac(owner: Owner, name: str) -> dict[str, dict[str, Any]]:
    """Read access to its pool and the pods it picks from, in its own namespace only."""
    read = ["get", "list", "watch"]
    rules = [
        {"apiGroups": [POOL_GROUP], "resources": ["inferencepools"], "verbs": read},
        {
            # Optional upstream CRDs; the picker reads them only where they are installed.
            "apiGroups": ["inference.networking.x-k8s.io"],
            "resources": ["inferenceobjectives", "inferencemodelrewrites"],
            "verbs": read,
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": read},
    ]
    return {
        "picker-service-account": {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": owner.metadata(name, COMPONENT),
            "automountServiceAccountToken": False,
        },
        "picker-role": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": owner.metadata(name, COMPONENT),
            "rules": rules,
        },
        "picker-role-binding": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": owner.metadata(name, COMPONENT),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": owner.namespace}],
        },
    }


def grpc_probe(**timing: int) -> dict[str, Any]:
    return {"grpc": {"port": HEALTH_PORT, "service": "inference-extension"}, **timing}


def deployment(owner: Owner, name: str, pool: str, cm: dict[str, Any]) -> dict[str, Any]:
    container = {
        "name": "epp",
        "image": IMAGE,
        "args": [
            f"--pool-name={pool}",
            f"--pool-namespace={owner.namespace}",
            f"--pool-group={POOL_GROUP}",
            f"--config-file={CONFIG_DIR}/{CONFIG_KEY}",
            f"--grpc-port={GRPC_PORT}",
            f"--grpc-health-port={HEALTH_PORT}",
            f"--metrics-port={METRICS_PORT}",
            # Authenticated /metrics needs cluster-scoped RBAC (TokenReview, SubjectAccessReview)
            # that a namespaced composite cannot compose; the metrics carry no request content.
            "--metrics-endpoint-auth=false",
            "--tracing=false",
            "--zap-encoder=json",
        ],
        "env": [
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "grpc-health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": grpc_probe(initialDelaySeconds=5, periodSeconds=10),
        "readinessProbe": grpc_probe(periodSeconds=2),
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": restricted(RUN_AS, RUN_AS),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(name, COMPONENT),
        "spec": {
            # One picker: its prefix index is learnt from its own decisions, and a second
            # replica would learn a different one.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": owner.selector(COMPONENT)},
            "template": {
                "metadata": {"labels": owner.labels(COMPONENT), "annotations": config_hash(cm)},
                "spec": {
                    "serviceAccountName": name,
                    # It watches its pool and pods through the API server.
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True},
                    "terminationGracePeriodSeconds": 130,
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": name}}],
                },
            },
        },
    }


def service(owner: Owner, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(name, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": owner.selector(COMPONENT),
            "ports": [
                {
                    "name": "grpc-ext-proc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "http2",
                },
                {
                    "name": "http-metrics",
                    "port": METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                },
            ],
        },
    }


def resources(
    owner: Owner, name: str, pool: str, scorers: Scorers, block_size: int
) -> dict[str, dict[str, Any]]:
    """Everything the picker of InferencePool `pool` needs, named `name`."""
    text = yaml.safe_dump(config(scorers, block_size), sort_keys=False)
    cm = config_map(owner, name, COMPONENT, {CONFIG_KEY: text})
    return {
        "picker-config": cm,
        **rbac(owner, name),
        "picker": deployment(owner, name, pool, cm),
        "picker-service": service(owner, name),
    }
