"""Spec models of the three kinds: the single source of the XRD schemas."""

from functions.common.api.gpupool import GPUPoolSpec
from functions.common.api.inferenceservice import InferenceServiceSpec
from functions.common.api.tokencache import TokenCacheSpec

__all__ = ["GPUPoolSpec", "InferenceServiceSpec", "TokenCacheSpec"]
