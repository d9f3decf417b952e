"""The distributed cache tier: Redis INFO, read at scrape time."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import redis

from sidecar import log
from sidecar.metrics import Sample, sample

REDIS = {"tier": "redis", "source": "redis", "model_name": ""}


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class RedisSource:
    """Redis INFO: keyspace hits/misses, evicted keys, used_memory, maxmemory, keys.

    The password comes from `password` (REDIS_PASSWORD) or `password_file` (a mounted Secret,
    REDIS_PASSWORD_FILE), which is read again after an authentication failure so a rotated
    Secret is picked up; it is never logged.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        password: str | None = None,
        password_file: str | None = None,
        timeout: float = 1.0,
    ) -> None:
        self.url = url
        self.password = password
        self.password_file = password_file
        self.timeout = timeout
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._states = log.Transitions(self.name)

    def _password(self) -> str | None:
        if self.password_file:
            return Path(self.password_file).read_text().strip()
        return self.password or None

    def _connect(self) -> redis.Redis:
        if self._client is None:
            kwargs: dict[str, Any] = {
                "socket_timeout": self.timeout,
                "socket_connect_timeout": self.timeout,
                "retry_on_timeout": False,
                "client_name": "inference-sidecar",
            }
            password = self._password()
            if password:
                kwargs["password"] = password
            self._client = redis.Redis.from_url(self.url, **kwargs)
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def read(self) -> list[Sample]:
        with self._lock:
            try:
                info: dict[str, Any] = self._connect().info()
            except (redis.RedisError, OSError) as err:
                if isinstance(err, redis.AuthenticationError | redis.ResponseError):
                    self._drop()  # re-read the password file next time
                self._states.report(
                    "state",
                    f"down: {type(err).__name__}",
                    logging.WARNING,
                    f"Redis unreachable ({type(err).__name__}: {err}): inference_redis_up 0",
                    url=redact(self.url),
                )
                return [sample("inference_redis_up", 0)]
        self._states.report(
            "state",
            "up",
            logging.INFO,
            "Redis answering",
            url=redact(self.url),
            version=info.get("redis_version", ""),
        )
        hits = int(info.get("keyspace_hits", 0))
        misses = int(info.get("keyspace_misses", 0))
        used = int(info.get("used_memory", 0))
        maxmemory = int(info.get("maxmemory", 0))
        keys = sum(
            int(v.get("keys", 0))
            for k, v in info.items()
            if k.startswith("db") and k[2:].isdigit() and isinstance(v, dict)
        )
        out = [
            sample("inference_redis_up", 1),
            sample("inference_cache_hits_total", hits, **REDIS),
            sample("inference_cache_queries_total", hits + misses, **REDIS),
            sample("inference_cache_evictions_total", int(info.get("evicted_keys", 0)), **REDIS),
            sample("inference_cache_size_bytes", used, **REDIS),
            sample("inference_cache_entries", keys, **REDIS),
        ]
        if maxmemory > 0:
            out.append(sample("inference_cache_capacity_bytes", maxmemory, **REDIS))
            out.append(sample("inference_cache_usage_ratio", used / maxmemory, **REDIS))
        return out

    def close(self) -> None:
        with self._lock:
            self._drop()
