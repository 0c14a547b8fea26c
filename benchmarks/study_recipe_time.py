"""Seconds per epoch on the path the study profile trains: each model with the study profile's own config
(SGD with momentum 0.9, batch 32, learning rate 0.001, the study's softmax before the cross-entropy, bfloat16
autocast where the CPU has it), one PyTorch thread, alone and as two runs side by side (what
`convladder all --workers 2` does on two cores), beside the study-style pipeline at the same settings; and the
study profile's training projected from them.

- study-style: a torch Dataset turning each stored image into a PIL image with torchvision's ToTensor, one-hot
  labels, a DataLoader (batch 32, shuffled), the model in NCHW fp32 followed by a softmax, SGD with momentum 0.9
  at 0.001, cross-entropy on the one-hot targets, one thread.
- ours: convladder's Trainer with the profile's config for the model (PlannedRun.config("study")): its
  train_epoch over the images, then its per-epoch evaluation of the validation split, as `fit` does.
- ours x2: the same in two processes at once, one thread each, started together; each process's own seconds.

An epoch is timed on the first `--images` training images (default 4,200, a tenth of the split) after one
warm-up step, and scaled to the 42,000-image split (seconds per image x 42,000); the validation pass is
timed in full. Projected hours: for every planned run of the study profile, its seeds x its own epochs (GAP+
continues GAP, so its own are 240 - 120) x the model's seconds per epoch; alone: one run after another on
one thread; x2: two at a time, the sum of the side-by-side seconds halved. Images per second and the share
of one core's peak (cores' peak / cores, in bf16 where autocast runs) are per run.

    python benchmarks/study_recipe_time.py                  # every model of the ladder, 4,200 images
    python benchmarks/study_recipe_time.py --images 1000 --models A G
    python benchmarks/study_recipe_time.py --floor results/benchmark/study_recipe_time.json

The floor: the projected hours if every training step ran at the core's bf16 peak (the models' training FLOPs per
image x 42,000 / the peak, plus the measured validation pass), one thread and two cores; no code that keeps the
study's arithmetic (batch, precision, model) trains the profile faster on that CPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import torch

from convladder.core.config import TRAIN_SIZE, TrainConfig
from convladder.core.data import get_splits, load_cifar10
from convladder.core.models import create_model
from convladder.core.training import Trainer
from convladder.plan.profiles import ladder
from convladder.results.layout import benchmark_json
from convladder.results.records import environment
from convladder.tools.files import atomic_write_json
from convladder.tools.hardware import cpu_name, peaks, training_flops_per_image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark, run as a script or through runpy
from epoch_time import study_style_epoch  # noqa: E402  (the study's per-image work, as the batch-128 benchmark does it)

PROFILE = "study"


def our_seconds(config: TrainConfig, splits) -> tuple[float, float]:
    """Seconds of our training pass over splits["train"] and of the per-epoch validation, with `config` (the study
    profile's for the run)."""
    torch.manual_seed(0)
    trainer = Trainer(create_model(config.model), splits["train"], splits["val"], config, device="cpu")
    x, y = splits["train"].images[: config.batch_size], splits["train"].labels[: config.batch_size]
    trainer.train_step(x, y)  # warm-up: first-call allocations, oneDNN kernel selection
    start = time.perf_counter()
    trainer.train_epoch(0, progress=False)
    train = time.perf_counter() - start
    start = time.perf_counter()
    trainer.evaluate(splits["val"])
    return train, time.perf_counter() - start


def _side_by_side_worker(config: TrainConfig, splits, barrier, queue) -> None:
    torch.set_num_threads(1)
    barrier.wait()  # both start their timed work together
    queue.put(our_seconds(config, splits))


def side_by_side(config: TrainConfig, splits) -> list[tuple[float, float]]:
    """Our seconds in two one-thread processes trained at once (each process's own train and validation)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_side_by_side_worker, args=(config, splits, barrier, queue))
               for _ in range(2)]
    for w in workers:
        w.start()
    try:
        return [queue.get(timeout=3600) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=60)
            if w.is_alive():
                w.terminate()
                w.join()


def _splits(data_dir, images: int):
    splits = get_splits(load_cifar10(data_dir))
    splits["train"] = splits["train"].subset(min(images, len(splits["train"])))
    return splits


def projected_hours(per_epoch: dict[str, float]) -> float:
    """Hours of the study profile's training at these seconds per epoch of each model (one run after another):
    every planned run's seeds x its own epochs (a continued run's epochs less those of the run it continues)."""
    runs = {r.name: r for r in ladder(PROFILE)}
    total = 0.0
    for run in runs.values():
        own = run.epochs - (runs[run.continues].epochs if run.continues else 0)
        total += len(run.seeds) * own * per_epoch[run.model]
    return total / 3600


def floor_hours(bench: dict) -> dict:
    """The study profile's projected hours at the core's peak (see the docstring) from a written benchmark."""
    rows = {row["model"]: row for row in bench["models"].values()}
    seconds = {m: row["flops_per_image"] * bench["train_images"] / 1e9
               / bench["peak_per_core"]["bf16" if row["amp"] else "fp32"] + row["val_s"] for m, row in rows.items()}
    one = projected_hours(seconds)
    return dict(at_peak_one_thread=one, at_peak_two_cores=one / 2)


def print_floor(path: Path) -> None:
    bench = json.loads(path.read_text())
    floor, measured = floor_hours(bench), bench["projected_hours"]
    print(f"{bench['environment']['cpu']}: the study profile's training at the core's peak would take "
          f"{floor['at_peak_one_thread']:.1f} h on one thread, {floor['at_peak_two_cores']:.1f} h on two cores; "
          f"measured {measured['ours_one_thread']:.1f} h and {measured['ours_two_workers']:.1f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    study_runs = [r for r in ladder(PROFILE) if not r.continues]
    parser.add_argument("--models", nargs="+", default=[r.name for r in study_runs])
    parser.add_argument("--images", type=int, default=TRAIN_SIZE // 10,
                        help="training images timed per epoch (at most the split's)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(benchmark_json().with_name("study_recipe_time.json")))
    parser.add_argument("--floor", type=Path, metavar="JSON", help="print the floor of a written benchmark, and stop")
    args = parser.parse_args()
    if args.floor:
        return print_floor(args.floor)
    torch.set_num_threads(1)
    splits = _splits(args.data_dir, args.images)
    args.images = len(splits["train"])
    scale = TRAIN_SIZE / args.images
    peak = peaks()
    core_peak = {"fp32": peak["fp32"] / peak["cores"], "bf16": peak["bf16"] / peak["cores"]}
    print(f"{cpu_name()}, torch {torch.__version__}, 1 thread per run; an epoch: {args.images:,} training images timed, "
          f"x {scale:g} to {TRAIN_SIZE:,}, then the validation pass; the study profile's config for each model\n")
    print(f"{'model':<6}{'study-style s':>14}{'ours s':>9}{'val s':>7}{'speed-up':>10}{'img/s':>8}{'of core':>9}"
          f"{'ours x2 s':>11}{'x2 slowdown':>13}", flush=True)
    rows = {}
    for name in args.models:
        config = next(r for r in study_runs if r.name == name).config(PROFILE)
        study = study_style_epoch(config.model, splits["train"], config.batch_size, sgd_momentum=config.momentum,
                                  lr=config.lr, softmax=config.study_softmax) * scale
        train, val = our_seconds(config, splits)
        ours = train * scale + val
        pair = side_by_side(config, splits)
        ours_x2 = statistics.mean(t * scale + v for t, v in pair)
        flops = training_flops_per_image(create_model(config.model))
        rate = TRAIN_SIZE / (train * scale)
        share = flops * rate / 1e9 / core_peak["bf16" if config.amp else "fp32"]
        rows[name] = dict(model=config.model, study_style_s=study, ours_s=ours, ours_train_s=train * scale, val_s=val,
                          ours_x2_s=ours_x2, ours_x2_each=[t * scale + v for t, v in pair], speedup=study / ours,
                          images_per_s=rate, flops_per_image=flops, share_of_core_peak=share,
                          batch_size=config.batch_size, amp=config.amp)
        print(f"{name:<6}{study:>14.1f}{ours:>9.1f}{val:>7.1f}{study / ours:>9.1f}x{rate:>8.0f}{share:>9.1%}"
              f"{ours_x2:>11.1f}{ours_x2 / ours:>12.2f}x", flush=True)
    result = dict(profile=PROFILE, images_timed=args.images, train_images=TRAIN_SIZE, environment=environment(
        torch.device("cpu")), peak_per_core=core_peak, models=rows)
    if {r.model for r in ladder(PROFILE)} <= {row["model"] for row in rows.values()}:
        by_model = {row["model"]: row for row in rows.values()}
        alone = projected_hours({m: row["ours_s"] for m, row in by_model.items()})
        pair = projected_hours({m: row["ours_x2_s"] for m, row in by_model.items()}) / 2
        study = projected_hours({m: row["study_style_s"] for m, row in by_model.items()})
        result["projected_hours"] = dict(ours_one_thread=alone, ours_two_workers=pair, study_style_one_thread=study)
        result["projected_hours"].update(floor_hours(result))
        print(f"\nthe study profile's training, projected: ours {alone:.1f} h on one thread, {pair:.1f} h with two "
              f"workers side by side; the study-style pipeline {study:.1f} h on one thread")
    atomic_write_json(result, Path(args.out))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
