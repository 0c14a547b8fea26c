"""How long a profile's runs take on this CPU, before training them: seconds per training step of
every planned run (its own model, batch size and recipe), measured with 1 and with 2 threads, and
the run's minutes extrapolated from them (epochs x steps per epoch x seconds per step, plus one
validation pass per epoch). Prints each run (all its seeds) and two totals: one run after another
with both threads, and two workers of one thread each as `convladder all --workers 2` runs them
(each seed one job, a continuation's seed k in the job of its source's seed k; the longest first, each
to the worker that is free first).

    python benchmarks/profile_time.py --profile study              # every run of the study profile
    python benchmarks/profile_time.py --profile study --steps 100   # longer measurements

A step is timed after warm-up steps, on real training images; two workers run side by side, so
measure their speed as they would run: `--parallel` times two one-thread processes at once
(each measuring the same runs), which is what the two-worker total uses when given.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import time

import torch

from convladder.core.data import get_splits, load_cifar10
from convladder.core.models import create_model
from convladder.plan.profiles import get_profile, ladder
from convladder.tools.hardware import cpu_name
from convladder.core.training import Trainer


WARMUP_STEPS = 5  # untimed steps of each run before the timed ones


def seconds_per_step(config, splits, steps: int, warmup: int = WARMUP_STEPS) -> float:
    """Mean seconds of one training step of `config`'s model on its batch size (data included)."""
    torch.manual_seed(0)
    model = create_model(config.model, study_softmax=config.study_softmax, without=config.left_out)
    if hasattr(model, "init_from_data"):
        model.init_from_data(splits["train"].images[:5000])
    trainer = Trainer(model, splits["train"], splits["val"], config, device="cpu")
    trainer.scheduler = None  # a schedule spans the run's steps: more steps than a short run has would fail
    images, labels = trainer.train_data.images, trainer.train_data.labels
    bs = min(config.batch_size, len(labels))  # a profile of few images (smoke) may have fewer than a batch
    for k in range(warmup + steps):
        if k == warmup:
            start = time.perf_counter()
        first = (k * bs) % (len(labels) - bs + 1)
        trainer.train_step(images[first:first + bs], labels[first:first + bs])
    return (time.perf_counter() - start) / steps


def seconds_per_validation(config, splits, images: int = 2000) -> float:
    """Seconds to validate the profile's validation split, from `images` images in batches of 1000."""
    model = create_model(config.model, study_softmax=config.study_softmax, without=config.left_out)
    trainer = Trainer(model, splits["train"], splits["val"], config, device="cpu")
    val = trainer.val_data
    trainer.val_step(val.images[:100], val.labels[:100])
    start = time.perf_counter()
    for first in range(0, images, 1000):
        trainer.val_step(val.images[first:first + 1000], val.labels[first:first + 1000])
    return (time.perf_counter() - start) / images * len(val)


def measure(profile: str, data_dir, threads: int, steps: int, warmup: int = WARMUP_STEPS) -> dict[str, tuple[float, float]]:
    """{run name: (seconds per step, seconds per validation)} with `threads` threads."""
    torch.set_num_threads(threads)
    prof = get_profile(profile)
    dataset = load_cifar10(data_dir)
    splits = get_splits(dataset, prof.train_size, prof.val_size, prof.test_size)
    out = {}
    for run in ladder(profile):
        config = run.config(profile)
        out[run.name] = (seconds_per_step(config, splits, steps, warmup), seconds_per_validation(config, splits))
        print(f"  measured {run.name} with {threads} thread{'s' if threads > 1 else ''}: "
              f"{out[run.name][0] * 1000:.1f} ms per step", flush=True)
    return out


def _measure_in_child(args):
    return measure(*args)


def two_workers(jobs: list[float]) -> float:
    """Wall minutes of two workers given the jobs' minutes, the longest first, each to the worker
    free first."""
    free = [0.0, 0.0]
    for m in sorted(jobs, reverse=True):
        free[free.index(min(free))] += m
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="study")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=WARMUP_STEPS, help="untimed steps before the timed ones, per run")
    parser.add_argument("--parallel", action="store_true",
                        help="also time two one-thread processes at once (the two-worker speed)")
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    prof = get_profile(args.profile)
    runs = ladder(args.profile)
    dataset = load_cifar10(args.data_dir)
    splits = get_splits(dataset, prof.train_size, prof.val_size, prof.test_size)
    n_train = len(splits["train"])
    print(f"{cpu_name()}, {torch.get_num_threads()} threads available; profile {args.profile}: "
          f"{n_train:,} training images", flush=True)
    solo = {threads: measure(args.profile, args.data_dir, threads, args.steps, args.warmup) for threads in (1, 2)}
    side_by_side = None
    if args.parallel:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            side_by_side = pool.map(_measure_in_child, [(args.profile, args.data_dir, 1, args.steps, args.warmup)] * 2)[0]

    def seed_minutes(timing: dict, run) -> float:
        """Minutes of one seed of `run`; a continuation (GAP+) trains only the epochs beyond its source."""
        step, validation = timing[run.name]
        epochs = run.epochs - (prof.epochs[run.continues] if run.continues else 0)
        steps = math.ceil(n_train / run.config(args.profile).batch_size)
        return epochs * (steps * step + validation) / 60

    header = f"{'run':<10}{'epochs':>7}{'seeds':>6}{'ms/step 1t':>12}{'ms/step 2t':>12}{'min 1t':>9}{'min 2t':>9}"
    if side_by_side:
        header += f"{'min 1t beside':>15}"
    print(header)
    sums = {"1t": 0.0, "2t": 0.0}
    jobs = {}  # the pipeline's chains (convladder all --workers 2: a chain per seed): minutes of each
    for run in runs:
        m1, m2 = seed_minutes(solo[1], run), seed_minutes(solo[2], run)
        sums["1t"] += m1 * len(run.seeds)
        sums["2t"] += m2 * len(run.seeds)
        line = (f"{run.name:<10}{run.epochs:>7}{len(run.seeds):>6}{solo[1][run.name][0] * 1000:>12.1f}"
                f"{solo[2][run.name][0] * 1000:>12.1f}{m1 * len(run.seeds):>9.1f}{m2 * len(run.seeds):>9.1f}")
        worker = m1
        if side_by_side:
            worker = seed_minutes(side_by_side, run)
            line += f"{worker * len(run.seeds):>15.1f}"
        for seed in run.seeds:  # as the pipeline runs them: each seed a chain, GAP+'s seed k after GAP's seed k
            chain = (run.continues or run.name, seed)
            jobs[chain] = jobs.get(chain, 0.0) + worker
        print(line)
    print(f"one run after another, 2 threads: {sums['2t'] / 60:.1f} h")
    print(f"two workers of 1 thread ({'timed side by side' if side_by_side else 'timed alone: optimistic'}): "
          f"{two_workers(list(jobs.values())) / 60:.1f} h")


if __name__ == "__main__":
    main()
