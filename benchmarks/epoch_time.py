"""Seconds per training epoch: the study's data pipeline against convladder's, in one process.

- study-style: a torch Dataset that turns each stored image into a PIL image and applies
  torchvision's ToTensor, one-hot labels, a DataLoader (batch 128, shuffled), the model in
  NCHW fp32, Adam, cross-entropy on the one-hot targets: the per-image work the study did.
- ours fp32: convladder's Trainer.train_epoch with amp off: the split is one uint8 tensor,
  a batch is an index slice converted as a whole, channels_last.
- ours: the same with the default settings (bfloat16 autocast where the CPU supports it).

Each epoch covers the 42,000-image training split (data included), timed with
time.perf_counter after one warm-up batch. FLOPs per image (forward + backward) come from
torch.utils.flop_counter; achieved GFLOP/s = FLOPs per image x images / seconds. The CPU's
peaks (convladder.tools.hardware) are cores x clock x 32 FLOP per cycle in fp32, and x 64 (AVX512-BF16)
or x 1024 (AMX-BF16) in bf16. The clock is read from /proc/cpuinfo.

    python benchmarks/epoch_time.py                 # A, D, G, GAP, 2 repeats
    python benchmarks/epoch_time.py --quick         # a one-minute check on 1/10 of the split
    python benchmarks/epoch_time.py --compile       # also ours with torch.compile (needs a C++ compiler)

With --compile, "compiled s" is an epoch after compilation (shape changes in it, such as the
smaller last batch, may compile again inside it) and "compile s" the first step, compilation
included. Inductor's on-disk caches are switched off, so every compilation starts from scratch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import ToTensor

from convladder.core.config import TrainConfig
from convladder.core.data import get_splits, load_cifar10
from convladder.tools.hardware import peaks, training_flops_per_image
from convladder.tools.files import atomic_write_json
from convladder.core.models import create_model
from convladder.results.layout import benchmark_json
from convladder.tools.hardware import cpu_name
from convladder.results.records import environment
from convladder.core.training import Trainer, autocast_dtype

class StudyStyleDataset(Dataset):
    """What torchvision's CIFAR10 does per item: a PIL image, ToTensor, and here a one-hot label."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC uint8, as torchvision stores them
        self.labels = labels.numpy()
        self.to_tensor = ToTensor()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        image = self.to_tensor(Image.fromarray(self.images[i]))
        target = torch.zeros(10).scatter_(0, torch.tensor([int(self.labels[i])]), 1.0)
        return image, target


def study_style_epoch(model_name: str, split, batch_size: int, sgd_momentum: float | None = None, lr: float = 1e-3,
                      softmax: bool = False) -> float:
    """Seconds of one pass of the study-style pipeline over `split`: Adam, or SGD with `sgd_momentum`; the model's
    logits, or with `softmax` its softmax, into the cross-entropy (the study's recipe)."""
    torch.manual_seed(0)
    model = nn.Sequential(create_model(model_name), nn.Softmax(dim=1)) if softmax else create_model(model_name)
    optimizer = (torch.optim.Adam(model.parameters(), lr=lr) if sgd_momentum is None
                 else torch.optim.SGD(model.parameters(), lr=lr, momentum=sgd_momentum))
    loss_fn = nn.CrossEntropyLoss()
    dataset = StudyStyleDataset(split.images, split.labels)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    model.train()

    def step(images, targets):
        loss = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(*next(iter(DataLoader(dataset, batch_size=batch_size))))  # warm-up, not timed
    start = time.perf_counter()
    for images, targets in loader:
        step(images, targets)
    return time.perf_counter() - start


def our_epoch(model_name: str, splits, batch_size: int, amp: bool, compile: bool = False) -> tuple[float, float]:
    """Seconds of one training epoch, and of the warm-up step before it (which compiles the
    model when `compile` is set)."""
    config = TrainConfig(model=model_name, epochs=1, batch_size=batch_size, amp=amp, compile=compile)
    torch.manual_seed(0)
    trainer = Trainer(create_model(model_name), splits["train"], splits["val"], config, device="cpu")
    x, y = splits["train"].images[:batch_size], splits["train"].labels[:batch_size]
    start = time.perf_counter()
    trainer.train_step(x, y)  # warm-up: first-call allocations, oneDNN kernel selection, compilation
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train_epoch(0, progress=False)
    return time.perf_counter() - start, warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["A", "D", "G", "GAP"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="1/10 of the split, one repeat (about a minute)")
    parser.add_argument("--compile", action="store_true",
                        help="also time ours with torch.compile: the epoch after compilation, and the compiling step")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", default=str(benchmark_json()))
    args = parser.parse_args()
    if args.compile:
        # every compilation from scratch, as on a user's first run: no kernels from an earlier process
        from torch._inductor import config as inductor_config

        inductor_config.force_disable_caches = True

    splits = get_splits(load_cifar10(args.data_dir))
    if args.quick:
        splits["train"] = splits["train"].subset(len(splits["train"]) // 10)
        args.repeats = 1
    n = len(splits["train"])
    peak = peaks()
    cores, clock, peak_fp32, peak_bf16 = peak["cores"], peak["clock_ghz"], peak["fp32"], peak["bf16"]
    print(f"{cpu_name()}, {cores} cores at {clock:.2f} GHz, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fp32 peak {cores} cores x {clock:.2f} GHz x {peak['flop_per_cycle_fp32']} FLOP/cycle = {peak_fp32:.0f} "
          f"GFLOP/s; bf16 peak x {peak['flop_per_cycle_bf16']} FLOP/cycle ({peak['bf16_unit'] or 'no bf16 unit'}) = "
          f"{peak_bf16:.0f} GFLOP/s")
    print(f"one epoch = {n:,} training images, batch {args.batch_size}, {args.repeats} repeat(s), median reported\n")

    rows = {}
    header = (f"{'model':<6}{'study-style s':>14}{'ours fp32 s':>13}{'ours s':>9}{'speed-up':>10}{'MFLOP/img':>11}"
              f"{'GFLOP/s':>9}{'of fp32':>9}{'of bf16':>9}")
    print(header + (f"{'compiled s':>12}{'compile s':>11}" if args.compile else ""))
    for name in args.models:
        study = [study_style_epoch(name, splits["train"], args.batch_size) for _ in range(args.repeats)]
        fp32 = [our_epoch(name, splits, args.batch_size, amp=False)[0] for _ in range(args.repeats)]
        ours = [our_epoch(name, splits, args.batch_size, amp=True)[0] for _ in range(args.repeats)]
        flops = training_flops_per_image(create_model(name))
        s_study, s_fp32, s_ours = (statistics.median(v) for v in (study, fp32, ours))
        achieved = flops * n / s_ours / 1e9  # the autocast run's rate, against the bf16 peak
        achieved_fp32 = flops * n / s_fp32 / 1e9  # the fp32 run's rate, against the fp32 peak
        rows[name] = {
            "study_style_s": study, "ours_fp32_s": fp32, "ours_s": ours,
            "speedup": s_study / s_ours, "speedup_fp32": s_study / s_fp32,
            "flops_per_image": flops, "gflops": achieved, "gflops_fp32": achieved_fp32,
            "fraction_of_fp32_peak": achieved_fp32 / peak_fp32, "fraction_of_bf16_peak": achieved / peak_bf16,
        }
        line = (f"{name:<6}{s_study:>14.2f}{s_fp32:>13.2f}{s_ours:>9.2f}{s_study / s_ours:>9.1f}x{flops / 1e6:>11.1f}"
                f"{achieved:>9.1f}{achieved_fp32 / peak_fp32:>9.0%}{achieved / peak_bf16:>9.0%}")
        if args.compile:
            compiled = [our_epoch(name, splits, args.batch_size, amp=True, compile=True) for _ in range(args.repeats)]
            rows[name]["ours_compiled_s"] = [epoch for epoch, _ in compiled]
            rows[name]["compile_s"] = [warmup for _, warmup in compiled]
            s_compiled = statistics.median(rows[name]["ours_compiled_s"])
            line += f"{s_compiled:>12.2f}{statistics.median(rows[name]['compile_s']):>11.1f}"
        print(line, flush=True)

    env = environment(torch.device("cpu"))
    result = {
        "train_images": n, "batch_size": args.batch_size, "repeats": args.repeats, "quick": args.quick,
        "cores": cores, "clock_ghz": clock, "flop_per_cycle_fp32": peak["flop_per_cycle_fp32"],
        "flop_per_cycle_bf16": peak["flop_per_cycle_bf16"], "bf16_unit": peak["bf16_unit"],
        "peak_fp32_gflops": peak_fp32, "peak_bf16_gflops": peak_bf16, "environment": env, "models": rows,
        "amp_dtype": str(autocast_dtype(torch.device("cpu"))), "compile": args.compile,
    }
    atomic_write_json(result, Path(args.out))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
