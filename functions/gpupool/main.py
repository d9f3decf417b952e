"""Entry point: serve the GPUPool composition function."""

import click
from crossplane.function import cli as sdkcli

from functions.common import serve
from functions.gpupool.fn import runner


@click.command()
@sdkcli.standard_options
@serve.options
def cli(**kwargs: object) -> None:
    """Serve the GPUPool composition function over gRPC."""
    serve.run(runner(), **kwargs)  # type: ignore[arg-type]
