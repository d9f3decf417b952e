"""Crossplane core, our three functions and provider-kubernetes on the local control plane.

What a Helm install does, done by hand against `control_plane()`:

- `crossplane core init` (core CRDs from the release's module source, the root CA and the
  client/server TLS Secrets, and the chart's default ManagedResourceActivationPolicy
  `--activation=*`, without which a SafeStart provider like provider-kubernetes waits at zero
  replicas), retried: right after installing the CRDs it can fail once with "no matches for kind
  Lock" until discovery catches up;
- `crossplane core start` with webhooks off (its only webhook validates Usages, which nothing
  here creates) and the **External** function runtime: Crossplane starts no function
  Deployments, the harness runs the functions itself. Providers keep the default Deployment
  runtime: Crossplane renders provider-kubernetes' Deployment, kwok marks its pod Running, and
  hack/e2e/provider.py runs the controller with that Deployment's args and env;
- the functions served with **mTLS**: a server certificate for localhost signed by Crossplane's
  root CA, which also signs the client certificate core dials with (so `ca.crt` is that CA);
- provider-kubernetes' released package pushed to the local registry, and an ImageConfig that
  makes Crossplane pull `xpkg.crossplane.io/crossplane-contrib/provider-kubernetes` from there;
- `make xpkgs push deploy FORM=<form>` against the local registry: the same targets a platform
  team runs, so `crossplane xpkg install` resolves the Configuration's dependencies (our functions
  and provider-kubernetes) from the registry, and deploy/provider-kubernetes/ gives the provider
  its runtime config, RBAC and ProviderConfig; the Configuration carries the XRDs and
  Compositions of one form (`FORMS`);
- the harness then does what a runtime would: points each active FunctionRevision's
  `status.endpoint` at the local function, records the TLS Secret it serves with (the revision
  controller waits for one), and reports `RuntimeHealthy` -- it is the runtime, and has just
  checked the function is listening.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from hack.e2e import pki
from hack.e2e import provider as kubernetes_provider
from hack.e2e.controlplane import (
    REPO,
    START_TIMEOUT,
    ControlPlane,
    ControlPlaneError,
    Registry,
    add_volumes,
    binary,
    free_port,
    pinned_versions,
    tools_bin,
    wait_until,
)
from hack.e2e.process import Proc

NAMESPACE = "crossplane-system"
FUNCTIONS = ("function-inferenceservice", "function-gpupool", "function-tokencache")
CONFIGURATION = "inference-platform"
# Registry path the packages are pushed under: <registry>/inference-platform/<package>.
REPOSITORY = "inference-platform"
# The XRD forms the Configuration can be built from (`make xpkgs FORM=`; xrds/<form>,
# compositions/<form>): `claims`, apiextensions v1 XRDs whose namespaced kinds are claims of
# cluster-scoped X<Kind> composites; `v2`, apiextensions v2 XRDs with namespaced XRs and no claims.
# They define the same kinds, so one control plane runs one form.
FORMS = ("claims", "v2")


@dataclass
class Crossplane:
    cp: ControlPlane
    dir: Path  # root CA, client certificate, functions' serving certificate, logs, packages
    form: str = "claims"  # the XRD form the installed Configuration carries (FORMS)
    endpoints: dict[str, str] = field(default_factory=dict)  # function -> dns:///localhost:port
    provider: kubernetes_provider.Provider | None = (
        None  # provider-kubernetes, once `platform` runs it
    )
    metrics_port: int = 0  # core's Prometheus /metrics on 127.0.0.1 (benchmarks read it)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return self.cp.kubectl(*args, input=input, check=check).stdout


def core_crds() -> Path:
    """The core release's CRDs, copied from its module source by `hack/tools.sh core`."""
    version = pinned_versions()["CROSSPLANE_CORE_VERSION"]
    path = tools_bin().parent / "xpkg-cache/xpkg.crossplane.io/crossplane" / f"crossplane@{version}"
    if not path.is_dir():
        raise ControlPlaneError(f"missing {path}: run `make tools`")
    return path


def _secret_files(cp: ControlPlane, name: str, directory: Path) -> None:
    """Write a Secret's keys (ca.crt, tls.crt, tls.key) as files into `directory`."""
    data = json.loads(cp.kubectl("-n", NAMESPACE, "get", "secret", name, "-o", "json").stdout)
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in data["data"].items():
        (directory / key).write_bytes(base64.b64decode(value))


def _init(cp: ControlPlane, log: Path) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(cp.kubeconfig),
        "TLS_CA_SECRET_NAME": "crossplane-root-ca",
        "TLS_CLIENT_SECRET_NAME": "crossplane-tls-client",
        "TLS_SERVER_SECRET_NAME": "crossplane-tls-server",
    }
    no_webhooks = cp.dir / "crossplane" / "webhookconfigurations"
    no_webhooks.mkdir(parents=True, exist_ok=True)
    args = [
        str(binary("crossplane-core")),
        "core",
        "init",
        f"--cr-ds-path={core_crds()}",  # sic: the flag of CRDsPath
        "--enable-webhooks=false",
        f"--webhook-configurations-path={no_webhooks}",
        # The Helm chart's default (provider.defaultActivations: ["*"]).
        "--activation=*",
    ]
    errors = []
    for _ in range(3):
        result = subprocess.run(
            args, check=False, env=env, capture_output=True, text=True, timeout=120
        )
        with log.open("a") as out:
            out.write(result.stdout + result.stderr)
        if result.returncode == 0:
            return
        errors.append(result.stderr.strip().splitlines()[-1:])
        time.sleep(1)
    raise ControlPlaneError(f"crossplane core init failed three times: {errors}")


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def crossplane(
    cp: ControlPlane, form: str = "claims", core_args: Sequence[str] = ()
) -> Iterator[Crossplane]:
    """Crossplane core plus our three functions (mTLS), ready when the body runs. Their processes
    belong to `cp` and stop with it. Packages are not installed yet: see `install_packages`.
    `core_args` go to `crossplane core start` after ours (e.g. the benchmark's
    `--enable-function-response-cache`)."""
    root = cp.dir / "crossplane"
    root.mkdir(exist_ok=True)
    cp.namespace(NAMESPACE)
    cp.kubectl("-n", NAMESPACE, "create", "serviceaccount", "crossplane")
    _init(cp, root / "init.log")
    _secret_files(cp, "crossplane-tls-client", root / "client")
    _secret_files(cp, "crossplane-root-ca", root / "ca")
    ca = pki.KeyPair(root / "ca" / "tls.crt", root / "ca" / "tls.key")
    serving = root / "functions"
    serving.mkdir()
    pki.leaf(
        serving,
        "tls",
        ca,
        "/O=inference-platform/CN=functions",
        server_sans=("DNS:localhost", "IP:127.0.0.1"),
    )
    # The functions verify Crossplane's client certificate against this CA (mutual TLS).
    (serving / "ca.crt").write_bytes(ca.cert.read_bytes())

    for cache in ("xpkg-cache", "xfn-cache"):
        (root / cache).mkdir()  # core fails to unpack packages ("closed pipe") without it
    health, metrics = free_port(), free_port()
    core = cp.start(
        Proc(
            [
                str(binary("crossplane-core")),
                "core",
                "start",
                "--enable-webhooks=false",
                "--package-runtime=Function=External",
                f"--tls-client-certs-dir={root / 'client'}",
                f"--xpkg-cache-dir={root / 'xpkg-cache'}",
                f"--xfn-cache-dir={root / 'xfn-cache'}",
                f"--metrics-port={metrics}",
                f"--health-probe-port={health}",
                # The default 1m poll would make every wait in the tests a minute long.
                "--poll-interval=5s",
                *core_args,
            ],
            root / "core.log",
            name="crossplane-core",
            env={"KUBECONFIG": str(cp.kubeconfig)},
        )
    )
    xp = Crossplane(cp, root, form=form, metrics_port=metrics)
    procs = [core]
    for fn in FUNCTIONS:
        port = free_port()
        procs.append(
            cp.start(
                Proc(
                    [
                        str(REPO / ".venv" / "bin" / fn),
                        f"--tls-certs-dir={serving}",
                        f"--address=127.0.0.1:{port}",
                    ],
                    root / f"{fn}.log",
                    name=fn,
                )
            )
        )
        xp.endpoints[fn] = f"dns:///localhost:{port}"
        wait_until(functools.partial(_listening, port), f"{fn} to listen", procs, START_TIMEOUT)

    def healthy() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=2) as r:
            return bool(r.status == 200)

    wait_until(healthy, "crossplane core /readyz", procs, START_TIMEOUT)
    yield xp


@contextlib.contextmanager
def platform(
    cp: ControlPlane,
    registry: Registry,
    form: str = "claims",
    volumes: int = 40,
    core_args: Sequence[str] = (),
) -> Iterator[Crossplane]:
    """Everything the claims need on `cp`: Crossplane core with our functions (mTLS), our
    packages installed from `registry` with the XRDs of `form` and, as the Configuration's
    dependency, provider-kubernetes applying the GPUPools' Objects (node labels, the GPU
    Operator's ConfigMaps in its namespace), and `volumes` static PersistentVolumes for the
    claims' model stores and caches. `core_args`: more `crossplane core start` flags."""
    if form not in FORMS:
        raise ControlPlaneError(f"unknown XRD form {form!r}: one of {', '.join(FORMS)}")
    # Where the GPU Operator runs: the pools' ConfigMaps and deploy/'s Role go there.
    cp.namespace(kubernetes_provider.GPU_OPERATOR_NAMESPACE)
    # The RuntimeClass the GPU Operator creates: the pools' metrics agents name it, and the
    # API server's RuntimeClass admission rejects pods that name one that does not exist.
    cp.kubectl("apply", "-f", "-", input=yaml.safe_dump(NVIDIA_RUNTIME_CLASS))
    with crossplane(cp, form, core_args) as xp:
        package = kubernetes_provider.push_package(cp, registry, xp.dir)
        install_packages(xp, registry, package)
        with kubernetes_provider.run_from_deployment(cp) as running:
            xp.provider = running
            wait_healthy(xp)
            add_volumes(cp, volumes)
            yield xp


NVIDIA_RUNTIME_CLASS = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "nvidia"},
    "handler": "nvidia",
}


def _make(targets: list[str], variables: dict[str, str], env: dict[str, str]) -> None:
    args = ["make", "-s", "-C", str(REPO), *targets, *(f"{k}={v}" for k, v in variables.items())]
    result = subprocess.run(
        args, check=False, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def install_packages(xp: Crossplane, registry: Registry, provider_package: str) -> None:
    """Build, push and `crossplane xpkg install` the three functions and the Configuration (the
    XRDs of `xp.form`) with the Makefile's own targets, `provider_package` being where the
    registry mirrors provider-kubernetes, then act as the External runtime for each
    FunctionRevision."""
    # 127.0.0.1, not localhost: Crossplane's CRDs want a registry host with a dot, and
    # go-containerregistry speaks plain HTTP to 127.0.0.1 as to localhost.
    prefix = f"127.0.0.1:{registry.port}/{REPOSITORY}"
    cp = xp.cp
    _make(
        ["xpkgs", "push", "deploy"],
        {
            "REGISTRY": prefix,
            "DIST": str(xp.dir / "dist"),
            "FORM": xp.form,
            "PROVIDER_KUBERNETES_PACKAGE": provider_package,
        },  # VERSION: pyproject's
        {"KUBECONFIG": str(cp.kubeconfig), "PATH": f"{tools_bin()}:{os.environ['PATH']}"},
    )
    for fn in FUNCTIONS:
        wait_until(
            functools.partial(_has_active_revision, cp, fn),
            f"the active FunctionRevision of {fn}",
            cp.procs,
            START_TIMEOUT,
        )
        serve_revision(xp, fn)


def wait_healthy(xp: Crossplane) -> None:
    """Every package Healthy (provider-kubernetes' Deployment is Available once kwok runs its
    pod), the XRDs Established and, for claims, Offered."""
    cp = xp.cp
    cp.kubectl(
        "wait",
        "--for=condition=Healthy",
        "--timeout=180s",
        *(f"function/{fn}" for fn in FUNCTIONS),
        f"configuration/{CONFIGURATION}",
    )
    cp.kubectl("wait", "--for=condition=Healthy", "--timeout=180s", "providers", "--all")
    cp.kubectl("wait", "--for=condition=Established", "--timeout=120s", "xrd", "--all")
    # Claims can be created once their XRD is also Offered (the claim CRD served); v2 XRDs
    # offer no claims.
    xrds = json.loads(cp.kubectl("get", "xrd", "-o", "json").stdout)["items"]
    offered = [f"xrd/{x['metadata']['name']}" for x in xrds if x["spec"].get("claimNames")]
    if offered:
        cp.kubectl("wait", "--for=condition=Offered", "--timeout=120s", *offered)


def _has_active_revision(cp: ControlPlane, function: str) -> bool:
    return bool(_active_revision(cp, function))


def _active_revision(cp: ControlPlane, function: str) -> str:
    out = cp.kubectl(
        "get",
        "functionrevision",
        "-l",
        f"pkg.crossplane.io/package={function}",
        "-o",
        'jsonpath={range .items[?(@.spec.desiredState=="Active")]}{.metadata.name}{end}',
    ).stdout
    return out.strip()


def serve_revision(xp: Crossplane, function: str) -> None:
    """Do for `function`'s active revision what the Deployment runtime does for a Deployment:
    a `<function>-tls-server` Secret, the revision's `tlsServerSecretName` and `endpoint`, and
    `RuntimeHealthy` once the function answers on that endpoint."""
    cp = xp.cp
    serving = xp.dir / "functions"
    secret = f"{function}-tls-server"
    manifest = cp.kubectl(
        "-n",
        NAMESPACE,
        "create",
        "secret",
        "generic",
        secret,
        f"--from-file=tls.crt={serving / 'tls.crt'}",
        f"--from-file=tls.key={serving / 'tls.key'}",
        f"--from-file=ca.crt={serving / 'ca.crt'}",
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    cp.kubectl("apply", "-f", "-", input=manifest)
    revision = f"functionrevision/{_active_revision(cp, function)}"
    patch = {"status": {"endpoint": xp.endpoints[function], "tlsServerSecretName": secret}}
    cp.kubectl("patch", revision, "--subresource=status", "--type=merge", "-p", json.dumps(patch))
    port = int(xp.endpoints[function].rpartition(":")[2])
    if not _listening(port):
        raise ControlPlaneError(f"{function} is not listening on {port}")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {
        "type": "RuntimeHealthy",
        "status": "True",
        "reason": "HealthyPackageRevision",
        "message": "served by the e2e harness (External runtime)",
        "lastTransitionTime": now,
    }
    conditions = json.loads(
        cp.kubectl("get", revision, "-o", "jsonpath={.status.conditions}").stdout or "[]"
    )
    conditions = [c for c in conditions if c.get("type") != "RuntimeHealthy"] + [condition]
    cp.kubectl(
        "patch",
        revision,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": conditions}}),
    )
