"""Result messages are bounded: at most 1,024 bytes, echoed input cut short, cut the same way
every time."""

from __future__ import annotations

import pytest

from functions.common.messages import MESSAGE_LIMIT, bounded, echo
from tests import fnharness


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("short", "short"),
        ("x" * 1024, "x" * 1024),
        ("x" * 1025, "x" * 992 + " [... cut to 1024 of 1025 bytes]"),
        # 512 two-byte characters are exactly the limit; one more cuts whole characters only.
        ("é" * 512, "é" * 512),
        ("é" * 513, "é" * 496 + " [... cut to 1024 of 1026 bytes]"),
        ("a" + "é" * 600, "a" + "é" * 495 + " [... cut to 1024 of 1201 bytes]"),
    ],
)
def test_bounded_keeps_short_messages_and_cuts_long_ones_to_the_limit(
    message: str, expected: str
) -> None:
    assert bounded(message) == expected
    assert len(bounded(message).encode()) <= MESSAGE_LIMIT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("llama", "llama"),
        (42, "42"),
        ("a" * 80, "a" * 80),
        ("a" * 100_000, "a" * 80 + "... (100000 characters)"),
    ],
)
def test_echo_quotes_an_input_value_cut_to_80_characters(value: object, expected: str) -> None:
    assert echo(value) == expected


def test_a_fatal_result_listing_hundreds_of_problems_is_cut_to_the_limit() -> None:
    doc = fnharness.example("ttl-cache.yaml")
    doc["spec"].update({f"unknownField{i:03d}": i for i in range(300)})
    out = fnharness.run(fnharness.claim_composite(doc))
    (message,) = out.fatal
    assert message.startswith("invalid spec: spec.unknownField")
    assert message.endswith(" bytes]")  # the note of how long it was
    assert len(message.encode()) == MESSAGE_LIMIT
    assert out.wire() == fnharness.run(fnharness.claim_composite(doc)).wire()
