"""Bring up etcd + kube-apiserver (optionally kube-controller-manager, kube-scheduler and kwok
with fake GPU nodes) on loopback, from the binaries `make tools-e2e` builds.

Every process runs in its own process group with its log in the control plane's temp dir; the
context manager `control_plane()` stops them in reverse order (SIGTERM, then SIGKILL to the group)
and removes the temp dir on exit or failure, keeping the logs in the raised error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hack.e2e import pki
from hack.e2e.process import Proc

REPO = Path(__file__).resolve().parents[2]
SERVICE_CIDR = "10.96.0.0/16"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = 90.0  # a cold kube-apiserver on 2 cores needs ~10-20 s; CRD-heavy runs more


class ControlPlaneError(RuntimeError):
    pass


def tools_bin() -> Path:
    env = os.environ.get("TOOLS_DIR")
    if env:
        return Path(env) / "bin"
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "tools.sh"), "dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip()) / "bin"


def binary(name: str) -> Path:
    path = tools_bin() / name
    if not os.access(path, os.X_OK):
        raise ControlPlaneError(f"missing {path}: run `make tools-e2e` (hack/tools.sh e2e)")
    return path


def pinned_versions() -> dict[str, str]:
    """hack/versions.env as a dict: the one place tool versions are recorded."""
    out = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The status condition `kind` of an object (empty if absent)."""
    conditions = obj.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c.get("type") == kind), {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, procs: Sequence[Proc], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise ControlPlaneError(f"{p.name} exited while waiting for {what}:\n{p.tail()}")
        with contextlib.suppress(OSError, urllib.error.URLError, ssl.SSLError):
            if check():
                return
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.name}\n{p.tail(1500)}" for p in procs)
    raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")


@dataclass
class ControlPlane:
    dir: Path
    kubeconfig: Path
    server: str
    ca: pki.KeyPair
    admin: pki.KeyPair
    procs: list[Proc] = field(default_factory=list)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        ctx.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return ctx

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """GET `path` from the API server as the admin user."""
        try:
            with urllib.request.urlopen(
                self.server + path, timeout=timeout, context=self.ssl_context()
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(binary("kubectl")), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def namespace(self, name: str) -> None:
        """Create namespace `name` unless it exists."""
        self.kubectl(
            "apply",
            "-f",
            "-",
            input=yaml.safe_dump(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            ),
        )

    def start(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        proc.start()
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def _kubeconfig(path: Path, server: str, ca: Path, user: pki.KeyPair) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(user.cert), "client-key": str(user.key)},
            }
        ],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
        "current-context": "e2e",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _etcd(cp: ControlPlane) -> str:
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    # Plain HTTP on loopback: only kube-apiserver talks to it. No fsync: the data dir is a
    # throwaway and fsync dominates etcd's latency on shared CI disks.
    proc = cp.start(
        Proc(
            [
                str(binary("etcd")),
                "--name=e2e",
                f"--data-dir={cp.dir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=e2e=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            cp.dir / "etcd.log",
            name="etcd",
        )
    )

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return bool(json.loads(r.read()).get("health") == "true")

    wait_until(healthy, "etcd /health", [proc], START_TIMEOUT)
    return url


def _apiserver(
    cp: ControlPlane, etcd: str, port: int, serving: pki.KeyPair, sa: pki.KeyPair
) -> None:
    proc = cp.start(
        Proc(
            [
                str(binary("kube-apiserver")),
                f"--etcd-servers={etcd}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # The endpoint reconciler refuses a loopback address for the `kubernetes`
                # Service; nothing in the tests dials the API server through that Service.
                "--endpoint-reconciler-type=none",
                f"--secure-port={port}",
                f"--cert-dir={cp.dir / 'apiserver'}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={cp.ca.cert}",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
            ],
            cp.dir / "kube-apiserver.log",
            name="kube-apiserver",
        )
    )
    procs = [p for p in cp.procs if p.name == "etcd"] + [proc]
    wait_until(lambda: cp.get("/readyz")[0] == 200, "kube-apiserver /readyz", procs, START_TIMEOUT)


def _controllers(cp: ControlPlane, sa: pki.KeyPair) -> None:
    kc = str(cp.kubeconfig)
    common = [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
    ]
    cp.start(
        Proc(
            [
                str(binary("kube-controller-manager")),
                *common,
                f"--secure-port={free_port()}",
                f"--cert-dir={cp.dir / 'kcm'}",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={cp.ca.cert}",
                f"--cluster-signing-cert-file={cp.ca.cert}",
                f"--cluster-signing-key-file={cp.ca.key}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ],
            cp.dir / "kube-controller-manager.log",
            name="kube-controller-manager",
        )
    )
    cp.start(
        Proc(
            [
                str(binary("kube-scheduler")),
                *common,
                f"--secure-port={free_port()}",
                f"--cert-dir={cp.dir / 'scheduler'}",
            ],
            cp.dir / "kube-scheduler.log",
            name="kube-scheduler",
        )
    )
    # The service-account controller creates `default` in each namespace; pods need it.
    wait_until(
        lambda: cp.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
        "the default ServiceAccount (kube-controller-manager)",
        cp.procs,
        START_TIMEOUT,
    )


def kwok_stages() -> Path:
    """The kwok release's node/pod Stage manifests, copied by `hack/tools.sh e2e`."""
    version = pinned_versions()["KWOK_VERSION"]
    path = tools_bin().parent / f"kwok-stages-{version}"
    if not path.is_dir():
        raise ControlPlaneError(f"missing {path}: run `make tools-e2e` (hack/tools.sh e2e)")
    return path


# Third-party kinds our compositions emit: (versions.env key, CRD directory name).
THIRD_PARTY_CRDS = (
    ("KEDA_VERSION", "keda"),
    ("PROMETHEUS_OPERATOR_VERSION", "prometheus-operator"),
    # InferencePool (prefix-aware routing), and the Gateway an InferenceService reads and the
    # HTTPRoute it composes.
    ("GIE_VERSION", "gie"),
    ("GATEWAY_API_VERSION", "gateway-api"),
)


def install_third_party_crds(cp: ControlPlane) -> None:
    """Apply the KEDA, prometheus-operator, Gateway API Inference Extension and Gateway API CRDs
    copied from their module sources by `hack/tools.sh e2e`, and wait until the server serves
    them. provider-kubernetes' CRDs are not among them: Crossplane installs them from its package
    (hack/e2e/crossplane.py `platform`)."""
    versions = pinned_versions()
    files: list[Path] = []
    for key, name in THIRD_PARTY_CRDS:
        path = tools_bin().parent / f"crds-{name}-{versions[key]}"
        if not path.is_dir():
            raise ControlPlaneError(f"missing {path}: run `make tools-e2e` (hack/tools.sh e2e)")
        files.extend(sorted(path.glob("*.yaml")))
    names = []
    for f in files:
        crd = yaml.safe_load(f.read_text())
        names.append(f"crd/{crd['metadata']['name']}")
        # Server-side: these CRDs exceed client-side apply's last-applied annotation limit.
        cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(crd))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def _kwok(cp: ControlPlane) -> None:
    # One multi-document config file: kwok reads its Stage objects from --config.
    config = cp.dir / "kwok.yaml"
    stages = sorted(kwok_stages().glob("*.yaml"))
    config.write_text("\n---\n".join(p.read_text() for p in stages))
    cp.start(
        Proc(
            [
                str(binary("kwok")),
                f"--kubeconfig={cp.kubeconfig}",
                f"--config={config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
                "--disregard-status-with-label-selector=",
                "--cidr=10.0.0.1/24",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
            cp.dir / "kwok.log",
            name="kwok",
        )
    )


@contextlib.contextmanager
def control_plane(
    *, controllers: bool = False, kwok: bool = False, keep: bool = False
) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver, ready (`/readyz` 200) when the body runs. `controllers` adds
    kube-controller-manager and kube-scheduler, `kwok` the kwok controller (fake nodes and pods;
    needs `controllers` for pods to be scheduled). `keep` leaves the temp dir (logs) behind."""
    root = Path(tempfile.mkdtemp(prefix="inference-e2e-"))
    cp: ControlPlane | None = None
    try:
        tls = root / "pki"
        tls.mkdir()
        ca = pki.ca(tls, "ca")
        admin = pki.leaf(tls, "admin", ca, "/O=system:masters/CN=e2e-admin", client=True)
        serving = pki.leaf(
            tls,
            "apiserver",
            ca,
            "/CN=kube-apiserver",
            server_sans=("IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes.default.svc"),
        )
        sa = pki.signing_key(tls, "service-account")
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        cp = ControlPlane(root, root / "kubeconfig", server, ca, admin)
        _kubeconfig(cp.kubeconfig, server, ca.cert, admin)
        _apiserver(cp, _etcd(cp), port, serving, sa)
        if controllers:
            _controllers(cp, sa)
        if kwok:
            _kwok(cp)
        yield cp
    finally:
        if cp is not None:
            cp.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# -- OCI registry ------------------------------------------------------------------------------


@dataclass
class Registry:
    proc: Proc
    port: int

    @property
    def host(self) -> str:
        """`localhost:<port>`: crossplane and go-containerregistry speak plain HTTP to localhost."""
        return f"localhost:{self.port}"

    def get(self, path: str, accept: str = "") -> bytes:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=10) as r:
            body: bytes = r.read()
            return body


@contextlib.contextmanager
def registry(directory: Path) -> Iterator[Registry]:
    """go-containerregistry's in-memory registry on localhost. `-port 0` lets it pick a free
    port, which it logs: no race with another process taking a port we chose."""
    proc = Proc(
        [str(binary("registry")), "-port", "0"], directory / "registry.log", name="registry"
    )
    proc.start()
    try:
        port = 0

        def serving() -> bool:
            nonlocal port
            marker = "serving on port "
            line = next((ln for ln in proc.tail().splitlines() if marker in ln), "")
            port = int(line.rpartition(marker)[2]) if line else 0
            return port > 0

        wait_until(serving, "the registry to listen", [proc], START_TIMEOUT)
        yield Registry(proc, port)
    finally:
        proc.stop()


# -- fake GPU nodes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeGPUNode:
    name: str
    product: str  # nvidia.com/gpu.product, as GPU feature discovery writes it
    gpus: int
    memory_mib: int
    # Extended resources as the device plugin would advertise them once the node's sharing
    # config is applied: {"1g.10gb": 7} -> nvidia.com/mig-1g.10gb; {"gpu.shared": 12} and
    # {"mig-3g.40gb.shared": 4} are taken as nvidia.com/<key>. Empty: nvidia.com/gpu = gpus.
    mig: dict[str, int] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # e.g. the pool's own selector label

    def resource_names(self) -> dict[str, str]:
        if not self.mig:
            return {"nvidia.com/gpu": str(self.gpus)}
        out = {}
        for key, n in self.mig.items():
            name = key if key.startswith(("gpu", "mig-")) else f"mig-{key}"
            out[f"nvidia.com/{name}"] = str(n)
        return out

    def manifest(self) -> dict[str, Any]:
        # A DGX-class host: the example caches' Redis tiers ask for hundreds of GiB.
        resources = {"cpu": "224", "memory": "2Ti", "pods": "110", "ephemeral-storage": "30Ti"}
        resources |= self.resource_names()
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": self.product,
            "nvidia.com/gpu.count": str(self.gpus),
            "nvidia.com/gpu.memory": str(self.memory_mib),
            "nvidia.com/mig.capable": "true",
            "nvidia.com/mig.config.state": "success",
            **self.labels,
        }
        if any(k.startswith("mig-") or "g." in k for k in self.mig):
            labels["nvidia.com/mig.strategy"] = "mixed"
        return {
            "apiVersion": "v1",
            "kind": "Node",
            # kwok manages only nodes with this annotation (see _kwok); Node status may be set on
            # create, so capacity and allocatable come with the object.
            "metadata": {
                "name": self.name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": labels,
            },
            "status": {"capacity": resources, "allocatable": resources},
        }


# One node per GPUPool in examples/claims (two for h100-exclusive), labelled as that pool selects
# it, with the extended resource names the device plugin advertises once the pool's config is
# applied (MIG profiles; `gpu.shared` for MPS/time-slicing replicas; `.shared` suffixes when
# oversubscribed). The counts are round numbers above what the example claims ask for, not the
# pools' exact plans.
DEFAULT_NODES = (
    # h100-exclusive selects nvidia.com/gpu.product: whole GPUs, two nodes (its examples ask for
    # 10: llama-8b-h100-exclusive 6, llama-8b-prefix-aware 4).
    FakeGPUNode("gpu-h100-0", "NVIDIA-H100-80GB-HBM3", 8, 81559, {}, {"gpu-type": "nvidia-h100"}),
    FakeGPUNode("gpu-h100-1", "NVIDIA-H100-80GB-HBM3", 8, 81559, {}, {"gpu-type": "nvidia-h100"}),
    # h100-mig-balanced: 1g.10gb, 2g.20gb and 3g.40gb slices.
    FakeGPUNode(
        "gpu-h100-mig-0",
        "NVIDIA-H100-80GB-HBM3",
        8,
        81559,
        {"1g.10gb": 16, "2g.20gb": 8, "3g.40gb": 8},
        {"gpu-type": "nvidia-h100-mig"},
    ),
    # a100-pool: 3g.40gb and 1g.10gb slices, oversubscribed: `.shared` names.
    FakeGPUNode(
        "gpu-a100-0",
        "NVIDIA-A100-SXM4-80GB",
        8,
        81920,
        {"mig-3g.40gb.shared": 24, "mig-1g.10gb.shared": 48},
        {"gpu-type": "nvidia-a100"},
    ),
    # a30-mig-timeslice: 2g.12gb slices (and a balanced leftover), time-sliced.
    FakeGPUNode(
        "gpu-a30-0",
        "NVIDIA-A30",
        4,
        24576,
        {"mig-1g.6gb.shared": 32, "mig-2g.12gb.shared": 16},
        {"gpu-type": "nvidia-a30"},
    ),
    # l4-timeslice and t4-mps: replicas of whole GPUs under `nvidia.com/gpu.shared`.
    FakeGPUNode("gpu-l4-0", "NVIDIA-L4", 4, 23034, {"gpu.shared": 16}, {"gpu-type": "nvidia-l4"}),
    FakeGPUNode("gpu-t4-0", "Tesla-T4", 4, 15360, {"gpu.shared": 12}, {"gpu-type": "nvidia-t4"}),
)


def add_nodes(cp: ControlPlane, nodes: Sequence[FakeGPUNode] = DEFAULT_NODES) -> None:
    docs = yaml.safe_dump_all([n.manifest() for n in nodes], sort_keys=False)
    cp.kubectl("apply", "-f", "-", input=docs)
    names = [n.name for n in nodes]
    cp.kubectl("wait", "--for=condition=Ready", "--timeout=60s", *(f"node/{n}" for n in names))


def add_volumes(cp: ControlPlane, count: int, size: str = "2Ti") -> None:
    """Static PersistentVolumes without a storage class, as an administrator would create them:
    no volume provisioner runs here, and kube-controller-manager binds claims to these."""
    if count == 0:
        return  # kubectl apply fails on an empty input
    docs = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"e2e-pv-{i}"},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": {"path": f"/tmp/e2e-pv-{i}"},  # kwok mounts nothing
            },
        }
        for i in range(count)
    ]
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs, sort_keys=False))
