"""A served function imports only what serving needs: not the Kubernetes API client.

The client's package imports every API model when any part of it is imported: about 60 MiB of
RSS and half a second to seconds of start-up in each function process, for a quantity parser
(issue 15). Each function runs in a fresh interpreter, as its console script does: the entry
point imported, one example composed through `run`; then its modules are listed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.procs import ROOT

# The function's entry point and an example claim it composes without required resources.
FUNCTIONS = {
    "inferenceservice": "llama-8b-h100-exclusive.yaml",
    "gpupool": "a100-pool.yaml",
    "tokencache": "shared-cache.yaml",
}
NOT_SERVING = ("kubernetes", "urllib3", "requests", "oauthlib", "websocket", "google.auth")

PROBE = """
import json, sys
from pathlib import Path

import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

import functions.{name}.main as main
from functions.{name}.fn import runner

doc = yaml.safe_load(Path("examples/claims/{claim}").read_text())
req = fnv1.RunFunctionRequest()
req.observed.composite.resource.CopyFrom(resource.dict_to_struct(doc))
rsp = runner().run(req)
print(json.dumps({{"modules": sorted(sys.modules), "results": len(rsp.results),
                  "resources": len(rsp.desired.resources)}}))
"""


@pytest.mark.parametrize(("name", "claim"), FUNCTIONS.items())
def test_serving_a_function_never_imports_the_kubernetes_api_client(name: str, claim: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name, claim=claim)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    seen = json.loads(out.stdout.splitlines()[-1])  # the last line: the function may log
    assert seen["resources"] > 0, "the probe composed nothing: it would prove nothing"
    loaded = [m for m in seen["modules"] if m == m.split(".")[0] and m in NOT_SERVING]
    loaded += [m for m in seen["modules"] if m.startswith(tuple(f"{n}." for n in NOT_SERVING))]
    assert not loaded
