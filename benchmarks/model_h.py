"""Model H against its targets: per seed, the minutes its training and evaluation took, its test
accuracy (plain and with test-time augmentation) and the fraction of the CPU's bf16 peak its training
reached; with --layers, where one training step's time goes, layer by layer; with --validate, the
validation accuracy (plain, flipped, test-time augmented) of tuning runs.

    python benchmarks/model_h.py                 # H's runs of the h profile (results/h); trains missing seeds
    python benchmarks/model_h.py --profile full  # another profile's runs of H
    python benchmarks/model_h.py --profile h-e16 # H at 16 epochs (results/h-e16), against issue 28's milestone
    python benchmarks/model_h.py --profile h-b512 # the same at batch 512 (results/h-b512), its second attempt
    python benchmarks/model_h.py --model H95     # H-95's latest final runs (h95-e16 profile, results/h95-e16), against
                                                 # its target; --profile h95: its first (results/h95)
    python benchmarks/model_h.py --layers        # per-layer profile of H's training step (about a minute),
                                                 # kept beside the runs for the report
    python benchmarks/model_h.py --validate runs/tune-h/e10/seed0   # tuning runs on the 42,000 / 8,000 split

A seed that is already trained (current in its run folder, or archived as results.json alone for this
config and code) is read, not trained again; an unfinished one continues from its checkpoint. Minutes
per seed: what analysis.h_targets.minutes counts (training with its per-epoch validation, and the final
evaluation, or the whole call where that took longer). The targets
and their verdicts are analysis.h_targets's (GOALS): for H (issue 14) mean test accuracy >= 0.940 over 3 seeds,
each seed within 15 minutes on an Intel Xeon with AMX, 30 on an AMD Zen 4 (with TTA), and issue 28's milestone, the same
without TTA; for H-95 (issue 28) 0.950 within 35 and 70.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from convladder.core.config import TTA_SHIFTS, TrainConfig, steps_per_epoch
from convladder.core.data import get_splits, load_cifar10
from convladder.tools.hardware import peaks, training_flops_per_image
from convladder.tools.files import atomic_write_json, load_checkpoint_file
from convladder.tools.layer_profile import profile_layers
from convladder.core.models import create_model
from convladder.results.layout import CHECKPOINT_FILE, RESULTS_FILE, RunLayout
from convladder.results.records import read_results
from convladder.plan.profiles import FINAL_PROFILE, ladder
from convladder.analysis.h_targets import GOALS, minutes, target_verdict
from convladder.analysis.statistics import measured
from convladder.tools.hardware import cpu_name
from convladder.core.runs import code_version, train_run
from convladder.core.training import Trainer

VALIDATION_FILE = "validation.json"


def images_per_epoch(results: dict) -> int:
    """Training images one epoch of the run saw: its steps' batches (training.steps_per_epoch), the last one
    possibly incomplete."""
    config, n = results["config"], results["data"]["sizes"]["train"]
    return min(n, steps_per_epoch(n, config["batch_size"], config.get("drop_last", False)) * config["batch_size"])


def archived_results(seed_folder: Path, config: TrainConfig) -> dict | None:
    """The results of a finished run of this config and today's code, with or without its checkpoint
    (results/h keeps results.json only: H's checkpoints are tens of MB); else None. A finished run is
    read, not passed to train_run, which would evaluate it again and rewrite its results."""
    path = seed_folder / RESULTS_FILE
    if not path.exists():
        return None
    results = read_results(path)  # migrated to the current schema (results.schema)
    current = results["config"] == config.to_dict() and results["code_version"] == code_version(config.model)
    return results if current else None


def seeds_table(profile: str, layout: RunLayout, data_dir: str | None, model: str = "H") -> None:
    """Train (or read) each seed of the profile's run of `model` (H, H95) and print the per-seed numbers and
    the model's goals (analysis.h_targets.GOALS)."""
    run = next(r for r in ladder(profile, [model]) if r.name == model)
    peak = peaks()
    flops = training_flops_per_image(create_model(model))
    unit = peak["bf16_unit"] or "no bf16 unit"
    print(f"{cpu_name()}: bf16 peak {peak['bf16']:.0f} GFLOP/s at the clock /proc/cpuinfo reports ({unit}); "
          f"{model}: {flops / 1e9:.3f} GFLOP per training image; {run.epochs} epochs, seeds {list(run.seeds)}")
    print(f"{'seed':>4}{'train min':>11}{'all min':>9}{'test':>8}{'test TTA':>10}{'images/s':>10}"
          f"{'GFLOP/s':>9}{'of peak':>9}{'beside':>8}  cpu   (beside: cores other processes kept busy, on average)")
    seeds = []
    for seed in run.seeds:
        config = run.config(profile, seed)
        results = archived_results(layout.seed(run.name, seed), config)
        if results is None:
            results = train_run(config, layout.seed(run.name, seed), data_dir=data_dir, name=run.name)
        seeds.append(results)
        rate = images_per_epoch(results) * results["config"]["epochs"] / results["train_seconds"]
        final = results["final"]
        tta = final["test_acc_tta"] if final["test_acc_tta"] is not None else float("nan")
        beside = "--" if results["beside_cores"] is None else f"{results['beside_cores']:.2f}"  # None: not recorded
        print(f"{seed:>4}{results['train_seconds'] / 60:>11.1f}{minutes(results):>9.1f}{final['test_acc']:>8.4f}"
              f"{tta:>10.4f}{rate:>10.0f}{rate * flops / 1e9:>9.0f}"
              f"{rate * flops / 1e9 / peak['bf16']:>9.0%}{beside:>8}  {results['environment']['cpu']}")
    if len(seeds) > 1:
        for key, label in (("test_acc", "test"), ("test_acc_tta", "test with TTA")):
            values = measured(seeds, key) or []
            if len(values) > 1:
                print(f"mean {label}: {statistics.mean(values):.4f} +- {statistics.stdev(values):.4f} (s.d.)")
    for name, accuracy, limits, tta in GOALS[model]:
        verdict = target_verdict(seeds, accuracy, limits, tta)
        limit = f"{verdict['limit']} min on {verdict['unit']}" if verdict["limit"] is not None else "no limit for this CPU"
        judged = "with TTA" if tta else "without TTA"
        print(f"{name} (mean test accuracy {judged} >= {accuracy}, {limit}): {verdict['verdict']}; slowest seed "
              f"{verdict['slowest']:.1f} min"
              + (f"; without TTA {'also met' if verdict['plain_met'] else 'not met'}" if tta else "")
              + ("" if verdict["difference"] is None else f"; mean {judged} less the target {verdict['difference']:+.5f}")
              + (f"; ran beside other work: seeds {verdict['crowded']}" if verdict["crowded"] else ""))


def layers_table(profile: str, layout: RunLayout, data_dir: str | None, steps: int) -> None:
    """Profile training steps of H at the profile's batch size on real training images, print the
    table and keep it beside the profile's runs (RunLayout.layer_profile)."""
    run = next(r for r in ladder(profile, ["H"]) if r.name == "H")
    config: TrainConfig = run.config(profile)
    splits = get_splits(load_cifar10(data_dir))
    torch.manual_seed(0)
    model = create_model("H")
    model.init_from_data(splits["train"].images)
    trainer = Trainer(model, splits["train"], splits["val"], config, device="cpu")
    generator = torch.Generator().manual_seed(0)

    def step():
        indices = torch.randint(0, len(splits["train"]), (config.batch_size,), generator=generator)
        trainer.train_step(splits["train"].images[indices], splits["train"].labels[indices])

    result = profile_layers(trainer.model, step, steps)
    peak = peaks()
    precision = "bf16" if trainer.amp_dtype is not None else "fp32"
    total = result["step_seconds"]
    result.update(cpu=cpu_name(), threads=torch.get_num_threads(), batch_size=config.batch_size, steps=steps,
                  amp=trainer.amp_dtype is not None, peaks=peak, torch=torch.__version__)
    atomic_write_json(result, layout.layer_profile)
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, batch {config.batch_size}, {precision}, mean of {steps} "
          f"steps: {total:.3f} s per step ({config.batch_size / total:.0f} images/s); {precision} peak "
          f"{peak[precision]:.0f} GFLOP/s")
    print(f"{'layer':<16}{'module':<22}{'fwd ms':>8}{'bwd ms':>8}{'share':>7}{'GFLOP':>8}{'GFLOP/s':>9}{'of peak':>9}")
    for name, row in result["layers"].items():
        seconds = row["forward"] + row["backward"]
        rate = row["flops"] / seconds / 1e9 if seconds and row["flops"] else 0.0
        of_peak = f"{rate / peak[precision]:.0%}" if rate else ""
        print(f"{name:<16}{row['kind']:<22}{1e3 * row['forward']:>8.1f}{1e3 * row['backward']:>8.1f}"
              f"{seconds / total:>7.0%}{row['flops'] / 1e9:>8.1f}{rate:>9.0f}{of_peak:>9}")
    flops = sum(row["flops"] for row in result["layers"].values())
    print(f"{'the rest':<38}{1e3 * result['other_seconds']:>16.1f}{result['other_seconds'] / total:>7.0%}  "
          f"(loss, optimizer, between layers, the first layer's backward)")
    print(f"{'step':<38}{1e3 * total:>16.1f}{1:>7.0%}{flops / 1e9:>8.1f}{flops / total / 1e9:>9.0f}"
          f"{flops / total / 1e9 / peak[precision]:>9.0%}")
    print(f"-> {layout.layer_profile}")


def validate(seed_folders: list[str], data_dir: str | None) -> None:
    """Validation accuracy of finished tuning runs of H: plain, with the mirror image, and with the
    test-time augmentation the final runs are measured with (on the validation split only); kept in
    each seed folder's validation.json, beside its results.json."""
    print(f"{'run':<40}{'epochs':>7}{'val':>8}{'val flip':>10}{'val TTA':>9}{'train min':>11}  cpu")
    for folder in seed_folders:
        results = read_results(f"{folder}/{RESULTS_FILE}")
        config = TrainConfig.from_dict(results["config"])
        if config.train_split != "train":
            print(f"{folder}: trained on the validation images too (train_split {config.train_split}); skipped")
            continue
        splits = get_splits(load_cifar10(data_dir), config.train_size, config.val_size, config.test_size,
                            config.split_seed)
        model = create_model(config.model, without=config.left_out)
        model.load_state_dict(load_checkpoint_file(f"{folder}/{CHECKPOINT_FILE}", map_location="cpu")["model"])
        trainer = Trainer(model, splits["val"], splits["val"], config, device="cpu")
        measured = dict(val_acc=trainer.evaluate(splits["val"])["acc"], val_acc_flip=trainer.evaluate_tta(splits["val"]),
                        val_acc_tta=trainer.evaluate_tta(splits["val"], TTA_SHIFTS), tta_views=2 * len(TTA_SHIFTS))
        atomic_write_json(measured, Path(folder) / VALIDATION_FILE)
        print(f"{folder:<40}{config.epochs:>7}{measured['val_acc']:>8.4f}{measured['val_acc_flip']:>10.4f}"
              f"{measured['val_acc_tta']:>9.4f}{results['train_seconds'] / 60:>11.1f}  {results['environment']['cpu']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="H", choices=sorted(GOALS), help="H or H-95 (H95)")
    parser.add_argument("--profile", help="whose runs of the model (default: its latest final runs, FINAL_PROFILE: "
                        "h for H, h95-e16 for H95, archived in results/)")
    parser.add_argument("--run-dir", help="the profile's run folder, if not its usual one")
    parser.add_argument("--layers", action="store_true", help="profile training steps layer by layer instead")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of the per-layer profile")
    parser.add_argument("--validate", nargs="+", metavar="SEED_FOLDER", help="validation accuracy of tuning runs")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    args.profile = args.profile or FINAL_PROFILE[args.model]
    layout = RunLayout.of(args.profile, args.run_dir)
    if args.validate:
        validate(args.validate, args.data_dir)
    elif args.layers:
        layers_table(args.profile, layout, args.data_dir, args.steps)
    else:
        seeds_table(args.profile, layout, args.data_dir, args.model)


if __name__ == "__main__":
    main()
