"""The epoch-time benchmark runs end to end (on tiny data) and the report renders its JSON."""

import json
import os
import subprocess
import sys

import pytest
from pathlib import Path

from convladder.report import benchmark_context

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "epoch_time.py"
DRIVER = """
import runpy, sys
import convladder.data
convladder.data.IMAGES_PER_FILE = 20  # the tiny synthetic copy
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_benchmark_prints_the_table_and_writes_json_for_the_report(tiny_cifar, tmp_path):
    out = tmp_path / "epoch_time.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(SCRIPT), "--models", "A", "GAP", "--repeats", "2", "--batch-size", "16",
         "--data-dir", str(tiny_cifar), "--out", str(out)],
        capture_output=True, text=True, env=env, check=True,
    )
    assert "study-style s" in proc.stdout and "speed-up" in proc.stdout
    bench = json.loads(out.read_text())
    assert set(bench["models"]) == {"A", "GAP"}
    row = bench["models"]["GAP"]
    assert len(row["study_style_s"]) == 2 and all(s > 0 for s in row["ours_s"])
    assert row["flops_per_image"] > bench["models"]["A"]["flops_per_image"] > 0
    assert 0 < row["fraction_of_fp32_peak"] and bench["peak_bf16_gflops"] == pytest.approx(
        bench["peak_fp32_gflops"] * bench["flop_per_cycle_bf16"] / bench["flop_per_cycle_fp32"])
    context = benchmark_context(out)
    assert [row["name"] for row in context["rows"]] == ["A", "GAP"] and context["rows"][1]["speedup"] > 0


def test_continued_name_reads_seed_folders_and_plain_folders():
    from convladder.report import continued_name

    assert continued_name({"continued_from": "/r/quick/GAP/seed2"}) == "GAP"
    assert continued_name({"continued_from": "/r/quick/GAP"}) == "GAP"
    assert continued_name({"continued_from": None}) is None
