"""tools/memory.py: with keep_freed_memory, a large block freed stays mapped for the next allocation
(glibc); without it, glibc gives the block back to the kernel at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convladder.tools.memory import keep_freed_memory

PROBE = """
import os, sys, torch
from convladder.tools.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = rss()
block = torch.ones(64 * 2**20)  # 256 MB, touched
del block
print(kept, (rss() - before) // 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not keep_freed_memory(), reason="glibc's malloc only")
def test_a_freed_large_block_stays_mapped_only_with_the_setting():
    def probe(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout.split()
        return out[0], int(out[1])

    kept, kept_mb = probe("keep")
    default, default_mb = probe("default")
    assert kept == "True" and kept_mb >= 200  # the 256 MB stay resident, ready for the next step
    assert default == "False" and default_mb < 50  # glibc unmapped them when freed
