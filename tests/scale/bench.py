"""Hundreds of InferenceServices through the real Crossplane core (`make bench-scale`); a
benchmark, not a test.

For each size (default 100, 250 and 500 services) and each function-response-cache setting
(off, then on: side by side, same size), on a fresh e2e control plane (hack/e2e: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler, kwok, Crossplane core v2.4.0 with
realtime compositions, provider-kubernetes, our three functions served with mTLS):

1. ramp: the pools and caches Ready first, then every InferenceService created at once
   (`kubectl create`); the time until all are Synced, and until all are Ready and Synced;
2. pool change: one pool's `nodeSelector` gains a label its nodes already carry; the time until
   the Deployment of every service bound to it carries the label in its node affinity (the
   InferenceService function re-rendered it with the changed pool and Crossplane applied it),
   and until all services are Ready again (the Deployments rolled out under kwok);
3. steady: 30 s after that, a quiet window (`--steady` seconds) in which only the functions'
   TTL requeues should run.

Each phase records CPU seconds and RSS of every component's process group (/proc), the calls
Crossplane core made to each function, its cache hits and misses, and the load average: the
machine is shared, so figures are comparable only within one run of this command.

Holds /tmp/inference-e2e.lock (the control plane's fixed ports) and then
/tmp/inference-bench.lock for each control plane it runs, and releases both in between.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import functools
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hack.e2e import crossplane
from hack.e2e.controlplane import (
    ControlPlane,
    add_nodes,
    control_plane,
    install_third_party_crds,
    registry,
)
from tests.scale import metrics, procstat, report, workload
from tests.scale.workload import Workload

LOCKS = ("/tmp/inference-e2e.lock", "/tmp/inference-bench.lock")  # in this order
COMPONENTS = (
    "crossplane-core",
    *crossplane.FUNCTIONS,
    "provider-kubernetes",
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
SETTLE = 30.0  # seconds between the pool change's end and the steady window
CREATORS = 8  # concurrent POSTs
PHASES = ("ramp", "change", "steady")
CACHE_FLAGS = ("--enable-function-response-cache",)
SERVICES = "/apis/inference.ai/v1alpha1/inferenceservices"
POOLS = "/apis/inference.ai/v1alpha1/gpupools"
DEPLOYMENTS = f"/apis/apps/v1/deployments?labelSelector={workload.SERVICE_LABEL}"


def log(msg: str) -> None:
    print(f"[bench-scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Both locks, in their order (as `flock e2e flock bench` takes them)."""
    with contextlib.ExitStack() as stack:
        for path in LOCKS:
            f = stack.enter_context(open(path, "a"))
            log(f"waiting for {path}")
            fcntl.flock(f, fcntl.LOCK_EX)
        log("holding both locks")
        yield


@dataclass
class Phase:
    done_s: float | None  # when the phase's condition first held; None: not within the timeout
    wall_s: float
    cpu_s: dict[str, float]  # per component
    rss_mib: dict[str, float]  # at the phase's end
    peak_rss_mib: dict[str, float]  # VmHWM at the phase's end (since the process started)
    calls: metrics.Counts
    load: tuple[float, float, float]  # os.getloadavg() at the phase's end
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    services: int
    cache: bool
    form: str
    load_start: tuple[float, float, float]
    setup_s: float
    apply_s: float
    ramp: Phase
    change: Phase
    steady: Phase


class Probe:
    """Usage and core's counters at one instant; `phase` turns two into a Phase."""

    def __init__(self, cp: ControlPlane, xp: crossplane.Crossplane) -> None:
        self.cp, self.xp = cp, xp
        self.t = time.monotonic()
        self.usage = usage(cp)
        self.counts = metrics.scrape(xp.metrics_port)

    def phase(self, since: Probe, done_s: float | None, **extra: Any) -> Phase:
        return Phase(
            done_s,
            self.t - since.t,
            {k: round(u.cpu_s - since.usage[k].cpu_s, 2) for k, u in self.usage.items()},
            {k: round(u.rss_mib, 1) for k, u in self.usage.items()},
            {k: round(u.peak_rss_mib, 1) for k, u in self.usage.items()},
            metrics.delta(self.counts, since.counts),
            os.getloadavg(),
            extra,
        )


def usage(cp: ControlPlane) -> dict[str, procstat.Usage]:
    return {
        p.name: procstat.group_usage(p.popen.pid)
        for p in cp.procs
        if p.name in COMPONENTS and p.popen is not None
    }


def items(cp: ControlPlane, path: str) -> list[dict[str, Any]]:
    status, body = cp.get(path, timeout=120)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:300]}")
    out: list[dict[str, Any]] = json.loads(body)["items"]
    return out


def breakers_open(cp: ControlPlane) -> dict[str, int]:
    """How many pools and services Crossplane's circuit breaker currently holds open (their
    `Responsive` condition is False: watch events for them are dropped but one per 30 s)."""
    out = {}
    for kind, path in (("pools", POOLS), ("services", SERVICES)):
        found = items(cp, path)
        out[kind] = sum(1 for o in found if workload.condition_false(o, "Responsive"))
    return out


def poll(
    check: Callable[[], bool], timeout: float, procs: ControlPlane, interval: float = 1.0
) -> float | None:
    """Seconds until `check()` held (None after `timeout`); fails when a component died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        dead = [p.name for p in procs.procs if not p.alive()]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited during the benchmark")
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    return None


def create(cp: ControlPlane, docs: list[dict[str, Any]]) -> None:
    cp.kubectl("create", "-f", "-", input=yaml.safe_dump_all(docs, sort_keys=False))


def post(cp: ControlPlane, doc: dict[str, Any]) -> None:
    meta = doc["metadata"]
    path = f"/apis/{doc['apiVersion']}/namespaces/{meta['namespace']}/inferenceservices"
    req = urllib.request.Request(
        cp.server + path,
        data=json.dumps(doc).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120, context=cp.ssl_context()) as r:
        r.read()


def create_services(cp: ControlPlane, docs: list[dict[str, Any]]) -> None:
    """POST every service, CREATORS at a time: `kubectl create -f` sends one request after
    the other (about one a second here), which would time kubectl rather than Crossplane."""
    with concurrent.futures.ThreadPoolExecutor(CREATORS) as pool:
        for done in pool.map(functools.partial(post, cp), docs):
            del done  # raises the first failure


def ramp_phase(
    cp: ControlPlane, xp: crossplane.Crossplane, w: Workload, before: Probe, timeout: float
) -> tuple[float, Probe, Phase]:
    """Create every service; until all are Ready and Synced."""
    create_services(cp, w.services_manifests())
    apply_s = time.monotonic() - before.t
    synced_at: list[float] = []
    counts: list[tuple[float, int, int]] = []

    def all_ready() -> bool:
        found = items(cp, SERVICES)
        synced = sum(1 for o in found if workload.condition_true(o, "Synced"))
        ready = workload.ready_and_synced(found)
        counts.append((round(time.monotonic() - before.t, 1), synced, ready))
        if synced == w.services and not synced_at:
            synced_at.append(time.monotonic() - before.t)
        return ready == w.services

    poll(all_ready, timeout, cp)
    ramped = Probe(cp, xp)
    done = counts[-1][0] if counts and counts[-1][2] == w.services else None
    ramp = ramped.phase(
        before,
        done,
        synced_s=round(synced_at[0], 1) if synced_at else None,
        timeline=counts[:: max(1, len(counts) // 40)],
        ready=counts[-1][2] if counts else 0,
        breakers_open=breakers_open(cp),
    )
    log(f"ramp: all Ready {done} s (load {ramp.load[0]:.1f})")
    return apply_s, ramped, ramp


def change_phase(
    cp: ControlPlane, xp: crossplane.Crossplane, w: Workload, ramped: Probe, timeout: float
) -> Phase:
    """Edit pool CHANGED; until every bound service's Deployment carries the edit, then until
    all services are Ready again."""
    bound = {
        (s["metadata"]["namespace"], s["metadata"]["name"])
        for s in w.services_manifests()
        if s["spec"]["gpu"]["poolRef"]["name"] == workload.CHANGED
    }
    changed: dict[str, int] = {}

    def rerendered() -> bool:
        key = workload.SERVICE_LABEL
        new = {
            (d["metadata"]["namespace"], d["metadata"]["labels"][key])
            for d in items(cp, DEPLOYMENTS)
            if workload.rerendered(d)
        }
        changed["bound"] = len(new & bound)
        changed["other"] = len(new - bound)  # must stay 0: their pool did not change
        return changed["bound"] == len(bound)

    patch = json.dumps(workload.pool_change())
    cp.kubectl("patch", "gpupool", workload.CHANGED, "--type=merge", "-p", patch)
    start = time.monotonic()
    rerender_s = poll(rerendered, timeout, cp)
    again = poll(lambda: workload.ready_and_synced(items(cp, SERVICES)) == w.services, timeout, cp)
    phase = Probe(cp, xp).phase(
        ramped,
        rerender_s,
        bound=len(bound),
        rerendered=changed.get("bound", 0),
        rerendered_unbound=changed.get("other", 0),
        ready_again_s=round(time.monotonic() - start, 1) if again is not None else None,
        breakers_open=breakers_open(cp),
    )
    log(f"pool change: re-rendered {rerender_s} s, Ready again {phase.extra['ready_again_s']}")
    return phase


def run(services: int, cache: bool, form: str, timeout: float, steady: float, keep: bool) -> Run:
    w = Workload(services)
    start = time.monotonic()
    load_start = os.getloadavg()
    with (
        control_plane(controllers=True, kwok=True, keep=keep) as cp,
        tempfile.TemporaryDirectory(prefix="bench-scale-registry-") as regdir,
        registry(Path(regdir)) as reg,
    ):
        add_nodes(cp, w.nodes())
        install_third_party_crds(cp)
        core_args = CACHE_FLAGS if cache else ()
        with crossplane.platform(cp, reg, form, volumes=0, core_args=core_args) as xp:
            for ns in w.namespaces:
                cp.namespace(ns)
            create(cp, w.pools() + w.caches())
            peers = len(workload.POOLS) + len(w.namespaces)

            def peers_ready() -> bool:
                found = items(cp, POOLS) + items(cp, "/apis/inference.ai/v1alpha1/tokencaches")
                return workload.ready_and_synced(found) == peers

            if poll(peers_ready, timeout, cp) is None:
                raise RuntimeError("the pools and caches did not become Ready")
            setup_s = time.monotonic() - start
            log(f"{services} services, cache {'on' if cache else 'off'}: set up in {setup_s:.0f} s")
            time.sleep(5)  # let the pools' and caches' own reconciles settle

            before = Probe(cp, xp)
            apply_s, ramped, ramp = ramp_phase(cp, xp, w, before, timeout)
            change = change_phase(cp, xp, w, ramped, timeout)
            time.sleep(SETTLE)  # the rollout's last events (old pods going) before the window
            quiet_start = Probe(cp, xp)
            time.sleep(steady)
            quiet = Probe(cp, xp).phase(quiet_start, None)
            return Run(services, cache, form, load_start, setup_s, apply_s, ramp, change, quiet)


def load(path: Path) -> list[Run]:
    runs = []
    for r in json.loads(path.read_text()):
        phases = {k: Phase(**{**r[k], "load": tuple(r[k]["load"])}) for k in PHASES}
        runs.append(Run(**{**r, **phases, "load_start": tuple(r["load_start"])}))
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.scale.bench", description=__doc__)
    p.add_argument("--sizes", default="100,250,500", help="InferenceService counts (comma list)")
    p.add_argument(
        "--cache", default="off,on", help="function response cache settings per size (off,on)"
    )
    p.add_argument("--form", choices=crossplane.FORMS, default="v2", help="XRD form (v2)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per phase (600)")
    p.add_argument("--steady", type=float, default=90, help="quiet window in seconds (90)")
    p.add_argument("--out", type=Path, default=None, help="write results.json and report.md here")
    p.add_argument("--keep", action="store_true", help="keep each control plane's temp dir")
    p.add_argument(
        "--report", type=Path, default=None, help="only print the tables of a results.json"
    )
    args = p.parse_args(argv)
    if args.report:
        print(report.render(load(args.report)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    settings = [s.strip() for s in args.cache.split(",") if s.strip()]
    if bad := sorted(set(settings) - {"off", "on"}):
        p.error(f"--cache: {bad} not among off, on")
    runs: list[Run] = []
    for size in sizes:
        for setting in settings:
            with locked():
                runs.append(
                    run(size, setting == "on", args.form, args.timeout, args.steady, args.keep)
                )
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "results.json").write_text(
                    json.dumps([asdict(r) for r in runs], indent=1)
                )
    text = report.render(runs)
    print(text)
    if args.out:
        (args.out / "report.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
