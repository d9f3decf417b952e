"""The three kinds: names, scopes and schemas, in one place for functions, XRDs and tooling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from functions.common.api import GPUPoolSpec, InferenceServiceSpec, TokenCacheSpec
from functions.common.api.base import SpecModel
from functions.common.api.status import GPUPoolStatus, InferenceServiceStatus, TokenCacheStatus

GROUP = "inference.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# Where the function and configuration packages are published (package/*/crossplane.yaml).
PACKAGE_REGISTRY = "xpkg.crossplane.io/inference-platform"


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    spec: type[SpecModel]
    status: type[SpecModel]
    scope: Literal["Namespaced", "Cluster"]
    function: str
    short_names: tuple[str, ...]
    # 127.0.0.1 port of the function under `make run` and `python -m hack.render` (9443 is the
    # SDK's default; FN_PORT_BASE moves all three, keeping their distances).
    port: int = 9443
    # The function reads the cluster's GPUPools and TokenCaches as required resources, which
    # examples/required/cluster.yaml provides to offline renders.
    reads_cluster: bool = False

    @property
    def composite_kind(self) -> str:
        """Composite kind of the Crossplane v1 (claim) form."""
        return f"X{self.kind}" if self.namespaced else self.kind

    @property
    def composite_plural(self) -> str:
        return f"x{self.plural}" if self.namespaced else self.plural

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"


INFERENCE_SERVICE = Kind(
    "InferenceService",
    "inferenceservices",
    InferenceServiceSpec,
    InferenceServiceStatus,
    "Namespaced",
    "function-inferenceservice",
    ("infsvc",),
    port=9443,
    reads_cluster=True,
)
GPU_POOL = Kind(
    "GPUPool",
    "gpupools",
    GPUPoolSpec,
    GPUPoolStatus,
    "Cluster",
    "function-gpupool",
    ("gpool",),
    port=9444,
)
TOKEN_CACHE = Kind(
    "TokenCache",
    "tokencaches",
    TokenCacheSpec,
    TokenCacheStatus,
    "Namespaced",
    "function-tokencache",
    ("tcache",),
    port=9445,
)
KINDS: tuple[Kind, ...] = (INFERENCE_SERVICE, GPU_POOL, TOKEN_CACHE)
