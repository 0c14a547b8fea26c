"""The epoch-time benchmark runs end to end (on tiny data) and the report renders its JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

from convladder.report import training_cost_section

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
    assert 0 < row["fraction_of_fp32_peak"] and bench["peak_bf16_gflops"] == 2 * bench["peak_fp32_gflops"]
    text = training_cost_section(out, {})
    assert "Training cost per epoch" in text and "GAP" in text and "times" in text


def test_report_says_when_the_benchmark_was_not_run(tmp_path):
    assert "was not run" in training_cost_section(tmp_path / "missing.json", {})


def test_report_states_whether_compilation_pays(tmp_path):
    bench = {
        "train_images": 42_000, "batch_size": 128, "repeats": 1, "quick": False, "cores": 2, "clock_ghz": 2.6,
        "flop_per_cycle_fp32": 32, "peak_fp32_gflops": 166.4, "peak_bf16_gflops": 332.8, "amp_dtype": "torch.bfloat16",
        "environment": {"cpu": "test cpu", "torch": "2.x"}, "compile": True,
        "models": {
            name: {"study_style_s": [40.0], "ours_fp32_s": [30.0], "ours_s": [ours], "speedup": 40 / ours,
                   "speedup_fp32": 40 / 30, "flops_per_image": 1e8, "gflops": 100.0, "fraction_of_fp32_peak": 0.6,
                   "fraction_of_bf16_peak": 0.3, "ours_compiled_s": [compiled], "compile_s": [61.0]}
            for name, ours, compiled in (("G", 24.0, 20.0), ("A", 1.5, 1.6))
        },
    }
    path = tmp_path / "epoch_time.json"
    path.write_text(json.dumps(bench))
    text = training_cost_section(path, {})
    assert "torch.compile" in text
    assert "G: 20.0\\,s per epoch compiled against 24.0\\,s, compilation 61\\,s, so it pays for its compilation after 15.2 epochs" in text
    assert "A: 1.6\\,s per epoch compiled against 1.5\\,s" in text and "never pays" in text


def test_continued_name_reads_seed_folders_and_plain_folders():
    from convladder.report import continued_name

    assert continued_name({"continued_from": "/r/quick/GAP/seed2"}) == "GAP"
    assert continued_name({"continued_from": "/r/quick/GAP"}) == "GAP"
    assert continued_name({"continued_from": None}) is None


def test_report_says_whether_the_fast_recipe_met_its_target():
    from convladder.report import FAST_TARGET_ACC, FAST_TARGET_MINUTES, fast_target_text

    def run(acc, flip, minutes, tta=None):
        final = {"test_acc": acc, "test_acc_flip": flip, "test_acc_tta": flip if tta is None else tta}
        return {"train_seconds": minutes * 60, "final": final}

    fast, slow = FAST_TARGET_MINUTES - 1, FAST_TARGET_MINUTES + 1
    good, short = FAST_TARGET_ACC + 0.001, FAST_TARGET_ACC - 0.001
    assert "is met (" in fast_target_text([run(good, good, fast)])
    assert "with test-time flip, not without" in fast_target_text([run(short, good, fast)])
    assert "view test-time augmentation only" in fast_target_text([run(short, short, fast, tta=good)])
    assert "falls short" in fast_target_text([run(short, short, fast)])
    assert "falls short" in fast_target_text([run(good, good, fast), run(short, short, fast)])  # every seed
    assert "is not met: training took" in fast_target_text([run(good, good, slow)])
