"""Shared fixtures."""

from __future__ import annotations

import pytest

from tests.toolchain import Tools, find_tools


@pytest.fixture(scope="session")
def tools() -> Tools:
    """The crossplane CLI and core from `make tools`; fails (never skips) when missing."""
    return find_tools()
