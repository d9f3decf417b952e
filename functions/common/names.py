"""Kubernetes names and labels: what the API server accepts, and names derived from a claim's.

The rules are those of k8s.io/apimachinery `validation.IsDNS1123Label`, `IsDNS1123Subdomain`,
`IsDNS1035Label`, `IsQualifiedName` (label keys) and `IsValidLabelValue`. Every name a function
derives from a claim's name goes through `derived`, so any name the API server accepts for the
claim (`llama.v2`, `9lives`, 253 characters) gives child names it accepts too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from crossplane.function import resource

# Patterns (anchored, for schemas); the compiled forms below match the whole string.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_NAME = r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
# A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
# `[.]`, not an escaped dot: the pattern is also embedded in a CEL string literal.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
)
MAX_LABEL = 63
MAX_SUBDOMAIN = 253
MAX_LABEL_KEY = MAX_SUBDOMAIN + 1 + MAX_LABEL
HASH_LEN = 8

_DNS_LABEL = re.compile(DNS_LABEL)
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN)
_DNS_1035 = re.compile(DNS_1035)
_LABEL_VALUE = re.compile(LABEL_VALUE)
_LABEL_NAME = re.compile(LABEL_NAME)


def is_dns_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LABEL and bool(_DNS_LABEL.match(value))


def is_dns_subdomain(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) <= MAX_SUBDOMAIN and bool(_DNS_SUBDOMAIN.match(value))
    )


def is_dns_1035(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LABEL and bool(_DNS_1035.match(value))


def is_label_value(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LABEL and bool(_LABEL_VALUE.match(value))


def is_label_key(value: object) -> bool:
    if not isinstance(value, str):
        return False
    prefix, slash, name = value.rpartition("/")
    if slash and not (prefix and is_dns_subdomain(prefix)):
        return False
    return len(name) <= MAX_LABEL and bool(_LABEL_NAME.match(name))


def label_problems(labels: Mapping[str, str], field: str) -> list[str]:
    """One clause per label whose key or value Kubernetes refuses, naming `field` and the key."""
    out = []
    for key, value in sorted(labels.items()):
        if not is_label_key(key):
            out.append(
                f"{field}: key {shorten(key)!r} is not a Kubernetes label key (an optional DNS "
                "subdomain prefix and '/', then at most 63 characters [A-Za-z0-9-_.] that begin "
                "and end alphanumeric)"
            )
        if not is_label_value(value):
            out.append(
                f"{field}[{shorten(key)}]: {shorten(value)!r} is not a Kubernetes label value "
                "(at most 63 characters [A-Za-z0-9-_.] that begin and end alphanumeric, or empty)"
            )
    return out


def shorten(value: object, limit: int = 80) -> str:
    """`value` for a message, at most `limit` characters (inputs may be huge)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LEN]


def derived(base: str, suffix: str = "", *, limit: int = MAX_LABEL, dns_1035: bool = True) -> str:
    """`<base>-<suffix>` as a name the API server accepts, deterministic and unique per input.

    A name that is already valid (a DNS-1035 label, or with `dns_1035=False` a DNS-1123 label
    of at most `limit` characters; subdomain when `limit` is 253) is kept as it is. Otherwise a
    readable head, made valid (lowercase, `-` for anything else, `x` in front of a leading
    digit), ends in a hash of the exact name, so `llama.v2` and `llama-v2` still get different
    objects.
    """
    name = f"{base}-{suffix}" if suffix else base
    if _valid(name, limit, dns_1035):
        return name
    keep = suffix if suffix and _valid(suffix, limit // 2, dns_1035=False) else ""
    tail = f"-{digest(name)}" + (f"-{keep}" if keep else "")
    head = re.sub(r"[^a-z0-9]+", "-", (base if keep else name).lower()).strip("-")
    if not head or (dns_1035 and not head[0].isalpha()):
        head = "x" + head
    return head[: limit - len(tail)].rstrip("-") + tail


def _valid(name: str, limit: int, dns_1035: bool) -> bool:
    if len(name) > limit:
        return False
    if dns_1035:
        return bool(_DNS_1035.match(name))
    return bool((_DNS_SUBDOMAIN if limit > MAX_LABEL else _DNS_LABEL).match(name))


def label_value(*parts: str) -> str:
    """`a-b` as a label value: kept when valid, else a valid head ending in a hash."""
    joined = "-".join(parts)
    if is_label_value(joined):
        return joined
    # The SDK's hashed name first: what earlier versions put on nodes for long pool names.
    hashed = resource.child_name(*parts)
    if is_label_value(hashed):
        return hashed
    tail = f"-{digest(joined)}"
    head = re.sub(r"[^A-Za-z0-9_.-]+", "-", joined)
    head = head[: MAX_LABEL - len(tail)].strip("-_.")
    return head + tail if head else tail[1:]
