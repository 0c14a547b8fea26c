"""Model H against its targets: per seed, the minutes its training and evaluation took, its test
accuracy (plain and with test-time augmentation) and the fraction of the CPU's bf16 peak its training
reached; with --layers, where one training step's time goes, layer by layer.

    python benchmarks/model_h.py                 # H's runs of the h profile (results/h); trains missing seeds
    python benchmarks/model_h.py --profile full  # another profile's runs of H
    python benchmarks/model_h.py --layers        # per-layer profile of H's training step (about a minute)

A seed that is already trained (current in its run folder) is read, not trained again; an unfinished
one continues from its checkpoint. Targets (issue 14): mean test accuracy >= 0.940 over 3 seeds, and
training + evaluation per seed <= 15 minutes on an Intel Xeon with AMX, <= 30 on an AMD Zen 4 without.
The peaks are those of convladder.hardware; FLOPs per image come from torch.utils.flop_counter.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from convladder.config import TrainConfig
from convladder.data import get_splits, load_cifar10
from convladder.hardware import peaks, training_flops_per_image
from convladder.layer_profile import profile_layers
from convladder.models import create_model
from convladder.paths import RunLayout
from convladder.profiles import ladder
from convladder.results import cpu_name
from convladder.runs import train_run
from convladder.training import Trainer

TARGET_ACCURACY = 0.94
TARGET_MINUTES = {"amx_bf16": 15, "avx512_bf16": 30}  # per seed, by the CPU's bf16 unit


def seeds_table(profile: str, data_dir: str | None) -> None:
    """Train (or read) each seed of the profile's H run and print the per-seed numbers."""
    run = next(r for r in ladder(profile, ["H"]) if r.name == "H")
    layout = RunLayout.of(profile)
    peak = peaks()
    flops = training_flops_per_image(create_model("H"))
    print(f"{cpu_name()}: bf16 peak {peak['bf16']:.0f} GFLOP/s ({peak['bf16_unit'] or 'no bf16 unit'}); "
          f"H: {flops / 1e9:.3f} GFLOP per training image; {run.epochs} epochs, seeds {list(run.seeds)}")
    header = (f"{'seed':>4}{'train min':>11}{'total min':>11}{'test':>8}{'test TTA':>10}{'images/s':>10}"
              f"{'GFLOP/s':>9}{'of peak':>9}  cpu")
    print(header)
    rows = []
    for seed in run.seeds:
        config = run.config(profile, seed)
        results = train_run(config, layout.seed(run.name, seed), data_dir=data_dir, name=run.name)
        images = results["data"]["sizes"]["train"]
        if config.drop_last:
            images -= images % config.batch_size
        rate = images * config.epochs / results["train_seconds"]
        rows.append(dict(train=results["train_seconds"] / 60, total=results["wall_seconds"] / 60,
                         test=results["final"]["test_acc"], tta=results["final"].get("test_acc_tta", float("nan")),
                         rate=rate, gflops=rate * flops / 1e9, cpu=results["environment"]["cpu"]))
        r = rows[-1]
        print(f"{seed:>4}{r['train']:>11.1f}{r['total']:>11.1f}{r['test']:>8.4f}{r['tta']:>10.4f}{r['rate']:>10.0f}"
              f"{r['gflops']:>9.0f}{r['gflops'] / peak['bf16']:>9.0%}  {r['cpu']}")
    if len(rows) > 1:
        for key, label in (("test", "test"), ("tta", "test with TTA"), ("total", "minutes per seed")):
            values = [r[key] for r in rows]
            print(f"mean {label}: {statistics.mean(values):.4f} +- {statistics.stdev(values):.4f} (s.d.)")
    limit = TARGET_MINUTES.get(peak["bf16_unit"])
    accuracy_met = statistics.mean(r["tta"] for r in rows) >= TARGET_ACCURACY
    time_met = limit is not None and max(r["total"] for r in rows) <= limit
    print(f"target: mean test accuracy with TTA >= {TARGET_ACCURACY}: {'met' if accuracy_met else 'not met'}; "
          f"<= {limit} minutes per seed on this CPU: {'met' if time_met else 'not met'}"
          if limit else "target: no time target for this CPU (neither AMX-BF16 nor AVX512-BF16)")


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
