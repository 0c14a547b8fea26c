"""What else ran beside a run: the cores that other processes kept busy while it trained, from the kernel's
counters of busy CPU time (/proc/stat, every process of the machine) less this process's own CPU time and its
children's (getrusage), over the same wall time. 0 means the run had the machine to itself; 1.0 on a 2-core
machine, that another job kept one core busy throughout. In a container /proc/stat may count the host's other
tenants too; where it cannot be read (not Linux), nothing is measured (None)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# /proc/stat's first line: "cpu user nice system idle iowait irq softirq steal guest guest_nice" (guest time is
# already in user); busy: every field but idle and iowait (waiting for the disk keeps no core busy) and steal
# (the hypervisor giving the core to another machine: not this machine's work)
BUSY_FIELDS = (0, 1, 2, 5, 6)
ALONE_CORES = 0.1  # below this mean, a run is reported as having run alone (housekeeping, a shell, an editor)


@dataclass(frozen=True)
class CpuSample:
    busy: float | None  # seconds of CPU time every process of the machine used since boot; None: not readable
    own: float  # this process's and its waited-for children's user and system seconds
    wall: float  # time.perf_counter()


def busy_seconds(stat_text: str) -> float:
    """Seconds of busy CPU time, all cores together, from the text of /proc/stat."""
    fields = stat_text.split("\n", 1)[0].split()
    if not fields or fields[0] != "cpu":
        raise ValueError("the first line of /proc/stat is not the total 'cpu' line")
    ticks = [int(value) for value in fields[1:]]
    return sum(ticks[i] for i in BUSY_FIELDS if i < len(ticks)) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def sample() -> CpuSample:
    try:
        busy = busy_seconds(PROC_STAT.read_text())
    except (OSError, ValueError):
        busy = None
    return CpuSample(busy=busy, own=own_seconds(), wall=time.perf_counter())


def others_cores(start: CpuSample, end: CpuSample) -> float | None:
    """The mean number of cores other processes kept busy between two samples, never below 0; None where /proc/stat
    was not readable. The kernel's counters tick at 100 Hz and lag by a tick or two, so over a second the number can
    be a few tenths off (even above the machine's cores); over the minutes a run takes, a few thousandths."""
    wall = end.wall - start.wall
    if start.busy is None or end.busy is None or wall <= 0:
        return None
    return max(0.0, ((end.busy - start.busy) - (end.own - start.own)) / wall)


def ran_alone(cores: float | None) -> bool | None:
    """Whether a run with `cores` of other work beside it counts as having run alone; None: not recorded."""
    return None if cores is None else bool(cores < ALONE_CORES)


def crowded_seeds(seeds: list[dict]) -> list[int]:
    """The seeds (results.json of each) that ran beside other work: their times may be longer than alone."""
    return [run["config"]["seed"] for run in seeds if ran_alone(run.get("beside_cores")) is False]
