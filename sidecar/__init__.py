"""Metrics sidecar: GPU (NVML), cache-tier (engine, local directory, Redis) and, per node, GPU
allocation metrics for Prometheus, with health endpoints. See sidecar/README.md."""
