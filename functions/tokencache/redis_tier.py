"""The distributed tier: Redis as a bounded, non-persistent cache.

One primary and `replicas - 1` read replicas in a StatefulSet; the client Service targets the
primary only (LMCache's `redis://` client writes, so it must reach the node that accepts
writes). The password comes from a Secret and reaches Redis through a file, never argv. A tier
`ttl` is enforced by the expirer (sidecar/expirer.py), a second container that gives
every key written without an expiry the tier's TTL.
"""

from __future__ import annotations

from typing import Any

from functions.common.api.inferenceservice import SIDECAR_IMAGE
from functions.common.api.tokencache import EvictionPolicy, PasswordSecretRef, Tier
from functions.common.meta import Owner
from functions.common.objects import config_hash, config_map
from functions.common.quantity import duration_seconds, format_bytes, to_bytes
from functions.common.security import restricted
from sidecar.contract import EXPIRER_COMMAND, NONROOT_USER, NOTIFY_KEYSPACE_EVENTS

IMAGE = "redis:8.2-alpine"
PORT = 6379
RUN_AS_USER = 999  # the `redis` user of the official image
COMPONENT = "redis"
CONF_DIR = "/etc/redis"
RUN_DIR = "/run/redis"
# The expirer ships in the metrics sidecar's image (same venv, entry point below).
EXPIRER_IMAGE = SIDECAR_IMAGE
EXPIRER_METRICS_PORT = 8080
EXPIRER_HEALTH_PORT = 8081

# Redis has no TTL-only LRU; `ttl` evicts keys with the nearest expiry among those that have one.
MAXMEMORY_POLICY: dict[str, str] = {
    "lru": "allkeys-lru",
    "lfu": "allkeys-lfu",
    "ttl": "volatile-ttl",
    "random": "allkeys-random",
    "noeviction": "noeviction",
}


def names(owner: Owner) -> dict[str, str]:
    base = owner.child("redis")
    return {
        "sts": base,
        "svc": base,
        "headless": owner.child("redis-headless"),
        "config": owner.child("redis-config"),
        "pdb": base,
    }


def password_ref(owner: Owner, tier: Tier) -> PasswordSecretRef:
    """The Secret and key with the password: the tier's reference, else <cache>-redis-auth."""
    return tier.passwordSecretRef or PasswordSecretRef(name=owner.child("redis-auth"))


def redis_conf(tier: Tier, policy: EvictionPolicy) -> str:
    lines = [
        f"port {PORT}",
        "bind * -::*",
        "protected-mode no",  # auth is enforced by requirepass from the mounted Secret
        f"maxmemory {to_bytes(tier.size)}",
        f"maxmemory-policy {MAXMEMORY_POLICY[policy]}",
        # A cache: nothing to persist, no fork for RDB snapshots on a 500Gi heap.
        'save ""',
        "appendonly no",
        "dir /data",
    ]
    if tier.ttl is not None:
        # What the expirer listens to; nothing else in the pod subscribes.
        lines.append(f"notify-keyspace-events {NOTIFY_KEYSPACE_EVENTS}")
    lines.append(f"include {RUN_DIR}/auth.conf")
    return "\n".join(lines) + "\n"


# Writes the auth include from the Secret-backed env, then joins the primary when not pod 0.
START = f"""set -eu
umask 077
printf 'requirepass %s\\nmasterauth %s\\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" \\
  > {RUN_DIR}/auth.conf
if [ "${{HOSTNAME##*-}}" != "0" ]; then
  printf 'replicaof %s %s\\n' "$PRIMARY_HOST" "$PORT" >> {RUN_DIR}/auth.conf
fi
exec redis-server {CONF_DIR}/redis.conf
"""


def password_env(ref: PasswordSecretRef) -> dict[str, Any]:
    return {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
    }


def expirer(password: PasswordSecretRef, ttl: str) -> dict[str, Any]:
    """The container that enforces the tier's TTL on the Redis in its own pod."""
    return {
        "name": "expirer",
        "image": EXPIRER_IMAGE,
        "command": [
            EXPIRER_COMMAND,
            # Whole seconds: the program takes no duration syntax (one parser, ours).
            f"--ttl-seconds={int(duration_seconds(ttl))}",
            f"--port={PORT}",
            f"--metrics-bind-address=:{EXPIRER_METRICS_PORT}",
            f"--health-bind-address=:{EXPIRER_HEALTH_PORT}",
        ],
        "env": [password_env(password)],
        "ports": [
            {"name": "metrics", "containerPort": EXPIRER_METRICS_PORT, "protocol": "TCP"},
            {"name": "health", "containerPort": EXPIRER_HEALTH_PORT, "protocol": "TCP"},
        ],
        # Liveness: the loop turns (a stuck expirer is restarted). Readiness does not follow
        # Redis, or the pod would leave its Service whenever the expirer reconnects.
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "health"},
            "periodSeconds": 20,
            "failureThreshold": 3,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "128Mi"},
        },
        "securityContext": restricted(NONROOT_USER, NONROOT_USER),
    }


def resources(owner: Owner, tier: Tier, policy: EvictionPolicy) -> dict[str, dict[str, Any]]:
    n = names(owner)
    password = password_ref(owner, tier)
    selector = owner.selector(COMPONENT)
    memory = to_bytes(tier.size)
    # Headroom over maxmemory for replication buffers and fragmentation.
    limit = memory + memory // 4
    primary = f"{n['sts']}-0.{n['headless']}.{owner.namespace}.svc.cluster.local"
    container = {
        "name": "redis",
        "image": IMAGE,
        "command": ["/bin/sh", "-c", START],
        "env": [
            password_env(password),
            {"name": "PRIMARY_HOST", "value": primary},
            {"name": "PORT", "value": str(PORT)},
        ],
        "ports": [{"name": "redis", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 15},
        "resources": {
            "requests": {"cpu": "1", "memory": format_bytes(limit)},
            "limits": {"memory": format_bytes(limit)},
        },
        "securityContext": restricted(RUN_AS_USER, RUN_AS_USER),
        "volumeMounts": [
            {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
            {"name": "run", "mountPath": RUN_DIR},
            {"name": "data", "mountPath": "/data"},
        ],
    }
    containers = [container]
    if tier.ttl is not None:
        containers.append(expirer(password, tier.ttl))
    config = config_map(owner, n["config"], COMPONENT, {"redis.conf": redis_conf(tier, policy)})
    out: dict[str, dict[str, Any]] = {
        "redis-config": config,
        "redis": {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": owner.metadata(n["sts"], COMPONENT),
            "spec": {
                "replicas": tier.replicas,
                "serviceName": n["headless"],
                "podManagementPolicy": "OrderedReady",
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": owner.labels(COMPONENT),
                        "annotations": config_hash(config),
                    },
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": {"fsGroup": RUN_AS_USER},
                        "containers": containers,
                        "volumes": [
                            {"name": "config", "configMap": {"name": n["config"]}},
                            {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
        "redis-headless": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": owner.metadata(n["headless"], COMPONENT),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,
                "selector": selector,
                "ports": [{"name": "redis", "port": PORT, "targetPort": "redis"}],
            },
        },
        "redis-service": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": owner.metadata(n["svc"], COMPONENT),
            "spec": {
                "type": "ClusterIP",
                "selector": {**selector, "statefulset.kubernetes.io/pod-name": f"{n['sts']}-0"},
                "ports": [{"name": "redis", "port": PORT, "targetPort": "redis"}],
            },
        },
    }
    if tier.replicas > 1:
        out["redis-pdb"] = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": owner.metadata(n["pdb"], COMPONENT),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        }
    return out
