"""Where a training step's time goes on the study's path: each model with the study profile's own config (batch 32,
SGD with momentum, the study's softmax, bfloat16 autocast where the CPU has it, channels-last), one PyTorch thread.

For each model it prints milliseconds per step of:

- as trained: Trainer.train_step with the run's config, and the same step cut into its parts, each timed on its own
  (a CPU runs them in order, so the clock between them is theirs): picking the batch, the forward pass with the loss,
  the backward pass (gradients zeroed first), the optimizer's update;
- one image: the same step on a batch of 1, the part of a step that does not grow with the batch (Python,
  dispatch, kernel set-up), and from the two the cost per image;
- variants that change what a step computes or how (none is what the archived runs used): fp32 (autocast off),
  NCHW (channels-last off), fp32 NCHW, foreach (SGD's multi-tensor update; the same arithmetic), and with
  --compile torch.compile of the model (after its compilation, which is not counted);

and the operators that took most of the as-trained step's time (torch.profiler, self CPU time, its own overhead
included, so read the shares, not the sums). Every step runs on random images of the real size (the content
does not change the arithmetic), after warm-up steps, nothing else running. The JSON goes to
runs/benchmark/step_breakdown.json.

    python benchmarks/step_breakdown.py                      # A, C, E, G and GAP, 200 steps each
    python benchmarks/step_breakdown.py --models G --steps 50 --compile
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own start and stop notices say nothing here

import torch  # noqa: E402

from convladder.core.data import Split
from convladder.core.models import create_model
from convladder.core.training import Trainer
from convladder.plan.profiles import ladder
from convladder.results.layout import benchmark_json
from convladder.results.records import environment
from convladder.tools.files import atomic_write_json
from convladder.tools.hardware import cpu_name

PROFILE = "study"
WARMUP = 10
TOP_OPERATORS = 10


def random_split(images: int, seed: int = 0) -> Split:
    gen = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=gen),
                 torch.randint(0, 10, (images,), generator=gen))


def trainer_for(config, foreach: bool = False) -> Trainer:
    torch.manual_seed(0)
    model = create_model(config.model, study_softmax=config.study_softmax, without=config.left_out)
    data = random_split(max(4096, config.batch_size * 4))
    trainer = Trainer(model, data, random_split(64, seed=1), config, device="cpu")
    trainer.scheduler = None  # a schedule spans the run's steps
    if foreach:
        trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=config.lr, momentum=config.momentum,
                                            nesterov=config.nesterov, weight_decay=config.weight_decay, foreach=True)
    return trainer


def batches(trainer: Trainer, batch: int):
    """Endless (images, labels) of `batch` images, consecutive slices of the trainer's images."""
    images, labels = trainer.train_data.images, trainer.train_data.labels
    k = 0
    while True:
        first = (k * batch) % (len(labels) - batch + 1)
        yield images[first:first + batch], labels[first:first + batch]
        k += 1


def ms_per_step(trainer: Trainer, steps: int, batch: int) -> float:
    source = batches(trainer, batch)
    for _ in range(WARMUP):
        trainer.train_step(*next(source))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(*next(source))
    return (time.perf_counter() - start) / steps * 1000


def parts_ms(trainer: Trainer, steps: int, batch: int) -> dict[str, float]:
    """One step's parts, each timed: as Trainer.train_step and train_epoch do them, in their order."""
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(trainer.train_data))
    spent = {"batch": 0.0, "forward": 0.0, "backward": 0.0, "update": 0.0}
    for k in range(WARMUP + steps):
        t0 = time.perf_counter()
        idx = order[(k * batch) % (len(order) - batch + 1):][:batch]
        images, labels = trainer.train_data.images[idx], trainer.train_data.labels[idx]
        if trainer.config.augment:
            from convladder.core.augment import augment_batch
            images = augment_batch(images, gen, trainer.config.crop_pad, None)
        t1 = time.perf_counter()
        trainer.model.train()
        loss, correct = trainer._loss_and_correct(images, labels, trainer.loss_fn)
        t2 = time.perf_counter()
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        trainer.optimizer.step()
        loss.item(), int(correct)
        t4 = time.perf_counter()
        if k >= WARMUP:
            for part, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                spent[part] += seconds
    return {part: seconds / steps * 1000 for part, seconds in spent.items()}


def top_operators(trainer: Trainer, steps: int, batch: int) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    source = batches(trainer, batch)
    for _ in range(WARMUP):
        trainer.train_step(*next(source))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step(*next(source))
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:TOP_OPERATORS]
    return [{"operator": e.key, "share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps,
             "ms_per_step": e.self_cpu_time_total / 1000 / steps} for e in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["A", "C", "E", "G", "GAP"])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each step time (the median is kept)")
    parser.add_argument("--compile", action="store_true", help="also time the step with torch.compile")
    parser.add_argument("--out", default=str(benchmark_json().with_name("step_breakdown.json")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {r.name: r for r in ladder(PROFILE) if not r.continues}
    print(f"{cpu_name()}, torch {torch.__version__}, 1 thread; the study profile's config for each model; "
          f"ms per step (median of {args.repeats} x {args.steps} steps)\n", flush=True)
    rows = {}
    for name in args.models:
        config = runs[name].config(PROFILE)

        def timed(cfg=config, foreach=False, batch=config.batch_size):
            trainer = trainer_for(cfg, foreach)
            return statistics.median(ms_per_step(trainer, args.steps, batch) for _ in range(args.repeats))

        as_trained = timed()
        one = timed(batch=1)
        parts = parts_ms(trainer_for(config), args.steps, config.batch_size)
        variants = {
            "fp32": timed(dataclasses.replace(config, amp=False)),
            "NCHW": timed(dataclasses.replace(config, channels_last=False)),
            "fp32 NCHW": timed(dataclasses.replace(config, amp=False, channels_last=False)),
            "foreach": timed(foreach=True),
        }
        if args.compile:
            variants["compiled"] = timed(dataclasses.replace(config, compile=True))
        operators = top_operators(trainer_for(config), min(args.steps, 50), config.batch_size)
        rows[name] = dict(model=config.model, batch_size=config.batch_size, amp=config.amp,
                          channels_last=config.channels_last, ms_per_step=as_trained, ms_one_image=one,
                          ms_per_image=(as_trained - one) / (config.batch_size - 1), parts_ms=parts,
                          variants_ms=variants, top_operators=operators)
        print(f"{name}: {as_trained:.2f} ms a step of {config.batch_size} images; one image {one:.2f} ms, so "
              f"{rows[name]['ms_per_image']:.3f} ms per further image")
        print("   parts: " + ", ".join(f"{part} {ms:.2f}" for part, ms in parts.items())
              + f" (sum {sum(parts.values()):.2f})")
        print("   variants: " + ", ".join(f"{label} {ms:.2f} ({as_trained / ms:.2f}x)" for label, ms in variants.items()))
        print("   operators: " + ", ".join(f"{o['operator']} {o['share']:.0%}" for o in operators[:6]), flush=True)
    atomic_write_json(dict(profile=PROFILE, steps=args.steps, repeats=args.repeats, warmup=WARMUP,
                           environment=environment(torch.device("cpu")), models=rows), Path(args.out))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
