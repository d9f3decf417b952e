"""What Crossplane core counts about function calls, read from its Prometheus /metrics.

`function_run_function_request_total` counts the gRPC calls core made to each function (a call
answered from the function response cache is not one); the cache's hits and misses come from
`function_run_function_response_cache_{hits,misses}_total` (present only with
`--enable-function-response-cache`); `function_run_function_seconds` is each call's latency as
core saw it.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict

LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
WANTED = {
    "calls": "function_run_function_request_total",
    "hits": "function_run_function_response_cache_hits_total",
    "misses": "function_run_function_response_cache_misses_total",
    "seconds": "function_run_function_seconds_sum",
}

Counts = dict[str, dict[str, float]]  # what (WANTED key) -> function name -> value


def parse(text: str) -> Counts:
    """The WANTED counters summed per function_name label."""
    by_name = {metric: key for key, metric in WANTED.items()}
    out: Counts = defaultdict(lambda: defaultdict(float))
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or m.group(1) not in by_name:
            continue
        labels = dict(LABEL.findall(m.group(2) or ""))
        out[by_name[m.group(1)]][labels.get("function_name", "")] += float(m.group(3))
    return {k: dict(v) for k, v in out.items()}


def scrape(port: int) -> Counts:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return parse(r.read().decode())


def delta(after: Counts, before: Counts) -> Counts:
    return {
        key: {
            fn: value - before.get(key, {}).get(fn, 0.0) for fn, value in after.get(key, {}).items()
        }
        for key in WANTED
    }
