"""Serving backends behind one interface (`base.Engine`): vLLM, Triton and TensorRT-LLM."""

from __future__ import annotations

from collections.abc import Mapping

from functions.common.api.inferenceservice import Backend
from functions.inferenceservice.backends import tensorrt_llm, triton, vllm
from functions.inferenceservice.backends.base import Engine

ENGINES: Mapping[Backend, Engine] = {
    "vllm": vllm,
    "triton": triton,
    "tensorrt-llm": tensorrt_llm,
}
"""The engine module for each spec.backend value."""
