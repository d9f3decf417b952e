"""What the simulators report about themselves (their Prometheus /metrics), and our sidecar's
view of the same counters.

- prefix-cache hit rate = sum(vllm:prefix_cache_hits) / sum(vllm:prefix_cache_queries), in
  tokens, over the replicas;
- TTFT as the engines report it: the `vllm:time_to_first_token_seconds` histogram summed over
  the replicas, mean = sum / count, p90 interpolated linearly inside the bucket as PromQL's
  histogram_quantile does;
- the cross-check: one metrics sidecar (`python -m sidecar`) per simulator, as it runs in each
  engine pod, and sum(inference_cache_hits_total{tier="prefix"}) / sum(..._queries_total).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

HITS = "vllm:prefix_cache_hits"
QUERIES = "vllm:prefix_cache_queries"
TTFT = "vllm:time_to_first_token_seconds"
QUEUE = "vllm:request_queue_time_seconds"


@dataclass
class Snapshot:
    """Counters of one or more engines (summed), at one moment."""

    hits: float = 0.0
    queries: float = 0.0
    ttft_buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    ttft_sum: float = 0.0
    ttft_count: float = 0.0
    queue_sum: float = 0.0
    queue_count: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        out = cls()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                # The simulator exposes the counters without `_total`; accept both.
                name = s.name.removesuffix("_total")
                if name == HITS:
                    out.hits += s.value
                elif name == QUERIES:
                    out.queries += s.value
                elif s.name == f"{TTFT}_bucket":
                    le = float(s.labels["le"])
                    out.ttft_buckets[le] = out.ttft_buckets.get(le, 0.0) + s.value
                elif s.name == f"{TTFT}_sum":
                    out.ttft_sum += s.value
                elif s.name == f"{TTFT}_count":
                    out.ttft_count += s.value
                elif s.name == f"{QUEUE}_sum":
                    out.queue_sum += s.value
                elif s.name == f"{QUEUE}_count":
                    out.queue_count += s.value
        return out

    def __add__(self, other: Snapshot) -> Snapshot:
        les = set(self.ttft_buckets) | set(other.ttft_buckets)
        return Snapshot(
            self.hits + other.hits,
            self.queries + other.queries,
            {le: self.ttft_buckets.get(le, 0) + other.ttft_buckets.get(le, 0) for le in les},
            self.ttft_sum + other.ttft_sum,
            self.ttft_count + other.ttft_count,
            self.queue_sum + other.queue_sum,
            self.queue_count + other.queue_count,
        )

    def __sub__(self, other: Snapshot) -> Snapshot:
        return Snapshot(
            self.hits - other.hits,
            self.queries - other.queries,
            {le: v - other.ttft_buckets.get(le, 0) for le, v in self.ttft_buckets.items()},
            self.ttft_sum - other.ttft_sum,
            self.ttft_count - other.ttft_count,
            self.queue_sum - other.queue_sum,
            self.queue_count - other.queue_count,
        )

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else math.nan

    @property
    def ttft_mean(self) -> float:
        return self.ttft_sum / self.ttft_count if self.ttft_count else math.nan

    @property
    def queue_mean(self) -> float:
        """Mean time requests waited for one of the engine's --max-num-seqs slots."""
        return self.queue_sum / self.queue_count if self.queue_count else math.nan

    def ttft_quantile(self, q: float) -> float:
        return histogram_quantile(q, self.ttft_buckets)


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """PromQL's histogram_quantile over cumulative buckets (upper bound -> count): linear
    interpolation inside the bucket that holds the rank; the lowest bucket starts at 0; a rank
    in the +Inf bucket answers the highest finite bound."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    total = ordered[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def scrape(texts: Sequence[str]) -> Snapshot:
    out = Snapshot()
    for t in texts:
        out = out + Snapshot.parse(t)
    return out


@dataclass(frozen=True)
class SidecarView:
    hits: float
    queries: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else math.nan


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values`, linearly interpolated between order statistics."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
