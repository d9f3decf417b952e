"""`crossplane resource validate` of the inputs against the form's XRDs, fully offline."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from hack.render.catalog import Catalog
from hack.render.env import REPO, RenderError, core_image, tools_dir
from hack.render.jobs import Job
from hack.render.yamlio import dump


def validate(cli: Path, catalog: Catalog, jobs: Sequence[Job], workdir: Path) -> str | None:
    """The CLI's report, with a legend of the inputs, when validation fails; else None."""
    crds = tools_dir() / "xpkg-cache"
    image = core_image()
    if not (crds / image.replace(":", "@")).is_dir():
        raise RenderError(
            f"error: core CRDs for offline validation missing under {crds}; run `make tools`"
        )
    inputs = workdir / "validate-inputs.yaml"
    inputs.write_text("---\n".join(dump(j.doc) for j in jobs))
    cmd = [
        str(cli),
        "resource",
        "validate",
        str(REPO / "xrds" / catalog.form),
        str(inputs),
        "--cache-dir",
        str(crds),
        "--crossplane-image",
        image,
        "--skip-success-results",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode == 0:
        return None
    report = (proc.stdout + proc.stderr).strip()
    legend = "\n".join(f"  {j.doc['kind']} {j.doc['metadata']['name']}: {j.label}" for j in jobs)
    return f"{report}\ninputs:\n{legend}"
