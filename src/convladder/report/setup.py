"""The report's setup and appendix context: provenance of the runs (commits, code versions, CPUs),
the speed benchmark, and the fast GAP recipe against its target."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from convladder.analysis import ladder_diagnosis, longer_training, recipe_probes, recipe_robustness
from convladder.analysis.recipe_search import default_out_dir
from convladder.analysis.statistics import (
    accuracy_at_minutes,
    compare,
    final_values,
    measured,
    take_off_epoch,
)
from convladder.core.versions import code_version
from convladder.plan.profiles import FP32_SUFFIX
from convladder.plan.study import STUDY_RESULTS
from convladder.report.figures import file_stem
from convladder.report.ladder import TTA_VIEWS, continued_name
from convladder.results.layout import RESULTS_FILE, benchmark_json, results_archive
from convladder.results.records import git_commit, summarize
from convladder.tools.files import read_json
from convladder.tools.hardware import bf16_unit_name, cpu_names
from convladder.tools.load import crowded_seeds
from convladder.results.schema import final_epoch

# The study paper's archives beyond the ladder's runs (which `convladder all` trains): each one's folder and the module of
# convladder.experiments that trains it (results/README.md says how each was run)
EXPERIMENT_ARCHIVES = ((default_out_dir().name, "recipe_search"), (longer_training.ARCHIVE, "longer_training"),
                       (ladder_diagnosis.ARCHIVE, "ladder_diagnosis"), (recipe_probes.ARCHIVE, "recipe_probes"),
                       (recipe_robustness.ARCHIVE, "recipe_robustness"))


def experiment_archives() -> list[dict]:
    """The archives of EXPERIMENT_ARCHIVES that hold runs: folder, the command that trains them, how many runs, and
    the commits and training-code versions the runs recorded (a file that cannot be read is counted apart)."""
    rows = []
    for archive, module in EXPERIMENT_ARCHIVES:
        records, unreadable = [], 0
        # a seed's record: a trained run's results.json, or the gradients.json of a run that records its gradients
        paths = [path for name in (RESULTS_FILE, ladder_diagnosis.GRADIENTS_FILE)
                 for path in results_archive(archive).rglob(name)]
        for path in sorted(paths):
            try:
                records.append(read_json(path))
            except (OSError, ValueError):  # DamagedFile is a ValueError
                unreadable += 1
        if records:
            commits = sorted({r.get("environment", {}).get("git_commit") or "?" for r in records})
            rows.append(dict(archive=f"results/{archive}", command=f"python -m convladder.experiments.{module}",
                             runs=len(records), unreadable=unreadable, commits=commits,
                             dirty=any(c.endswith("-dirty") for c in commits),
                             code_versions=sorted({r.get("code_version") for r in records} - {None})))
    return rows


# What the fast recipe aims at on a 2-core CPU: this test accuracy within this many minutes of training.
FAST_TARGET_ACC = 0.89


FAST_TARGET_MINUTES = 20


def provenance_context(runs: dict[str, list[dict]], damaged: list[str] | None = None) -> dict:
    """Where the numbers come from: code, data, hardware and training time, as the runs recorded them."""
    flat = [r for seeds in runs.values() for r in seeds]
    ladder = [r for name, seeds in runs.items() if name in STUDY_RESULTS for r in seeds]
    first = flat[0]
    environment = first["environment"]
    commits = sorted({r["environment"]["git_commit"] for r in flat})
    by_key = {(r["name"], r["config"]["seed"]): r for r in flat}

    def own_seconds(run: dict) -> float:
        # A continued run's history includes the epochs of the run it continues.
        earlier = by_key.get((continued_name(run), run["config"]["seed"]))
        return run["train_seconds"] - (earlier["train_seconds"] if earlier else 0.0)

    def core_share(environment: dict) -> float:
        # a run of one thread on two cores left the other core to a second run (all of them, unrecorded)
        cores = environment["cpu_count"] or 1
        return min(environment.get("torch_threads") or cores, cores) / cores

    versions = sorted({r.get("code_version") for r in flat if r.get("code_version")})
    return dict(
        built_from=git_commit(), built_code_current=code_version() in versions,
        commits=commits, dirty=any(c.endswith("-dirty") for c in commits),
        code_versions=versions,
        checksum=first["data"]["checksum"], sizes=first["data"]["sizes"],
        # runs continued over several sessions may have trained on different machines: each is named
        cpus=cpu_names(r["environment"] for r in flat),
        cpu_counts=sorted({r["environment"]["cpu_count"] for r in flat if r["environment"].get("cpu_count")}),
        torch=environment["torch"],
        # PyTorch's threads per run (a profile's runs may have trained one thread each, two side by side)
        threads=sorted({r["environment"]["torch_threads"] for r in flat if r["environment"].get("torch_threads")}),
        python=environment["python"],
        devices=sorted({r["environment"]["device"] + (f" ({r['environment']['gpu']})" if "gpu" in r["environment"] else "")
                        for r in flat}),
        total_seconds=sum(own_seconds(run) for run in flat), damaged=damaged or [],
        machine_seconds=sum(own_seconds(run) * core_share(run["environment"]) for run in flat),
        # the batch sizes and threads of the ladder's own runs (the study's models), which the training-cost table
        # compares with its benchmark's
        ladder_settings=dict(batches=sorted({r["config"]["batch_size"] for r in ladder}),
                             threads=sorted({r["environment"]["torch_threads"] for r in ladder
                                             if r["environment"].get("torch_threads")})),
        rows=[dict(name=name, seeds=len(seeds), epochs=final_epoch(seeds[0]),
                   cpus=cpu_names(r["environment"] for r in seeds),
                   # seeds that trained while other work kept the cores busy (their times are longer than alone)
                   beside=crowded_seeds(seeds),
                   seconds=summarize([r["train_seconds"] for r in seeds])[0],
                   epoch_seconds=statistics.median([t for r in seeds for t in r["history"]["epoch_seconds"]]))
              for name, seeds in runs.items()],
        # every seed of every run, for the per-run table of the study paper's appendix
        seed_rows=[dict(name=name, seed=r["config"]["seed"], epochs=final_epoch(r), val=r["final"]["val_acc"],
                        test=r["final"]["test_acc"], take_off=take_off_epoch(r["history"]["val_acc"]),
                        minutes=own_seconds(r) / 60, threads=r["environment"].get("torch_threads"),
                        cpu=cpu_names([r["environment"]])[0], commit=r["environment"]["git_commit"])
                   for name, seeds in runs.items() for r in seeds],
    )


def benchmark_source(benchmark: str | Path | None = None, cpu: str | None = None) -> Path | None:
    """The epoch-time benchmark the report reads: `benchmark` if given; else this machine's
    (runs/benchmark, where benchmarks/epoch_time.py writes), else an archived one (results/benchmark and its
    folders per CPU, committed): the one measured on `cpu` (the runs' CPU, as environment records it) where one was,
    else results/benchmark's own. None, with a one-line note, when none exists: the report then has no
    training-cost table."""
    if benchmark is not None:
        return Path(benchmark)
    if benchmark_json().exists():
        return benchmark_json()
    own = results_archive("benchmark") / benchmark_json().name
    archived = [path for path in (own, *sorted(own.parent.glob(f"*/{own.name}"))) if path.exists()]
    same_cpu = [path for path in archived if read_json(path).get("environment", {}).get("cpu") == cpu]
    for candidate in (*same_cpu, own):
        if candidate.exists():
            return candidate
    print(f"convladder: no epoch-time benchmark ({benchmark_json()}): the report leaves out its training-cost "
          "table; run `python benchmarks/epoch_time.py` (a few minutes) to measure it", file=sys.stderr)
    return None


def benchmark_context(benchmark: Path | None) -> dict | None:
    """Seconds per epoch of the study's pipeline against ours (benchmarks/epoch_time.py's JSON)."""
    if benchmark is None or not benchmark.exists():
        return None
    bench = read_json(benchmark)
    rows, compiled = [], []
    for name, row in bench["models"].items():
        # each rate from its own run's seconds: the fp32 run's against the fp32 peak, the autocast run's against the
        # bf16 peak (recomputed here: benchmark files before 2026-12-04 divided the autocast rate by the fp32 peak)
        fp32, ours = statistics.median(row["ours_fp32_s"]), statistics.median(row["ours_s"])
        gflops_fp32 = row["flops_per_image"] * bench["train_images"] / fp32 / 1e9
        gflops = row["flops_per_image"] * bench["train_images"] / ours / 1e9
        rows.append(dict(name=name, study_style=statistics.median(row["study_style_s"]), fp32=fp32, ours=ours,
                         speedup=row["speedup"], mflops=row["flops_per_image"] / 1e6, gflops_fp32=gflops_fp32,
                         gflops=gflops, fp32_peak=100 * gflops_fp32 / bench["peak_fp32_gflops"],
                         bf16_peak=100 * gflops / bench["peak_bf16_gflops"]))
        if row.get("ours_compiled_s"):
            plain, fast = ours, statistics.median(row["ours_compiled_s"])
            cost = statistics.median(row["compile_s"]) - plain * bench["batch_size"] / bench["train_images"]
            saved = plain - fast
            compiled.append(dict(name=name, plain=plain, compiled=fast, cost=cost,
                                 payback=cost / saved if saved > 0 else None))
    return dict(
        quick=bool(bench.get("quick")), train_images=bench["train_images"], batch_size=bench["batch_size"],
        repeats=bench["repeats"], amp_dtype=str(bench.get("amp_dtype", "bf16")).removeprefix("torch."),
        cores=bench["cores"], clock_ghz=bench["clock_ghz"], flop_per_cycle=bench["flop_per_cycle_fp32"],
        flop_per_cycle_bf16=bench.get("flop_per_cycle_bf16", 2 * bench["flop_per_cycle_fp32"]),
        bf16_unit=bf16_unit_name(bench.get("bf16_unit", "avx512_bf16")) or "no bf16 unit",
        peak_fp32=bench["peak_fp32_gflops"], peak_bf16=bench["peak_bf16_gflops"], cpu=bench["environment"]["cpu"],
        cpu_named=cpu_names([bench["environment"]])[0],  # as provenance names the runs' CPUs
        torch=bench["environment"]["torch"], rows=rows, compiled=compiled,
        threads=bench["environment"].get("torch_threads"),
        over_peak=any(row["fp32_peak"] > 100 or row["bf16_peak"] > 100 for row in rows),
    )


def fast_context(runs: dict[str, list[dict]]) -> dict | None:
    """GAP-fast against GAP+ (the study's recipe): accuracy, training time, accuracy at GAP+'s minutes,
    test-time augmentation, and whether the target was met (fast_target)."""
    if "GAP-fast" not in runs or "GAP+" not in runs:
        return None
    fast, slow = runs["GAP-fast"], runs["GAP+"]
    slow_minutes = summarize([r["train_seconds"] for r in slow])[0] / 60
    at_equal = [accuracy_at_minutes(r["history"], slow_minutes) for r in fast]
    return dict(
        config=fast[0]["config"], epochs=final_epoch(fast[0]), seeds=len(fast), test=final_values(fast, "test_acc"),
        seconds=summarize([r["train_seconds"] for r in fast])[0], slow_epochs=final_epoch(slow[0]),
        slow_test=final_values(slow, "test_acc"), slow_val=final_values(slow, "val_acc"),
        slow_seconds=summarize([r["train_seconds"] for r in slow])[0], slow_minutes=slow_minutes,
        at_equal=None if any(a is None for a in at_equal) else at_equal,
        study_test=STUDY_RESULTS["GAP+"]["test_acc"], study_epochs=STUDY_RESULTS["GAP+"]["epochs"],
        flip=measured(fast, "test_acc_flip"), tta=measured(fast, "test_acc_tta"), tta_views=TTA_VIEWS,
        target=fast_target(fast), target_acc=FAST_TARGET_ACC, target_minutes=FAST_TARGET_MINUTES,
        stem=file_stem("GAP-fast"),
        # the threads it trained with, of the cores it had: a 1-thread run beside another is not the target's setting
        threads=sorted({r["environment"].get("torch_threads") or 0 for r in fast}),
        cores=max(r["environment"].get("cpu_count") or 0 for r in fast),
    )


def fp32_context(runs: dict[str, list[dict]]) -> dict | None:
    """Model G with bfloat16 autocast (the default) against the same run in plain fp32; the seeds of each that trained
    beside other work (their seconds per epoch are then not the machine's)."""
    fp32 = "G" + FP32_SUFFIX
    if fp32 not in runs or "G" not in runs:
        return None
    amp, plain = runs["G"], runs[fp32]
    epoch = lambda seeds: statistics.median([t for r in seeds for t in r["history"]["epoch_seconds"]])  # noqa: E731
    return dict(amp=final_values(amp, "test_acc"), plain=final_values(plain, "test_acc"), amp_epoch=epoch(amp),
                plain_epoch=epoch(plain), epochs=final_epoch(amp[0]),
                amp_crowded=crowded_seeds(amp), plain_crowded=crowded_seeds(plain),
                c=compare(final_values(plain, "test_acc"), final_values(amp, "test_acc")))


def fast_target(fast: list[dict]) -> dict:
    """Whether the GAP-fast runs met the target of FAST_TARGET_ACC test accuracy within
    FAST_TARGET_MINUTES of training (every seed): "met", "met_with_flip", "met_with_tta" (test-time
    augmentation needed), "too_slow" or "short"; and the minutes of the slowest seed."""
    minutes = max(r["train_seconds"] for r in fast) / 60
    lowest = lambda key: min(r["final"][key] or 0.0 for r in fast)  # noqa: E731  (None: not measured)
    if minutes > FAST_TARGET_MINUTES:
        verdict = "too_slow"
    elif lowest("test_acc") >= FAST_TARGET_ACC:
        verdict = "met"
    elif lowest("test_acc_flip") >= FAST_TARGET_ACC:
        verdict = "met_with_flip"
    elif lowest("test_acc_tta") >= FAST_TARGET_ACC:
        verdict = "met_with_tta"
    else:
        verdict = "short"
    return dict(verdict=verdict, minutes=minutes)
