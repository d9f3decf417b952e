"""Entry point: serve the InferenceService composition function."""

import click
from crossplane.function import cli as sdkcli

from functions.inferenceservice.fn import runner


@click.command()
@sdkcli.standard_options
def cli(**kwargs: object) -> None:
    """Serve the InferenceService composition function over gRPC."""
    sdkcli.run(runner(), **kwargs)  # type: ignore[arg-type]
