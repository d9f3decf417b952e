"""HTTP endpoints: /metrics (prometheus_client) and /healthz, /readyz on their own address."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry


def parse_bind_address(address: str) -> tuple[str, int]:
    """ ":8080" -> ("0.0.0.0", 8080); "127.0.0.1:8080"; "[::]:8080" -> ("::", 8080)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind address {address!r} is not [host]:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class Health:
    """State behind /healthz and /readyz.

    Liveness: the process serves HTTP (and `alive` holds, where given). Readiness: start-up
    finished (the metrics endpoint listens) and no shutdown is under way. Neither depends on
    the GPU, the engine or Redis: a pod is Ready only when all its containers are, so a sidecar
    that went unready whenever Redis blinked would take the inference server out of its
    Service.
    """

    def __init__(self, alive: Callable[[], bool] | None = None) -> None:
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.details: dict[str, Any] = {}
        # A program whose work can hang (the cache expirer's loop) reports it here.
        self.alive = alive or (lambda: True)


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "inference-sidecar"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                if health.alive():
                    self._reply(HTTPStatus.OK, {"status": "ok"})
                else:
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "stalled"})
            elif path == "/readyz":
                if health.ready.is_set() and not health.stopping.is_set():
                    self._reply(HTTPStatus.OK, {"status": "ready", **health.details})
                else:
                    state = "stopping" if health.stopping.is_set() else "starting"
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"status": state})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"status": "not found"})

        def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = (json.dumps(body, sort_keys=True) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would flood the log

    return Handler


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    return Server


class Servers:
    def __init__(
        self,
        metrics_address: str,
        health_address: str,
        registry: CollectorRegistry,
        alive: Callable[[], bool] | None = None,
    ):
        self.health = Health(alive)
        host, port = parse_bind_address(health_address)
        self._health_server = _server_class(host)((host, port), _handler(self.health))
        self._health_thread = threading.Thread(
            target=self._health_server.serve_forever, name="health", daemon=True
        )
        mhost, mport = parse_bind_address(metrics_address)
        self._metrics_server, self._metrics_thread = start_http_server(mport, mhost, registry)
        self.metrics_port = self._metrics_server.server_port
        self.health_port = self._health_server.server_port

    def start(self) -> None:
        self._health_thread.start()
        self.health.ready.set()

    def stop(self) -> None:
        self.health.stopping.set()
        self._metrics_server.shutdown()
        self._metrics_server.server_close()
        self._health_server.shutdown()
        self._health_server.server_close()
