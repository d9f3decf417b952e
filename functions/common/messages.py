"""Result messages bounded in size: echoed input cut short, every message at most 1 KiB.

A result message travels to Crossplane in the response, then into Events and conditions on the
composite and the claim, and a warning also into `status.warnings`. Kubernetes caps an Event's
note at 1,024 bytes (`NoteLengthLimit` in k8s.io/kubernetes/pkg/apis/core/validation), and an
input of 100,000 characters echoed back would otherwise ride along in every response.
"""

from __future__ import annotations

MESSAGE_LIMIT = 1024
"""Bytes (UTF-8) of one result message or status warning."""

ECHO_LIMIT = 80
"""Characters of one input value quoted in a message."""


def bounded(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """`message`, cut to `limit` UTF-8 bytes with a note of how long it was.

    Deterministic: the same message is always cut at the same place (never inside a character).
    """
    data = message.encode()
    if len(data) <= limit:
        return message
    note = f" [... cut to {limit} of {len(data)} bytes]"
    head = data[: max(0, limit - len(note.encode()))].decode(errors="ignore")
    return head + note


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """An input value as a message quotes it: its text, at most `limit` characters of it."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"
