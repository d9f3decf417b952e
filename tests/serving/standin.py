"""The TokenCache function served as in production, with a compose that misbehaves on request.

Stand-in for the pathological inputs of issue 14 (a mislabelled node that kept the planner busy
for minutes, a bug that raised), which the functions themselves no longer have: the server
must stay responsive whatever compose does, so the tests need a compose that is slow or raises
for sure. Every other composite goes to the real TokenCache compose, served by the real
`functions.common.serve` with the real command-line options.

By the claim's name:
- `spin-<x>`: writes `$STANDIN_DIR/spinning-<x>`, then keeps a CPU busy in Python (holding the
  GIL as a runaway planner does) until `$STANDIN_DIR/release-<x>` exists, then composes;
- `raise-<x>`: raises, with 100,000 characters of input in the exception's message.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from crossplane.function import cli as sdkcli

from functions.common import serve
from functions.common.api.tokencache import TokenCacheSpec
from functions.common.composer import Composed, CompositionFunction, Request
from functions.common.kinds import TOKEN_CACHE
from functions.tokencache import fn as tokencache


def _spin_until(release: Path) -> None:
    while not release.exists():
        total = 0
        for i in range(200_000):
            total += i


def _pathological_bug(echoed: str) -> None:
    raise RuntimeError(f"cannot use {echoed}")


def compose(req: Request[TokenCacheSpec]) -> Composed:
    directory = Path(os.environ["STANDIN_DIR"])
    kind, _, rest = req.owner.name.partition("-")
    if kind == "spin":
        (directory / f"spinning-{rest}").touch()
        _spin_until(directory / f"release-{rest}")
    elif kind == "raise":
        _pathological_bug("x" * 100_000)
    return tokencache.compose(req)


@click.command()
@sdkcli.standard_options
@serve.options
def cli(**kwargs: object) -> None:
    """Serve the stand-in over gRPC."""
    serve.run(CompositionFunction(TOKEN_CACHE, compose), **kwargs)  # type: ignore[arg-type]


if __name__ == "__main__":
    cli()
