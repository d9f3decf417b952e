"""`python -m hack.render [FILE...]` (`make render`); `... --serve` (`make run`)."""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from hack.render.catalog import load_catalog
from hack.render.engine import Renderer, render_all
from hack.render.env import REPO, RenderError, find_binary
from hack.render.functions import (
    FUNCTIONS,
    functions_yaml,
    print_function_logs,
    serve_forever,
    serve_functions,
)
from hack.render.jobs import build_jobs
from hack.render.options import Options, parse
from hack.render.output import print_outcomes
from hack.render.validate import validate
from hack.render.yamlio import yaml_files


def _inputs(opts: Options) -> list[Path]:
    """The files to render; every named input must exist."""
    files: list[Path] = []
    for arg in opts.files or [REPO / "examples" / "claims"]:
        files.extend(yaml_files(arg) if arg.is_dir() else [arg])
    if not files:
        raise RenderError(
            f"error: no YAML files in {', '.join(map(str, opts.files)) or 'examples/claims'}"
        )
    for p in [*files, *opts.required, *([opts.observed] if opts.observed else [])]:
        if not p.is_file():
            raise RenderError(f"error: {p}: no such file")
    return files


def render(opts: Options) -> int:
    files = _inputs(opts)
    cli = find_binary("CROSSPLANE_BIN", "crossplane")
    core = find_binary("CROSSPLANE_CORE_BIN", "crossplane-core")
    catalog = load_catalog(opts.form)
    warn: list[str] = []
    jobs = build_jobs(files, catalog, opts.observed, opts.required, warn)
    for line in warn:
        print(line, file=sys.stderr)
    names = sorted({f for j in jobs for f in j.info.functions}, key=list(FUNCTIONS).index)

    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        workdir = Path(tmp)
        if not opts.no_validate:
            report = validate(cli, catalog, jobs, workdir)
            if report is not None:
                print(
                    f"error: inputs do not match the {opts.form} XRD schemas:\n{report}",
                    file=sys.stderr,
                )
                return 1
        with serve_functions(names, workdir, reuse=opts.reuse_running, debug=opts.debug) as fns:
            fns_file = workdir / "functions.yaml"
            fns_file.write_text(functions_yaml(fns))
            renderer = Renderer(cli, core, fns_file, workdir, opts.timeout, opts.include_full_xr)
            outcomes = render_all(renderer, jobs, opts.jobs)
            print_outcomes(outcomes, opts.include_results)
            print_function_logs(fns, debug=opts.debug)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"error: {len(failed)} of {len(outcomes)} render(s) failed", file=sys.stderr)
        return 1
    return 0


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        return serve_forever(debug=opts.debug) if opts.serve else render(opts)
    except RenderError as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
