"""What Crossplane can send a function, as hypothesis strategies: `cases(kind)`.

A case is a composite (spec from the XRD schema, from an example, an example with a subtree the
schema generated, or one of those with a mutation that breaks the schema), its metadata (every
name the API server accepts for the kind, and sometimes one it does not), observed composed
resources (what the API server reports for their kinds, sometimes shapes it never would) and
required resources (Nodes, StorageClasses, Gateways and peer composites valid under our schema,
as an older function version wrote them, or malformed). Tags say which of those a case holds,
so the report can tell inputs a healthy API server can produce from the rest.
"""

from __future__ import annotations

import copy
import functools
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2 as fnv1
from hypothesis import strategies as st

from functions.common.gpus import CATALOG, models_with_profiles
from functions.common.kinds import GPU_POOL, INFERENCE_SERVICE, KINDS, TOKEN_CACHE, Kind
from functions.common.meta import CLAIM_NAME, CLAIM_NAMESPACE
from tests.fuzz import schema

EXAMPLES = schema.ROOT / "examples"
KIND_NAMES = {k.kind: k for k in KINDS}
Path = tuple[str | int, ...]

# Requirement name -> what Crossplane answers it with, per function.
REQUIRED: dict[str, dict[str, str]] = {
    INFERENCE_SERVICE.kind: {
        "gpupools": "GPUPool",
        "tokencaches": "TokenCache",
        "storageclasses": "StorageClass",
        "gateway": "Gateway",
    },
    GPU_POOL.kind: {
        "nodes": "Node",
        "inferenceservices": "InferenceService",
        "gpupools": "GPUPool",
    },
    TOKEN_CACHE.kind: {"inferenceservices": "InferenceService"},
}

# Values a mutation puts where the schema expects something else. JSON can carry all of these.
ODD: tuple[Any, ...] = (
    None, "", " ", "x" * 300, "y" * 70_000, -1, 0, 1, 2**31, 2**53, 2**63, 2**64, -(2**63) - 1,
    1e308, -1e308, 0.5, 1e-300, True, False, [], {}, [None], {"a": 1}, [[[]]],
    "Infinity", "NaN", "-Infinity", "1e400", "8Ei", "1e19", "9e18", "-1Gi", ".5", "0x10",
    "9223372036854775807", "99999999999999999999", "µ", "a b", "\x00", "../..", "llama.v2",
    "9lives", "A" * 64, "-", "1.5", "1e308", "0", "-0", "999Ei",
)  # fmt: skip
# Struct numbers JSON cannot carry (only hand-made input can send them).
NON_JSON: tuple[float, ...] = (float("inf"), float("-inf"), float("nan"))
NAMES_ACCEPTED = (
    "a", "llama.v2", "9lives", "0", "a" * 63, "a-b.c-d", "x" * 253, "1-2", "model.v1.2",
    "ab" + ".cd" * 80,
)  # fmt: skip
NAMES_REFUSED = (".5", "-1Gi", "Upper", "", "a" * 254, "a b", "a_b", "a..b", 5, None, ["x"])
DNS_LABEL_RE = r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?"
SUBDOMAIN_RE = rf"{DNS_LABEL_RE}(\.{DNS_LABEL_RE}){{0,3}}"
LABEL_KEY_RE = (
    r"([a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?"
)
LABEL_VALUE_RE = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?"
PRODUCTS = tuple(sorted({p for m in CATALOG for p in m.products}))
GPU_COUNTS = ("1", "2", "4", "8")
ODD_GPU_COUNTS = (
    "0", "-1", "abc", "", "999999999", "1000000", "9223372036854775807", "1e3", " 8", "8.0",
    "99999999999999999999999", "+4", "٨",
)  # fmt: skip
MIG_STATES = ("success", "pending", "failed", "rebooting")


@dataclass
class Case:
    """One RunFunction request, in dicts, with what it was built from."""

    kind: Kind
    composite: dict[str, Any]
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: dict[str, list[Any]] | None = None
    conditions: bool = True
    broken: Path | None = None
    """Where a mutation broke the input (a fatal result must name it), if it did."""
    tags: frozenset[str] = frozenset()

    def request(self, shuffle: int | None = None) -> fnv1.RunFunctionRequest:
        """The request Crossplane would send; `shuffle` reorders every map (seeded)."""
        order = random.Random(shuffle) if shuffle is not None else None

        def arrange(value: Any) -> Any:
            if isinstance(value, dict):
                items = list(value.items())
                if order is not None:
                    order.shuffle(items)
                return {k: arrange(v) for k, v in items}
            if isinstance(value, list):
                return [arrange(v) for v in value]
            return value

        observed = arrange(self.observed)
        required = arrange(self.required or {})
        return fnv1.RunFunctionRequest(
            meta=fnv1.RequestMeta(
                capabilities=[fnv1.CAPABILITY_CONDITIONS] if self.conditions else []
            ),
            observed=fnv1.State(
                composite=fnv1.Resource(resource=resource.dict_to_struct(arrange(self.composite))),
                resources={
                    name: fnv1.Resource(resource=resource.dict_to_struct(obj))
                    for name, obj in observed.items()
                },
            ),
            required_resources={
                name: fnv1.Resources(
                    items=[fnv1.Resource(resource=resource.dict_to_struct(o)) for o in objs]
                )
                for name, objs in required.items()
            },
        )


def _docs(pattern: str) -> Iterator[dict[str, Any]]:
    for path in sorted(EXAMPLES.glob(pattern)):
        yield from (d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))


def _kind_of(doc: dict[str, Any]) -> str:
    kind = str(doc.get("kind"))
    return kind.removeprefix("X") if kind.removeprefix("X") in KIND_NAMES else kind


@functools.cache
def examples() -> dict[str, tuple[dict[str, Any], ...]]:
    """Every example document (claims, required and observed) by kind (X<Kind> as <Kind>)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in _docs("*/*.yaml"):
        out.setdefault(_kind_of(doc), []).append(doc)
    return {k: tuple(v) for k, v in out.items()}


@functools.cache
def composed() -> dict[str, dict[str, tuple[dict[str, Any], ...]]]:
    """What each function composes for the examples: kind -> resource name -> objects (the
    shapes observed resources come back in)."""
    from tests.fuzz.oracle import run  # noqa: PLC0415 (oracle imports this module)

    cluster = {"gpupools": list(examples()["GPUPool"]), "tokencaches": []}
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for kind in KINDS:
        for doc in examples()[kind.kind]:
            if "spec" not in doc or "status" in doc:
                continue
            case = Case(kind, _claims_form(kind, doc), required=cluster)
            rsp = run(case.request())
            for name, r in rsp.desired.resources.items():
                obj = resource.struct_to_dict(r.resource)
                out.setdefault(kind.kind, {}).setdefault(name, []).append(obj)
    return {k: {n: tuple(v) for n, v in sorted(by.items())} for k, by in out.items()}


def _claims_form(kind: Kind, doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata") or {}
    name = str(meta.get("name", "x"))
    if not kind.namespaced:
        return {**doc, "metadata": {"name": name}}
    return {
        **doc,
        "kind": kind.composite_kind,
        "metadata": {
            "name": f"{name}-x1y2z",
            "labels": {CLAIM_NAME: name, CLAIM_NAMESPACE: meta.get("namespace", "default")},
        },
    }


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every node's path in a JSON tree (the root included)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


def get(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def put(root: Any, path: Path, value: Any) -> Any:
    """`root` with the node at `path` replaced (root itself when path is empty)."""
    if not path:
        return value
    parent = get(root, path[:-1])
    parent[path[-1]] = value
    return root


def deep(depth: int) -> Any:
    out: Any = "leaf"
    for _ in range(depth):
        out = {"a": out}
    return out


@st.composite
def odd_value(draw: st.DrawFn, json_only: bool = True) -> tuple[Any, bool]:
    """A value of the wrong type, range or format; and whether JSON can carry it."""
    pool = ODD if json_only else ODD + NON_JSON
    choice = draw(st.integers(0, 9))
    if choice < 6:
        value = draw(st.sampled_from(pool))
    elif choice == 6:
        value = draw(st.text(max_size=30))
    elif choice == 7:
        value = draw(st.integers() | st.floats(allow_nan=False, allow_infinity=False))
    elif choice == 8:
        value = deep(draw(st.integers(5, 20)))  # protobuf decodes 100 levels at most
    else:
        value = draw(st.sampled_from(NON_JSON)) if not json_only else draw(st.sampled_from(ODD))
    return value, not (isinstance(value, float) and not math.isfinite(value))


@st.composite
def mutated(draw: st.DrawFn, root: Any, prefix: Path) -> tuple[Any, Path | None, bool]:
    """`root` (a copy) with one node replaced, removed, multiplied or given an unknown key.

    Returns the new root, the path a fatal result should name (None when the mutation may
    leave the input valid) and whether JSON can carry it.
    """
    root = copy.deepcopy(root)
    # A resource itself stays an object: the wire carries each one as a Struct.
    where = draw(st.sampled_from([p for p in paths(root) if p or prefix] or [()]))
    op = draw(st.sampled_from(("replace", "replace", "replace", "delete", "unknown", "grow")))
    target = get(root, where)
    if op == "delete" and where:
        parent = get(root, where[:-1])
        del parent[where[-1]]
        return root, None, True
    if op == "unknown" and isinstance(target, dict):
        key = draw(st.sampled_from(("unknownField", "x-extra", "", "spec", "a b")))
        target[key] = draw(st.sampled_from(ODD[:12]))
        return root, (*prefix, *where, key), True
    if op == "grow" and isinstance(target, list) and target:
        n = draw(st.sampled_from((17, 100, 1000)))
        put(root, where, [copy.deepcopy(target[0]) for _ in range(n)])
        return root, None, True
    value, is_json = draw(odd_value(json_only=draw(st.integers(0, 19)) > 0))
    return put(root, where, value), (*prefix, *where), is_json


@st.composite
def spec(draw: st.DrawFn, kind: Kind) -> tuple[Any, Path | None, set[str]]:
    """A spec: example, schema-generated, spliced or mutated; its broken path; its tags."""
    docs = [d for d in examples()[kind.kind] if "spec" in d and "status" not in d]
    how = draw(st.sampled_from(("example", "schema", "schema", "splice", "splice", "mutate") * 1))
    base = copy.deepcopy(draw(st.sampled_from(docs))["spec"])
    if how == "schema" or (how == "mutate" and draw(st.booleans())):
        base = draw(schema.spec_strategy(kind))
    if how == "splice":
        declared = schema.part(kind, "spec")
        spots = [p for p in paths(base) if p and schema.subschema(declared, p) is not None]
        if spots:
            where = draw(st.sampled_from(spots))
            sub = schema.subschema(declared, where)
            assert sub is not None
            base = put(base, where, draw(schema.strategy(sub)))
    if how != "mutate":
        return base, None, {f"spec-{how}"}
    out, broken, is_json = draw(mutated(base, ("spec",)))
    return out, broken, {"spec-mutated"} | (set() if is_json else {"non-json"})


@st.composite
def metadata(draw: st.DrawFn, kind: Kind, form: str) -> tuple[dict[str, Any], bool]:
    """Metadata of a composite as Crossplane sends it; and whether it is one the API server
    would refuse (then the fatal result must name metadata)."""
    refused = draw(st.integers(0, 24)) == 0
    if refused:
        name: Any = draw(st.sampled_from(NAMES_REFUSED))
    elif draw(st.booleans()):
        name = draw(st.sampled_from(NAMES_ACCEPTED))
    else:
        name = draw(st.from_regex(SUBDOMAIN_RE, fullmatch=True))
    namespace: Any = draw(st.sampled_from(("default", "team-a", "ml", "n" * 63)))
    if refused and draw(st.booleans()):
        namespace = draw(st.sampled_from(NAMES_REFUSED))
    meta: dict[str, Any] = {}
    if draw(st.booleans()):
        meta["creationTimestamp"] = draw(
            st.sampled_from(("2026-01-02T03:04:05Z", "2025-12-31T23:59:59Z", "", "garbage"))
        )
    if not kind.namespaced:
        return {**meta, "name": name}, refused
    if form == "v2":
        return {**meta, "name": name, "namespace": namespace}, refused
    if not refused and isinstance(name, str) and len(name) > 63:
        name = name[:63].rstrip(".-")  # a claim's name is a label value on its composite
    suffix = draw(st.from_regex(r"[a-z0-9]{5}", fullmatch=True))
    generated = f"{name}-{suffix}"[:253] if isinstance(name, str) else name
    labels = {CLAIM_NAME: name, CLAIM_NAMESPACE: namespace}
    return {**meta, "name": generated, "labels": labels}, refused


def composite_for(kind: Kind, form: str, meta: dict[str, Any], body: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "inference.ai/v1alpha1",
        "kind": kind.composite_kind if form == "claims" else kind.kind,
        "metadata": meta,
        "spec": body,
    }
    if isinstance(body, dict):
        crossplane = {"compositionRef": {"name": f"{kind.plural}.inference.ai"}}
        doc["spec"] = {**body, "crossplane": crossplane} if form == "v2" else {**crossplane, **body}
    return doc


@st.composite
def label_pairs(draw: st.DrawFn, max_size: int = 3) -> dict[str, str]:
    return draw(
        st.dictionaries(
            st.from_regex(LABEL_KEY_RE, fullmatch=True),
            st.from_regex(LABEL_VALUE_RE, fullmatch=True),
            max_size=max_size,
        )
    )


def _node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def fitting_products(body: Any) -> tuple[str, ...]:
    """Products of the GPU models a pool's MIG profiles exist on (so planning runs)."""
    sharing = body.get("sharing") if isinstance(body, dict) else None
    profiles = sharing.get("profiles") if isinstance(sharing, dict) else None
    if not isinstance(profiles, list):
        return ()
    names = tuple(str(p.get("name")) for p in profiles if isinstance(p, dict))
    return tuple(p for m in models_with_profiles(names) for p in m.products)


def _gfd(rng: random.Random, odd: bool, fitting: tuple[str, ...]) -> dict[str, str]:
    """GPU feature discovery's labels on one node."""
    product = rng.choice(fitting if fitting and rng.random() < 0.7 else PRODUCTS)
    if rng.random() < 0.2:
        product += rng.choice(("-SHARED", "-MIG-1g.10gb", "-MIG-3g.40gb"))
    labels = {
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.count": rng.choice(ODD_GPU_COUNTS if odd else GPU_COUNTS),
        "nvidia.com/mig.config.state": rng.choice(MIG_STATES),
    }
    if rng.random() < 0.3:
        labels["nvidia.com/mig.config"] = rng.choice(("all-disabled", "all-balanced", "x-abc123"))
    for label in list(labels):
        if rng.random() < 0.1:
            del labels[label]
    return labels


@st.composite
def nodes(draw: st.DrawFn, body: Any, large: int) -> tuple[list[Any], set[str]]:
    """Nodes the pool's selector matched (their labels as GFD sets them)."""
    tags: set[str] = set()
    n = draw(st.integers(0, 6))
    if large and draw(st.integers(0, 199)) == 0:
        n = draw(st.sampled_from((100, 500, 1000, 2000, large)))
        tags.add("large-pool")
    selector = body.get("nodeSelector") if isinstance(body, dict) else None
    fitting = fitting_products(body)
    rng = random.Random(draw(st.integers(0, 2**32)))
    odd = draw(st.integers(0, 9)) == 0
    if odd:
        tags.add("mislabelled-node")
    match = {str(k): str(v) for k, v in selector.items()} if isinstance(selector, dict) else {}
    out: list[Any] = []
    for i in range(n):
        labels = {**_gfd(rng, odd and rng.random() < 0.5, fitting), **match}
        if i < 3:
            labels.update(draw(label_pairs()))
        out.append(_node(f"gpu-node-{i}" if rng.random() < 0.8 else f"n{i}.zone.example", labels))
    return out, tags


@st.composite
def peer(draw: st.DrawFn, kind: Kind, form: str, owner: tuple[str, str]) -> tuple[Any, set[str]]:
    """A composite of another function as the API server holds it."""
    docs = [d for d in examples()[kind.kind] if "spec" in d]
    how = draw(st.sampled_from(("example", "example", "schema", "older", "malformed")))
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    tags = {f"peer-{how}"}
    if how == "schema":
        doc["spec"] = draw(schema.spec_strategy(kind))
        doc["status"] = draw(schema.status_strategy(kind))
    name = draw(st.sampled_from((str((doc.get("metadata") or {}).get("name", "p")), *owner[:1])))
    namespace = draw(st.sampled_from((owner[1], "default", "team-c")))
    if kind.namespaced and form == "v2":
        doc.update(kind=kind.kind, metadata={"name": name, "namespace": namespace})
    elif kind.namespaced:
        labels = {CLAIM_NAME: name, CLAIM_NAMESPACE: namespace}
        doc.update(kind=kind.composite_kind, metadata={"name": f"{name}-abcde", "labels": labels})
    else:
        doc["metadata"] = {"name": name}
    if draw(st.booleans()):
        doc["metadata"]["creationTimestamp"] = draw(
            st.sampled_from(("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"))
        )
    status = doc.setdefault("status", {})
    if kind is INFERENCE_SERVICE and isinstance(status, dict) and draw(st.booleans()):
        status.update(tokenCache=owner[0], endpoint="http://x.default.svc:8000/v1")
        status.update(servedModel="m", readyReplicas=draw(st.sampled_from((0, 1, 3))))
    if how == "older":
        # Fields an older function wrote and this one no longer declares, or has not yet.
        for key in draw(st.lists(st.sampled_from(list(status) or ["x"]), max_size=3)):
            status.pop(key, None)
        if draw(st.booleans()):
            status[draw(st.sampled_from(("legacyField", "capacity", "tiers")))] = draw(
                st.sampled_from(("x", 1, {"a": "b"}, [1]))
            )
    if how == "malformed":
        doc, _, is_json = draw(mutated(doc, ()))
        tags |= set() if is_json else {"non-json"}
    return doc, tags


@st.composite
def storage_class(draw: st.DrawFn) -> tuple[Any, set[str]]:
    meta: dict[str, Any] = {"name": draw(st.sampled_from(("standard", "fast", "nfs", "rwx")))}
    if draw(st.booleans()):
        default = draw(st.sampled_from(("true", "false")))
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": default}
    meta["creationTimestamp"] = draw(
        st.sampled_from(("2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z"))
    )
    mode = draw(st.sampled_from(("WaitForFirstConsumer", "Immediate")))
    doc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta,
        "provisioner": "example.com/x",
        "volumeBindingMode": mode,
    }
    if draw(st.integers(0, 9)) == 0:
        doc, _, is_json = draw(mutated(doc, ()))
        return doc, {"malformed-required"} | (set() if is_json else {"non-json"})
    return doc, set()


@st.composite
def gateway(draw: st.DrawFn) -> tuple[Any, set[str]]:
    doc = copy.deepcopy(examples()["Gateway"][0])
    if draw(st.booleans()):
        doc["status"] = {"addresses": draw(st.lists(st.fixed_dictionaries({
            "type": st.sampled_from(("IPAddress", "Hostname")),
            "value": st.sampled_from(("10.0.0.1", "gw.example.com", "::1")),
        }), max_size=2))}  # fmt: skip
    if draw(st.integers(0, 9)) == 0:
        doc, _, is_json = draw(mutated(doc, ()))
        return doc, {"malformed-required"} | (set() if is_json else {"non-json"})
    return doc, set()


@st.composite
def required(
    draw: st.DrawFn, kind: Kind, form: str, owner: tuple[str, str], body: Any, large: int
) -> tuple[dict[str, list[Any]] | None, set[str]]:
    if draw(st.integers(0, 5)) == 0:
        return None, {"first-call"}
    out: dict[str, list[Any]] = {}
    tags: set[str] = set()
    for name, what in REQUIRED[kind.kind].items():
        if draw(st.integers(0, 5)) == 0:
            continue  # not fetched yet
        items: list[Any] = []
        if what == "Node":
            items, more = draw(nodes(body, large))
            tags |= more
        else:
            for _ in range(draw(st.integers(0, 4))):
                if what in KIND_NAMES:
                    item, more = draw(peer(KIND_NAMES[what], form, owner))
                elif what == "StorageClass":
                    item, more = draw(storage_class())
                else:
                    item, more = draw(gateway())
                items.append(item)
                tags |= more
        out[name] = items
    return out, tags


DEPLOYMENT_STATUS = st.fixed_dictionaries(
    {},
    optional={
        "observedGeneration": st.integers(0, 5),
        "replicas": st.integers(0, 2**31 - 1),
        "readyReplicas": st.integers(0, 10),
        "availableReplicas": st.integers(0, 10) | st.just(2**31 - 1),
        "updatedReplicas": st.integers(0, 10),
        "conditions": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(("Available", "Progressing", "Ready", "Complete")),
                    "status": st.sampled_from(("True", "False", "Unknown")),
                },
                optional={"reason": st.just("R"), "message": st.text(max_size=20)},
            ),
            max_size=3,
        ),
        "phase": st.sampled_from(("Pending", "Bound", "Lost")),
        "succeeded": st.integers(0, 2),
    },
)


@st.composite
def observed(draw: st.DrawFn, kind: Kind) -> tuple[dict[str, Any], set[str]]:
    """Composed resources as the API server reports them back (status by kind)."""
    shapes = composed().get(kind.kind, {})
    names = draw(st.lists(st.sampled_from(sorted(shapes)), max_size=6, unique=True))
    out: dict[str, Any] = {}
    tags: set[str] = set()
    for name in names:
        obj = copy.deepcopy(draw(st.sampled_from(shapes[name])))
        obj["status"] = draw(DEPLOYMENT_STATUS)
        if draw(st.booleans()):
            obj.setdefault("metadata", {})["generation"] = draw(st.integers(1, 5))
        if isinstance(obj.get("spec"), dict) and "replicas" in obj["spec"] and draw(st.booleans()):
            obj["spec"]["replicas"] = draw(st.integers(0, 2**31 - 1))
        if draw(st.integers(0, 9)) == 0:
            obj, _, is_json = draw(mutated(obj, ()))
            tags |= {"malformed-observed"} | (set() if is_json else {"non-json"})
        out[name] = obj
    return out, tags


@st.composite
def cases(draw: st.DrawFn, kind: Kind, large: int = 0) -> Case:
    """A request for `kind`'s function; `large` > 0 lets one in ~200 pools have up to that
    many nodes."""
    form = draw(st.sampled_from(schema.FORMS))
    meta, refused = draw(metadata(kind, form))
    body, broken, tags = draw(spec(kind))
    if refused:
        # On an example spec (valid), so the fatal result has only metadata to name.
        docs = [d for d in examples()[kind.kind] if "spec" in d and "status" not in d]
        body = copy.deepcopy(draw(st.sampled_from(docs))["spec"])
        broken, tags = ("metadata",), {"metadata-refused"}
    owner_name = str((meta.get("labels") or {}).get(CLAIM_NAME) or meta.get("name"))
    owner_ns = str((meta.get("labels") or {}).get(CLAIM_NAMESPACE) or meta.get("namespace"))
    req, more = draw(required(kind, form, (owner_name, owner_ns), body, large))
    obs, more2 = draw(observed(kind))
    return Case(
        kind,
        composite_for(kind, form, meta, body),
        obs,
        req,
        conditions=draw(st.booleans()),
        broken=broken,
        tags=frozenset(tags | more | more2 | {form}),
    )


BROKEN_PATH = re.compile(r"\b(?:spec|metadata|status)(?:\.[^\s:;,.\[\]]+|\[\d+\])*")
