"""The control plane under hundreds of claims: `make bench-scale` (tests/scale/bench.py)."""
