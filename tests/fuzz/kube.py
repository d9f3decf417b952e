"""What the API server refuses in an object we render: the Kubernetes validation rules for
names, namespaces, labels, selectors and numbers (k8s.io/apimachinery/pkg/util/validation),
written out independently of the functions' own code."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# Kinds whose names are DNS-1035 labels (apimachinery ValidateServiceName) or DNS-1123
# labels (Namespace; and the names pods derive: a StatefulSet's pods are <name>-<ordinal>).
DNS1035_KINDS = frozenset({"Service"})
LABEL_NAMED_KINDS = frozenset({"Namespace", "StatefulSet"})


def is_dns1123_label(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(DNS1123_LABEL.fullmatch(value))


def is_dns1123_subdomain(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 253 and bool(DNS1123_SUBDOMAIN.fullmatch(value))


def is_dns1035_label(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(DNS1035_LABEL.fullmatch(value))


def is_qualified_name(value: Any) -> bool:
    """A label or annotation key: [prefix/]name, prefix a DNS-1123 subdomain."""
    if not isinstance(value, str):
        return False
    prefix, _, name = value.rpartition("/")
    if "/" in value and not is_dns1123_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(QUALIFIED_NAME.fullmatch(name))


def is_label_value(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 63 and bool(LABEL_VALUE.fullmatch(value))


def is_port_name(value: Any) -> bool:
    """IANA_SVC_NAME: a container port's name."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 15
        and bool(IANA_SVC_NAME.fullmatch(value))
        and "--" not in value
        and any(c.isalpha() for c in value)
    )


def name_problem(kind: str, name: Any) -> str | None:
    if kind in DNS1035_KINDS:
        ok, rule = is_dns1035_label(name), "a DNS-1035 label"
    elif kind in LABEL_NAMED_KINDS:
        ok, rule = is_dns1123_label(name), "a DNS-1123 label"
    else:
        ok, rule = is_dns1123_subdomain(name), "a DNS-1123 subdomain"
    return None if ok else f"{kind} name {name!r:.80} is not {rule}"


def labels_problems(where: str, labels: Any) -> Iterator[str]:
    if not isinstance(labels, Mapping):
        yield f"{where} is not a map"
        return
    for key, value in labels.items():
        if not is_qualified_name(key):
            yield f"{where} key {key!r:.80} is not a qualified name"
        if not is_label_value(value):
            yield f"{where}[{key}] value {value!r:.80} is not a label value"


def numbers_problems(where: str, value: Any) -> Iterator[str]:
    """Every number is a finite int64 (protobuf Structs carry them as doubles)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            yield f"{where}: {value} is not a finite number"
        elif not INT64_MIN <= value <= INT64_MAX:
            yield f"{where}: {value:.4g} is beyond int64"
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from numbers_problems(f"{where}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers_problems(f"{where}[{i}]", v)


def _object_problems(where: str, obj: Mapping[str, Any]) -> Iterator[str]:
    """Name, namespace, labels and annotations of a whole object (one with apiVersion/kind)."""
    kind = str(obj.get("kind"))
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        yield f"{where}: {kind} metadata is not a map"
        return
    if "generateName" not in meta and (problem := name_problem(kind, meta.get("name"))):
        yield f"{where}: {problem}"
    if "namespace" in meta and not is_dns1123_label(meta["namespace"]):
        yield f"{where}: namespace {meta['namespace']!r:.80} is not a DNS-1123 label"


def _walk(where: str, value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(f"{where}[{i}]", item)
        return
    if not isinstance(value, Mapping):
        return
    if "apiVersion" in value and "kind" in value and "metadata" in value:
        yield from _object_problems(where, value)
    for key, item in value.items():
        at = f"{where}.{key}"
        if key == "metadata" and isinstance(item, Mapping):
            if "labels" in item:
                yield from labels_problems(f"{at}.labels", item["labels"])
            for k in item.get("annotations") or {}:
                if not is_qualified_name(k):
                    yield f"{at}.annotations key {k!r:.80} is not a qualified name"
        elif key in ("matchLabels", "nodeSelector") and isinstance(item, Mapping):
            yield from labels_problems(at, item)
        elif key == "matchExpressions" and isinstance(item, list):
            for i, expr in enumerate(item):
                if not isinstance(expr, Mapping) or not is_qualified_name(expr.get("key")):
                    yield f"{at}[{i}]: key is not a qualified name"
                    continue
                if expr.get("operator") in ("In", "NotIn"):
                    for v in expr.get("values") or ():
                        if not is_label_value(v):
                            yield f"{at}[{i}]: value {v!r:.80} is not a label value"
        elif key in ("containers", "initContainers", "volumes") and isinstance(item, list):
            for i, c in enumerate(item):
                name = c.get("name") if isinstance(c, Mapping) else None
                if not is_dns1123_label(name):
                    yield f"{at}[{i}]: name {name!r:.80} is not a DNS-1123 label"
                if key != "volumes" and isinstance(c, Mapping):
                    for j, port in enumerate(c.get("ports") or ()):
                        if "name" in port and not is_port_name(port["name"]):
                            yield f"{at}[{i}].ports[{j}]: {port['name']!r} is not IANA_SVC_NAME"
        yield from _walk(at, item)


def object_problems(name: str, obj: Mapping[str, Any]) -> list[str]:
    """Why the API server would refuse desired resource `name` (empty when it would not)."""
    return [*_walk(name, obj), *numbers_problems(name, obj)]
