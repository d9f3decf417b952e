"""Entry point: serve the GPUPool composition function."""

import click
from crossplane.function import cli as sdkcli

from functions.gpupool.fn import runner


@click.command()
@sdkcli.standard_options
def cli(**kwargs: object) -> None:
    """Serve the GPUPool composition function over gRPC."""
    sdkcli.run(runner(), **kwargs)  # type: ignore[arg-type]
