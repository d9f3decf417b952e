"""Names: every name the API server accepts for a composite gives child objects it accepts too;
metadata it would refuse is a fatal result naming the field (issue 14)."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import pytest

from functions.common import names
from functions.gpupool.wiring import node_object_name
from tests.fnharness import example, run

# Kubernetes' own rules (k8s.io/apimachinery/pkg/util/validation), written out independently of
# functions/common/names.py so that the test judges it.
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
# Kinds whose name must be a DNS-1035 label (or is used to name pods, hostnames, containers).
LABEL_NAMED = {"Service", "Deployment", "StatefulSet", "Job"}

POOL_STATUS = {"gpuProducts": ["NVIDIA-H100-80GB-HBM3"]}
REQUIRED = {"gpupools": [{**example("h100-exclusive-pool.yaml"), "status": POOL_STATUS}]}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def object_problems(obj: dict[str, Any]) -> list[str]:
    """What the API server would refuse in one object's name, namespace and labels."""
    meta = obj.get("metadata", {})
    name, kind = meta.get("name", ""), obj.get("kind")
    out = []
    if not (SUBDOMAIN.fullmatch(name) and len(name) <= 253):
        out.append(f"{kind} name {name!r}")
    if kind in LABEL_NAMED and not (DNS_1035.fullmatch(name) and len(name) <= 63):
        out.append(f"{kind} name {name!r} is not a DNS-1035 label")
    ns = meta.get("namespace")
    if ns is not None and not (SUBDOMAIN.fullmatch(ns) and len(ns) <= 63 and "." not in ns):
        out.append(f"{kind} namespace {ns!r}")
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, label = key.rpartition("/")
        if not (LABEL_NAME.fullmatch(label) and len(label) <= 63) or (
            prefix and not SUBDOMAIN.fullmatch(prefix)
        ):
            out.append(f"{kind} label key {key!r}")
        if not (LABEL_VALUE.fullmatch(value) and len(value) <= 63):
            out.append(f"{kind} label {key}={value!r}")
    manifest = obj.get("spec", {}).get("forProvider", {}).get("manifest")
    if isinstance(manifest, dict):  # provider-kubernetes Objects: the object they apply
        out += object_problems(manifest)
    return out


def named(file: str, name: str, **metadata: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example(file))
    doc["metadata"] = {"name": name, **metadata}
    if doc["kind"] != "GPUPool":
        doc["metadata"].setdefault("namespace", "default")
    return doc


VALID_NAMES = [
    "llama.v2",
    "9lives",
    "0",
    "a.b.c",
    "a--b",
    "x" * 63,
    "x" * 64,
    "y" * 233,
    "z" * 253,
    ("a" * 62 + ".") * 4 + "b",
]
FILES = ["llama-8b-h100-exclusive.yaml", "shared-cache.yaml", "h100-mig-balanced-pool.yaml"]


@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("name", VALID_NAMES, ids=lambda n: n if len(n) < 20 else f"len{len(n)}")
def test_every_name_the_api_server_accepts_gives_child_objects_it_accepts(
    file: str, name: str
) -> None:
    res = run(named(file, name), required=REQUIRED)
    assert res.fatal == []
    assert res.resources
    problems = [p for obj in res.resources.values() for p in object_problems(obj)]
    assert problems == []


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"name": ".5"}, "metadata.name: '.5'"),
        ({"name": "-1Gi"}, "metadata.name: '-1Gi'"),
        ({"name": "Llama"}, "metadata.name: 'Llama'"),
        ({"name": "a" * 254}, "metadata.name: 'aaaa"),
        ({"name": ""}, "metadata.name: ''"),
        ({}, "metadata.name: 'None'"),
        ({"name": "ok", "namespace": "Team_A"}, "metadata.namespace: 'Team_A'"),
        ({"name": "ok", "namespace": "a.b"}, "metadata.namespace: 'a.b'"),
        (
            {"name": "ok-x1", "labels": {"crossplane.io/claim-name": "-x"}},
            "metadata.labels[crossplane.io/claim-name]: '-x'",
        ),
        (
            {"name": "ok-x1", "labels": {"crossplane.io/claim-name": "a" * 64}},
            "metadata.labels[crossplane.io/claim-name]: 'aaaa",
        ),
        (
            {"name": "ok-x1", "labels": {"crossplane.io/claim-namespace": "a.b"}},
            "metadata.labels[crossplane.io/claim-namespace]: 'a.b'",
        ),
    ],
)
@pytest.mark.parametrize("file", FILES)
def test_metadata_kubernetes_would_refuse_is_fatal_naming_the_field(
    file: str, metadata: dict[str, Any], field: str
) -> None:
    doc = copy.deepcopy(example(file))
    doc["metadata"] = metadata
    res = run(doc, required=REQUIRED)
    assert len(res.fatal) == 1
    assert res.fatal[0].startswith("invalid metadata: ")
    assert field in res.fatal[0]
    assert len(res.fatal[0]) < 400  # a 254-character name is not echoed whole
    assert res.resources == {}


@pytest.mark.parametrize(
    ("base", "suffix", "expected"),
    [
        ("llama", "redis", "llama-redis"),  # valid names are kept as they are
        # The rest: a valid head, the hash of the exact name, the suffix.
        ("llama.v2", "", f"llama-v2-{sha('llama.v2')}"),
        ("9lives", "redis", f"x9lives-{sha('9lives-redis')}-redis"),
        ("A_b", "c", f"a-b-{sha('A_b-c')}-c"),
    ],
)
def test_derived_names_keep_valid_names_and_hash_the_rest(
    base: str, suffix: str, expected: str
) -> None:
    assert names.derived(base, suffix) == expected


def test_names_made_valid_stay_distinct() -> None:
    made = {names.derived(n) for n in ["llama.v2", "llama-v2", "llama.v-2"]}
    assert len(made) == 3
    assert all(DNS_1035.fullmatch(n) for n in made)


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        ({"a": ".5"}, "spec.nodeSelector.a: String should match pattern"),
        ({"a": "x" * 64}, "spec.nodeSelector.a: String should have at most 63 characters"),
        ({"a": "b c"}, "spec.nodeSelector.a: String should match pattern"),
        ({"a b": "c"}, "nodeSelector keys must be Kubernetes label keys"),
        ({"example.com/": "c"}, "nodeSelector keys must be Kubernetes label keys"),
    ],
)
def test_a_node_selector_kubernetes_would_refuse_is_fatal_naming_it(
    selector: dict[str, str], field: str
) -> None:
    doc = copy.deepcopy(example("h100-exclusive-pool.yaml"))
    doc["spec"]["nodeSelector"] = selector
    res = run(doc)
    assert len(res.fatal) == 1
    assert field in res.fatal[0]
    assert res.resources == {}


@pytest.mark.parametrize(
    "selector",
    [
        {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        {"kubernetes.io/hostname": "gpu-0.example.com", "pool": ""},
        {"A_b.c-D": "E_f.g-H", "x" * 253 + "/" + "y" * 63: "z" * 63},
    ],
)
def test_every_label_selector_kubernetes_accepts_is_the_node_requirement(
    selector: dict[str, str],
) -> None:
    doc = copy.deepcopy(example("h100-exclusive-pool.yaml"))
    doc["spec"]["nodeSelector"] = selector
    res = run(doc)
    assert res.fatal == []
    nodes = res.raw.requirements.resources["nodes"]
    assert dict(nodes.match_labels.labels) == selector


@pytest.mark.parametrize(
    ("base", "suffix", "limit", "dns_1035"),
    [
        ("a" * 250, "b" * 200, 63, True),  # a suffix too long to keep is hashed with the rest
        ("pool", "node." * 60, 63, False),
        ("x" * 253, "device-plugin-config", 253, False),
        ("p" * 56 + ".q", "node.example.com", 63, False),
        ("9" * 253, "redis-headless", 63, True),
    ],
)
def test_derived_names_are_valid_whatever_the_parts(
    base: str, suffix: str, limit: int, dns_1035: bool
) -> None:
    name = names.derived(base, suffix, limit=limit, dns_1035=dns_1035)
    assert len(name) <= limit
    assert (DNS_1035 if dns_1035 else SUBDOMAIN).fullmatch(name)


def test_node_objects_are_named_validly_for_every_pool_and_node_name() -> None:
    name = node_object_name("p" * 56 + ".q", "node.example.com")  # the SDK's cut ends in `.`
    assert SUBDOMAIN.fullmatch(name)
    assert len(name) <= 63
