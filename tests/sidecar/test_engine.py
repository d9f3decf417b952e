"""Engine /metrics parsing: vLLM (Python client, two data-parallel ranks), the simulator's
Go-style counters, Triton's vLLM and TensorRT-LLM backends, trtllm-serve.

The real simulator's output is covered by test_process.py; these texts are written in each
engine's documented format (names from vllm/v1/metrics/loggers.py, Triton's metrics guide and
tensorrt_llm/metrics/collector.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sidecar.engine import EngineSource, base_name, parse, relevant_lines, to_samples

VLLM = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="meta-llama/Llama-3.1-8B"} 0.75
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B"} 1000.0
vllm:prefix_cache_queries_total{engine="1",model_name="meta-llama/Llama-3.1-8B"} 500.0
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine="0",model_name="meta-llama/Llama-3.1-8B"} 1.7e9
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B"} 640.0
vllm:prefix_cache_hits_total{engine="1",model_name="meta-llama/Llama-3.1-8B"} 128.0
# HELP vllm:external_prefix_cache_queries_total External prefix cache queries.
# TYPE vllm:external_prefix_cache_queries_total counter
vllm:external_prefix_cache_queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B"} 360.0
# HELP vllm:external_prefix_cache_hits_total External prefix cache hits.
# TYPE vllm:external_prefix_cache_hits_total counter
vllm:external_prefix_cache_hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B"} 200.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="x"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="x"} 7.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="x"} 7.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="x"} 1.5
"""

# llm-d-inference-sim and other Go exporters: counters without _total.
SIM = """\
# HELP vllm:prefix_cache_hits Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits{model_name="m"} 32
# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries{model_name="m"} 93
"""

# vLLM < 0.12: the deprecated names.
VLLM_OLD = """\
# TYPE vllm:gpu_prefix_cache_hits_total counter
vllm:gpu_prefix_cache_hits_total{model_name="m"} 7.0
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{model_name="m"} 9.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
"""

# Triton's vLLM backend re-exports vllm:* with labels model/version.
TRITON_VLLM = """\
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{model="vllm_model",version="1"} 11
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{model="vllm_model",version="1"} 20
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="vllm_model",version="1"} 4
"""

TRITON_TRTLLM = """\
# HELP nv_trt_llm_kv_cache_block_metrics TRT LLM KV cache block metrics
# TYPE nv_trt_llm_kv_cache_block_metrics gauge
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per",model="trt",version="1"} 64
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="trt",version="1"} 1
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="free",model="trt",version="1"} 6239
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="trt",version="1"} 6239
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="trt",version="1"} 0.125
"""

TRTLLM_SERVE = """\
# HELP trtllm_kv_cache_reused_blocks_total Cumulative KV cache blocks reused (cache hits)
# TYPE trtllm_kv_cache_reused_blocks_total counter
trtllm_kv_cache_reused_blocks_total{engine_type="trtllm",model_name="mistral"} 30.0
# HELP trtllm_kv_cache_missed_blocks_total Cumulative number of KV cache blocks missed
# TYPE trtllm_kv_cache_missed_blocks_total counter
trtllm_kv_cache_missed_blocks_total{engine_type="trtllm",model_name="mistral"} 10.0
# HELP trtllm_kv_cache_utilization KV cache utilization
# TYPE trtllm_kv_cache_utilization gauge
trtllm_kv_cache_utilization{engine_type="trtllm",model_name="mistral"} 0.4
"""


def values(text: str, capacity: int | None = None) -> dict[tuple[str, str, str, str], float]:
    return {
        (
            s.name,
            s.labels["tier"],
            s.labels["source"],
            s.labels["model_name"],
        ): s.value
        for s in to_samples(parse(text), capacity)
    }


def test_vllm_sums_ranks_and_averages_usage() -> None:
    v = values(VLLM, capacity=8 * 1024**3)
    model = "meta-llama/Llama-3.1-8B"
    assert v[("inference_cache_hits_total", "prefix", "vllm", model)] == 768
    assert v[("inference_cache_queries_total", "prefix", "vllm", model)] == 1500
    assert v[("inference_cache_usage_ratio", "prefix", "vllm", model)] == 0.5
    assert v[("inference_cache_size_bytes", "prefix", "vllm", model)] == 4 * 1024**3
    assert v[("inference_cache_capacity_bytes", "prefix", "vllm", model)] == 8 * 1024**3
    assert v[("inference_cache_hits_total", "external", "vllm", model)] == 200
    assert v[("inference_cache_queries_total", "external", "vllm", model)] == 360
    assert len(v) == 7


def test_without_capacity_no_size() -> None:
    v = values(VLLM)
    assert not any(k[0] == "inference_cache_size_bytes" for k in v)


def test_simulator_counters_without_total_suffix() -> None:
    v = values(SIM)
    assert v == {
        ("inference_cache_hits_total", "prefix", "vllm", "m"): 32,
        ("inference_cache_queries_total", "prefix", "vllm", "m"): 93,
    }


def test_deprecated_vllm_names() -> None:
    v = values(VLLM_OLD)
    assert v[("inference_cache_hits_total", "prefix", "vllm", "m")] == 7
    assert v[("inference_cache_queries_total", "prefix", "vllm", "m")] == 9
    assert v[("inference_cache_usage_ratio", "prefix", "vllm", "m")] == 0.5


def test_triton_vllm_backend_model_label() -> None:
    v = values(TRITON_VLLM)
    assert v[("inference_cache_hits_total", "prefix", "vllm", "vllm_model")] == 11


def test_triton_trtllm_usage_only() -> None:
    v = values(TRITON_TRTLLM, capacity=1000)
    assert v == {
        ("inference_cache_usage_ratio", "prefix", "triton-trtllm", "trt"): 0.125,
        ("inference_cache_capacity_bytes", "prefix", "triton-trtllm", "trt"): 1000,
        ("inference_cache_size_bytes", "prefix", "triton-trtllm", "trt"): 125,
    }


def test_trtllm_serve_queries_from_reused_plus_missed() -> None:
    v = values(TRTLLM_SERVE)
    assert v[("inference_cache_hits_total", "prefix", "trtllm", "mistral")] == 30
    assert v[("inference_cache_queries_total", "prefix", "trtllm", "mistral")] == 40
    assert v[("inference_cache_usage_ratio", "prefix", "trtllm", "mistral")] == 0.4


def test_unrelated_metrics_yield_nothing() -> None:
    assert values("# TYPE up gauge\nup 1\n") == {}
    assert values("") == {}


def test_filter_keeps_only_wanted_lines() -> None:
    kept = list(relevant_lines(VLLM))
    assert not any("time_to_first_token" in line for line in kept)
    assert not any("num_requests_running" in line for line in kept)
    assert any(line.startswith("vllm:prefix_cache_hits_total{") for line in kept)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("vllm:prefix_cache_hits 3", ["vllm:prefix_cache_hits 3"]),  # no final newline
        ("vllm:prefix_cache_hits\t3\r\nup 1\r\n", ["vllm:prefix_cache_hits\t3"]),
        ("#  HELP\tvllm:prefix_cache_hits Hits.\n", ["#  HELP\tvllm:prefix_cache_hits Hits."]),
        ("vllm:prefix_cache_hits_total_created 3\n", []),  # one suffix only, as base_name
        ("vllm:prefix_cache_hitsx 3\n# TYPE vllm:prefix_cache_hitsx counter\n", []),
        ("# vllm:prefix_cache_hits in a comment\n", []),
        ('up{name="vllm:prefix_cache_hits 1"} 2\n', []),  # in a label value
        (
            'vllm:prefix_cache_hits{a="b"} 4\nup 1\n# TYPE vllm:prefix_cache_hits counter\n',
            ['vllm:prefix_cache_hits{a="b"} 4', "# TYPE vllm:prefix_cache_hits counter"],
        ),
    ],
)
def test_filter_matches_whole_metric_names_at_line_start(text: str, kept: list[str]) -> None:
    assert relevant_lines(text) == kept


@pytest.mark.parametrize(
    ("name", "base"),
    [("a_total", "a"), ("a_created", "a"), ("a", "a"), ("a_total_x", "a_total_x")],
)
def test_base_name(name: str, base: str) -> None:
    assert base_name(name) == base


class _Engine(BaseHTTPRequestHandler):
    status = 200
    body = SIM

    def do_GET(self) -> None:
        data = self.body.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def engine() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Engine.status, _Engine.body = 200, SIM


def _up(source: EngineSource) -> float:
    return next(s.value for s in source.read() if s.name == "inference_engine_up")


def test_engine_source_http(engine: ThreadingHTTPServer) -> None:
    source = EngineSource(f"http://127.0.0.1:{engine.server_port}/metrics", timeout=2)
    samples = source.read()
    assert _up(source) == 1
    assert any(s.name == "inference_cache_hits_total" and s.value == 32 for s in samples)
    _Engine.status = 500
    assert _up(source) == 0
    _Engine.status, _Engine.body = 200, 'vllm:prefix_cache_hits{model_name="m" 3\n'
    assert _up(source) == 0  # a known name that does not parse
    _Engine.body = "# an exporter without prefix-cache metrics\nup 1\n"
    assert _up(source) == 1  # answering; logged as "without known prefix-cache metrics"
