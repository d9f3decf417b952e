"""python -m sidecar: the same as the inference-sidecar console script."""

from sidecar.main import cli

cli()
