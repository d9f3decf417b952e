"""The benchmark's figures as a markdown table, the ratios the issue's targets use, and the
page docs/routing-benchmark.md."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from tests.routing.client import Result
from tests.routing.fleet import EngineSettings
from tests.routing.metrics import SidecarView, Snapshot, mean, quantile
from tests.routing.render import KV_BYTES_PER_TOKEN, Rendered
from tests.routing.workload import Workload

ROUND_ROBIN = "round-robin"
PREFIX_AWARE = "prefix-aware"
WARMED = "prefix-aware + warmup"
MODES = (ROUND_ROBIN, PREFIX_AWARE, WARMED)


@dataclass
class ModeResult:
    replicas: int
    mode: str
    sim: Snapshot  # the workload's share of the engines' counters (warmup excluded)
    sidecar: SidecarView  # the same window through the metrics sidecars
    results: list[Result]
    errors: list[str]
    wall_s: float
    warmup_requests: int = 0

    @property
    def requests(self) -> int:
        return len(self.results)

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s else math.nan

    @property
    def client_ttft(self) -> list[float]:
        return [r.ttft_s for r in self.results]

    @property
    def busiest_share(self) -> float:
        """Share of the requests the busiest replica served."""
        counts = Counter(r.endpoint for r in self.results)
        return max(counts.values()) / self.requests if self.requests else math.nan

    @property
    def sidecar_agrees(self) -> bool:
        return self.sidecar.hits == self.sim.hits and self.sidecar.queries == self.sim.queries


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x * 100:.1f}%"


HEADER = (
    "| N | mode | requests | hit rate (engines) | hit rate (sidecar) | TTFT mean / p90, "
    "engines (ms) | TTFT mean / p90, client (ms) | throughput (req/s) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def row(r: ModeResult) -> str:
    sidecar = pct(r.sidecar.hit_rate) + ("" if r.sidecar_agrees else " (differs!)")
    errors = f" ({len(r.errors)} errors)" if r.errors else ""
    return (
        f"| {r.replicas} | {r.mode} | {r.requests}{errors} | {pct(r.sim.hit_rate)} | {sidecar} | "
        f"{ms(r.sim.ttft_mean)} / {ms(r.sim.ttft_quantile(0.9))} | "
        f"{ms(mean(r.client_ttft))} / {ms(quantile(r.client_ttft, 0.9))} | "
        f"{r.throughput:.1f} |"
    )


def table(results: Sequence[ModeResult]) -> str:
    return "\n".join([HEADER, *(row(r) for r in results)])


KINDS = ("first turn", "later turn", "unique")


def breakdown(results: Sequence[ModeResult]) -> str:
    """Where the client's TTFT goes: the busiest replica's share of the requests, the time
    requests waited in the engines' queues (`vllm:request_queue_time_seconds`), the picker's
    answer as the client timed it, and the client TTFT per kind of request: a conversation's
    first turn (its system prompt may be cached), its later turns (the history too), one-off
    requests (nothing to find)."""
    rows = []
    for r in results:
        pick = [x.pick_s for x in r.results]
        queued = f"{r.sim.queue_count:.0f}" + (
            f": {ms(r.sim.queue_mean)}" if r.sim.queue_count else ""
        )
        cells: list[object] = [
            r.replicas,
            r.mode,
            pct(r.busiest_share),
            queued,
            f"{ms(mean(pick))} / {ms(quantile(pick, 0.9))}",
        ]
        for kind in KINDS:
            ttft = [x.ttft_s for x in r.results if x.kind == kind]
            cells.append(f"{len(ttft)}: {ms(mean(ttft))} / {ms(quantile(ttft, 0.9))}")
        rows.append(cells)
    header = (
        "N",
        "mode",
        "busiest replica",
        "queued: n, mean wait (ms)",
        "pick, mean / p90 (ms)",
        *(f"{k}: n, TTFT mean / p90 (ms)" for k in KINDS),
    )
    return markdown(header, rows)


def _find(results: Sequence[ModeResult], n: int, mode: str) -> ModeResult | None:
    return next((r for r in results if r.replicas == n and r.mode == mode), None)


def ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}"


def targets(results: Sequence[ModeResult]) -> str:
    """The issue's targets: prefix-aware hit rate at N vs N=1 (>= 0.9) and round-robin p90
    TTFT / prefix-aware p90 TTFT (>= 2), engine-reported and client-measured."""
    lines = [
        "| N | mode | hit rate vs N=1 (target >= 0.90) | p90 TTFT round-robin / this, engines "
        "(target >= 2) | same, client |",
        "|---|---|---|---|---|",
    ]
    ns = sorted({r.replicas for r in results})
    for n in ns:
        if n == 1:
            continue
        rr = _find(results, n, ROUND_ROBIN)
        for mode in (PREFIX_AWARE, WARMED):
            r, base = _find(results, n, mode), _find(results, 1, mode)
            if r is None:
                continue
            hit = ratio(r.sim.hit_rate, base.sim.hit_rate) if base else "n/a"
            p90 = p90c = "n/a"
            if rr is not None:
                p90 = ratio(rr.sim.ttft_quantile(0.9), r.sim.ttft_quantile(0.9))
                p90c = ratio(quantile(rr.client_ttft, 0.9), quantile(r.client_ttft, 0.9))
            lines.append(f"| {n} | {mode} | {hit} | {p90} | {p90c} |")
    return "\n".join(lines)


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def engine_table(rendered: Rendered, settings: EngineSettings) -> str:
    kv_bytes = rendered.arg("kv-cache-memory-bytes")
    tp = rendered.arg("tensor-parallel-size") or "1"
    kib = KV_BYTES_PER_TOKEN // 1024
    tokens = settings.kv_cache_blocks * settings.block_size
    chosen = "chosen for the benchmark"
    size_from = (
        f"rendered `--kv-cache-memory-bytes={kv_bytes}` per GPU x "
        f"`--tensor-parallel-size={tp}` / ({kib} KiB per token x {settings.block_size}); "
        f"{kib} KiB = 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 bytes "
        "(Llama-3.1-8B in bf16)"
    )
    if settings.kv_cache_blocks != rendered.kv_cache_blocks():
        size_from = f"`--kv-cache-blocks` (the render gives {rendered.kv_cache_blocks()})"
    return markdown(
        ("simulator flag", "value", "from"),
        [
            ("`--enable-kvcache`", "on", "rendered `--enable-prefix-caching`"),
            (
                "`--block-size`",
                settings.block_size,
                "rendered `--block-size` (vLLM's default 16 where none is rendered)",
            ),
            (
                "`--kv-cache-size`",
                f"{settings.kv_cache_blocks} blocks ({tokens:,} tokens)",
                size_from,
            ),
            ("`--hash-seed`", settings.hash_seed, "rendered env `PYTHONHASHSEED`"),
            ("`--model`", settings.model, "rendered `--served-model-name`"),
            (
                "`--force-dummy-tokenizer`",
                "on",
                "no network; one token per word or punctuation mark",
            ),
            (
                "`--max-num-seqs`",
                settings.max_num_seqs,
                f"{chosen}: more requests wait (`vllm:num_requests_waiting`, which the queue "
                "scorer reads)",
            ),
            ("`--max-model-len`", settings.max_model_len, f"{chosen}: above the longest prompt"),
            (
                "`--prefill-overhead`, `--prefill-time-per-token`",
                f"{settings.prefill_overhead}, {settings.prefill_time_per_token}",
                f"{chosen} (about 10k prompt tokens/s)",
            ),
            ("`--inter-token-latency`", settings.inter_token_latency, chosen),
            (
                "`--time-factor-under-load`",
                settings.time_factor_under_load,
                f"{chosen}: latencies x (1 + (factor - 1) x (running - 1) / (max-num-seqs - 1)); "
                "1 = no slowdown with concurrency",
            ),
            ("`--mode`, `--seed`", f"random, {settings.seed}", "replies of random words"),
            ("`--zmq-endpoint`", "empty", "the v1.5.0 picker consumes no KV events"),
        ],
    )


def page(
    results: Sequence[ModeResult],
    *,
    rendered: Rendered,
    settings: EngineSettings,
    workload: Workload,
    workers: int,
    command: str,
    duration_s: float,
    versions: dict[str, str],
    load: tuple[float, float],
) -> str:
    spec = workload.spec
    parts = markdown(
        ("part", "what", "version"),
        [
            (
                "router",
                "Gateway API Inference Extension endpoint picker: `epp` built from "
                "`sigs.k8s.io/gateway-api-inference-extension` `cmd/epp`",
                versions["GIE_VERSION"],
            ),
            (
                "engines",
                "`llm-d-inference-sim` processes, one per replica",
                versions["LLM_D_INFERENCE_SIM_VERSION"],
            ),
            (
                "control plane",
                "etcd + kube-apiserver (hack/e2e/controlplane.py), the GIE CRDs",
                f"etcd {versions['ETCD_VERSION']}, Kubernetes {versions['KUBERNETES_VERSION']}",
            ),
            (
                "render",
                "the InferenceService function in process (tests/fnharness.py) on "
                f"`examples/claims/{rendered.example}` with `routing.mode: prefix-aware`",
                "this commit",
            ),
        ],
    )
    config = yaml.safe_dump(rendered.epp_config(), sort_keys=False).rstrip()
    errors = sum(len(r.errors) for r in results)
    weights = [1 / (i + 1) ** spec.zipf_s for i in range(spec.system_prompts)]
    top_share = weights[0] / sum(weights)
    error_note = f" Failed requests: {errors} (their sessions stopped)." if errors else ""
    return f"""# Cache-aware routing benchmark

Generated by `{command}` (`python -m tests.routing.bench`, tests/routing/) in
{duration_s:.0f} s on a development machine with 2 CPU cores shared with other work (1-minute
load average {load[0]:.1f} at the start, {load[1]:.1f} at the end). The engines are simulated:
the hit rates and the engine-reported TTFT follow from routing and caching alone; the client's
TTFT and the throughput also carry this machine's CPU contention. Not part of `make test`;
`tests/routing/test_routing.py` checks the routing behaviour itself.

## What ran

{parts}

What stands in for what:

- **Pods**: one Pod object per replica with the rendered engine pod labels, created on the API
  server and patched to Ready with podIP 127.0.0.1 and the annotation
  `inference.networking.k8s.io/active-ports: <port>`, so that each Pod is exactly one simulator;
  as every simulator listens on 127.0.0.1, the InferencePool's `targetPorts` list their ports
  instead of the rendered 8000. No kubelet, scheduler or controllers run.
- **kube-proxy** (mode round-robin, today's Service): a client-side round robin over the
  replicas' endpoints.
- **Envoy** (the gateway that asks the picker): a Python client of the same ext-proc protocol
  (`envoy.service.ext_proc.v3.ExternalProcessor/Process`, `xds-protos`), plaintext
  (`--secure-serving=false`; Envoy would speak TLS to it without verifying); the stream stays
  open while the engine answers and carries the response headers and the end of the body, as
  Envoy's streamed mode does. The client then sends the request to the endpoint the picker
  named, as Envoy's original-destination cluster would.
- **The picker's Deployment**: a process with the rendered arguments (pool, config file) and
  free ports; it reads the API server with a token of the rendered ServiceAccount, so the
  rendered RBAC is what it has. Its config: the rendered ConfigMap (key `epp.yaml`), below.
  Added: `--refresh-prometheus-metrics-interval=500ms` (its own pool gauges, read to know it
  sees every Pod before traffic starts).
- **GPUs**: the simulator's latency model: TTFT = `--prefill-overhead` + (prompt tokens -
  cached prompt tokens) x `--prefill-time-per-token`, then `--inter-token-latency` per token; its
  KV cache keeps block hashes of prompt tokens (not of generated tokens) in an LRU of
  `--kv-cache-size` blocks and reports `vllm:prefix_cache_hits` / `_queries` in tokens.

Between modes every simulator and the picker restart: each mode starts with cold caches. Our
metrics sidecar (`python -m sidecar`, one per simulator with `ENGINE_METRICS_URL`, as in each
engine pod) runs throughout; its `inference_cache_hits_total{{tier="prefix"}}` and
`inference_cache_queries_total` give the "hit rate (sidecar)" column.

### Engine settings

{engine_table(rendered, settings)}

### Picker configuration

As rendered (ConfigMap key `epp.yaml`):

<!-- not-a-resource -->
```yaml
{config}
```

### Workload

Seed {spec.seed}: {workload.requests} requests in {len(workload.sessions)} sessions played by
{workers} concurrent client users, each session's requests one after the other; streamed
`/v1/completions` of exactly {spec.reply_tokens} tokens (`ignore_eos`), TTFT measured by the
client to the first generated text.

- {spec.system_prompts} shared system prompts of {spec.system_words[0]}-{spec.system_words[1]}
  tokens, chosen per conversation with Zipf popularity (s = {spec.zipf_s}); conversations of
  {spec.turns[0]}-{spec.turns[1]} turns with user messages of
  {spec.user_words[0]}-{spec.user_words[1]} tokens, each turn resending the system prompt,
  the history with the engine's replies and the new message;
- {workload.unique_requests} one-off requests ({spec.unique_share:.0%}) with a unique context of
  {spec.unique_words[0]}-{spec.unique_words[1]} tokens that nothing else shares.
- Warmup (third mode): each system prompt sent once through the picker as the TokenCache
  warmup Job sends it (`{{"prompt": <prefix>, "max_tokens": 1}}` to `/v1/completions`), before
  the workload; the figures exclude the warmup requests.

## Results

Hit rate = sum(`vllm:prefix_cache_hits`) / sum(`vllm:prefix_cache_queries`) over the
replicas (tokens), for the workload's requests. TTFT "engines": the replicas'
`vllm:time_to_first_token_seconds` histograms summed, mean = sum / count, p90 interpolated in
the bucket (buckets ..., 0.04, 0.06, 0.08, 0.1, 0.25, 0.5 s, so p90 above 0.1 s is coarse);
it is the simulated prefill time and excludes time queued behind `--max-num-seqs`. TTFT
"client": request sent to first generated text as the client measured it (includes the
picker's decision, queueing in the engine and this machine's scheduling), p90 over the
requests. Throughput: requests / wall time of the workload.{error_note}

{table(results)}

Where the client's TTFT goes: the busiest replica's share of the requests, the requests that
waited for an engine slot and their mean wait (`vllm:request_queue_time_seconds`, which the
simulator records for queued requests only), the picker's answer as
the client timed it (ext-proc round trip; 0 for round robin), and client TTFT per kind of
request: a conversation's first turn (only its system prompt can be cached), its later turns
(the history too), one-off requests (nothing to find):

{breakdown(results)}

Against the issue's targets (ratios of the figures above):

{targets(results)}

## Caveats

- The simulator caches the blocks of prompt tokens only, not of generated tokens (vLLM caches
  both): in every mode a conversation's previous reply is prefilled again on its next turn.
- TTFT "engines" is the latency model's prefill time. Unless `--time-factor-under-load` is
  above 1, a replica serving several requests at once is not slower per request: the cost of
  sending a hot prefix to one replica then shows only as queueing beyond `--max-num-seqs`
  (client TTFT, "queued").
- With the rendered weights (prefix 3, queue 2, KV usage 2) a replica holding most of the
  prompt's prefix outscores an idle one even when its queue is the longest (3 x match vs 2), so
  every conversation of the most popular system prompt ({top_share:.0%} of the conversations
  here) goes to one replica ("busiest replica"); its queue, not a cache miss, is what those
  requests wait for.
- The picker's prefix index works on characters of the request body (`blockSizeTokens` x 4
  characters per block, at most `maxPrefixBlocksToMatch` blocks), the simulator's cache on its
  tokens (one per dummy word, blocks of 16): both see the same prefixes, at different
  granularity.
- Warmup reaches only requests that start with the warmed text: the TokenCache warmup Job sends
  raw prefixes to `/v1/completions`, as this workload's requests are. A chat request
  (`/v1/chat/completions`) with the same text as its system message is a different token
  sequence for the engine (the chat template wraps the message) and a different byte string for
  the picker (it hashes the JSON of `messages`), so such a warmup neither warms its cache nor
  steers its routing (`tests/routing/test_routing.py` checks this).
"""
