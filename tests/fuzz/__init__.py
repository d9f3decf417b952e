"""Property-based fuzzing of the three composition functions through RunFunction (issue 14).

`test_fuzz.py` runs a small, derandomized budget in `make test`; `python -m tests.fuzz`
(`make fuzz`) runs the long one and prints counts per class and the slowest calls.
"""
