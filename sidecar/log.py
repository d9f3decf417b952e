"""Logging: one logfmt line per event on stderr, and "log on change" for per-scrape states.

A source that is down stays down for many scrapes; `Transitions` logs when a state changes
(up -> down, down -> up, a different error), not on every scrape.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

LOGGER_NAME = "inference-sidecar"


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"time={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
        ]
        source = getattr(record, "source", None)
        if source:
            parts.append(f"source={_quote(source)}")
        parts.append(f"msg={_quote(record.getMessage())}")
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        parts.extend(f"{k}={_quote(v)}" for k, v in fields.items())
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log(level: int, source: str, msg: str, **fields: Any) -> None:
    logging.getLogger(LOGGER_NAME).log(level, msg, extra={"source": source, "fields": fields})


def info(source: str, msg: str, **fields: Any) -> None:
    log(logging.INFO, source, msg, **fields)


def warning(source: str, msg: str, **fields: Any) -> None:
    log(logging.WARNING, source, msg, **fields)


def error(source: str, msg: str, **fields: Any) -> None:
    log(logging.ERROR, source, msg, **fields)


def debug(source: str, msg: str, **fields: Any) -> None:
    log(logging.DEBUG, source, msg, **fields)


class Transitions:
    """Logs a keyed state only when it differs from the last one logged for that key."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(self, key: str, state: str, level: int, msg: str, **fields: Any) -> bool:
        with self._lock:
            if self._last.get(key) == state:
                return False
            self._last[key] = state
        log(level, self.source, msg, **fields)
        return True
