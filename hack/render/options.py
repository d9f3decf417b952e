"""The command line (options and environment variables), parsed into a typed Options."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from functions.common.kinds import KINDS
from hack.render.functions import DEFAULT_PORT_BASE

FORMS = ("claims", "v2")


@dataclass(frozen=True)
class Options:
    files: list[Path]
    form: str
    observed: Path | None
    required: list[Path]
    include_results: bool
    include_full_xr: bool
    reuse_running: bool
    no_validate: bool
    serve: bool
    debug: bool
    timeout: str
    jobs: int


def _ports() -> str:
    """`9443: inferenceservice, +1 gpupool, +2 tokencache`, from the kinds."""
    names = [
        (f"+{k.port - DEFAULT_PORT_BASE} " if k.port != DEFAULT_PORT_BASE else "")
        + k.function.removeprefix("function-")
        for k in KINDS
    ]
    return f"{DEFAULT_PORT_BASE}: {', '.join(names)}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hack.render",
        epilog="environment: TOOLS_DIR (crossplane binaries, as hack/tools.sh), CROSSPLANE_BIN, "
        f"CROSSPLANE_CORE_BIN, FN_PORT_BASE (default {_ports()}), "
        "FUNCTIONS_BIN_DIR (where the function-* console scripts are)",
        description="Render claims/XRs offline with `crossplane composition render` against "
        "the three functions, served locally by this tool.",
    )
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="manifests or directories to render (default: examples/claims)",
    )
    p.add_argument(
        "--form",
        choices=FORMS,
        default="claims",
        help="XRD/Composition form: claims (v1 XRDs, claim->XR) or v2 (namespaced XRs)",
    )
    p.add_argument(
        "--observed",
        type=Path,
        metavar="PATH",
        help="observed composed resources for every input "
        "(default: examples/observed/<basename> when present)",
    )
    p.add_argument(
        "--required",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="required resources for every input, repeatable "
        "(default: examples/required/<basename> when present)",
    )
    p.add_argument(
        "--include-results",
        action="store_true",
        help="also print the functions' results (kind: Result)",
    )
    p.add_argument(
        "--include-full-xr",
        action="store_true",
        help="print the full XR, not only its name and status",
    )
    p.add_argument(
        "--reuse-running",
        action="store_true",
        help="use functions already listening on their ports (e.g. `make run`)",
    )
    p.add_argument(
        "--no-validate",
        action="store_true",
        help="skip `crossplane resource validate` of the inputs against the XRDs",
    )
    p.add_argument(
        "--serve",
        action="store_true",
        help="only serve the functions on their ports until Ctrl-C (`make run`); no rendering",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="run functions with --debug and print their logs to stderr",
    )
    p.add_argument("--timeout", default="1m", help="CLI --timeout per render (default 1m)")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="renders to run in parallel",
    )
    return p


def parse(argv: Sequence[str] | None) -> Options:
    ns = parser().parse_args(argv)
    return Options(**vars(ns))
