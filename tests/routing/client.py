"""The load generator: routers (round robin standing for kube-proxy, the picker through
ext-proc standing for Envoy), streamed completions with the time to first token measured by
the client, and the worker pool that plays the workload's sessions."""

from __future__ import annotations

import http.client
import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sidecar.contract import WarmupApi, warmup_request
from tests.routing import extproc
from tests.routing.workload import Session, Workload, render_prompt

PATH = "/v1/completions"


@dataclass(frozen=True)
class Result:
    endpoint: str
    ttft_s: float  # request sent -> first generated text, as the client sees it
    pick_s: float  # request sent -> endpoint known (the picker's answer; ~0 for round robin)
    latency_s: float
    prompt_tokens: int
    cached_tokens: int
    text: str
    kind: str = ""  # what the workload sent: first turn, later turn, unique (play sets it)


class Route(Protocol):
    endpoint: str
    body: bytes

    def response_started(self, status: int, content_type: str) -> None: ...

    def finish(self, last_chunk: bytes) -> None: ...

    def close(self) -> None: ...


class Router(Protocol):
    name: str

    def route(self, body: bytes, path: str) -> Route: ...


@dataclass
class _Direct:
    endpoint: str
    body: bytes

    def response_started(self, status: int, content_type: str) -> None:
        pass

    def finish(self, last_chunk: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class RoundRobin:
    """What a Kubernetes Service gives the replicas: kube-proxy's choice does not look at the
    request. Here a client-side round robin over the endpoints stands for it."""

    name = "round-robin (client-side, for kube-proxy)"

    def __init__(self, endpoints: Sequence[str]) -> None:
        self._next = itertools.cycle(endpoints)
        self._lock = threading.Lock()

    def route(self, body: bytes, path: str) -> Route:
        with self._lock:
            endpoint = next(self._next)
        return _Direct(endpoint, body)


class ViaPicker:
    """The endpoint picker decides (ext-proc, as Envoy would ask it)."""

    name = "endpoint picker (ext-proc client for Envoy)"

    def __init__(self, picker: extproc.Picker) -> None:
        self.picker = picker

    def route(self, body: bytes, path: str) -> Route:
        ex = self.picker.exchange()
        try:
            ex.pick(path, body)
        except Exception:
            ex.close()
            raise
        return ex


class Connections(threading.local):
    """Keep-alive HTTP connections per worker thread and endpoint."""

    def __init__(self) -> None:
        self.by_endpoint: dict[str, http.client.HTTPConnection] = {}

    def get(self, endpoint: str) -> http.client.HTTPConnection:
        conn = self.by_endpoint.get(endpoint)
        if conn is None:
            host, port = endpoint.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            self.by_endpoint[endpoint] = conn
        return conn

    def drop(self, endpoint: str) -> None:
        conn = self.by_endpoint.pop(endpoint, None)
        if conn is not None:
            conn.close()


def complete(router: Router, conns: Connections, body: dict[str, Any], path: str = PATH) -> Result:
    """One completion (or chat completion, by `path`) through `router`: streamed when the body
    says so."""
    start = time.perf_counter()
    route = router.route(json.dumps(body).encode(), path)
    picked = time.perf_counter() - start
    try:
        return replace(_send(route, conns, body, start, path), pick_s=picked)
    except BaseException:
        conns.drop(route.endpoint)
        route.close()
        raise


def _send(
    route: Route, conns: Connections, body: dict[str, Any], start: float, path: str
) -> Result:
    conn = conns.get(route.endpoint)
    conn.request("POST", path, body=route.body, headers={"Content-Type": "application/json"})
    rsp = conn.getresponse()
    route.response_started(rsp.status, rsp.getheader("content-type", ""))
    if rsp.status != 200:
        detail = rsp.read()[:500]
        route.finish(detail)
        raise RuntimeError(f"{route.endpoint}: HTTP {rsp.status}: {detail!r}")
    ttft = 0.0
    parts: list[str] = []
    usage: dict[str, Any] = {}
    last = b""
    if not body.get("stream"):
        raw = rsp.read()
        ttft = time.perf_counter() - start
        data = json.loads(raw)
        choice = data["choices"][0]
        parts.append(choice.get("text") or (choice.get("message") or {}).get("content") or "")
        usage = data.get("usage") or {}
        last = raw
    else:
        for line in rsp:
            if not line.startswith(b"data: "):
                continue
            last = line
            payload = line[6:].strip()
            if payload == b"[DONE]":
                break
            chunk = json.loads(payload)
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices", []):
                if choice.get("text"):
                    if not parts:
                        ttft = time.perf_counter() - start
                    parts.append(choice["text"])
        rsp.read()  # the end of the chunked body: the connection is reused
    route.finish(last)
    details = usage.get("prompt_tokens_details") or {}
    return Result(
        endpoint=route.endpoint,
        ttft_s=ttft,
        pick_s=0.0,
        latency_s=time.perf_counter() - start,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        cached_tokens=int(details.get("cached_tokens") or 0),
        text="".join(parts),
    )


def request_body(model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "ignore_eos": True,  # exactly max_tokens generated
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def warm(router: Router, conns: Connections, model: str, prefix: str, api: WarmupApi) -> Result:
    """What the TokenCache warmup Job sends (sidecar/warmup.py, the request from
    sidecar/contract.py), through `router`."""
    path, body = warmup_request(api, model, prefix)
    return complete(router, conns, body, f"/v1{path}")


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def play(
    workload: Workload,
    router: Router,
    model: str,
    workers: int,
    on_result: Callable[[Result], None] | None = None,
) -> Run:
    """`workers` users play the sessions in the workload's order, each session's turns one
    after the other, resending the history with the engine's replies."""
    todo: queue.Queue[Session] = queue.Queue()
    for s in workload.sessions:
        todo.put(s)
    out = Run()
    lock = threading.Lock()
    conns = Connections()

    def worker() -> None:
        while True:
            try:
                session = todo.get_nowait()
            except queue.Empty:
                return
            history: list[tuple[str, str]] = []
            for user in session.turns:
                prompt = render_prompt(session.context, history, user)
                body = request_body(model, prompt, workload.spec.reply_tokens)
                try:
                    result = complete(router, conns, body)
                except Exception as e:  # recorded, reported; the session goes on
                    with lock:
                        out.errors.append(f"session {session.index}: {e}")
                    break
                kind = (
                    "unique" if session.unique else ("first turn" if not history else "later turn")
                )
                result = replace(result, kind=kind)
                history.append((user, result.text.strip()))
                with lock:
                    out.results.append(result)
                if on_result is not None:
                    on_result(result)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.wall_s = time.perf_counter() - start
    return out
