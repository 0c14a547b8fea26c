"""Model H against its targets: per seed, the minutes its training and evaluation took, its test
accuracy (plain and with test-time augmentation) and the fraction of the CPU's bf16 peak its training
reached; with --layers, where one training step's time goes, layer by layer.

    python benchmarks/model_h.py                 # H's runs of the h profile (results/h); trains missing seeds
    python benchmarks/model_h.py --profile full  # another profile's runs of H
    python benchmarks/model_h.py --layers        # per-layer profile of H's training step (about a minute),
                                                 # kept in the profile's run folder for the report

A seed that is already trained (current in its run folder) is read, not trained again; an unfinished
one continues from its checkpoint. Minutes per seed: training (validation after each epoch included)
and the final evaluation, as results.json records them. Targets (issue 14): mean test accuracy >= 0.940 over 3 seeds, and
training + evaluation per seed <= 15 minutes on an Intel Xeon with AMX, <= 30 on an AMD Zen 4 without.
The peaks are those of convladder.hardware; FLOPs per image come from torch.utils.flop_counter.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from convladder.analysis import MIN_SEEDS
from convladder.config import TrainConfig
from convladder.data import get_splits, load_cifar10
from convladder.hardware import peaks, training_flops_per_image
from convladder.io import atomic_write_json
from convladder.layer_profile import profile_layers
from convladder.models import create_model
from convladder.paths import RunLayout
from convladder.profiles import ladder
from convladder.report_h import (
    MILESTONE_ACC, MILESTONE_MINUTES, TARGET_ACC, TARGET_MINUTES, layer_profile_path, minutes, target_verdict,
)
from convladder.results import cpu_name
from convladder.runs import train_run
from convladder.training import Trainer

def seeds_table(profile: str, data_dir: str | None) -> None:
    """Train (or read) each seed of the profile's H run and print the per-seed numbers and the targets."""
    run = next(r for r in ladder(profile, ["H"]) if r.name == "H")
    layout = RunLayout.of(profile)
    peak = peaks()
    flops = training_flops_per_image(create_model("H"))
    print(f"{cpu_name()}: bf16 peak {peak['bf16']:.0f} GFLOP/s at the nominal clock ({peak['bf16_unit'] or 'no bf16 "
          f"unit'}); H: {flops / 1e9:.3f} GFLOP per training image; {run.epochs} epochs, seeds {list(run.seeds)}")
    print(f"{'seed':>4}{'train min':>11}{'total min':>11}{'test':>8}{'test TTA':>10}{'images/s':>10}"
          f"{'GFLOP/s':>9}{'of peak':>9}  cpu")
    seeds = []
    for seed in run.seeds:
        config = run.config(profile, seed)
        results = train_run(config, layout.seed(run.name, seed), data_dir=data_dir, name=run.name)
        seeds.append(results)
        images = results["data"]["sizes"]["train"]
        if config.drop_last:
            images -= images % config.batch_size
        rate = images * config.epochs / results["train_seconds"]
        final = results["final"]
        print(f"{seed:>4}{results['train_seconds'] / 60:>11.1f}{minutes(results):>11.1f}{final['test_acc']:>8.4f}"
              f"{final.get('test_acc_tta', float('nan')):>10.4f}{rate:>10.0f}{rate * flops / 1e9:>9.0f}"
              f"{rate * flops / 1e9 / peak['bf16']:>9.0%}  {results['environment']['cpu']}")
    if len(seeds) > 1:
        for key, label in (("test_acc", "test"), ("test_acc_tta", "test with TTA")):
            values = [r["final"][key] for r in seeds]
            print(f"mean {label}: {statistics.mean(values):.4f} +- {statistics.stdev(values):.4f} (s.d.)")
    for name, accuracy, limits in (("target", TARGET_ACC, TARGET_MINUTES), ("milestone", MILESTONE_ACC, MILESTONE_MINUTES)):
        verdict = target_verdict(seeds, accuracy, limits)
        met = {True: "met", False: "not met", None: f"undecided (fewer than {MIN_SEEDS} seeds)"}
        limit = (f"against {verdict['limit']} on {verdict['unit']}: {'met' if verdict['time_met'] else 'not met'}"
                 if verdict["limit"] is not None else "(no time limit for this CPU kind)")
        print(f"{name}: mean test accuracy >= {accuracy}: {met[verdict['plain_met']]} without TTA, "
              f"{met[verdict['tta_met']]} with TTA; slowest seed {verdict['slowest']:.1f} min {limit}")


def layers_table(profile: str, data_dir: str | None, steps: int) -> None:
    """Profile training steps of H at the profile's batch size on real training images."""
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
    total = result["step_seconds"]
    result.update(cpu=cpu_name(), threads=torch.get_num_threads(), batch_size=config.batch_size, steps=steps,
                  amp=trainer.amp_dtype is not None, peaks=peak, torch=torch.__version__)
    atomic_write_json(result, layer_profile_path(RunLayout.of(profile)))
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, batch {config.batch_size}, bf16 autocast "
          f"{'on' if trainer.amp_dtype else 'off'}, mean of {steps} steps: {total:.3f} s per step "
          f"({config.batch_size / total:.0f} images/s); bf16 peak {peak['bf16']:.0f} GFLOP/s")
    print(f"{'layer':<16}{'module':<22}{'fwd ms':>8}{'bwd ms':>8}{'share':>7}{'GFLOP':>8}{'GFLOP/s':>9}{'of peak':>9}")
    modules = dict(trainer.model.named_modules())
    for name, row in result["layers"].items():
        seconds = row["forward"] + row["backward"]
        rate = row["flops"] / seconds / 1e9 if seconds and row["flops"] else 0.0
        of_peak = f"{rate / peak['bf16']:.0%}" if rate else ""
        print(f"{name:<16}{type(modules[name]).__name__:<22}{1e3 * row['forward']:>8.1f}{1e3 * row['backward']:>8.1f}"
              f"{seconds / total:>7.0%}{row['flops'] / 1e9:>8.1f}{rate:>9.0f}{of_peak:>9}")
    flops = sum(row["flops"] for row in result["layers"].values())
    print(f"{'other':<38}{1e3 * result['other_seconds']:>16.1f}{result['other_seconds'] / total:>7.0%}  "
          f"(loss, optimizer, lookahead, between layers)")
    print(f"{'step':<38}{1e3 * total:>16.1f}{1:>7.0%}{flops / 1e9:>8.1f}{flops / total / 1e9:>9.0f}"
          f"{flops / total / 1e9 / peak['bf16']:>9.0%}")
    print(f"-> {layer_profile_path(RunLayout.of(profile))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="h", help="whose runs of H (default: h, archived in results/h)")
    parser.add_argument("--layers", action="store_true", help="profile training steps layer by layer instead")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of the per-layer profile")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    if args.layers:
        layers_table(args.profile, args.data_dir, args.steps)
    else:
        seeds_table(args.profile, args.data_dir)


if __name__ == "__main__":
    main()
