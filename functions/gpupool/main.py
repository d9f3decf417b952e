"""Entry point: serve the GPUPool composition function."""

import click
from crossplane.function import cli as sdkcli

from functions.common import serve
from functions.gpupool.fn import runner

MAX_REQUEST_MB = 2047
"""The GPUPool's default --max-recv-message-size: the largest message protobuf encodes (2 GiB
less one byte), where the SDK's is 4 MB. A pool's request carries every selected Node twice
(required, and inside its observed Object), 60-70 KB per GPU Operator node: 4 MB was about 60
nodes, beyond which gRPC refused the request before the function ran, an error Crossplane only
retries. Crossplane core sends any size (grpc-go's default send limit); the ceiling the function
names is its response's (fn.PoolFunction.oversized)."""


@click.command(
    context_settings={
        "default_map": {"max_recv_message_size": MAX_REQUEST_MB, "max_send_message_size": 4}
    }
)
@sdkcli.standard_options
@serve.options
def cli(**kwargs: object) -> None:
    """Serve the GPUPool composition function over gRPC."""
    serve.run(runner(), **kwargs)  # type: ignore[arg-type]
