"""The endpoint picker's configuration, loaded by the endpoint picker itself (GIE v1.5.0 `epp`).

The binary has no validate-only mode; given a kubeconfig whose API server cannot be reached it
reads, decodes (strictly), instantiates and validates the whole configuration, logs the effective
configuration and only then fails to reach the cluster (docs/routing-upstream.md). That log is the
verdict: a configuration it rejects never gets there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fnharness import example, run, with_spec
from tests.toolchain import Tools

UNREACHABLE = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""
ROUTED = example("llama-8b-prefix-aware.yaml")


def load(tools: Tools, config: str, tmp: Path) -> tuple[str | None, str]:
    """(effective configuration, log) as the endpoint picker loads `config`."""
    (tmp / "kubeconfig").write_text(UNREACHABLE)
    (tmp / "epp.yaml").write_text(config)
    done = subprocess.run(
        [
            str(tools.epp),
            "--pool-name=p",
            "--pool-namespace=ns",
            f"--config-file={tmp / 'epp.yaml'}",
            "--tracing=false",
        ],
        env={"KUBECONFIG": str(tmp / "kubeconfig"), "HOME": str(tmp)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    log = done.stdout + done.stderr
    effective = None
    for line in log.splitlines():
        if line.startswith("{") and "Effective raw configuration" in line:
            effective = str(json.loads(line)["config"])
    return effective, log


def rendered(doc: dict[str, Any]) -> str:
    return str(run(doc).resources["picker-config"]["data"]["epp.yaml"])


@pytest.mark.parametrize(
    ("scorers", "profile"),
    [
        (
            None,
            "{PluginRef: prefix-cache-scorer, Weight: 3.00} {PluginRef: queue-scorer, "
            "Weight: 2.00} {PluginRef: kv-cache-utilization-scorer, Weight: 2.00} "
            "{PluginRef: max-score-picker}",
        ),
        (
            {"prefixCache": 10, "queue": 0, "kvCacheUtilization": 1},
            "{PluginRef: prefix-cache-scorer, Weight: 10.00} "
            "{PluginRef: kv-cache-utilization-scorer, Weight: 1.00} {PluginRef: max-score-picker}",
        ),
    ],
    ids=["defaults", "custom-weights"],
)
def test_the_picker_loads_the_rendered_config_as_written(
    tools: Tools, tmp_path: Path, scorers: dict[str, int] | None, profile: str
) -> None:
    effective, log = load(
        tools, rendered(with_spec(ROUTED, **{"routing.scorers": scorers})), tmp_path
    )
    assert effective is not None, log
    assert "loaded configuration from file/text successfully" in log
    assert f"SchedulingProfiles: [{{Name: default, Plugins: [{profile}]}}]" in effective
    assert (
        '{Name: prefix-cache-scorer, Type: prefix-cache-scorer, Parameters: {"autoTune":true,'
        '"blockSizeTokens":16,"maxPrefixBlocksToMatch":256}}' in effective
    )


def test_a_config_the_picker_rejects_is_caught(tools: Tools, tmp_path: Path) -> None:
    broken = rendered(ROUTED).replace("type: queue-scorer", "type: queue-scorr")
    effective, log = load(tools, broken, tmp_path)
    assert effective is None
    assert "plugin type 'queue-scorr' is not registered" in log
