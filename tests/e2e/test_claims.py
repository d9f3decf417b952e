"""Claims through real Crossplane: the packages install, every example claim is composed and
reaches the state it should, status reports what happened, edits roll out, deletion collects
the composed resources, and the API server rejects invalid claims with the schema's message.

Once per XRD form (tests/e2e/conftest.py `form`). The example manifests are the same in both:
under `claims` (apiextensions v1 XRDs) a namespaced InferenceService or TokenCache is a claim
that Crossplane binds to a cluster-scoped X<Kind> composite it creates; under `v2` the manifest
is itself the namespaced composite (XR). A GPUPool is a cluster-scoped XR in both. "Claim"
below means the applied manifest in either form; "composite" the XR Crossplane composes.

What is not real here, and why: kwok runs the pods (no containers, no GPUs), the fake nodes
advertise the extended resources a device plugin would (hack/e2e DEFAULT_NODES), static
PersistentVolumes stand in for a provisioner, and no KEDA operator runs, so a ScaledObject never
reports Ready and a claim that autoscales with KEDA stays unready on that alone (asserted).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.e2e.controlplane import condition
from hack.e2e.crossplane import CONFIGURATION, FUNCTIONS, Crossplane
from tests.cli.test_validate import INVALID
from tests.e2e import requires_e2e
from tests.fnharness import with_spec
from tests.toolchain import ROOT

pytestmark = [pytest.mark.e2e, requires_e2e]

EXAMPLES = sorted((ROOT / "examples" / "claims").glob("*.yaml"))
TIMEOUT = 180.0  # composition, kwok and the controllers on a loaded 2-core CI machine


@dataclass(frozen=True)
class Outcome:
    """What an example claim should come to. `ready`: Ready=True. Otherwise `reason` is found in
    the composite's Ready (`unready`) or Synced (`fatal`) condition message."""

    ready: bool = True
    unready: str = ""
    fatal: str = ""
    composes: bool = True  # False: everything it configures lives in status (for other claims)


READY = Outcome()
# KEDA does not run here: its ScaledObject is the one resource never Ready.
KEDA_ONLY = Outcome(ready=False, unready="Unready resources: autoscaler")


def no_pool(sharing: str, gpu: str) -> Outcome:
    # The examples' pools host none of these; the function names the pools that exist.
    return Outcome(ready=False, fatal=f"spec.gpu: no GPUPool hosts sharing {sharing} on {gpu}")


# Examples not listed must become Ready.
EXPECTED: dict[str, Outcome] = {
    # Only a GPU prefix tier: its budget is read from status by InferenceServices; no resources.
    "prefix-only-cache": Outcome(composes=False),
    "llama-70b": KEDA_ONLY,
    "qwen-triton-timeslice": KEDA_ONLY,
    "mistral-trtllm": no_pool("exclusive", "nvidia-h200"),
    "qwen-triton": no_pool("exclusive", "nvidia-l40s"),
    "mistral-trtllm-mps": no_pool("mps", "nvidia-h100"),
    # DRA pools configure nothing on the cluster: status only (the driver announces devices).
    "h100-exclusive-dra-pool": Outcome(composes=False),
    "h100-mig-dra-pool": Outcome(composes=False),
    "l4-timeslice-dra-pool": Outcome(composes=False),
}


# The composite resource definitions each form installs (named after the composite kinds).
XRDS = {
    "claims": [
        "gpupools.inference.ai",
        "xinferenceservices.inference.ai",
        "xtokencaches.inference.ai",
    ],
    "v2": ["gpupools.inference.ai", "inferenceservices.inference.ai", "tokencaches.inference.ai"],
}
CLAIM_NAME, CLAIM_NAMESPACE = "crossplane.io/claim-name", "crossplane.io/claim-namespace"


@dataclass(frozen=True)
class Claim:
    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"]).lower()

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def namespace(self) -> str:
        # GPUPool is cluster-scoped; namespaced claims without a namespace land in default.
        if self.doc["kind"] == "GPUPool":
            return ""
        return str(self.doc["metadata"].get("namespace", "default"))

    def ns_args(self) -> list[str]:
        return ["-n", self.namespace] if self.namespace else []


def load(path: Path) -> Claim:
    return Claim(path, yaml.safe_load(path.read_text()))


def resource(ref: dict[str, Any]) -> str:
    """`kind.group` for kubectl from a reference's apiVersion and kind (core kinds: `kind`)."""
    group, _, _ = ref["apiVersion"].rpartition("/")
    return f"{ref['kind'].lower()}.{group}" if group else ref["kind"].lower()


def get(xp: Crossplane, claim: Claim) -> dict[str, Any]:
    out = xp.kubectl(*claim.ns_args(), "get", claim.kind, claim.name, "-o", "json")
    return dict(json.loads(out))


def has_claim(xp: Crossplane, claim: Claim) -> bool:
    """Whether Crossplane binds the manifest to a composite of its own: a namespaced kind in the
    claims form. v2 XRs and GPUPools (cluster-scoped in both forms) are their own composite."""
    return xp.form == "claims" and claim.doc["kind"] != "GPUPool"


def composite(xp: Crossplane, claim: Claim) -> dict[str, Any]:
    """The claim's composite resource: the X<Kind> its `spec.resourceRef` names in the claims
    form (once bound), else the applied object itself."""
    obj = get(xp, claim)
    if not has_claim(xp, claim):
        return obj
    ref = obj["spec"].get("resourceRef")
    if not ref:
        return {"metadata": {}, "spec": {}, "status": {"conditions": []}}  # not bound yet
    return dict(json.loads(xp.kubectl("get", resource(ref), ref["name"], "-o", "json")))


def resource_refs(xp: Crossplane, xr: dict[str, Any]) -> list[dict[str, Any]]:
    """What Crossplane composed for `xr`: `spec.resourceRefs` of a v1 (claims form) composite,
    `spec.crossplane.resourceRefs` of a v2 XR."""
    spec = xr["spec"]
    if xp.form == "v2":
        assert "resourceRefs" not in spec, "a v2 XR keeps Crossplane's fields in spec.crossplane"
        return list(spec.get("crossplane", {}).get("resourceRefs") or [])
    assert "crossplane" not in spec, "a v1 composite has no spec.crossplane"
    return list(spec.get("resourceRefs") or [])


def eventually(check: Callable[[], str], timeout: float = TIMEOUT) -> None:
    """Poll `check` until it returns "" (done); fail with its last answer."""
    deadline = time.monotonic() + timeout
    why = ""
    while time.monotonic() < deadline:
        why = check()
        if not why:
            return
        time.sleep(1)
    pytest.fail(f"after {timeout:.0f}s: {why}")


@pytest.fixture(scope="module")
def applied(platform: Crossplane) -> dict[str, Claim]:
    """Every example claim applied with kubectl, GPUPools first (InferenceServices read them)."""
    claims = {p.stem: load(p) for p in EXAMPLES}
    for ns in sorted({c.namespace for c in claims.values()} - {"", "default"}):
        platform.cp.namespace(ns)
    pools = [c for c in claims.values() if c.doc["kind"] == "GPUPool"]
    platform.kubectl("apply", *(f"-f={c.path}" for c in pools))
    platform.kubectl(
        "wait",
        "--for=condition=Ready",
        f"--timeout={TIMEOUT:.0f}s",
        *(f"gpupool/{c.name}" for c in pools),
    )
    platform.kubectl("apply", *(f"-f={c.path}" for c in claims.values() if c not in pools))
    return claims


def test_functions_and_configuration_are_installed_and_healthy(platform: Crossplane) -> None:
    packages = json.loads(platform.kubectl("get", "function,configuration", "-o", "json"))
    got = {
        p["metadata"]["name"]: {c["type"]: c["status"] for c in p["status"]["conditions"]}
        for p in packages["items"]
    }
    assert set(got) == {*FUNCTIONS, CONFIGURATION}
    for name, conditions in got.items():
        assert conditions["Installed"] == conditions["Healthy"] == "True", name
    revisions = json.loads(platform.kubectl("get", "functionrevision", "-o", "json"))["items"]
    endpoints = {r["metadata"]["labels"]["pkg.crossplane.io/package"]: r for r in revisions}
    for fn in FUNCTIONS:
        assert endpoints[fn]["status"]["endpoint"] == platform.endpoints[fn]
    xrds = json.loads(platform.kubectl("get", "xrd", "-o", "json"))["items"]
    established = {
        x["metadata"]["name"]: {c["type"]: c["status"] for c in x["status"]["conditions"]}
        for x in xrds
    }
    assert sorted(established) == XRDS[platform.form]
    assert all(c["Established"] == "True" for c in established.values())
    # Claims are offered for the namespaced kinds of the claims form only.
    offered = {name for name, c in established.items() if c.get("Offered") == "True"}
    if platform.form == "claims":
        assert offered == {"xinferenceservices.inference.ai", "xtokencaches.inference.ai"}
    else:
        assert offered == set()
    scopes = {x["metadata"]["name"]: x["spec"].get("scope", "") for x in xrds}
    if platform.form == "v2":
        assert scopes == {
            "gpupools.inference.ai": "Cluster",
            "inferenceservices.inference.ai": "Namespaced",
            "tokencaches.inference.ai": "Namespaced",
        }


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_example_claim_is_composed_and_reaches_its_expected_state(
    platform: Crossplane, applied: dict[str, Claim], name: str
) -> None:
    claim = applied[name]
    want = EXPECTED.get(name, READY)

    def reached() -> str:
        xr = composite(platform, claim)
        synced, ready = condition(xr, "Synced"), condition(xr, "Ready")
        if want.fatal:
            ok = synced.get("status") == "False" and want.fatal in synced.get("message", "")
            return "" if ok else f"Synced: {synced}"
        if synced.get("status") != "True":
            return f"Synced: {synced}"
        if want.ready:
            if condition(get(platform, claim), "Ready").get("status") == "True":
                return ""
            return f"claim not Ready; composite Ready: {ready}"
        return "" if ready.get("message") == want.unready else f"Ready: {ready}"

    eventually(reached)
    if want.fatal:
        return
    # Composed resources exist and are owned by the composite (garbage collection relies on it).
    xr = composite(platform, claim)
    refs = resource_refs(platform, xr)
    assert bool(refs) is want.composes, xr["spec"]
    for ref in refs:
        kind = resource(ref)
        ns = ref.get("namespace") or claim.namespace
        obj = json.loads(
            platform.kubectl(*(["-n", ns] if ns else []), "get", kind, ref["name"], "-o", "json")
        )
        owners = [o["uid"] for o in obj["metadata"].get("ownerReferences", [])]
        assert xr["metadata"]["uid"] in owners, f"{kind}/{ref['name']}"


@pytest.mark.parametrize("name", ["llama-8b-h100-exclusive", "session-cache-lfu", "t4-mps-pool"])
def test_composite_has_the_shape_its_xrd_form_defines(
    platform: Crossplane, applied: dict[str, Claim], name: str
) -> None:
    claim = applied[name]
    kind = claim.doc["kind"]

    def composed() -> str:
        return "" if resource_refs(platform, composite(platform, claim)) else "nothing composed yet"

    eventually(composed)
    obj, xr = get(platform, claim), composite(platform, claim)
    crossplane = xr["spec"]["crossplane"] if platform.form == "v2" else xr["spec"]
    # Each Composition is named after its XRD, i.e. the composite's plural.
    xrd = f"{xr['kind'].lower()}s.inference.ai"
    assert xrd in XRDS[platform.form]
    assert crossplane["compositionRef"] == {"name": xrd}
    if has_claim(platform, claim):
        # claims: the namespaced claim binds a cluster-scoped X<Kind> that points back at it.
        ref = obj["spec"]["resourceRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("inference.ai/v1alpha1", f"X{kind}")
        assert "namespace" not in xr["metadata"]
        labels = xr["metadata"]["labels"]
        assert (labels[CLAIM_NAME], labels[CLAIM_NAMESPACE]) == (claim.name, claim.namespace)
        assert xr["spec"]["claimRef"] == {
            "apiVersion": "inference.ai/v1alpha1",
            "kind": kind,
            "name": claim.name,
            "namespace": claim.namespace,
        }
    else:
        # v2, and GPUPool in both forms: the applied object is the XR, no claim is involved.
        assert xr["metadata"]["uid"] == obj["metadata"]["uid"]
        assert xr["metadata"].get("namespace", "") == claim.namespace
        assert "resourceRef" not in xr["spec"]
        assert "claimRef" not in xr["spec"]
        assert CLAIM_NAME not in xr["metadata"].get("labels", {})
    # What it composes lives beside it: in its namespace, or cluster-wide for a GPUPool.
    for ref in resource_refs(platform, xr):
        assert ref.get("namespace", claim.namespace) == claim.namespace, ref


def _ready_claim(platform: Crossplane, claim: Claim) -> dict[str, Any]:
    def ready() -> str:
        got = condition(get(platform, claim), "Ready")
        return "" if got.get("status") == "True" else f"Ready: {got}"

    eventually(ready)
    return get(platform, claim)


def test_inference_service_status_reports_endpoint_pool_and_conditions(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    claim = applied["llama-8b-h100-exclusive"]
    xr = composite(platform, claim)
    _ready_claim(platform, claim)
    xr = composite(platform, claim)
    status = xr["status"]
    service = json.loads(
        platform.kubectl("-n", claim.namespace, "get", "service", claim.name, "-o", "json")
    )
    port = service["spec"]["ports"][0]["port"]
    assert status["endpoint"] == (
        f"http://{claim.name}.{claim.namespace}.svc.cluster.local:{port}/v1"
    )
    for typ in ("BackendReady", "GPUAllocated", "SpecHonoured"):
        assert condition(xr, typ).get("status") == "True", typ
    assert status["pool"] == "h100-exclusive"
    assert status["readyReplicas"] == claim.doc["spec"]["replicas"]


def test_gpu_pool_status_reports_the_products_of_its_nodes(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    pool = _ready_claim(platform, applied["t4-mps-pool"])
    assert pool["status"]["gpuProducts"] == ["Tesla-T4"]
    assert pool["status"]["nodes"] == 1


def _selected_nodes(platform: Crossplane, selector: dict[str, str]) -> set[str]:
    """The Nodes a label selector matches, as the API server evaluates it."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    nodes = json.loads(platform.kubectl("get", "nodes", "-l", labels, "-o", "json"))
    return {n["metadata"]["name"] for n in nodes["items"]}


def _agent_pods(platform: Crossplane, selector: str) -> list[dict[str, Any]]:
    out = platform.kubectl("-n", "gpu-operator", "get", "pods", "-l", selector, "-o", "json")
    return list(json.loads(out)["items"])


# a100-pool-grown's nodes exist only in its render example (examples/required), which holds the
# previous plan it re-plans from; the control plane has none.
WITHOUT_FAKE_NODES = {"a100-pool-grown"}


def _runs_agent(pool: dict[str, Any]) -> bool:
    """DRA pools run no agent (they label no node); a pool may turn it off."""
    spec = pool["spec"]
    return bool(
        spec.get("allocation", "device-plugin") == "device-plugin"
        and spec.get("metricsAgent", {}).get("enabled", True)
    )


def test_each_pools_metrics_agent_runs_on_its_fake_gpu_nodes_and_nowhere_else(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    """The DaemonSet controller places one agent pod per node the pool owns (its nodeSelector
    plus the owner label the pool's node Objects applied), the scheduler binds them and kwok
    runs them; the DaemonSet's own status counts them ready.

    The pool's status.metricsAgent is read from the provider's observation of the DaemonSet,
    which it refreshes on its poll (10 min by default, as deployed): only its name is checked
    here; tests/unit/test_gpupool_metricsagent.py derives readiness from observed states."""
    pools = {
        c.name: c for c in applied.values() if c.doc["kind"] == "GPUPool" and _runs_agent(c.doc)
    }
    owned = {
        name: _selected_nodes(platform, c.doc["spec"]["nodeSelector"])
        for name, c in pools.items()
        if name not in WITHOUT_FAKE_NODES
    }
    # Every other example pool has fake nodes (DEFAULT_NODES); DRA pools' agents must not run.
    assert all(owned.values()), owned
    placed: dict[str, list[str]] = {}

    def running_where_owned() -> str:
        placed.clear()
        for pod in _agent_pods(platform, "app.kubernetes.io/component=gpu-metrics"):
            if pod["status"].get("phase") != "Running":
                return f"{pod['metadata']['name']}: {pod['status'].get('phase')}"
            pool = pod["metadata"]["labels"]["inference.ai/gpupool"]
            placed.setdefault(pool, []).append(pod["spec"].get("nodeName", ""))
        got = {name: sorted(nodes) for name, nodes in placed.items()}
        want = {name: sorted(nodes) for name, nodes in owned.items()}
        return "" if got == want else f"agents on {got}, pools own {want}"

    eventually(running_where_owned)
    # One agent per node, never two pools' on one node.
    every = [n for nodes in placed.values() for n in nodes]
    assert len(every) == len(set(every))
    for name, nodes in owned.items():
        # The pool labelled the nodes it owns.
        assert _selected_nodes(platform, {"inference.ai/gpupool": name}) == nodes
        ds = json.loads(
            platform.kubectl(
                "-n", "gpu-operator", "get", "daemonset", f"{name}-gpu-metrics", "-o", "json"
            )
        )

        def counted(ds_name: str = f"{name}-gpu-metrics", want: int = len(nodes)) -> str:
            got = json.loads(
                platform.kubectl("-n", "gpu-operator", "get", "daemonset", ds_name, "-o", "json")
            )["status"]
            ready = got.get("desiredNumberScheduled") == got.get("numberReady") == want
            return "" if ready else f"{ds_name}: {got}"

        eventually(counted)
        assert ds["spec"]["template"]["spec"]["runtimeClassName"] == "nvidia"
        agent = composite(platform, pools[name])["status"]["metricsAgent"]
        assert agent["daemonSet"] == f"gpu-operator/{name}-gpu-metrics"


def test_a_younger_pool_on_the_same_nodes_runs_no_agent_there(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    """A second pool selecting t4-mps's node: the node stays t4-mps's (the older), so the
    newcomer's DaemonSet selects no node and says so; deleting it deletes its DaemonSet."""
    original = applied["t4-mps-pool"]
    doc = copy.deepcopy(original.doc)
    doc["metadata"] = {"name": "t4-rival"}
    rival = Claim(Path("t4-rival"), doc)
    nodes = _selected_nodes(platform, doc["spec"]["nodeSelector"])
    platform.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    try:

        def reported() -> str:
            got = condition(composite(platform, rival), "MetricsAgentReady")
            return "" if got.get("reason") == "NoNodes" else f"MetricsAgentReady: {got}"

        eventually(reported)
        pods = json.loads(
            platform.kubectl(
                "-n",
                "gpu-operator",
                "get",
                "pods",
                "-l",
                "inference.ai/gpupool=t4-rival",
                "-o",
                "json",
            )
        )["items"]
        assert pods == []
        assert _selected_nodes(platform, {"inference.ai/gpupool": "t4-mps"}) == nodes
    finally:
        platform.kubectl("delete", "gpupool", "t4-rival", "--wait=true", "--timeout=120s")

    def deleted() -> str:
        got = platform.kubectl(
            "-n", "gpu-operator", "get", "daemonset", "t4-rival-gpu-metrics", "--ignore-not-found"
        )
        return got.strip() and f"DaemonSet still there: {got}"

    eventually(deleted)


def test_token_cache_status_reports_its_redis_endpoint(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    claim = applied["session-cache-lfu"]
    cache = _ready_claim(platform, claim)
    redis = [t for t in cache["status"]["tiers"] if t["type"] == "redis"]
    assert len(redis) == 1
    assert redis[0]["ready"] is True
    assert redis[0]["endpoint"].startswith(f"redis://{claim.name}-redis.{claim.namespace}.svc")


def composites(xp: Crossplane, kind: str) -> list[dict[str, Any]]:
    """Every composite of `kind` (e.g. InferenceService), in all namespaces: the X<Kind>
    composites of the claims form, else the XRs."""
    prefix = "x" if xp.form == "claims" and kind != "GPUPool" else ""
    out = xp.kubectl("get", f"{prefix}{kind.lower()}s.inference.ai", "-A", "-o", "json")
    return list(json.loads(out)["items"])


def test_composites_read_each_other_as_required_resources(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    """The functions read other kinds' composites through Crossplane's required resources, asking
    for the form's composite kind in the right namespace (claims: cluster-scoped X-composites
    found by their claim labels; v2: namespaced XRs): an InferenceService binds the TokenCache
    of its namespace, the TokenCache warms the ready InferenceServices bound to it, and a
    GPUPool counts what the InferenceServices bound to it request, in every namespace."""
    service, cache = applied["llama-70b"], applied["shared-cache"]
    pool = applied["h100-exclusive-pool"]

    def bound() -> str:
        got = composite(platform, service).get("status", {})
        return "" if got.get("tokenCache") == cache.name else f"status.tokenCache: {got}"

    eventually(bound)
    endpoint = composite(platform, service)["status"]["endpoint"]

    def warmed() -> str:
        got = composite(platform, cache).get("status", {})
        return "" if got.get("warmupTargets") == [endpoint] else f"warmupTargets: {got}"

    eventually(warmed)

    def counted() -> str:
        want = sum(
            s["status"]["desiredReplicas"] * s["status"].get("gpusPerReplica", 1)
            for s in composites(platform, "InferenceService")
            if s.get("status", {}).get("pool") == pool.name
        )
        capacity = composite(platform, pool).get("status", {}).get("capacity", {})
        got = capacity.get("nvidia.com/gpu", {}).get("requested")
        return "" if want and got == want else f"requested {got}, bound services request {want}"

    eventually(counted)


def _deployment(platform: Crossplane, claim: Claim) -> dict[str, Any]:
    out = platform.kubectl("-n", claim.namespace, "get", "deployment", claim.name, "-o", "json")
    return dict(json.loads(out))


def test_editing_a_claim_rolls_the_change_out(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    claim = applied["phi-timeslice"]
    _ready_claim(platform, claim)
    before = _deployment(platform, claim)
    replicas = before["spec"]["replicas"] + 1
    platform.kubectl(
        "-n",
        claim.namespace,
        "patch",
        claim.kind,
        claim.name,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"replicas": replicas}}),
    )

    def rolled_out() -> str:
        got = _deployment(platform, claim)
        available = got.get("status", {}).get("availableReplicas", 0)
        if got["spec"]["replicas"] == replicas and available == replicas:
            return ""
        return f"spec.replicas {got['spec']['replicas']}, available {available}"

    eventually(rolled_out)
    _ready_claim(platform, claim)


def test_deleting_a_claim_garbage_collects_what_it_composed(
    platform: Crossplane, applied: dict[str, Claim]
) -> None:
    # A copy under another name, so the example claims stay for the other tests.
    doc = copy.deepcopy(load(ROOT / "examples" / "claims" / "gemma-mps.yaml").doc)
    doc["metadata"]["name"] = "gemma-delete"
    claim = Claim(Path("gemma-delete"), doc)
    platform.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    _ready_claim(platform, claim)
    xr = composite(platform, claim)
    refs = [(r["kind"], r["name"]) for r in resource_refs(platform, xr)]
    assert ("Deployment", "gemma-delete") in refs

    platform.kubectl("-n", claim.namespace, "delete", claim.kind, claim.name, "--wait=true")

    def collected() -> str:
        left = []
        for kind, name in refs:
            got = platform.kubectl(
                "-n",
                claim.namespace,
                "get",
                kind.lower(),
                name,
                "--ignore-not-found",
                "-o",
                "name",
                check=False,
            )
            left += got.splitlines()
        return f"still there: {left}" if left else ""

    eventually(collected)


# The schema's CEL rules (tests/cli: the same specs `crossplane resource validate` rejects and
# the functions reject with the same message), plus enum violations only a server reports so.
SERVER_INVALID = [
    *INVALID,
    (
        "session-cache-lfu.yaml",
        {"tiers": [{"name": "a", "type": "nvme", "size": "1Gi"}]},
        'Unsupported value: "nvme"',
    ),
    ("session-cache-lfu.yaml", {"evictionPolicy": "fifo"}, 'Unsupported value: "fifo"'),
    ("gemma-mps.yaml", {"gpu.sharing": "vgpu"}, 'Unsupported value: "vgpu"'),
]


@pytest.mark.parametrize(
    ("name", "changes", "message"), SERVER_INVALID, ids=[m for _, _, m in SERVER_INVALID]
)
def test_api_server_rejects_an_invalid_claim_with_the_schema_message(
    platform: Crossplane,
    applied: dict[str, Claim],
    name: str,
    changes: dict[str, Any],
    message: str,
) -> None:
    claim = load(ROOT / "examples" / "claims" / name)
    doc = with_spec(copy.deepcopy(claim.doc), **changes)
    doc["metadata"]["name"] = f"invalid-{claim.name}"[:63]
    result = platform.cp.kubectl(
        *claim.ns_args(),
        "create",
        "--dry-run=server",
        "-f",
        "-",
        # JSON, not YAML: PyYAML writes the string "1e19" bare, which kubectl's YAML reader takes
        # for a number, and the API server then refuses its type before any CEL rule runs.
        input=json.dumps(doc),
        check=False,
    )
    assert result.returncode != 0, f"accepted: {doc['spec']}"
    assert message in result.stderr
