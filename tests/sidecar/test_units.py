"""Small pieces: generated protobuf code, option parsing, redaction, directory walking, which
client libraries a configuration loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.localdir import directory_usage
from sidecar.main import parse_quantity
from sidecar.metrics import SPECS, families, sample
from sidecar.podresources import api_pb2
from sidecar.redisinfo import redact
from sidecar.server import parse_bind_address
from tests.sidecar.procs import ROOT


def test_generated_protobuf_code_is_current(tmp_path: Path) -> None:
    """api_pb2.py(i) are what grpcio-tools makes of api.proto (`make sidecar-proto`)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I.",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            "sidecar/podresources/api.proto",
        ],
        cwd=ROOT,
        check=True,
    )
    for name in ("api_pb2.py", "api_pb2.pyi"):
        generated = (tmp_path / "sidecar" / "podresources" / name).read_text()
        committed = (ROOT / "sidecar" / "podresources" / name).read_text()
        assert committed == generated, f"{name} is stale: run `make sidecar-proto`"


def test_proto_package_and_methods_are_the_kubelets() -> None:
    service = api_pb2.DESCRIPTOR.services_by_name["PodResourcesLister"]
    assert service.full_name == "v1.PodResourcesLister"
    assert sorted(m.name for m in service.methods) == ["GetAllocatableResources", "List"]
    fields = {f.name: f.number for f in api_pb2.ContainerDevices.DESCRIPTOR.fields}
    assert fields == {"resource_name": 1, "device_ids": 2}
    fields = {f.name: f.number for f in api_pb2.PodResources.DESCRIPTOR.fields}
    assert fields == {"name": 1, "namespace": 2, "containers": 3}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("8Gi", 8 * 1024**3),
        ("512Mi", 512 * 1024**2),
        ("1.5Gi", 3 * 1024**3 // 2),
        ("500M", 500_000_000),
        ("1073741824", 1073741824),
    ],
)
def test_parse_quantity(text: str, want: int) -> None:
    assert parse_quantity(text) == want


@pytest.mark.parametrize("text", ["", "8GB", "-1Gi", "Gi"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a byte quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("address", "want"),
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("[::]:8081", ("::", 8081)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_bind_address(address: str, want: tuple[str, int]) -> None:
    assert parse_bind_address(address) == want


@pytest.mark.parametrize("address", ["8080", "host:", "host:http"])
def test_parse_bind_address_rejects(address: str) -> None:
    with pytest.raises(ValueError, match="is not"):
        parse_bind_address(address)


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("redis://:pw@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://default:pw@r.example.com:6380", "rediss://default:***@r.example.com:6380"),
        ("redis://redis:6379", "redis://redis:6379"),
    ],
)
def test_redact(url: str, want: str) -> None:
    assert redact(url) == want


def test_directory_usage(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f").write_bytes(b"12345")
    (tmp_path / "g").write_bytes(b"1")
    (tmp_path / "loop").symlink_to(tmp_path)  # not followed
    assert directory_usage(str(tmp_path)) == (6, 2, 0)
    with pytest.raises(FileNotFoundError):
        directory_usage(str(tmp_path / "missing"))


def test_catalogue() -> None:
    for name, spec in SPECS.items():
        assert name.startswith("inference_")
        assert name.endswith("_total") == (spec.kind == "counter"), name
    with pytest.raises(ValueError, match="unknown labels"):
        sample("inference_gpu_up", 1, gpu="0")
    # The five metrics the product brief names exist with the agreed types.
    assert SPECS["inference_gpu_utilization"].kind == "gauge"
    assert SPECS["inference_gpu_memory_used_bytes"].kind == "gauge"
    assert SPECS["inference_cache_hits_total"].kind == "counter"
    assert SPECS["inference_cache_size_bytes"].kind == "gauge"
    assert SPECS["inference_gpu_allocations_total"].kind == "counter"


def test_families_in_catalogue_order_with_all_labels() -> None:
    fams = families(
        [
            sample("inference_cache_hits_total", 3, tier="redis", source="redis"),
            sample("inference_gpu_up", 1),
        ]
    )
    assert [f.name for f in fams] == ["inference_gpu_up", "inference_cache_hits"]
    assert fams[1].samples[0].labels == {"tier": "redis", "source": "redis", "model_name": ""}


# Which client libraries a configuration loads (each costs resident memory for the life of the
# process, sidecar/BENCHMARK.md): only those of the sources it configures.
_LOADED = """
import json, sys
from sidecar.main import build_sources
sources = build_sources(**json.loads(sys.argv[1]))
print(json.dumps(sorted(m for m in ("pynvml", "redis", "grpc") if m in sys.modules)))
"""
_BASE = {
    "mode": "pod",
    "gpu": "off",
    "nvml_fixture": None,
    "nvml_retry_interval": 60.0,
    "engine_metrics_url": "http://127.0.0.1:8000/metrics",
    "engine_timeout": 2.0,
    "prefix_cache_capacity": None,
    "local_cache_dir": "/nonexistent",
    "local_cache_min_interval": 10.0,
    "redis_url": None,
    "redis_password": None,
    "redis_password_file": None,
    "redis_timeout": 1.0,
    "pod_resources_socket": "/nonexistent/kubelet.sock",
    "resource_prefixes": ["nvidia.com/"],
}


@pytest.mark.parametrize(
    ("config", "loaded"),
    [
        ({}, []),  # the pod sidecar as the InferenceService function renders it
        ({"gpu": "auto"}, ["pynvml"]),
        ({"redis_url": "redis://127.0.0.1:1/0"}, ["redis"]),
        ({"mode": "node", "gpu": "auto"}, ["grpc", "pynvml"]),
    ],
)
def test_client_libraries_load_only_for_configured_sources(
    config: dict[str, object], loaded: list[str]
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED, json.dumps({**_BASE, **config})],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == loaded
