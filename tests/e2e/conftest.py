from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hack.e2e import crossplane
from hack.e2e.controlplane import (
    ControlPlane,
    add_nodes,
    control_plane,
    install_third_party_crds,
    registry,
)
from hack.e2e.crossplane import Crossplane


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    """One control plane for the session: etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler and kwok with the fake GPU nodes of hack/e2e (DEFAULT_NODES), plus the CRDs of
    the third-party kinds our compositions emit (KEDA, prometheus-operator, provider-kubernetes)."""
    if os.environ.get("E2E") != "1":
        pytest.skip("end-to-end test: run `make test-e2e` (or set E2E=1)")
    keep = os.environ.get("E2E_KEEP") == "1"
    with control_plane(controllers=True, kwok=True, keep=keep) as cp:
        add_nodes(cp)
        install_third_party_crds(cp)
        yield cp


@pytest.fixture(scope="session")
def platform(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Crossplane]:
    """hack/e2e's `platform` on `cluster`: provider-kubernetes, Crossplane core, our functions
    served with mTLS, the three function packages and the Configuration installed from a local
    registry with `crossplane xpkg install`, static PersistentVolumes."""
    with (
        registry(tmp_path_factory.mktemp("registry")) as reg,
        crossplane.platform(cluster, reg) as xp,
    ):
        yield xp
