"""A warmed prefix hits on the replica the router picks (issue 12, "Done when").

The real endpoint picker (GIE `epp`) on a bare etcd + kube-apiserver, with the InferencePool and
configuration our function renders, two llm-d-inference-sim replicas standing for the pool's
Pods, and the ext-proc client standing for Envoy: a prefix sent once as the TokenCache warmup
Job sends it, then requests that start with it, all go to the replica the warmup reached, and
that replica serves their prefix from its cache. Needs `make tools tools-e2e`; skipped without
the e2e tools unless E2E=1 (then it fails instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hack.e2e.controlplane import control_plane, pinned_versions, tools_bin
from sidecar.contract import WarmupApi
from tests.routing import client, extproc, fleet
from tests.routing.metrics import Snapshot
from tests.routing.render import render
from tests.routing.workload import Spec, build

pytestmark = pytest.mark.e2e_tools


def _missing_tools() -> list[str]:
    bin_dir = tools_bin()
    names = ["epp", "etcd", "kube-apiserver", "kubectl", "llm-d-inference-sim"]
    missing = [str(bin_dir / n) for n in names if not (bin_dir / n).exists()]
    crds = bin_dir.parent / f"crds-gie-{pinned_versions()['GIE_VERSION']}"
    return missing + ([] if crds.is_dir() else [str(crds)])


@pytest.fixture(scope="module")
def routed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[fleet.Engine], extproc.Picker, str]]:
    missing = _missing_tools()
    if missing:
        message = f"missing {', '.join(missing)}: run `make tools tools-e2e`"
        if os.environ.get("E2E") == "1":
            pytest.fail(message)
        pytest.skip(message)
    tmp_path = tmp_path_factory.mktemp("routing")
    rendered = render()
    settings = fleet.EngineSettings.from_render(
        rendered, prefill_time_per_token="20us", inter_token_latency="1ms"
    )
    with control_plane() as cp, fleet.engines(settings, 2, tmp_path) as engines:
        fleet.install_gie_crds(cp)
        fleet.restart(engines)
        pool = fleet.Pool(cp, rendered, "routing", engines)
        pool.apply()
        epp = fleet.EndpointPicker(pool, tmp_path)
        epp.start()
        picker = extproc.Picker(epp.address)
        try:
            yield engines, picker, settings.model
        finally:
            picker.close()
            epp.stop()


def test_a_warmed_prefix_hits_on_the_replica_the_picker_chooses(
    routed: tuple[list[fleet.Engine], extproc.Picker, str],
) -> None:
    engines, picker, model = routed
    router = client.ViaPicker(picker)
    conns = client.Connections()
    workload = build(Spec(system_prompts=1, system_words=(600, 600), requests=1))
    prefix = workload.system_prompts[0]

    warm = client.warm(router, conns, model, prefix, "completions")
    by_endpoint = {e.endpoint: e for e in engines}
    assert warm.endpoint in by_endpoint

    results = [
        client.complete(
            router, conns, client.request_body(model, f"{prefix}\n\nUser: question {i}?", 4)
        )
        for i in range(6)
    ]
    assert {r.endpoint for r in results} == {warm.endpoint}
    # Each request finds the warmed prefix in that replica's cache: all its full blocks but
    # the one where the prefix's last token ends (its trailing whitespace differs).
    block = 16
    for r in results:
        assert r.cached_tokens >= (warm.prompt_tokens // block - 1) * block, r

    warmed = Snapshot.parse(by_endpoint[warm.endpoint].metrics_text())
    (other,) = (Snapshot.parse(e.metrics_text()) for e in engines if e.endpoint != warm.endpoint)
    assert warmed.hits >= sum(r.cached_tokens for r in results)
    assert other.queries == 0


@pytest.mark.parametrize(("api", "warms"), [("chat", True), ("completions", False)])
def test_chat_requests_are_warmed_by_a_chat_warmup_only(
    routed: tuple[list[fleet.Engine], extproc.Picker, str], api: WarmupApi, warms: bool
) -> None:
    """A chat request carrying a prefix as its system message is another token sequence for the
    engine (the chat template wraps it) and another byte string for the picker (it hashes the
    JSON of `messages`) than a completion of the same text: only a warmup sent as a chat
    (TokenCache warmup.api: chat, the default) warms it and steers it."""
    _, picker, model = routed
    router = client.ViaPicker(picker)
    conns = client.Connections()
    seed = {"chat": 3, "completions": 2}[api]  # a prefix of its own: no earlier test warmed it
    prefix = build(Spec(seed=seed, system_prompts=1, system_words=(600, 600))).system_prompts[0]
    warm = client.warm(router, conns, model, prefix, api)

    def chat(question: str) -> client.Result:
        messages = [
            {"role": "system", "content": prefix},
            {"role": "user", "content": question},
        ]
        body = {"model": model, "messages": messages, "max_tokens": 2}
        return client.complete(router, conns, body, "/v1/chat/completions")

    first, second = chat("a first question?"), chat("a second question?")
    if warms:
        assert first.endpoint == warm.endpoint
        # Everything up to the system message's end, less the block the user message starts.
        assert first.cached_tokens >= warm.prompt_tokens - 3 * 16, (first, warm)
    else:
        assert first.cached_tokens == 0, first
    # Chat requests warm each other either way.
    assert second.endpoint == first.endpoint
    assert second.cached_tokens >= first.prompt_tokens - 2 * 16, second
