"""The simulated fleet: llm-d-inference-sim processes standing for the engine replicas, and on a
bare etcd + kube-apiserver (hack/e2e/controlplane.py) the Pods standing for them, the
InferencePool over those Pods and the real endpoint picker (`epp`) watching both.

What stands in for what:
- a replica = one simulator process on 127.0.0.1:<port>, configured from the vLLM arguments
  our function renders (`EngineSettings.from_render`);
- its Pod = a Pod object created from the rendered pod labels, patched to Ready with podIP
  127.0.0.1 and the annotation `inference.networking.k8s.io/active-ports: <port>`, so that each
  Pod is exactly one simulator (all share the loopback IP, so the pool's targetPorts list the
  simulators' ports instead of the rendered 8000);
- kube-proxy (the plain Service) = a client-side round robin over the endpoints (bench.py);
- Envoy (the gateway calling the picker) = the ext-proc client in extproc.py.
"""

from __future__ import annotations

import contextlib
import copy
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hack.e2e.controlplane import ControlPlane, binary, pinned_versions, tools_bin
from hack.e2e.process import Proc
from tests.procs import free_port, tools_dir
from tests.routing import extproc
from tests.routing.render import Rendered, dump_config

ACTIVE_PORTS = "inference.networking.k8s.io/active-ports"
MAX_ENDPOINTS = 8  # an InferencePool lists at most 8 target ports
START_TIMEOUT_S = 60.0


def sim_binary() -> Path:
    path = tools_dir() / "bin" / "llm-d-inference-sim"
    if not path.exists():
        raise FileNotFoundError(f"missing {path}: run `make tools` (hack/tools.sh sim)")
    return path


def epp_binary() -> Path:
    return binary("epp")


def wait(check: Any, what: str, timeout: float, procs: list[Proc]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited while waiting for {what}:\n{p.tail()}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            if check():
                return
        time.sleep(0.05)
    tails = "\n".join(f"--- {p.name}\n{p.tail(2000)}" for p in procs)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


# -- engines -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineSettings:
    """llm-d-inference-sim flags: the cache settings from our vLLM render, the latency model
    and the sizes chosen for the benchmark."""

    model: str
    block_size: int
    kv_cache_blocks: int
    hash_seed: str | None
    max_num_seqs: int = 4
    max_model_len: int = 8192
    prefill_overhead: str = "10ms"
    prefill_time_per_token: str = "100us"
    inter_token_latency: str = "5ms"
    time_factor_under_load: float = 1.0
    seed: int = 7

    @classmethod
    def from_render(cls, r: Rendered, **overrides: Any) -> EngineSettings:
        if not r.flag("enable-prefix-caching"):
            raise ValueError(f"{r.example}: the render does not turn prefix caching on")
        served = r.arg("served-model-name") or r.model
        base = cls(
            model=served,
            block_size=r.block_size,
            kv_cache_blocks=r.kv_cache_blocks(),
            hash_seed=r.engine_env.get("PYTHONHASHSEED"),
        )
        return replace(base, **overrides)

    def args(self, port: int) -> list[str]:
        out = [
            str(sim_binary()),
            f"--model={self.model}",
            f"--port={port}",
            "--mode=random",
            f"--seed={self.seed}",
            # vLLM --enable-prefix-caching: the simulator's KV-cache model (block hashes of the
            # prompt tokens, LRU over --kv-cache-size blocks) that drives prefix_cache_hits.
            "--enable-kvcache",
            f"--block-size={self.block_size}",
            f"--kv-cache-size={self.kv_cache_blocks}",
            "--zmq-endpoint=",  # no KV-event consumer (the v1.5.0 picker has none)
            "--force-dummy-tokenizer",
            f"--max-num-seqs={self.max_num_seqs}",
            f"--max-model-len={self.max_model_len}",
            # TTFT = overhead + uncached prompt tokens * per-token time (no fixed TTFT).
            f"--prefill-overhead={self.prefill_overhead}",
            f"--prefill-time-per-token={self.prefill_time_per_token}",
            f"--inter-token-latency={self.inter_token_latency}",
            # Latencies x (1 + (factor - 1) * (running - 1) / (max-num-seqs - 1)).
            f"--time-factor-under-load={self.time_factor_under_load}",
        ]
        if self.hash_seed is not None:
            out.append(f"--hash-seed={self.hash_seed}")
        return out


@dataclass
class Engine:
    settings: EngineSettings
    port: int
    logdir: Path
    proc: Proc | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.proc = Proc(
            self.settings.args(self.port),
            self.logdir / f"sim-{self.port}-{self.starts}.log",
            name=f"sim:{self.port}",
            env={"POD_IP": "127.0.0.1"},
        ).start()

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.base}/health/ready", timeout=2) as r:
            return bool(r.status == 200)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=5) as r:
            return str(r.read().decode())


@contextlib.contextmanager
def engines(settings: EngineSettings, n: int, logdir: Path) -> Iterator[list[Engine]]:
    """N simulators on free ports, not started (`restart` starts them)."""
    fleet = [Engine(settings, free_port(), logdir) for _ in range(n)]
    try:
        yield fleet
    finally:
        for e in fleet:
            e.stop()


def restart(fleet: list[Engine]) -> None:
    """Stop and start every simulator: each mode starts with cold caches and zero counters."""
    for e in fleet:
        e.stop()
    for e in fleet:
        e.start()
    procs = [e.proc for e in fleet if e.proc is not None]
    for e in fleet:
        wait(e.ready, f"simulator on {e.port}", START_TIMEOUT_S, procs)


# -- objects on the control plane --------------------------------------------------------------


def install_gie_crds(cp: ControlPlane) -> None:
    """The InferencePool (and optional InferenceObjective/InferenceModelRewrite) CRDs copied
    from the GIE module source by `make tools-e2e`."""
    version = pinned_versions()["GIE_VERSION"]
    path = tools_bin().parent / f"crds-gie-{version}"
    if not path.is_dir():
        raise FileNotFoundError(f"missing {path}: run `make tools-e2e` (hack/tools.sh e2e)")
    names = []
    for f in sorted(path.glob("*.yaml")):
        names.append(f"crd/{yaml.safe_load(f.read_text())['metadata']['name']}")
        cp.kubectl("apply", "--server-side", "-f", str(f))
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def _in_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["namespace"] = namespace
    for s in out.get("subjects", []):
        if s.get("kind") == "ServiceAccount":
            s["namespace"] = namespace
    return out


@dataclass
class Pool:
    """The InferencePool, its Pods and the picker's RBAC in one namespace."""

    cp: ControlPlane
    rendered: Rendered
    namespace: str
    endpoints: list[Engine]
    name: str = ""
    picker_name: str = ""
    service_account: str = ""
    objects: list[dict[str, Any]] = field(default_factory=list)

    def manifests(self) -> list[dict[str, Any]]:
        r = self.rendered
        pool = _in_namespace(r.pool, self.namespace)
        # One port per simulator: they all listen on 127.0.0.1 (the rendered pool says 8000).
        pool["spec"]["targetPorts"] = [{"number": e.port} for e in self.endpoints]
        self.name = pool["metadata"]["name"]
        self.picker_name = pool["spec"]["endpointPickerRef"]["name"]
        pods = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{self.name}-engine-{i}",
                    "namespace": self.namespace,
                    "labels": r.pod_labels,
                    "annotations": {ACTIVE_PORTS: str(e.port)},
                },
                "spec": {
                    "nodeName": "simulated",
                    "automountServiceAccountToken": False,
                    "containers": [{"name": "vllm", "image": "llm-d-inference-sim"}],
                },
            }
            for i, e in enumerate(self.endpoints)
        ]
        rbac = [_in_namespace(o, self.namespace) for o in r.rbac]
        self.service_account = rbac[0]["metadata"]["name"]
        return [*rbac, pool, *pods]

    def apply(self) -> None:
        self.cp.namespace(self.namespace)
        # No kube-controller-manager: the `default` ServiceAccount pods need is made by hand.
        self.cp.kubectl(
            "apply",
            "-f",
            "-",
            input=yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": self.namespace},
                }
            ),
        )
        self.objects = self.manifests()
        self.cp.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(self.objects))
        ready = {
            "status": {
                "phase": "Running",
                "podIP": "127.0.0.1",
                "podIPs": [{"ip": "127.0.0.1"}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        }
        for pod in (o for o in self.objects if o["kind"] == "Pod"):
            self.cp.kubectl(
                "patch",
                "pod",
                pod["metadata"]["name"],
                "-n",
                self.namespace,
                "--subresource=status",
                "--type=merge",
                "-p",
                yaml.safe_dump(ready),
            )

    def picker_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig with a token of the picker's ServiceAccount: it reads the pool and pods
        with the rendered RBAC, not as an administrator."""
        token = self.cp.kubectl(
            "create", "token", self.service_account, "-n", self.namespace, "--duration=4h"
        ).stdout.strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "bench",
                    "cluster": {
                        "server": self.cp.server,
                        "certificate-authority": str(self.cp.ca.cert),
                    },
                }
            ],
            "users": [{"name": "epp", "user": {"token": token}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "epp"}}],
            "current-context": "bench",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path


# -- the endpoint picker -----------------------------------------------------------------------


def _set_flags(args: list[str], values: dict[str, str]) -> list[str]:
    """`args` with each `--name=value` of `values` replaced (or added when absent)."""
    out, seen = [], set()
    for a in args:
        name = a.split("=", 1)[0].removeprefix("--")
        if a.startswith("--") and name in values:
            out.append(f"--{name}={values[name]}")
            seen.add(name)
        else:
            out.append(a)
    out += [f"--{k}={v}" for k, v in values.items() if k not in seen]
    return out


@dataclass
class EndpointPicker:
    pool: Pool
    workdir: Path
    grpc_port: int = 0
    health_port: int = 0
    metrics_port: int = 0
    proc: Proc | None = None
    args: list[str] = field(default_factory=list)
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        r = self.pool.rendered
        config = dump_config(r.epp_config(), self.workdir / "epp.yaml")
        self.grpc_port, self.health_port, self.metrics_port = free_port(), free_port(), free_port()
        args = _set_flags(
            r.epp_args(),
            {
                "pool-name": self.pool.name,
                "pool-namespace": self.pool.namespace,
                "pool-group": "inference.networking.k8s.io",
                "config-file": str(config),
                "grpc-port": str(self.grpc_port),
                "grpc-health-port": str(self.health_port),
                "metrics-port": str(self.metrics_port),
                # Stand-ins: Envoy speaks TLS to the picker without verifying it; the ext-proc
                # client here speaks plaintext. /metrics unauthenticated as rendered.
                "secure-serving": "false",
                "metrics-endpoint-auth": "false",
                # Its pool gauges (5 s by default) tell when it sees every Pod; scheduling
                # reads the engines' metrics every 50 ms either way.
                "refresh-prometheus-metrics-interval": "500ms",
            },
        )
        return [str(epp_binary()), *args]

    def start(self) -> None:
        self.starts += 1
        kubeconfig = self.pool.picker_kubeconfig(self.workdir / "epp.kubeconfig")
        self.args = self.command()
        self.proc = Proc(
            self.args,
            self.workdir / f"epp-{self.starts}.log",
            name="epp",
            env={
                "KUBECONFIG": str(kubeconfig),
                "NAMESPACE": self.pool.namespace,
                "POD_NAME": f"{self.pool.picker_name}-0",
            },
        ).start()
        health = f"127.0.0.1:{self.health_port}"
        wait(lambda: extproc.health(health), "the picker to serve", START_TIMEOUT_S, [self.proc])
        # Every endpoint discovered (the pool gauge, refreshed every 500 ms here).
        wait(self._sees_all, "the picker to see every endpoint", START_TIMEOUT_S, [self.proc])

    def _sees_all(self) -> bool:
        want = f'inference_pool_ready_pods{{name="{self.pool.name}"}} {len(self.pool.endpoints)}'
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as r:
            return want in r.read().decode().splitlines()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def version(self) -> str:
        return Path(epp_binary()).resolve().name.removeprefix("epp-")
