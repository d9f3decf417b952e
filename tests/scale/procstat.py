"""CPU time and memory of the control plane's processes, read from /proc (Linux).

Each harness process runs in its own process group (hack/e2e/process.py), so a component's
figures are the sums over its group: a function's worker threads are in its process, but a
component that forks (none does today) would still be counted whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system CPU seconds since start
    rss_mib: float  # resident now
    peak_rss_mib: float  # VmHWM: the largest resident set so far

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.cpu_s + other.cpu_s,
            self.rss_mib + other.rss_mib,
            self.peak_rss_mib + other.peak_rss_mib,
        )


ZERO = Usage(0.0, 0.0, 0.0)


def parse_stat(text: str) -> tuple[int, float]:
    """(process group, user + system CPU seconds) from /proc/<pid>/stat. The command name
    (field 2, in parentheses) may hold spaces and parentheses: fields are counted after the
    last ')'."""
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
    pgrp, utime, stime = int(rest[2]), int(rest[11]), int(rest[12])
    return pgrp, (utime + stime) / TICKS


def parse_status(text: str) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB from /proc/<pid>/status (kernel threads have neither: 0)."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def group_usage(pgid: int, proc: Path = Path("/proc")) -> Usage:
    """The summed usage of every live process in process group `pgid`."""
    total = ZERO
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            group, cpu = parse_stat((entry / "stat").read_text())
            if group != pgid:
                continue
            rss, peak = parse_status((entry / "status").read_text())
        except (OSError, ValueError, IndexError):
            continue  # exited while we read it
        total += Usage(cpu, rss, peak)
    return total
