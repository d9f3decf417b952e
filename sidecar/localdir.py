"""The local cache tier (node NVMe directory, e.g. LMCache's local disk), read at scrape time."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from sidecar import log
from sidecar.metrics import Sample, sample

LOCAL = {"tier": "local", "source": "filesystem", "model_name": ""}


def directory_usage(root: str) -> tuple[int, int, int]:
    """(apparent bytes, files, unreadable subdirectories) under root; symlinks not followed.

    Apparent size (st_size, as `du --apparent-size -sb`), not allocated blocks: what the cache
    wrote, independent of the filesystem's block size.
    """
    total = files = errors = 0
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                            files += 1
                    except FileNotFoundError:
                        continue  # evicted while we walked
        except FileNotFoundError:
            if path == root:
                raise
        except PermissionError:
            if path == root:
                raise
            errors += 1
    return total, files, errors


class LocalDirSource:
    """Size of the local cache directory (e.g. LMCache's local disk path)."""

    name = "local"

    def __init__(self, path: str, min_interval: float = 10.0) -> None:
        self.path = path
        self.min_interval = min_interval
        self._cached: tuple[float, list[Sample]] | None = None
        self._lock = threading.Lock()
        self._states = log.Transitions(self.name)

    def read(self) -> list[Sample]:
        with self._lock:
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self.min_interval:
                return self._cached[1]
            out = self._walk()
            self._cached = (now, out)
            return out

    def _walk(self) -> list[Sample]:
        if not Path(self.path).is_dir():
            self._states.report(
                "state",
                "missing",
                logging.WARNING,
                "local cache directory missing or not a directory: inference_local_cache_up 0",
                path=self.path,
            )
            return [sample("inference_local_cache_up", 0)]
        start = time.perf_counter()
        try:
            size, files, errors = directory_usage(self.path)
        except OSError as err:
            self._states.report(
                "state",
                f"error: {err}",
                logging.WARNING,
                f"cannot read local cache directory ({err}): inference_local_cache_up 0",
                path=self.path,
            )
            return [sample("inference_local_cache_up", 0)]
        self._states.report(
            "state",
            f"up errors={bool(errors)}",
            logging.WARNING if errors else logging.INFO,
            "local cache directory readable"
            + (f"; {errors} subdirectories unreadable, not counted" if errors else ""),
            path=self.path,
            bytes=size,
            files=files,
            seconds=f"{time.perf_counter() - start:.3f}",
        )
        return [
            sample("inference_local_cache_up", 1),
            sample("inference_cache_size_bytes", size, **LOCAL),
            sample("inference_cache_entries", files, **LOCAL),
        ]

    def close(self) -> None:
        pass
