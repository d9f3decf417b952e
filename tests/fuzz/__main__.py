"""`python -m tests.fuzz` (`make fuzz`): the long fuzz run, with counts per class.

For each function it runs --requests cases (default 10,000) from the same strategies as
tests/fuzz/test_fuzz.py, judges each with tests/fuzz/oracle.py (three calls: as is, again, maps
reordered), replays every request in two processes with other hash seeds, and prints per
function the verdicts, the count of each failure class with an example, the input tags and the
slowest calls. Failing requests are written to --out (serialized RunFunctionRequests) for
replay. Exits 1 when any failure class other than `slow-large-pool` was seen.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

from crossplane.function import logging as fnlogging
from hypothesis import HealthCheck, Phase, given, seed, settings

from functions.common.kinds import KINDS, Kind
from tests.fuzz import oracle
from tests.fuzz.inputs import Case, cases

ALLOWED = frozenset({"slow-large-pool"})


class Tally:
    def __init__(self, kind: Kind, out: Path | None) -> None:
        self.kind = kind
        self.out = out
        self.verdicts: collections.Counter[str] = collections.Counter()
        self.failures: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = {}
        self.tags: collections.Counter[str] = collections.Counter()
        self.slowest: list[tuple[float, str]] = []
        self.seen: list[tuple[bytes, str]] = []
        self.kinds: collections.Counter[str] = collections.Counter()

    def add(self, case: Case, outcome: oracle.Outcome) -> None:
        self.verdicts[outcome.verdict] += 1
        self.tags.update(case.tags)
        label = f"{outcome.verdict}, {len(outcome.request)} B, tags {','.join(sorted(case.tags))}"
        self.slowest = sorted([*self.slowest, (outcome.seconds, label)], reverse=True)[:8]
        if outcome.verdict != "exception":
            self.seen.append((outcome.request, outcome.digest))
        for cls, detail in outcome.failures.items():
            self.failures[cls] += 1
            self.kinds[f"{cls}: {kind_of_problem(detail)}"] += 1
            if len(self.examples.setdefault(cls, [])) < 3 and detail not in self.examples[cls]:
                self.examples[cls].append(detail)
            if self.out is not None and cls not in ALLOWED and self.failures[cls] <= 20:
                path = self.out / f"{self.kind.kind}-{cls}-{self.failures[cls]}.binpb"
                path.write_bytes(outcome.request or case.request().SerializeToString())

    def total(self) -> int:
        return sum(self.verdicts.values())

    def report(self, seconds: float) -> list[str]:
        lines = [
            f"## {self.kind.kind}: {self.total()} requests in {seconds:.0f} s "
            f"({', '.join(f'{v} {n}' for v, n in sorted(self.verdicts.items()))})",
            "",
            "| class | count | example |",
            "|---|---|---|",
        ]
        for cls in (*oracle.FAILURES, "slow-large-pool"):
            example = (self.examples.get(cls) or [""])[0].replace("|", "\\|")[:160]
            lines.append(f"| {cls} | {self.failures[cls]} | {example} |")
        lines += ["", "tags: " + ", ".join(f"{t} {n}" for t, n in sorted(self.tags.items()))]
        lines += ["", "most frequent problems (values elided):"]
        lines += [f"  {n:6d}  {k[:150]}" for k, n in self.kinds.most_common(12)]
        lines += ["", "slowest calls (CPU time):"]
        lines += [f"  {s * 1000:8.1f} ms  {label}" for s, label in self.slowest]
        return lines


def kind_of_problem(detail: str) -> str:
    """A failure's first clause with quoted values and numbers elided, to group by."""
    first = detail.split("; ", maxsplit=1)[0]
    first = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", first)
    return re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", first)


ROUND = 1000


def fuzz(kind: Kind, requests: int, start: int, large: int, out: Path | None) -> Tally:
    """Rounds of up to ROUND requests (seed start*1000 + round), each replayed in the other
    processes when it ends, with a progress line on stderr (a cut-short run still counts)."""
    tally = Tally(kind, out)
    round_ = 0
    began = time.perf_counter()
    while tally.total() < requests:
        before = len(tally.seen)

        @seed(start * 1000 + round_)
        @settings(
            max_examples=min(ROUND, requests - tally.total()),
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(cases(kind, large=large))
        def one(case: Case) -> None:
            tally.add(case, oracle.check(case))

        one()
        round_ += 1
        for i in oracle.crossprocess(tally.seen[before:]):
            tally.failures["nondeterministic-process"] += 1
            tally.examples.setdefault("nondeterministic-process", []).append(f"#{before + i}")
        failed = {c: n for c, n in sorted(tally.failures.items()) if n}
        print(
            f"{kind.kind}: {tally.total()} requests, {time.perf_counter() - began:.0f} s, "
            f"{dict(tally.verdicts)}, failures {failed}",
            file=sys.stderr,
            flush=True,
        )
    return tally


def side_by_side(kinds: list[str], args: argparse.Namespace, argv: list[str]) -> int:
    """One process per function (at most --jobs at a time); their reports in KINDS order."""
    rest = [a for a in argv if not a.startswith(("--kind", "--jobs"))]
    rest = [a for i, a in enumerate(rest) if i == 0 or rest[i - 1] not in ("--kind", "--jobs")]
    procs: dict[str, subprocess.Popen[str]] = {}
    outputs: dict[str, str] = {}
    codes = []
    for kind in kinds:
        while len(procs) >= args.jobs:
            done = next(iter(procs))
            proc = procs.pop(done)
            outputs[done] = proc.communicate()[0]
            codes.append(proc.returncode)
        procs[kind] = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz", "--kind", kind, "--jobs", "1", *rest],
            stdout=subprocess.PIPE,
            text=True,
        )
    for kind, proc in procs.items():
        outputs[kind] = proc.communicate()[0]
        codes.append(proc.returncode)
    for kind in kinds:
        print(outputs[kind], end="", flush=True)
    return max(codes, default=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--requests", type=int, default=10_000, help="per function")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", action="append", choices=[k.kind for k in KINDS])
    parser.add_argument("--large", type=int, default=5000, help="most nodes in a large pool")
    parser.add_argument("--out", type=Path, help="write failing requests here")
    parser.add_argument(
        "--jobs", type=int, default=3, help="functions fuzzed side by side, one process each"
    )
    args = parser.parse_args(argv)
    kinds = [k.kind for k in KINDS if not args.kind or k.kind in args.kind]
    if args.jobs > 1 and len(kinds) > 1:
        return side_by_side(kinds, args, argv if argv is not None else sys.argv[1:])
    fnlogging.configure(fnlogging.Level.DISABLED)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    print(f"# make fuzz: {args.requests} requests per function, seed {args.seed}\n")
    for kind in KINDS:
        if args.kind and kind.kind not in args.kind:
            continue
        began = time.perf_counter()
        tally = fuzz(kind, args.requests, args.seed, args.large, args.out)
        print("\n".join(tally.report(time.perf_counter() - began)) + "\n", flush=True)
        failed += sum(n for cls, n in tally.failures.items() if cls not in ALLOWED)
    print(f"failures (all classes but slow-large-pool): {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
