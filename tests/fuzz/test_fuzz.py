"""No input Crossplane can send makes a function crash, hang, half-render or emit an object the
API server would refuse; identical requests give identical bytes (issue 14).

A small derandomized budget per function (FUZZ_EXAMPLES, default 150) so `make test` stays
reproducible and quick; `make fuzz` runs the long one (tests/fuzz/__main__.py).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from functions.common.kinds import KINDS, Kind
from tests.fuzz import oracle
from tests.fuzz.inputs import Case, cases

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_request_gets_a_valid_render_or_a_fatal_naming_the_field(kind: Kind) -> None:
    seen: list[tuple[bytes, str]] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(kind))
    def prop(case: Case) -> None:
        out = oracle.check(case)
        failures = {k: v for k, v in out.failures.items() if k != "slow-large-pool"}
        assert not failures, f"{sorted(case.tags)}: {failures}"
        seen.append((out.request, out.digest))

    prop()
    # Same bytes in processes with other hash seeds (set and dict order differ there).
    assert oracle.crossprocess(seen) == []
