"""Seconds of one training step of model H and its wider H-95 (or any models), each with the config of its
final runs (its recipe: batch 1024, bfloat16 autocast where the CPU has it, channels-last), through the
Trainer's own step, on random images (their content does not change the arithmetic); and what a final run's
epochs would cost at that rate (steps per epoch on all 50,000 training images, the profile's epochs).

    python benchmarks/h_step_time.py                  # H and H95, 2 warm-up and 6 timed steps each
    python benchmarks/h_step_time.py --models H95 --steps 3 --threads 1
    python benchmarks/h_step_time.py --compile --warmup 3   # through torch.compile

The projection counts training steps only: the per-epoch validation and the final evaluation come on top
(benchmarks/model_h.py measures whole runs).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from convladder.core.config import TRAIN_SIZE, VAL_SIZE, TrainConfig, steps_per_epoch
from convladder.core.data import Split
from convladder.core.models import create_model
from convladder.core.training import Trainer
from convladder.plan.profiles import FINAL_PROFILE, plan_config
from convladder.tools.hardware import cpu_name

TRAIN_IMAGES = TRAIN_SIZE + VAL_SIZE  # a final run's training images (the 42,000 / 8,000 split joined)


def random_split(n: int, side: int = 32, seed: int = 0) -> Split:
    generator = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=generator),
                 torch.randint(0, 10, (n,), generator=generator))


def step_seconds(model_name: str, profile: str, steps: int, warmup: int,
                 compile: bool = False) -> tuple[list[float], TrainConfig]:
    """Seconds of each timed step and the config of the profile's final runs; `compile`: with torch.compile (the
    config's `compile`; its first steps compile, which warm-up steps should cover)."""
    config, _ = plan_config(profile, model_name, compile=compile or None)
    train = random_split(config.batch_size * (steps + warmup))
    model = create_model(model_name)
    if hasattr(model, "init_from_data"):
        model.init_from_data(train.images)
    trainer = Trainer(model, train, random_split(8), config, device="cpu")
    times = []
    for i in range(steps + warmup):
        batch = slice(i * config.batch_size, (i + 1) * config.batch_size)
        start = time.perf_counter()
        trainer.train_step(train.images[batch], train.labels[batch])
        times.append(time.perf_counter() - start)
    return times[warmup:], config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["H", "H95"], choices=sorted(FINAL_PROFILE))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--compile", action="store_true", help="train through torch.compile")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, {args.threads} PyTorch thread(s), torch {torch.__version__}", flush=True)
    print(f"{'model':6} {'batch':>6} {'min s':>7} {'median s':>9} {'epochs':>7} {'training min':>13}")
    for name in args.models:
        times, config = step_seconds(name, FINAL_PROFILE[name], args.steps, args.warmup, args.compile)
        steps = steps_per_epoch(TRAIN_IMAGES, config.batch_size, config.drop_last) * config.epochs
        minutes = steps * statistics.median(times) / 60
        print(f"{name:6} {config.batch_size:>6} {min(times):>7.2f} {statistics.median(times):>9.2f} {config.epochs:>7} "
              f"{minutes:>13.1f}", flush=True)


if __name__ == "__main__":
    main()
