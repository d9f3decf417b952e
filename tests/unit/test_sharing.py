"""One rule for the names the device plugin advertises (functions/common/sharing.py)."""

from __future__ import annotations

import pytest

from functions.common import sharing

MIG = "nvidia.com/mig-3g.40gb"
GPU = "nvidia.com/gpu"


@pytest.mark.parametrize(
    ("resource", "mode", "oversubscribed", "advertised"),
    [
        (GPU, "exclusive", False, GPU),
        # Time-slicing and MPS replicate whole GPUs, whether or not oversubscription is on ...
        (GPU, "timeslice", False, "nvidia.com/gpu.shared"),
        (GPU, "mps", False, "nvidia.com/gpu.shared"),
        (GPU, "mps", True, "nvidia.com/gpu.shared"),
        # ... a MIG pool replicates its instances only when oversubscribed ...
        (MIG, "mig", False, MIG),
        (MIG, "mig", True, "nvidia.com/mig-3g.40gb.shared"),
        # ... and never the whole GPUs it leaves unpartitioned.
        (GPU, "mig", True, GPU),
    ],
)
def test_replicated_devices_are_advertised_as_shared(
    resource: str, mode: str, oversubscribed: bool, advertised: str
) -> None:
    assert sharing.advertised(resource, mode, oversubscribed) == advertised
    assert sharing.replicated(resource, mode, oversubscribed) is (advertised != resource)
