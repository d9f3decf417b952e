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
from hack.e2e.crossplane import FORMS, Crossplane
from hack.e2e.dra import add_dra

# The XRD forms the suite runs under, in this order (`make test-e2e E2E_FORMS=v2` picks one).
SESSION_FORMS = os.environ.get("E2E_FORMS", " ".join(FORMS)).split()
if unknown := sorted(set(SESSION_FORMS) - set(FORMS)):
    raise pytest.UsageError(f"E2E_FORMS: unknown form(s) {unknown}; use {' '.join(FORMS)}")


@pytest.fixture(scope="session", params=SESSION_FORMS)
def form(request: pytest.FixtureRequest) -> str:
    """The XRD form under test: `claims` (apiextensions v1 XRDs, claims of X<Kind> composites)
    or `v2` (namespaced XRs, no claims). Every test runs once per form, each form on a control
    plane of its own (the forms define the same kinds); pytest finishes one before the next."""
    return str(request.param)


@pytest.fixture(scope="session")
def cluster(form: str) -> Iterator[ControlPlane]:
    """One control plane per form: etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler and kwok with the fake GPU nodes of hack/e2e (DEFAULT_NODES, and the DRA nodes
    with their ResourceSlices of hack/e2e/dra.py), plus the CRDs of
    the third-party kinds our compositions emit (KEDA, prometheus-operator, Gateway API and its
    Inference Extension; provider-kubernetes' come with its package, see `platform`)."""
    if os.environ.get("E2E") != "1":
        pytest.skip("end-to-end test: run `make test-e2e` (or set E2E=1)")
    keep = os.environ.get("E2E_KEEP") == "1"
    with control_plane(controllers=True, kwok=True, keep=keep) as cp:
        add_nodes(cp)
        add_dra(cp)
        install_third_party_crds(cp)
        yield cp


@pytest.fixture(scope="session")
def platform(
    cluster: ControlPlane, form: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Crossplane]:
    """hack/e2e's `platform` on `cluster`: Crossplane core, our functions served with mTLS, the
    three function packages and the Configuration of `form` installed from a local registry by
    `make deploy`, provider-kubernetes installed by Crossplane as the Configuration's dependency
    (its controller run from the Deployment Crossplane renders), static PersistentVolumes."""
    with (
        registry(tmp_path_factory.mktemp("registry")) as reg,
        crossplane.platform(cluster, reg, form) as xp,
    ):
        yield xp
