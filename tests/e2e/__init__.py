"""End-to-end tests against a real control plane (hack/e2e); run with `make test-e2e`."""

import os

import pytest

# Opt-in: they need `make tools-e2e` (~13 min cold on 2 cores) and start a control plane.
requires_e2e = pytest.mark.skipif(
    os.environ.get("E2E") != "1", reason="end-to-end test: run `make test-e2e` (or set E2E=1)"
)
