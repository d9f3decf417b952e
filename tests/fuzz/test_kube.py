"""The fuzz oracle's Kubernetes rules accept what the API server accepts and nothing else
(values from k8s.io/apimachinery's validation tests and the issue's examples)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz import kube

NAMES = [
    # (value, DNS-1123 subdomain, DNS-1123 label, DNS-1035 label)
    ("a", True, True, True),
    ("llama.v2", True, False, False),
    ("9lives", True, True, False),
    ("a" * 63, True, True, True),
    ("a" * 64, True, False, False),
    ("a" * 253, True, False, False),
    ("a" * 254, False, False, False),
    (".5", False, False, False),
    ("-1gi", False, False, False),
    ("Upper", False, False, False),
    ("a..b", False, False, False),
    ("", False, False, False),
    (5, False, False, False),
]


@pytest.mark.parametrize(("value", "subdomain", "label", "dns1035"), NAMES)
def test_object_names(value: Any, subdomain: bool, label: bool, dns1035: bool) -> None:
    assert kube.is_dns1123_subdomain(value) is subdomain
    assert kube.is_dns1123_label(value) is label
    assert kube.is_dns1035_label(value) is dns1035


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("app", True),
        ("nvidia.com/gpu.count", True),
        ("app.kubernetes.io/name", True),
        ("a/b/c", False),
        ("a b", False),
        ("/name", False),
        ("Example.com/x", False),
        ("x" * 63, True),
        ("x" * 64, False),
        ("-x", False),
    ],
)
def test_label_keys(key: str, ok: bool) -> None:
    assert kube.is_qualified_name(key) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("", True), ("8", True), ("A-b_c.d", True), (".5", False), ("-1Gi", False), ("x" * 64, False)],
)
def test_label_values(value: str, ok: bool) -> None:
    assert kube.is_label_value(value) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("http", True), ("metrics-2", True), ("8080", False), ("a--b", False), ("x" * 16, False)],
)
def test_port_names(name: str, ok: bool) -> None:
    assert kube.is_port_name(name) is ok


def test_an_object_with_a_bad_service_name_label_and_number_has_three_problems() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "9lives", "namespace": "default", "labels": {"a": ".5"}},
        "spec": {"ports": [{"port": 2.0**64}]},
    }
    problems = kube.object_problems("service", obj)
    assert len(problems) == 3, problems
