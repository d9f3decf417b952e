"""GPU catalog: product names, memory and MIG geometry of the GPUs we schedule onto.

Sources: NVIDIA MIG user guide ("Supported MIG Profiles", `nvidia-smi mig -lgipp` placements),
GPU feature discovery's `nvidia.com/gpu.product` values, mig-parted device-filter ids.
Geometry marked `inferred=True` is derived from memory-slice ratios, not from an NVML dump
(B200/GB200: the DRA driver's partition table; confirm with
`nvmlDeviceGetGpuInstancePossiblePlacements`).

Profiles are keyed by (model, name): the same name means different shapes on different models
(`1g.24gb` is the two-memory-slice 1g on H100 NVL). `MigClass.nvml_profile` is the
model-independent key (NVML `GPU_INSTANCE_PROFILE_*` enum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property


@dataclass(frozen=True)
class MigClass:
    """A GPU-instance shape, independent of the memory size in its profile name."""

    key: str  # "1g", "1g+me", "1g.2x", "2g", "2g+me", "3g", "4g", "7g"
    compute_slices: int
    memory_slices: int
    starts: tuple[int, ...]  # legal first memory slice
    max_per_gpu: int
    nvml_profile: int  # NVML GPU_INSTANCE_PROFILE_* enum value
    smi_id: int | None = None  # `nvidia-smi mig -lgip` profile id (7-slot GPUs)

    @property
    def media_extensions(self) -> bool:
        """`+me` shapes own the GPU's media engines: at most one such instance per GPU."""
        return self.key.endswith("+me")


# 7 compute x 8 memory slices: A100, H100, H200, GH200, B200, GB200.
_SEVEN_SLOT = (
    MigClass("1g", 1, 1, (0, 1, 2, 3, 4, 5, 6), 7, nvml_profile=0, smi_id=19),
    MigClass("1g+me", 1, 1, (0, 1, 2, 3, 4, 5, 6), 1, nvml_profile=7, smi_id=20),
    MigClass("1g.2x", 1, 2, (0, 2, 4, 6), 4, nvml_profile=9, smi_id=15),
    MigClass("2g", 2, 2, (0, 2, 4), 3, nvml_profile=1, smi_id=14),
    MigClass("3g", 3, 4, (0, 4), 2, nvml_profile=2, smi_id=9),
    MigClass("4g", 4, 4, (0,), 1, nvml_profile=3, smi_id=5),
    MigClass("7g", 7, 8, (0,), 1, nvml_profile=4, smi_id=0),
)
# 4 compute x 4 memory slices: A30 (2g+me needs R525+).
_FOUR_SLOT = (
    MigClass("1g", 1, 1, (0, 1, 2, 3), 4, nvml_profile=0),
    MigClass("1g+me", 1, 1, (0, 1, 2, 3), 1, nvml_profile=7),
    MigClass("2g", 2, 2, (0, 2), 2, nvml_profile=1),
    MigClass("2g+me", 2, 2, (0, 2), 1, nvml_profile=8),
    MigClass("4g", 4, 4, (0,), 1, nvml_profile=3),
)
# mig-parted's `all-balanced` layout per geometry [mig-parted pkg/mig/builder/balanced.go].
_BALANCED = {7: {"1g": 2, "2g": 1, "3g": 1}, 4: {"1g": 2, "2g": 1}}


@dataclass(frozen=True)
class MigProfile:
    name: str  # as nvidia-smi / mig-parted spell it, e.g. "3g.40gb"
    shape: MigClass

    @cached_property  # read per GPU of every node of a pool
    def resource_name(self) -> str:
        """Extended resource the device plugin advertises under the mixed strategy."""
        return "nvidia.com/mig-" + self.name.replace("+", ".")


@dataclass(frozen=True)
class GPUModel:
    key: str
    family: str  # the `gpu.type` users write, e.g. "nvidia-a100"
    memory_gib: int
    products: tuple[str, ...]  # `nvidia.com/gpu.product` values from GPU feature discovery
    device_ids: tuple[str, ...] = ()  # mig-parted device-filter ids (PCI device id + 10DE)
    memory_slices: int = 0
    compute_slices: int = 0
    profiles: tuple[MigProfile, ...] = field(default=())
    inferred: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.profiles})

    def __hash__(self) -> int:
        # Models key dicts and caches once per node of a pool: the generated hash would hash
        # every profile each time. Equal models have equal keys, so this agrees with ==.
        return hash(self.key)

    @property
    def mig_capable(self) -> bool:
        return bool(self.profiles)

    def profile(self, name: str) -> MigProfile | None:
        by_name: dict[str, MigProfile] = self._by_name  # type: ignore[attr-defined]
        return by_name.get(name)

    def profile_of_shape(self, key: str) -> MigProfile | None:
        return next((p for p in self.profiles if p.shape.key == key), None)

    @property
    def balanced(self) -> dict[str, int]:
        """mig-parted's `all-balanced` layout for one GPU of this model (profile -> count)."""
        out = {}
        for key, count in _BALANCED.get(self.compute_slices, {}).items():
            profile = self.profile_of_shape(key)
            if profile is not None:
                out[profile.name] = count
        return out


def _seven_slot(sizes: tuple[int, int, int, int, int, int]) -> tuple[MigProfile, ...]:
    one, one2x, two, three, four, seven = sizes
    by_key = {c.key: c for c in _SEVEN_SLOT}
    return (
        MigProfile(f"1g.{one}gb", by_key["1g"]),
        MigProfile(f"1g.{one}gb+me", by_key["1g+me"]),
        MigProfile(f"1g.{one2x}gb", by_key["1g.2x"]),
        MigProfile(f"2g.{two}gb", by_key["2g"]),
        MigProfile(f"3g.{three}gb", by_key["3g"]),
        MigProfile(f"4g.{four}gb", by_key["4g"]),
        MigProfile(f"7g.{seven}gb", by_key["7g"]),
    )


def _ids(*pci: str) -> tuple[str, ...]:
    return tuple(f"0x{p}10DE" for p in pci)


def _seven_slot_gpu(
    key: str,
    family: str,
    memory_gib: int,
    products: tuple[str, ...],
    pci_ids: tuple[str, ...],
    sizes: tuple[int, int, int, int, int, int],
    *,
    inferred: bool = False,
) -> GPUModel:
    return GPUModel(
        key,
        family,
        memory_gib,
        products,
        _ids(*pci_ids),
        memory_slices=8,
        compute_slices=7,
        profiles=_seven_slot(sizes),
        inferred=inferred,
    )


def _whole_gpu(key: str, family: str, memory_gib: int, product: str) -> GPUModel:
    return GPUModel(key, family, memory_gib, (product,))


# Sizes (GB) in the profile names of 1g, 1g with two memory slices, 2g, 3g, 4g and 7g.
# fmt: off
CATALOG: tuple[GPUModel, ...] = (
    _seven_slot_gpu("a100-40gb", "nvidia-a100", 40,
                    ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"),
                    ("20B0", "20B1", "20F1", "20F6"), (5, 10, 10, 20, 20, 40)),
    _seven_slot_gpu("a100-80gb", "nvidia-a100", 80,
                    ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"),
                    ("20B2", "20B5", "20F3", "20F5"), (10, 20, 20, 40, 40, 80)),
    _seven_slot_gpu("h100-80gb", "nvidia-h100", 80,
                    ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"),
                    ("2330", "2331", "2322", "2324"), (10, 20, 20, 40, 40, 80)),
    _seven_slot_gpu("h100-94gb", "nvidia-h100", 94, ("NVIDIA-H100-NVL",),
                    ("2321", "233A"), (12, 24, 24, 47, 47, 94)),
    _seven_slot_gpu("h200-141gb", "nvidia-h200", 141, ("NVIDIA-H200", "NVIDIA-H200-NVL"),
                    ("2335", "233B"), (18, 35, 35, 71, 71, 141)),
    _seven_slot_gpu("gh200-96gb", "nvidia-gh200", 96, ("NVIDIA-GH200-480GB",),
                    ("2342",), (12, 24, 24, 48, 48, 96)),
    _seven_slot_gpu("gh200-144gb", "nvidia-gh200", 144, ("NVIDIA-GH200-144G-HBM3e",),
                    ("2348",), (18, 36, 36, 72, 72, 144)),
    _seven_slot_gpu("b200-180gb", "nvidia-b200", 180, ("NVIDIA-B200",),
                    ("2901",), (23, 45, 45, 90, 90, 180), inferred=True),
    _seven_slot_gpu("gb200-186gb", "nvidia-gb200", 186, ("NVIDIA-GB200",),
                    ("2941",), (23, 47, 47, 93, 93, 186), inferred=True),
    GPUModel("a30-24gb", "nvidia-a30", 24, ("NVIDIA-A30",), _ids("20B7"),
             memory_slices=4, compute_slices=4,
             profiles=tuple(MigProfile(n, c) for n, c in zip(
                 ("1g.6gb", "1g.6gb+me", "2g.12gb", "2g.12gb+me", "4g.24gb"), _FOUR_SLOT,
                 strict=True))),
    _whole_gpu("l40s-48gb", "nvidia-l40s", 48, "NVIDIA-L40S"),
    _whole_gpu("l4-24gb", "nvidia-l4", 24, "NVIDIA-L4"),
    _whole_gpu("a10g-24gb", "nvidia-a10g", 24, "NVIDIA-A10G"),
    _whole_gpu("t4-16gb", "nvidia-t4", 16, "Tesla-T4"),
)
# fmt: on

GPU_TYPES: tuple[str, ...] = tuple(
    sorted({m.family for m in CATALOG} | {f"nvidia-{m.key}" for m in CATALOG})
)
"""`spec.gpu.type` values: a family (`nvidia-a100`) or an exact model (`nvidia-a100-80gb`)."""

ALL_MIG_PROFILE_NAMES: tuple[str, ...] = tuple(
    sorted({p.name for m in CATALOG for p in m.profiles})
)


@cache
def models_for_type(gpu_type: str) -> tuple[GPUModel, ...]:
    """Catalog models a `gpu.type` value stands for (a family matches all its memory sizes)."""
    return tuple(m for m in CATALOG if gpu_type in (m.family, f"nvidia-{m.key}"))


def models_with_profiles(names: tuple[str, ...]) -> tuple[GPUModel, ...]:
    """MIG-capable models on which every profile name exists."""
    return tuple(m for m in CATALOG if m.profiles and all(m.profile(n) for n in names))


_PRODUCTS = {p: m for m in CATALOG for p in m.products}


def model_for_product(product: str) -> GPUModel | None:
    """Catalog model behind a `nvidia.com/gpu.product` label value.

    GPU feature discovery appends `-SHARED` when devices are replicated and, under the single
    MIG strategy, `-MIG-<profile>` (or `-MIG-INVALID`); both are stripped.
    """
    return _PRODUCTS.get(base_product(product))


def base_product(product: str) -> str:
    """`nvidia.com/gpu.product` without GFD's `-SHARED` and `-MIG-<profile>` suffixes."""
    return product.removesuffix("-SHARED").split("-MIG-", 1)[0]
