"""The warmup program against llm-d-inference-sim, the stand-in for vLLM (same OpenAI API and
`vllm:prefix_cache_*` counters, prefix cache modelled in KV blocks; no GPU here)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.tokencache.warmupjob import PLAN_DIR
from sidecar.contract import WARMUP_COMMAND as COMMAND
from sidecar.contract import Plan, Target
from tests import procs
from tests.fnharness import claim_composite, example, run, with_spec
from tests.procs import SIM_MODEL
from tests.sidecar.procs import Metrics
from tests.unit.test_tokencache import service

# Long enough for several 16-token KV blocks with the simulator's dummy tokenizer.
SYSTEM = (
    "You are the support assistant of a hardware store. Answer briefly and politely, cite the "
    "store policy when it applies, never invent prices, and ask for the order number when a "
    "customer mentions a delivery. The store opens at nine and closes at six, every day."
)
OTHER = (
    "You translate English product descriptions into German. Keep units, model numbers and "
    "brand names unchanged, use the formal address, and answer with the translation only."
)


def warmup_command() -> list[str]:
    script = Path(sys.executable).parent / "inference-cache-warmup"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from sidecar.warmup import cli; cli()"]


def run_warmup(
    tmp: Path, plan: Plan, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    path = tmp / "plan.json"
    path.write_text(plan.to_json())
    return subprocess.run(
        [*warmup_command(), f"--plan={path}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def counters(sim: procs.Sim) -> tuple[float, float]:
    status, text = procs.http_get(f"{sim.base}/metrics")
    assert status == 200
    m = Metrics.parse(text)
    # The simulator exports the counters from the first request on: none yet means 0.
    return (
        sum(v for _, v in m.all("vllm:prefix_cache_queries_total", model_name=SIM_MODEL)),
        sum(v for _, v in m.all("vllm:prefix_cache_hits_total", model_name=SIM_MODEL)),
    )


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[list[procs.Sim]]:
    a, b = procs.sim_proc(tmp_path), procs.sim_proc(tmp_path)
    with procs.running(a.proc), procs.running(b.proc):
        procs.wait_sim(a)
        procs.wait_sim(b)
        yield [a, b]


def test_after_warmup_a_request_with_a_common_prefix_hits_the_prefix_cache(
    tmp_path: Path, sims: list[procs.Sim]
) -> None:
    # Targets are OpenAI base URLs, as InferenceService status.endpoint reports them.
    plan = Plan(tuple(Target(f"{s.base}/v1", SIM_MODEL) for s in sims), (SYSTEM, OTHER))
    before = [counters(s) for s in sims]
    result = run_warmup(tmp_path, plan)
    assert result.returncode == 0, result.stderr
    assert "warmed 4 of 4 prefix/target pairs" in result.stderr
    for sim, (queries, _) in zip(sims, before, strict=True):
        warmed_queries, warmed_hits = counters(sim)
        assert warmed_queries > queries  # both prefixes went through the prefix cache
        sim.complete(SYSTEM + " Question: when do you open on Sunday?")
        assert counters(sim)[1] > warmed_hits  # the first real request reuses warmed blocks


def test_without_warmup_the_first_request_misses(sims: list[procs.Sim]) -> None:
    # The control for the test above: the same request on a cold simulator.
    _, hits = counters(sims[0])
    sims[0].complete(SYSTEM + " Question: when do you open on Sunday?")
    assert counters(sims[0])[1] == hits


def test_an_engine_that_is_not_up_yet_is_retried(tmp_path: Path) -> None:
    port = procs.free_port()
    plan = Plan((Target(f"http://127.0.0.1:{port}/v1", SIM_MODEL),), (SYSTEM,))
    (tmp_path / "plan.json").write_text(plan.to_json())
    warm = procs.Proc(
        [*warmup_command(), f"--plan={tmp_path / 'plan.json'}", "--deadline-seconds=60"],
        tmp_path / "warmup.log",
    )
    sim = procs.sim_proc(tmp_path, port)
    with procs.running(warm):
        procs.wait_for(lambda: "retrying" in warm.output(), 20, "a retry", warm.log)
        with procs.running(sim.proc):
            procs.wait_sim(sim)
            assert warm.popen is not None
            assert warm.popen.wait(60) == 0, warm.output()
            assert counters(sim)[0] > 0
    assert "warmed 1 of 1 prefix/target pairs" in warm.output()


def test_runtime_is_bounded_by_the_deadline_and_failures_are_reported(tmp_path: Path) -> None:
    never = Target(f"http://127.0.0.1:{procs.free_port()}/v1", SIM_MODEL)
    result = run_warmup(tmp_path, Plan((never,), (SYSTEM, OTHER)), "--deadline-seconds=2")
    assert result.returncode == 1
    assert f"not warmed: prefix 0 to {never.url} ({SIM_MODEL}): deadline reached" in result.stderr
    assert f"not warmed: prefix 1 to {never.url} ({SIM_MODEL}): deadline reached" in result.stderr
    assert "warmed 0 of 2 prefix/target pairs" in result.stderr


def test_a_rejected_request_is_not_retried(tmp_path: Path, sims: list[procs.Sim]) -> None:
    wrong = Target(f"{sims[0].base}/v1", "no-such-model")
    result = run_warmup(tmp_path, Plan((wrong,), (SYSTEM,)))
    assert result.returncode == 1
    assert "retrying" not in result.stderr
    assert "not warmed: prefix 0" in result.stderr


def test_plan_json_is_canonical() -> None:
    plan = Plan.parse(
        {"prefixes": ["b", "a"], "targets": [{"model": "m", "url": "http://x:8000/"}]}
    )
    assert json.loads(plan.to_json()) == {
        "api": "completions",  # what a plan without one means
        "prefixes": ["b", "a"],
        "targets": [{"model": "m", "url": "http://x:8000"}],
    }
    assert Plan.parse(json.loads(plan.to_json())) == plan


def test_the_rendered_job_warms_the_bound_service(tmp_path: Path, sims: list[procs.Sim]) -> None:
    sim = sims[0]
    cache = claim_composite(example("shared-cache.yaml"), "tjcw2")
    doc = with_spec(cache, **{"warmup.commonPrefixes": [SYSTEM]})
    # status.endpoint as the InferenceService function reports it: the OpenAI base URL.
    endpoint = f"{sim.base}/v1"
    res = run(doc, required={"inferenceservices": [service("llama", "shared-cache", 1, endpoint)]})
    assert res.fatal == []
    plan = res.resources["warmup-plan"]["data"]["plan.json"]
    container = res.resources["warmup"]["spec"]["template"]["spec"]["containers"][0]
    (tmp_path / "plan.json").write_text(plan.replace("org/llama", SIM_MODEL))  # the sim's model
    args = [a.replace(PLAN_DIR, str(tmp_path)) for a in container["command"][1:]]
    assert container["command"][0] == COMMAND
    result = subprocess.run(
        [*warmup_command(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    # The default warmup.api is chat: a chat client's request with that system prompt hits.
    _, hits = counters(sim)
    sim.chat(SYSTEM, "Question: when do you open on Sunday?")
    assert counters(sim)[1] > hits
