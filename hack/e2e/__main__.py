"""`python -m hack.e2e [--controllers] [--kwok] [--registry] [--crossplane [--form claims|v2]]`:
run the control plane until Ctrl-C.

Prints the kubeconfig path; everything is torn down on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from types import FrameType

from hack.e2e.controlplane import (
    ControlPlaneError,
    add_nodes,
    control_plane,
    install_third_party_crds,
    registry,
)
from hack.e2e.crossplane import FORMS, platform


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m hack.e2e", description=__doc__)
    p.add_argument(
        "--controllers", action="store_true", help="add kube-controller-manager and kube-scheduler"
    )
    p.add_argument(
        "--kwok", action="store_true", help="add kwok and fake GPU nodes (implies --controllers)"
    )
    p.add_argument("--registry", action="store_true", help="also run the OCI registry on localhost")
    p.add_argument(
        "--crossplane",
        action="store_true",
        help="everything above, plus Crossplane core, our functions (mTLS), our packages "
        "installed and provider-kubernetes with them, as the Configuration's dependency",
    )
    p.add_argument(
        "--form",
        choices=FORMS,
        default="claims",
        help="with --crossplane: the XRD form the Configuration installs (default: claims)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temp dir (logs, certificates) afterwards"
    )
    args = p.parse_args()
    if args.crossplane:
        args.kwok = args.registry = True
    signal.signal(signal.SIGTERM, _terminate)
    start = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            cp = stack.enter_context(
                control_plane(
                    controllers=args.controllers or args.kwok, kwok=args.kwok, keep=args.keep
                )
            )
            if args.kwok:
                add_nodes(cp)
            procs = list(cp.procs)
            print(f"control plane ready in {time.monotonic() - start:.1f} s", flush=True)
            print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
            if args.registry:
                reg = stack.enter_context(registry(cp.dir))
                procs.append(reg.proc)
                print(f"registry: {reg.host} (plain HTTP)", flush=True)
            if args.crossplane:
                install_third_party_crds(cp)
                stack.enter_context(platform(cp, reg, args.form))
                procs = [*list(cp.procs), reg.proc]
                print(f"crossplane ready in {time.monotonic() - start:.1f} s", flush=True)
            while all(proc.alive() for proc in procs):
                time.sleep(1)
            dead = [proc for proc in procs if not proc.alive()]
            print(f"error: {dead[0].name} exited:\n{dead[0].tail()}", file=sys.stderr)
            return 1
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
