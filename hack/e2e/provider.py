"""The real provider-kubernetes, run out of cluster against the e2e control plane.

`hack/tools.sh e2e` builds the pinned release (`PROVIDER_KUBERNETES_VERSION`) from the Go module
proxy into `$TOOLS_DIR/bin/provider-kubernetes` and copies every CRD of its package into
`$TOOLS_DIR/crds-provider-kubernetes-package-<version>/`. `provider_kubernetes(cp)` installs
those CRDs, gives the provider the admin kubeconfig, creates the ProviderConfig `default` our
compositions name, starts the binary with its log in the control plane's dir and waits until it
reconciles an Object.

How v1.2.0 runs out of cluster (cmd/provider/main.go, pkg/kube/client/client.go):

- its own client: controller-runtime's `ctrl.GetConfig()`. The go `--kubeconfig` flag is never
  parsed (kingpin parses the arguments), so the `KUBECONFIG` environment variable it is;
- the client for the Objects' target cluster comes from the ProviderConfig. `InjectedIdentity`
  is `rest.InClusterConfig()` (a pod's service-account files), so out of cluster the credentials
  are a kubeconfig in a Secret. Its reader keeps only inline data (`certificate-authority-data`,
  `client-certificate-data`, `client-key-data`), not file paths, so the kubeconfig is flattened;
- it always registers the Object conversion webhook (no flag turns it off) and the webhook server
  needs `tls.crt`/`tls.key` in `$TLS_SERVER_CERTS_DIR` (or `$WEBHOOK_TLS_CERT_DIR`, which wins),
  else the manager exits; its readiness check (`/readyz` on `--health-probe-bind-addr`) is that
  server being up. The API server never calls it: the Object CRD's conversion is made `None`
  here, as in `install_third_party_crds` (all our manifests use v1alpha2, the storage version);
- ports no flag moves (controller-runtime defaults, all interfaces): the webhook server's
  `:9443`, so one provider per machine at a time, and no composition function on its default
  port (9443: `python -m hack.render`'s FN_PORT_BASE default) meanwhile; the metrics server's
  `:8080`, which `hack/tools.sh` turns off at link time (`metricsserver.DefaultBindAddress=0`);
- `--poll` (10m by default) is how often it re-observes each Object for drift (a label removed
  by hand comes back within it); Objects become Ready within a second of being applied either way.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.e2e import pki
from hack.e2e.controlplane import (
    START_TIMEOUT,
    ControlPlane,
    ControlPlaneError,
    binary,
    condition,
    free_port,
    pinned_versions,
    tools_bin,
    wait_until,
)
from hack.e2e.process import Proc

GROUP = "kubernetes.crossplane.io"
NAMESPACED_GROUP = "kubernetes.m.crossplane.io"
OBJECT_API = f"{GROUP}/v1alpha2"
CONFIG_API = f"{GROUP}/v1alpha1"
PROVIDER_CONFIG = "default"  # what functions/gpupool/fn.py puts in providerConfigRef
CREDENTIALS_NAMESPACE = "crossplane-system"
CREDENTIALS_SECRET = "provider-kubernetes-kubeconfig"
CREDENTIALS_KEY = "kubeconfig"
CANARY = "provider-kubernetes-canary"
# The controllers start once their CRDs are established (the provider's CRD gate); the first
# reconcile also waits for the informers of the kinds it touches.
READY_TIMEOUT = 120.0


def crd_dir() -> Path:
    """The provider package's CRDs, copied from its module source by `hack/tools.sh e2e`."""
    version = pinned_versions()["PROVIDER_KUBERNETES_VERSION"]
    path = tools_bin().parent / f"crds-provider-kubernetes-package-{version}"
    if not path.is_dir():
        raise ControlPlaneError(f"missing {path}: run `make tools-e2e` (hack/tools.sh e2e)")
    return path


def install_crds(cp: ControlPlane) -> list[str]:
    """Apply every CRD of the provider package (ProviderConfig, ProviderConfigUsage, Object,
    ObservedObjectCollection; cluster-scoped and the namespaced `.m.` group, with its
    ClusterProviderConfig) and wait until they are established. Idempotent."""
    names = []
    for f in sorted(crd_dir().glob("*.yaml")):
        crd = yaml.safe_load(f.read_text())
        names.append(f"crd/{crd['metadata']['name']}")
        if crd["spec"].get("conversion", {}).get("strategy") == "Webhook":
            # The Object CRD converts v1alpha1 <-> v1alpha2 in the provider's webhook, whose
            # Service Crossplane's package manager fills in. We store and read v1alpha2 only.
            crd["spec"]["conversion"] = {"strategy": "None"}
        # Server-side: these CRDs exceed client-side apply's last-applied annotation limit.
        cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(crd))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names


def credentials(cp: ControlPlane) -> list[dict[str, Any]]:
    """The Secret holding the admin kubeconfig (flattened: the provider reads inline data only),
    the ProviderConfig `default` reading it, and the same as a ClusterProviderConfig `default`
    for namespaced Objects (their providerConfigRef's default)."""
    flat = cp.kubectl("config", "view", "--raw", "--flatten", "--minify").stdout
    secret_ref = {
        "namespace": CREDENTIALS_NAMESPACE,
        "name": CREDENTIALS_SECRET,
        "key": CREDENTIALS_KEY,
    }
    spec = {"credentials": {"source": "Secret", "secretRef": secret_ref}}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": CREDENTIALS_NAMESPACE},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CREDENTIALS_SECRET, "namespace": CREDENTIALS_NAMESPACE},
            "type": "Opaque",
            "stringData": {CREDENTIALS_KEY: flat},
        },
        {
            "apiVersion": CONFIG_API,
            "kind": "ProviderConfig",
            "metadata": {"name": PROVIDER_CONFIG},
            "spec": spec,
        },
        {
            "apiVersion": f"{NAMESPACED_GROUP}/v1alpha1",
            "kind": "ClusterProviderConfig",
            "metadata": {"name": PROVIDER_CONFIG},
            "spec": spec,
        },
    ]


def canary_object() -> dict[str, Any]:
    """An Observe-only Object of the `default` namespace: Ready once the provider reconciles
    with the ProviderConfig's credentials; deleting it leaves the namespace (no Delete)."""
    return {
        "apiVersion": OBJECT_API,
        "kind": "Object",
        "metadata": {"name": CANARY},
        "spec": {
            "managementPolicies": ["Observe"],
            "forProvider": {
                "manifest": {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "default"},
                }
            },
            "providerConfigRef": {"name": PROVIDER_CONFIG},
        },
    }


def get_json(cp: ControlPlane, *args: str) -> dict[str, Any] | None:
    """`kubectl get ARGS -o json`, or None when it is not found."""
    result = cp.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise ControlPlaneError(f"kubectl get {' '.join(args)} failed:\n{result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def wait_object_ready(
    cp: ControlPlane, name: str, procs: list[Proc], timeout: float = READY_TIMEOUT
) -> dict[str, Any]:
    """Wait until the cluster-scoped Object `name` is Synced=True and Ready=True; return it."""
    seen: dict[str, Any] = {}

    def ready() -> bool:
        nonlocal seen
        seen = get_json(cp, f"objects.{GROUP}", name) or {}
        return all(condition(seen, c).get("status") == "True" for c in ("Synced", "Ready"))

    try:
        wait_until(ready, f"Object {name} Ready", procs, timeout)
    except ControlPlaneError as err:
        status = json.dumps(seen.get("status", {}), indent=1)
        raise ControlPlaneError(f"{err}\n--- Object {name} status\n{status}") from None
    return seen


@dataclass
class Provider:
    proc: Proc
    health_port: int
    tls: pki.KeyPair

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)


# controller-runtime's default, on all interfaces; provider-kubernetes has no flag for it. 9443 is
# also a composition function's default gRPC port (python -m hack.render's FN_PORT_BASE default).
FIXED_PORTS = {9443: "webhook server"}


def check_fixed_ports() -> None:
    """Fail early and clearly when another process (another provider) holds a fixed port."""
    for port, what in FIXED_PORTS.items():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners do
            try:
                s.bind(("", port))
            except OSError as err:
                raise ControlPlaneError(
                    f"port {port} is taken ({err}): provider-kubernetes binds its {what} there"
                    " and no flag moves it (another provider-kubernetes, or a function on its"
                    " default port?)"
                ) from None


def start(cp: ControlPlane, *, poll: str = "10s", debug: bool = False) -> Provider:
    """Start the provider binary (in `cp.procs`, so `cp.stop()` stops it too) and wait for its
    `/readyz`. The CRDs and credentials should be there first: `provider_kubernetes` does it all."""
    check_fixed_ports()
    work = cp.dir / "provider-kubernetes"
    certs = work / "tls"
    certs.mkdir(parents=True, exist_ok=True)
    # The conversion webhook's serving certificate, at the names controller-runtime reads.
    tls = pki.leaf(
        work,
        "webhook",
        cp.ca,
        "/CN=provider-kubernetes-webhook",
        server_sans=("IP:127.0.0.1", "DNS:localhost"),
    )
    (certs / "tls.crt").write_bytes(tls.cert.read_bytes())
    (certs / "tls.key").write_bytes(tls.key.read_bytes())
    health = free_port()
    args = [
        str(binary("provider-kubernetes")),
        f"--health-probe-bind-addr=127.0.0.1:{health}",
        f"--poll={poll}",
        "--no-leader-election",  # kingpin booleans: --flag / --no-flag, never --flag=false
    ]
    if debug:
        args.append("--debug")
    proc = cp.start(
        Proc(
            args,
            cp.dir / "provider-kubernetes.log",
            name="provider-kubernetes",
            env={
                "KUBECONFIG": str(cp.kubeconfig),
                "TLS_SERVER_CERTS_DIR": str(certs),
                "WEBHOOK_TLS_CERT_DIR": str(certs),
            },
        )
    )
    provider = Provider(proc, health, tls)
    wait_until(provider.ready, "provider-kubernetes /readyz", [proc], START_TIMEOUT)
    return provider


@contextlib.contextmanager
def provider_kubernetes(
    cp: ControlPlane, *, poll: str = "10s", debug: bool = False
) -> Iterator[Provider]:
    """provider-kubernetes reconciling `kubernetes.crossplane.io` Objects in `cp` with the
    ProviderConfig `default`: its CRDs installed, its credentials in a Secret, the binary running
    and proven by an Observe-only canary Object becoming Ready. Stopped on exit (the CRDs, the
    ProviderConfig and the Secret stay). `poll` is how often each Object is re-observed."""
    install_crds(cp)
    cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(credentials(cp)))
    start_time = time.monotonic()
    provider = start(cp, poll=poll, debug=debug)
    try:
        cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(canary_object()))
        remaining = max(READY_TIMEOUT - (time.monotonic() - start_time), 10.0)
        wait_object_ready(cp, CANARY, [provider.proc], remaining)
        cp.kubectl("delete", f"objects.{GROUP}", CANARY, "--wait=true", "--timeout=60s")
        yield provider
    finally:
        provider.proc.stop()
        if provider.proc in cp.procs:
            cp.procs.remove(provider.proc)
