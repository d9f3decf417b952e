"""provider-kubernetes as Crossplane installs it, its controller run by the harness.

Our Configuration depends on provider-kubernetes (package/configuration/crossplane.yaml);
`make deploy` applies deploy/provider-kubernetes/ first, whose ImageConfig attaches the
DeploymentRuntimeConfig (server-side apply, ServiceAccount `provider-kubernetes`) to it. Here
Crossplane core resolves the dependency from the local registry (the released package source,
built into a package without a runtime image: `push_package`), installs its CRDs and renders the
provider's Deployment. No container runs on this control plane (kwok only marks pods Running),
so the harness does what the kubelet would do for that Deployment's pod (`run_from_deployment`):

- the same binary (`hack/tools.sh e2e` builds the pinned release's cmd/provider, with its
  metrics server off at link time: it has no flag and would bind :8080 on all interfaces),
  started with exactly the container's args;
- its env as rendered: values, `$(VAR)` references, and `fieldRef`s resolved from the pod
  template; the Secret volumes (the TLS server and client certificates Crossplane issued) written
  to a directory each, whose paths replace the mount paths in the env;
- what only a pod has, added: `--health-probe-bind-addr` on a free loopback port (a pod has its
  own network namespace; the default `:8081` would collide), and `KUBECONFIG` with the admin
  credentials for the provider's own client (the stand-in for the ServiceAccount token and the
  permissions Crossplane's RBAC manager grants a provider on its own CRDs; no RBAC manager runs);
- the ProviderConfig `default` keeps `make deploy`'s meaning, the provider's own ServiceAccount,
  but as a kubeconfig Secret holding a token of that ServiceAccount: `InjectedIdentity` reads
  the pod's token files (`rest.InClusterConfig()`), which an out-of-cluster process cannot have.
  The Objects are therefore applied with exactly the permissions of deploy/provider-kubernetes/
  rbac.yaml, and one outside them is refused (tests/e2e/test_provider_kubernetes.py).

Fixed ports (controller-runtime defaults, no flag moves them): the conversion webhook server's
`:9443`, so one provider per machine at a time, and no composition function on its default port
meanwhile. The Object CRD's conversion webhook points at the provider's Service, which reaches
no process here; the API server calls it only to convert between versions, and everything here
reads and writes v1alpha2, the storage version.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.e2e.controlplane import (
    START_TIMEOUT,
    ControlPlane,
    ControlPlaneError,
    Registry,
    binary,
    condition,
    free_port,
    pinned_versions,
    tools_bin,
    wait_until,
)
from hack.e2e.process import Proc

GROUP = "kubernetes.crossplane.io"
OBJECT_API = f"{GROUP}/v1alpha2"
CONFIG_API = f"{GROUP}/v1alpha1"
PROVIDER_CONFIG = "default"  # what functions/gpupool/wiring.py puts in providerConfigRef
NAMESPACE = "crossplane-system"  # Crossplane's, where it runs provider Deployments
GPU_OPERATOR_NAMESPACE = "gpu-operator"
# The package as the Configuration names it, and the path it is mirrored to in the registry.
PACKAGE = "xpkg.crossplane.io/crossplane-contrib/provider-kubernetes"
REPOSITORY = "crossplane-contrib/provider-kubernetes"
# The Provider Crossplane creates for a dependency is named after its repository
# (internal/controller/pkg/resolver: xpkg.ToDNSLabel of the repository path).
PROVIDER = "crossplane-contrib-provider-kubernetes"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "provider-kubernetes"
# From deploy/provider-kubernetes/runtime.yaml: what the ImageConfig must bring to the Deployment.
RUNTIME_CONFIG = "provider-kubernetes"
SERVICE_ACCOUNT = "provider-kubernetes"
CONTAINER = "package-runtime"  # Crossplane's name for the runtime container
CREDENTIALS_SECRET = "provider-kubernetes-kubeconfig"
CREDENTIALS_KEY = "kubeconfig"
CANARY = "provider-kubernetes-canary"
# The controllers start once their CRDs are established (the provider's CRD gate); the first
# reconcile also waits for the informers of the kinds it touches.
READY_TIMEOUT = 120.0


def package_source() -> Path:
    """The released package source (crossplane.yaml, crds/), copied by `hack/tools.sh e2e`."""
    version = pinned_versions()["PROVIDER_KUBERNETES_VERSION"]
    path = tools_bin().parent / f"xpkg-src-provider-kubernetes-{version}"
    if not (path / "crossplane.yaml").is_file():
        raise ControlPlaneError(f"missing {path}: run `make tools-e2e` (hack/tools.sh e2e)")
    return path


def mirror(registry: Registry) -> str:
    """Where the package lives in the local registry (127.0.0.1: Crossplane wants a dot)."""
    return f"127.0.0.1:{registry.port}/{REPOSITORY}"


def push_package(cp: ControlPlane, registry: Registry, work: Path) -> str:
    """Build the pinned release's package (no runtime image) and push it to the registry as
    `<mirror>:<version>`, and make Crossplane pull `PACKAGE` from there: an ImageConfig
    `rewriteImage`, as a cluster behind a registry mirror has. Returns the mirrored path."""
    version = pinned_versions()["PROVIDER_KUBERNETES_VERSION"]
    xpkg = work / "provider-kubernetes.xpkg"
    for args in (
        ["build", f"--package-root={package_source()}", f"--package-file={xpkg}"],
        ["push", f"--package-files={xpkg}", f"{mirror(registry)}:{version}"],
    ):
        result = subprocess.run(
            [str(binary("crossplane")), "xpkg", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise ControlPlaneError(f"crossplane xpkg {args[0]} failed:\n{result.stderr}")
    rewrite = {
        "apiVersion": "pkg.crossplane.io/v1beta1",
        "kind": "ImageConfig",
        "metadata": {"name": "e2e-provider-kubernetes-mirror"},
        "spec": {
            "matchImages": [{"type": "Prefix", "prefix": PACKAGE}],
            "rewriteImage": {"prefix": mirror(registry)},
        },
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(rewrite))
    return mirror(registry)


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


def provider_deployment(cp: ControlPlane) -> dict[str, Any] | None:
    """The Deployment Crossplane renders for the active ProviderRevision of provider-kubernetes,
    once it asks for a replica (a SafeStart provider waits at zero for an activated MRD)."""
    deployments = get_json(cp, "deployments", "-n", NAMESPACE) or {}
    for d in deployments.get("items", []):
        owners = d["metadata"].get("ownerReferences", [])
        labels = d["spec"]["template"]["metadata"].get("labels", {})
        if (
            any(o["kind"] == "ProviderRevision" for o in owners)
            and labels.get("pkg.crossplane.io/provider") == PROVIDER
            and d["spec"].get("replicas", 1) > 0
        ):
            return d  # type: ignore[no-any-return]
    return None


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _field(pod: dict[str, Any], path: str) -> str:
    """A downward-API fieldRef the provider Deployment uses: metadata.namespace or a label."""
    if path == "metadata.namespace":
        return NAMESPACE
    if m := re.fullmatch(r"metadata\.labels\['([^']+)'\]", path):
        return str(pod["metadata"].get("labels", {}).get(m.group(1), ""))
    raise ControlPlaneError(f"provider Deployment: unsupported fieldRef {path!r}")


def pod_env(
    cp: ControlPlane, pod: dict[str, Any], container: dict[str, Any], root: Path
) -> dict[str, str]:
    """The container's environment as the kubelet gives it: Secret volumes written under
    `root` (one directory per volume, its items at their paths), mount paths in the values
    replaced by those directories, `$(VAR)` references and fieldRefs resolved."""
    mounts: dict[str, Path] = {}
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" not in volume:
            raise ControlPlaneError(f"provider Deployment: unsupported volume {volume}")
        secret = get_json(cp, "secret", "-n", NAMESPACE, volume["secret"]["secretName"]) or {}
        data = secret.get("data", {})
        local = root / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            (local / item["path"]).write_bytes(base64.b64decode(data[item["key"]]))
        mounts[mount["mountPath"]] = local
    env: dict[str, str] = {}
    for var in container.get("env", []):
        if "valueFrom" in var:
            field_ref = var["valueFrom"].get("fieldRef")
            if not field_ref:
                raise ControlPlaneError(f"provider Deployment: unsupported env {var}")
            value = _field(pod, field_ref["fieldPath"])
        else:
            value = _REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), var.get("value", ""))
        env[var["name"]] = str(mounts.get(value, value))
    return env


@dataclass
class Provider:
    proc: Proc
    health_port: int
    deployment: dict[str, Any]  # what Crossplane rendered
    args: list[str]  # what the harness ran

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)

    @property
    def container(self) -> dict[str, Any]:
        spec = self.deployment["spec"]["template"]["spec"]
        container: dict[str, Any] = next(c for c in spec["containers"] if c["name"] == CONTAINER)
        return container


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


def service_account_credentials(cp: ControlPlane) -> list[dict[str, Any]]:
    """The kubeconfig Secret standing in for `InjectedIdentity`: a token of the provider's
    ServiceAccount (inline data: the provider's reader ignores file paths), and the ProviderConfig
    `default` of deploy/provider-kubernetes/providerconfig.yaml pointed at it."""
    token = cp.kubectl(
        "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=6h"
    ).stdout.strip()
    admin = yaml.safe_load(cp.kubectl("config", "view", "--raw", "--flatten", "--minify").stdout)
    cluster = admin["clusters"][0]
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": cluster["name"], "user": SERVICE_ACCOUNT}}
        ],
        "current-context": "sa",
    }
    config = yaml.safe_load((DEPLOY / "providerconfig.yaml").read_text())
    assert config["metadata"]["name"] == PROVIDER_CONFIG, config
    assert config["spec"]["credentials"] == {"source": "InjectedIdentity"}, config
    config["spec"]["credentials"] = {
        "source": "Secret",
        "secretRef": {"namespace": NAMESPACE, "name": CREDENTIALS_SECRET, "key": CREDENTIALS_KEY},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CREDENTIALS_SECRET, "namespace": NAMESPACE},
        "type": "Opaque",
        "stringData": {CREDENTIALS_KEY: yaml.safe_dump(kubeconfig)},
    }
    return [secret, config]


def canary(cp: ControlPlane) -> dict[str, Any]:
    """An Observe-only Object of a ConfigMap in the GPU Operator's namespace (made here): Ready
    once the provider reconciles with the ProviderConfig's credentials and rbac.yaml's Role."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CANARY, "namespace": GPU_OPERATOR_NAMESPACE},
    }
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    return {
        "apiVersion": OBJECT_API,
        "kind": "Object",
        "metadata": {"name": CANARY},
        "spec": {
            "managementPolicies": ["Observe"],
            "forProvider": {"manifest": manifest},
            "providerConfigRef": {"name": PROVIDER_CONFIG},
        },
    }


def start(cp: ControlPlane, deployment: dict[str, Any]) -> Provider:
    """Run the Deployment's pod as a local process (in `cp.procs`, so `cp.stop()` stops it too)
    and wait for its `/readyz`, which is its conversion webhook server being up."""
    check_fixed_ports()
    pod = deployment["spec"]["template"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == CONTAINER)
    if container.get("command"):
        raise ControlPlaneError(f"provider Deployment overrides the command: {container}")
    env = pod_env(cp, pod, container, cp.dir / "provider-kubernetes")
    health = free_port()
    args = [
        str(binary("provider-kubernetes")),
        *container.get("args", []),
        f"--health-probe-bind-addr=127.0.0.1:{health}",
    ]
    proc = cp.start(
        Proc(
            args,
            cp.dir / "provider-kubernetes.log",
            name="provider-kubernetes",
            env={**env, "KUBECONFIG": str(cp.kubeconfig)},
        )
    )
    provider = Provider(proc, health, deployment, args)
    wait_until(provider.ready, "provider-kubernetes /readyz", [proc], START_TIMEOUT)
    return provider


@contextlib.contextmanager
def run_from_deployment(cp: ControlPlane) -> Iterator[Provider]:
    """Once Crossplane has rendered provider-kubernetes' Deployment: its credentials as
    described above, its controller running, proven by an Observe-only canary Object becoming
    Ready. Stopped on exit."""
    found: dict[str, Any] = {}

    def rendered() -> bool:
        found.update(provider_deployment(cp) or {})
        return bool(found)

    wait_until(rendered, "Crossplane to render provider-kubernetes' Deployment", cp.procs, 180)
    # Client-side, as `make deploy` applied the ProviderConfig: this replaces its credentials.
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(service_account_credentials(cp)))
    start_time = time.monotonic()
    provider = start(cp, found)
    try:
        cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(canary(cp)))
        remaining = max(READY_TIMEOUT - (time.monotonic() - start_time), 10.0)
        wait_object_ready(cp, CANARY, [provider.proc], remaining)
        cp.kubectl("delete", f"objects.{GROUP}", CANARY, "--wait=true", "--timeout=60s")
        yield provider
    finally:
        provider.proc.stop()
        if provider.proc in cp.procs:
            cp.procs.remove(provider.proc)
