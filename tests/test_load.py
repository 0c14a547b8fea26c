"""tools/load.py: the cores other processes kept busy while a run trained (what ran beside it)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from convladder.tools import load
from convladder.tools.load import CpuSample

# spins until argv[2] (perf_counter: wall time, process_time: its own CPU time) has advanced by argv[1] seconds
SPIN = "import sys, time\nclock = getattr(time, sys.argv[2])\nend = clock() + float(sys.argv[1])\nwhile clock() < end: pass\n"


def test_busy_seconds_counts_user_nice_system_irq_softirq_but_not_idle_iowait_or_steal():
    ticks = load.os.sysconf("SC_CLK_TCK")
    text = f"cpu  {1 * ticks} {2 * ticks} {4 * ticks} 1000000 777 {8 * ticks} {16 * ticks} 555 0 0\ncpu0 1 2 3\n"
    assert load.busy_seconds(text) == pytest.approx(31)
    with pytest.raises(ValueError):
        load.busy_seconds("intr 1 2 3\n")


def test_others_cores_is_the_machine_s_busy_time_less_our_own_over_the_wall_time():
    start = CpuSample(busy=100.0, own=10.0, wall=50.0)
    assert load.others_cores(start, CpuSample(busy=130.0, own=20.0, wall=60.0)) == pytest.approx(2.0)
    assert load.others_cores(start, CpuSample(busy=110.0, own=20.0, wall=60.0)) == 0.0  # only our own work
    assert load.others_cores(start, CpuSample(busy=109.9, own=20.0, wall=60.0)) == 0.0  # ticks' rounding, not < 0
    assert load.others_cores(CpuSample(busy=None, own=0.0, wall=0.0), CpuSample(busy=1.0, own=0.0, wall=1.0)) is None
    assert load.ran_alone(0.02) is True and load.ran_alone(1.0) is False and load.ran_alone(None) is None


@pytest.mark.skipif(not load.PROC_STAT.exists(), reason="reads Linux's /proc/stat")
def test_a_process_spinning_beside_us_is_counted_and_our_own_spinning_is_not():
    child = subprocess.Popen([sys.executable, "-c", SPIN, "4", "perf_counter"])
    try:
        time.sleep(0.5)  # the interpreter has started and spins
        start = load.sample()
        time.sleep(2.0)  # the kernel's counters lag by up to a tick or two: a span of seconds, not one
        beside = load.others_cores(start, load.sample())  # sampled before the child is waited for
    finally:
        child.kill()
        child.wait()
    assert beside is not None and beside > 0.6  # one core spun all along (more if anything else ran)
    start = load.sample()
    subprocess.run([sys.executable, "-c", SPIN, "2", "process_time"], check=True)  # a waited-for child: our own
    end = load.sample()
    assert end.own - start.own >= 1.9  # its 2 s of CPU time count as ours, however busy the machine was
    ours = load.others_cores(start, end)
    # ... and are taken off the machine's busy time, whatever else ran in the window
    assert ours is not None and ours <= max(0.0, (end.busy - start.busy - 1.9) / (end.wall - start.wall))
