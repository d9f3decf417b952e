"""A local Kubernetes control plane for the end-to-end tests (see docs/e2e.md)."""
