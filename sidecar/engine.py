"""The engine's prefix-cache counters, read from its own Prometheus /metrics at scrape time.

Engines and the names looked for (first name present wins; `_total` is optional because
Go-based exporters such as llm-d-inference-sim write counters without it):

- vllm, tier prefix: vllm:prefix_cache_hits / vllm:prefix_cache_queries (tokens; before
  vLLM 0.12 vllm:gpu_prefix_cache_*), usage vllm:kv_cache_usage_perc (vllm:gpu_cache_usage_perc).
  Triton's vLLM backend re-exports these names with the label `model` instead of `model_name`.
- vllm, tier external: vllm:external_prefix_cache_hits / _queries (KV connector, e.g. LMCache).
- trtllm (trtllm-serve /prometheus/metrics), tier prefix: hits trtllm_kv_cache_reused_blocks,
  queries = reused + trtllm_kv_cache_missed_blocks (KV blocks), usage
  trtllm_kv_cache_utilization.
- triton-trtllm (Triton's TensorRT-LLM backend), tier prefix: usage only,
  nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}; the backend publishes no
  reuse counter in Prometheus form.

Series of one model are summed over their other labels (data-parallel `engine` ranks); usage
ratios are averaged.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from sidecar import log
from sidecar.metrics import Sample, sample

SOURCE = "engine"
ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"


@dataclass(frozen=True)
class Mapping:
    source: str
    tier: str
    hits: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()
    misses: tuple[str, ...] = ()  # queries = hits + misses where no queries counter exists
    usage: tuple[str, ...] = ()


MAPPINGS = (
    Mapping(
        "vllm",
        "prefix",
        hits=("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
        queries=("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
        usage=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    ),
    Mapping(
        "vllm",
        "external",
        hits=("vllm:external_prefix_cache_hits",),
        queries=("vllm:external_prefix_cache_queries",),
    ),
    Mapping(
        "trtllm",
        "prefix",
        hits=("trtllm_kv_cache_reused_blocks",),
        misses=("trtllm_kv_cache_missed_blocks",),
        usage=("trtllm_kv_cache_utilization",),
    ),
    Mapping("triton-trtllm", "prefix", usage=("nv_trt_llm_kv_cache_block_metrics",)),
)
# Per-sample filters for names that carry several quantities.
_LABEL_FILTERS = {"nv_trt_llm_kv_cache_block_metrics": ("kv_cache_block_type", "fraction")}
WANTED = frozenset(
    name for m in MAPPINGS for group in (m.hits, m.queries, m.misses, m.usage) for name in group
)


def base_name(name: str) -> str:
    for suffix in ("_total", "_created"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


_HELP_OR_TYPE = re.compile(r"#[ \t]+(?:HELP|TYPE)[ \t]+")


def relevant_lines(text: str, wanted: frozenset[str] = WANTED) -> list[str]:
    """Only the exposition lines of the wanted metrics, in their order: samples and their HELP
    and TYPE comments. Parsing all of vLLM's histograms on every scrape would cost far more than
    the few counters needed, and so would splitting every line: each wanted name is looked up
    with str.find over the whole text (half the time of a line-by-line filter on a 57 kB vLLM
    exposition, sidecar/BENCHMARK.md)."""
    lines: dict[int, str] = {}
    for name in wanted:
        at = text.find(name)
        while at != -1:
            end = at + len(name)
            for suffix in ("_total", "_created"):
                if text.startswith(suffix, end):
                    end += len(suffix)
                    break
            start = text.rfind("\n", 0, at) + 1
            if (end == len(text) or text[end] in " \t{") and (
                start == at or _HELP_OR_TYPE.fullmatch(text, start, at)
            ):
                stop = text.find("\n", at)
                lines[start] = text[start : stop if stop != -1 else len(text)].rstrip("\r")
            at = text.find(name, at + len(name))
    return [lines[start] for start in sorted(lines)]


def parse(text: str) -> dict[tuple[str, str], list[float]]:
    """{(metric base name, model name): values} of the wanted counters and gauges."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    filtered = "\n".join(relevant_lines(text)) + "\n"
    for family in text_string_to_metric_families(filtered):
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            base = base_name(s.name)
            if base not in WANTED:
                continue
            label_filter = _LABEL_FILTERS.get(base)
            if label_filter and s.labels.get(label_filter[0]) != label_filter[1]:
                continue
            model = s.labels.get("model_name") or s.labels.get("model") or ""
            values[(base, model)].append(float(s.value))
    return values


def _first(
    values: dict[tuple[str, str], list[float]], names: Iterable[str], model: str
) -> list[float] | None:
    for name in names:
        if (name, model) in values:
            return values[(name, model)]
    return None


def to_samples(
    values: dict[tuple[str, str], list[float]], prefix_capacity: int | None
) -> list[Sample]:
    out: list[Sample] = []
    models = sorted({model for _, model in values})
    for m in MAPPINGS:
        for model in models:
            labels = {"tier": m.tier, "source": m.source, "model_name": model}
            hits = _first(values, m.hits, model)
            if hits is not None:
                out.append(sample("inference_cache_hits_total", sum(hits), **labels))
                queries = _first(values, m.queries, model)
                misses = _first(values, m.misses, model)
                if queries is not None:
                    out.append(sample("inference_cache_queries_total", sum(queries), **labels))
                elif misses is not None:
                    out.append(
                        sample("inference_cache_queries_total", sum(hits) + sum(misses), **labels)
                    )
            usage = _first(values, m.usage, model)
            if usage:
                ratio = sum(usage) / len(usage)
                out.append(sample("inference_cache_usage_ratio", ratio, **labels))
                if prefix_capacity:
                    out.append(sample("inference_cache_capacity_bytes", prefix_capacity, **labels))
                    out.append(
                        sample("inference_cache_size_bytes", ratio * prefix_capacity, **labels)
                    )
    return out


class EngineSource:
    name = SOURCE

    def __init__(self, url: str, timeout: float = 2.0, prefix_capacity: int | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.prefix_capacity = prefix_capacity
        self._states = log.Transitions(SOURCE)

    def fetch(self) -> str:
        request = urllib.request.Request(self.url, headers={"Accept": ACCEPT})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body: bytes = response.read()
            charset = response.headers.get_content_charset() or "utf-8"
        return body.decode(charset, errors="replace")

    def read(self) -> list[Sample]:
        start = time.perf_counter()
        try:
            text = self.fetch()
            values = parse(text)
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as err:
            self._states.report(
                "state",
                f"down: {type(err).__name__}",
                logging.WARNING,
                f"engine metrics unreachable ({err}): inference_engine_up 0",
                url=self.url,
            )
            return [sample("inference_engine_up", 0)]
        found = sorted({name for name, _ in values})
        self._states.report(
            "state",
            f"up {found}",
            logging.INFO if found else logging.WARNING,
            "engine metrics answering"
            if found
            else "engine metrics answering but without known prefix-cache metrics",
            url=self.url,
            metrics=",".join(found) or "none",
            seconds=f"{time.perf_counter() - start:.3f}",
        )
        return [sample("inference_engine_up", 1), *to_samples(values, self.prefix_capacity)]

    def close(self) -> None:
        pass
