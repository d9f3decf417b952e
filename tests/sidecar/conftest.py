"""Fixtures of the sidecar tests: a real redis-server and a real llm-d-inference-sim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sidecar import procs


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[procs.Redis]:
    r = procs.redis_proc(tmp_path, procs.free_port(), password="s3cret-test-password")
    with procs.running(r.proc):
        procs.wait_redis(r)
        yield r


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[procs.Sim]:
    s = procs.sim_proc(tmp_path)
    with procs.running(s.proc):
        procs.wait_sim(s)
        yield s
