"""`python -m hack.e2e [--controllers] [--kwok]`: run the local control plane until Ctrl-C.

Prints the kubeconfig path; everything is torn down on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from hack.e2e.controlplane import ControlPlaneError, add_nodes, control_plane


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
    p.add_argument(
        "--keep", action="store_true", help="keep the temp dir (logs, certificates) afterwards"
    )
    args = p.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    start = time.monotonic()
    try:
        with control_plane(
            controllers=args.controllers or args.kwok, kwok=args.kwok, keep=args.keep
        ) as cp:
            if args.kwok:
                add_nodes(cp)
            print(f"control plane ready in {time.monotonic() - start:.1f} s", flush=True)
            print(f"export KUBECONFIG={cp.kubeconfig}", flush=True)
            while all(proc.alive() for proc in cp.procs):
                time.sleep(1)
            dead = [proc for proc in cp.procs if not proc.alive()]
            print(f"error: {dead[0].name} exited:\n{dead[0].tail()}", file=sys.stderr)
            return 1
    except ControlPlaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
