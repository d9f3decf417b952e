"""Warm the prefix caches: send each common prefix to every bound engine before traffic arrives.

The engine computes the prefix's KV blocks for a one-token completion and keeps them in its
prefix cache (and, with LMCache, stores them in the TokenCache's tiers), so later requests that
start with the prefix reuse them. Reads a JSON plan (`{"targets": [{"url", "model"}],
"prefixes": [...]}`, sidecar/contract.py), POSTs `<url>/completions` for every target and
prefix, retries connection errors, 429 and 5xx with exponential backoff, and stops at the
deadline. Exits 0 when every
prefix reached every target, 1 otherwise (the Job then retries within its backoffLimit).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from sidecar.contract import Plan, Target, WarmupApi, warmup_request

log = logging.getLogger("inference-cache-warmup")
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Retryable(Exception):
    pass


def complete(target: Target, prefix: str, timeout: float, api: WarmupApi = "completions") -> None:
    path, doc = warmup_request(api, target.model, prefix)
    req = urllib.request.Request(
        f"{target.url}{path}",
        data=json.dumps(doc).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as rsp:
            rsp.read()
    except urllib.error.HTTPError as err:
        if err.code in RETRYABLE_STATUS:
            raise Retryable(f"HTTP {err.code}") from err
        raise
    except (urllib.error.URLError, OSError) as err:
        raise Retryable(str(err)) from err


def warm(
    plan: Plan,
    deadline: float,
    request_timeout: float = 60.0,
) -> list[str]:
    """Send every prefix to every target; the failures, as messages (empty: all warmed)."""
    end = time.monotonic() + deadline
    failures = []
    for target in plan.targets:
        for i, prefix in enumerate(plan.prefixes):
            what = f"prefix {i} to {target.url} ({target.model})"
            backoff = 0.5
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    failures.append(f"{what}: deadline reached")
                    break
                try:
                    complete(target, prefix, min(request_timeout, left), plan.api)
                    log.info("warmed %s", what)
                    break
                except Retryable as err:
                    log.warning("%s: %s; retrying in %.1fs", what, err, backoff)
                    time.sleep(min(backoff, max(end - time.monotonic(), 0)))
                    backoff = min(backoff * 2, 15.0)
                except urllib.error.HTTPError as err:
                    failures.append(f"{what}: HTTP {err.code} {err.reason}")
                    break
    return failures


@click.command()
@click.option("--plan", "plan_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option(
    "--deadline-seconds",
    "deadline",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="For all of it.",
)
@click.option(
    "--request-timeout-seconds",
    "request_timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
)
def cli(plan_path: Path, deadline: float, request_timeout: float) -> None:
    """Send the plan's prefixes to its targets; exit 1 unless all were warmed in time."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    plan = Plan.parse(json.loads(plan_path.read_text()))
    failures = warm(plan, deadline, request_timeout)
    for f in failures:
        log.error("not warmed: %s", f)
    n = len(plan.targets) * len(plan.prefixes)
    log.info("warmed %d of %d prefix/target pairs", n - len(failures), n)
    raise SystemExit(1 if failures else 0)
