"""`python -m tests.fuzz.worker FILE`: the response digest of each request in FILE (8-byte
big-endian length, then the serialized RunFunctionRequest), one per line, in order.

Run with another PYTHONHASHSEED than the fuzzing process to catch output that depends on set or
dict iteration order.
"""

from __future__ import annotations

import sys
from pathlib import Path

from crossplane.function import logging as fnlogging
from crossplane.function.proto.v1 import run_function_pb2 as fnv1

from tests.fuzz.oracle import digest, run


def main(path: str) -> None:
    fnlogging.configure(fnlogging.Level.DISABLED)  # stdout carries the digests
    data = Path(path).read_bytes()
    at = 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 8], "big")
        req = fnv1.RunFunctionRequest.FromString(data[at + 8 : at + 8 + size])
        at += 8 + size
        try:
            print(digest(run(req)))
        except Exception as err:
            print(f"exception:{type(err).__name__}")


if __name__ == "__main__":
    main(sys.argv[1])
