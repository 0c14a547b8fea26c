"""The epoch-time benchmark runs end to end (on tiny data) and the report renders its JSON."""

import json
import os
import subprocess
import sys

import pytest
from pathlib import Path

from convladder.plan.profiles import config_from_parameters
from convladder.report.setup import benchmark_context
from convladder.core.runs import train_run

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "epoch_time.py"
STUDY_RECIPE_SCRIPT = SCRIPT.with_name("study_recipe_time.py")
DRIVER = """
import runpy, sys
import convladder.core.data
convladder.core.data.IMAGES_PER_FILE = 20  # the tiny synthetic copy
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


@pytest.mark.slow  # about a minute: three seeds of H's 13 epochs, each of one tiny batch
def test_the_model_h_benchmark_trains_judges_profiles_and_validates(tiny_cifar, tmp_path):
    script = SCRIPT.with_name("model_h.py")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    common = ["--profile", "h", "--run-dir", str(tmp_path / "runs"), "--data-dir", str(tiny_cifar)]
    run = lambda *args: subprocess.run([sys.executable, "-c", DRIVER, str(script), *common, *args],  # noqa: E731
                                       capture_output=True, text=True, env=env, check=True).stdout
    seeds = run()  # the h profile's three seeds of H (not its ablations)
    assert [p.name for p in sorted((tmp_path / "runs").iterdir())] == ["H"]
    assert all((tmp_path / "runs" / "H" / f"seed{k}" / "results.json").exists() for k in range(3))
    assert "test TTA" in seeds and "target (mean test accuracy with TTA >= 0.94" in seeds and "): short;" in seeds
    assert "mean test with TTA:" in seeds
    written = {k: (tmp_path / "runs" / "H" / f"seed{k}" / "results.json").read_text() for k in range(3)}
    assert run() == seeds  # finished seeds (checkpoints beside them) are read, not evaluated again
    assert written == {k: (tmp_path / "runs" / "H" / f"seed{k}" / "results.json").read_text() for k in range(3)}
    layers = run("--layers", "--steps", "1")
    profile = json.loads((tmp_path / "runs" / "layer_profile.json").read_text())
    assert profile["layers"]["block2.conv1"]["kind"] == "Conv2d" and profile["layers"]["block2.conv1"]["flops"] > 0
    assert "block2.conv1" in layers and profile["batch_size"] == 1024 and profile["steps"] == 1
    tuning = tmp_path / "tune" / "seed0"  # a tuning run: validation images held out
    train_run(config_from_parameters("h", "H", epochs=1, train_split="train"), tuning, data_dir=tiny_cifar,
              progress=False)
    final = tmp_path / "runs" / "H" / "seed0"  # a final run: trained on the validation images
    validated = run("--validate", str(tuning), str(final))
    row = next(line for line in validated.splitlines() if line.startswith(str(tuning)))
    assert len(row.split()) >= 7 and 0 <= float(row.split()[4]) <= 1  # val, flip, TTA accuracies
    assert f"{final}: trained on the validation images too" in validated
    kept = json.loads((tuning / "validation.json").read_text())
    assert kept["tta_views"] == 10 and abs(kept["val_acc_tta"] - float(row.split()[4])) < 1e-4


def test_continued_name_reads_seed_folders_and_plain_folders():
    from convladder.report.ladder import continued_name

    assert continued_name({"continued_from": "/r/quick/GAP/seed2"}) == "GAP"
    assert continued_name({"continued_from": "/r/quick/GAP"}) == "GAP"
    assert continued_name({"continued_from": None}) is None


def test_the_profile_time_benchmark_prints_every_run_and_the_totals(full_size_cifar):
    script = SCRIPT.parent / "profile_time.py"  # the smoke profile's 256 training images: more than the tiny copy
    proc = subprocess.run([sys.executable, str(script), "--profile", "smoke", "--steps", "1", "--warmup", "1",
                           "--data-dir", str(full_size_cifar)], capture_output=True, text=True, check=True)
    from convladder.plan.profiles import ladder

    lines = proc.stdout.splitlines()
    for run in ladder("smoke"):
        assert any(line.split()[:1] == [run.name] for line in lines), run.name
    assert "one run after another, 2 threads:" in proc.stdout and "two workers of 1 thread" in proc.stdout


def test_two_workers_take_the_longest_jobs_first():
    import runpy

    two_workers = runpy.run_path(str(SCRIPT.parent / "profile_time.py"))["two_workers"]
    assert two_workers([60, 30, 30]) == 60
    assert two_workers([10, 10, 10]) == 20


def test_the_study_recipe_benchmark_times_the_profiles_path_alone_and_side_by_side(tiny_cifar, tmp_path):
    out = tmp_path / "study_recipe_time.json"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(STUDY_RECIPE_SCRIPT), "--models", "A", "--images", "64",
         "--data-dir", str(tiny_cifar), "--out", str(out)],
        capture_output=True, text=True, check=True, timeout=600,
    )
    assert "ours x2 s" in proc.stdout
    bench = json.loads(out.read_text())
    row = bench["models"]["A"]
    assert bench["images_timed"] <= 64 and row["batch_size"] == 32  # the study profile's config
    assert len(row["ours_x2_each"]) == 2 and all(s > 0 for s in row["ours_x2_each"])
    assert row["ours_s"] > row["val_s"] > 0 and row["study_style_s"] > 0 and 0 < row["share_of_core_peak"]
    assert "projected_hours" not in bench  # only with every model of the profile timed


def test_the_projection_counts_every_planned_epoch_of_the_study_profile_once():
    sys.path.insert(0, str(STUDY_RECIPE_SCRIPT.parent))
    try:
        from study_recipe_time import projected_hours
    finally:
        sys.path.pop(0)
    # 3 seeds of A and B x 150, of C, D and E x 16, of F and G x 30, of GAP x 120; GAP+ 1 seed x its own 120
    epochs = 3 * 150 * 2 + 3 * 16 * 3 + 3 * 30 * 2 + 3 * 120 + 120
    assert projected_hours({m: 3600.0 for m in "ABCDEFG"} | {"GAP": 3600.0}) == pytest.approx(epochs)
    assert projected_hours({m: 0.0 for m in "ABCDEF"} | {"G": 3600.0, "GAP": 0.0}) == pytest.approx(90)


def test_seeds_trained_together_compute_what_each_seed_computes_alone(tmp_path):
    """The grouped network of the seeds-together benchmark: its forward pass and one training step (dropout on)
    equal each seed's own, to fp32 rounding; the script writes both timings."""
    out = tmp_path / "seeds_together.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT.with_name("seeds_together.py")), "--models", "A", "G", "GAP", "--seeds", "2",
         "--steps", "1", "--out", str(out)],
        capture_output=True, text=True, check=True, timeout=600,
    )
    assert "together ms" in proc.stdout
    bench = json.loads(out.read_text())
    for name, row in bench["models"].items():
        assert row["forward_max_abs_diff"] < 1e-5 and row["step_max_abs_weight_diff"] < 1e-5, name
        assert row["one_by_one_s"] > 0 and row["together_s"] > 0 and row["batch_size"] == 32


def test_the_floor_is_the_profiles_arithmetic_at_the_cores_peak_plus_validation():
    sys.path.insert(0, str(STUDY_RECIPE_SCRIPT.parent))
    try:
        from study_recipe_time import floor_hours, projected_hours
    finally:
        sys.path.pop(0)
    # 36e12 FLOPs per image x 100 images at 1,000 GFLOP/s: 3,600 s per epoch, plus no validation
    rows = {m: dict(model=m, flops_per_image=36e12, amp=True, val_s=0.0) for m in "ABCDEFG"} | {
        "GAP": dict(model="GAP", flops_per_image=36e12, amp=False, val_s=0.0)}
    bench = dict(models=rows, train_images=100, peak_per_core={"bf16": 1000.0, "fp32": 500.0})
    floor = floor_hours(bench)
    expected = projected_hours({m: 3600.0 for m in "ABCDEFG"} | {"GAP": 7200.0})
    assert floor["at_peak_one_thread"] == pytest.approx(expected)
    assert floor["at_peak_two_cores"] == pytest.approx(expected / 2)


def test_the_step_time_benchmark_times_h95_with_its_final_config():
    proc = subprocess.run([sys.executable, str(SCRIPT.with_name("h_step_time.py")), "--models", "H95", "--steps", "1",
                           "--warmup", "0"], capture_output=True, text=True, check=True)
    row = next(line.split() for line in proc.stdout.splitlines() if line.startswith("H95"))
    assert row[1] == "1024" and float(row[2]) > 0 and row[4] == "16"  # its recipe's batch, its latest final profile's epochs
