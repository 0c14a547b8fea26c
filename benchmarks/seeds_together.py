"""Seeds trained together: does one batched step for K seeds beat K steps of one seed on the study's path?

The seeds of one model are independent runs of one architecture, so K of them can be one network
whose every layer holds the K seeds' layers side by side (seed k in the k-th group of the channels):
convolutions with K groups, batch norm over K x C channels (its statistics are per channel, hence per
seed), dropout drawing seed k's masks from seed k's own generator, the linear layers as one batched
matrix product. One forward and backward pass then trains K seeds, each on its own batch, with its
own weights and optimizer state (SGD's and Adam's updates are elementwise, so one optimizer over the
grouped weights is K optimizers). This script builds that network for each model and measures:

- equivalence: one training step (fp32, dropout on, the study's SGD) of the grouped network against
  each seed's own step: the largest difference of any weight afterwards; and the forward pass's;
- speed: seconds of one grouped step for K seeds against K single-seed steps, each model with the
  study profile's own config (batch 32, SGD momentum 0.9, lr 0.001, the study's softmax, bfloat16
  autocast where the CPU has it, channels-last), one PyTorch thread, on random batches (the images'
  content does not change the arithmetic).

    python benchmarks/seeds_together.py                      # every model of the ladder, K = 3, 40 steps
    python benchmarks/seeds_together.py --models A G --seeds 2 --steps 10
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
from pathlib import Path

import torch
from torch import nn

from convladder.core.models import create_model
from convladder.core.training import autocast_dtype, make_optimizer
from convladder.plan.profiles import ladder
from convladder.results.layout import benchmark_json
from convladder.results.records import environment
from convladder.tools.files import atomic_write_json
from convladder.tools.hardware import cpu_name

PROFILE = "study"


# --- the grouped network -----------------------------------------------------------------------


class SeedDropout(nn.Module):
    """Dropout for K grouped seeds: seed k's mask drawn from generators[k] exactly as nn.Dropout draws
    one from the global generator for seed k's (B, C, H, W) input alone (in its memory order)."""

    def __init__(self, p: float, generators: list[torch.Generator]):
        super().__init__()
        self.p, self.generators = p, generators

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        b, kc, h, w = x.shape
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        shape = (b, kc // len(self.generators), h, w)
        masks = [torch.empty(shape, dtype=x.dtype, memory_format=layout).bernoulli_(1 - self.p, generator=g)
                 for g in self.generators]
        return x * torch.stack(masks, dim=1).reshape(x.shape).div_(1 - self.p)


class GroupFlatten(nn.Module):
    """(B, K*C, H, W) -> (K, B, C*H*W): each seed's features in nn.Flatten's order."""

    def __init__(self, seeds: int):
        super().__init__()
        self.seeds = seeds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.seeds, -1).transpose(0, 1)


class GroupLinear(nn.Module):
    """K linear layers as one batched product, (K, B, in) -> (K, B, out)."""

    def __init__(self, seeds: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(seeds, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(seeds, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


def grouped_layer(module: nn.Module, k: int, generators: list[torch.Generator]) -> nn.Module:
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*(grouped_layer(child, k, generators) for child in module))
    if isinstance(module, nn.Conv2d):
        return nn.Conv2d(k * module.in_channels, k * module.out_channels, module.kernel_size, module.stride,
                         module.padding, groups=k)
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(k * module.num_features, module.eps, module.momentum)
    if isinstance(module, nn.Linear):
        return GroupLinear(k, module.in_features, module.out_features)
    if isinstance(module, nn.Flatten):
        return GroupFlatten(k)
    if isinstance(module, nn.Dropout):
        return SeedDropout(module.p, generators)
    if isinstance(module, nn.Softmax):
        return nn.Softmax(dim=-1)
    if isinstance(module, (nn.ReLU, nn.Sigmoid, nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
        return copy.deepcopy(module)
    raise ValueError(f"no grouped form of {module!r}")


def group_models(models: list[nn.Module], generators: list[torch.Generator]) -> nn.Sequential:
    """One network computing `models` (K copies of one architecture) side by side, with their weights:
    every grouped tensor is the seeds' own stacked on a first axis of size K (a shared scalar: seed 0's)."""
    grouped = grouped_layer(models[0], len(models), generators)
    states = [m.state_dict() for m in models]
    grouped.load_state_dict({key: (states[0][key] if like.dim() == 0 else
                                   torch.stack([s[key] for s in states]).reshape(like.shape))
                             for key, like in grouped.state_dict().items()})
    return grouped


def grouped_input(images: torch.Tensor) -> torch.Tensor:
    """(K, B, C, H, W), seed k's batch at k -> (B, K*C, H, W)."""
    k, b, c, h, w = images.shape
    return images.transpose(0, 1).reshape(b, k * c, h, w)


# --- the measurements --------------------------------------------------------------------------


def seed_models(config, seeds: int) -> list[nn.Module]:
    models = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        models.append(create_model(config.model, study_softmax=config.study_softmax))
    return models


def equivalence(config, seeds: int, batch: int) -> dict:
    """Largest differences, fp32: the grouped forward (evaluation mode) against each seed's, and every weight
    after one training step (dropout on, the config's optimizer) against each seed's own step."""
    loss_fn = nn.CrossEntropyLoss()
    models = seed_models(config, seeds)
    grouped = group_models(models, [torch.Generator().manual_seed(s) for s in range(seeds)])
    images = torch.rand(seeds, batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, 10, (seeds, batch), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        grouped.eval()
        forward = max((grouped(grouped_input(images))[k] - m.eval()(images[k])).abs().max().item()
                      for k, m in enumerate(models))
    grouped.train()
    optimizer = make_optimizer(config, grouped.parameters())
    out = grouped(grouped_input(images))
    sum(loss_fn(out[k], labels[k]) for k in range(seeds)).backward()
    optimizer.step()
    for seed, model in enumerate(models):
        torch.manual_seed(seed)  # its dropout draws from the global generator, seeded as the grouped seed's own
        own = make_optimizer(config, model.parameters())
        loss_fn(model.train()(images[seed]), labels[seed]).backward()
        own.step()
    after = grouped.state_dict()
    step = max((after[key].reshape(seeds, *value.shape)[k] - value).abs().max().item()
               for k, m in enumerate(models) for key, value in m.state_dict().items() if value.dim() > 0)
    return {"forward_max_abs_diff": forward, "step_max_abs_weight_diff": step}


def step_seconds(config, seeds: int, steps: int) -> dict:
    """Seconds per step: the K seeds one after another, and the K seeds as one grouped step."""
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    dtype = autocast_dtype(torch.device("cpu")) if config.amp else None
    loss_fn = nn.CrossEntropyLoss()
    models = [m.to(memory_format=fmt) for m in seed_models(config, seeds)]
    grouped = group_models(models, [torch.Generator().manual_seed(s) for s in range(seeds)]).to(memory_format=fmt)
    images = torch.rand(seeds, config.batch_size, 3, 32, 32)
    labels = torch.randint(0, 10, (seeds, config.batch_size))

    def autocast():
        return torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()

    optimizers = [make_optimizer(config, m.parameters()) for m in models]
    singles = [images[k].contiguous(memory_format=fmt) for k in range(seeds)]

    def one_by_one():
        for model, optimizer, x, y in zip(models, optimizers, singles, labels):
            with autocast():
                out = model(x)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(out.float(), y).backward()
            optimizer.step()

    group_optimizer = make_optimizer(config, grouped.parameters())
    x = grouped_input(images).contiguous(memory_format=fmt)

    def together():
        with autocast():
            out = grouped(x).float()
        group_optimizer.zero_grad(set_to_none=True)
        sum(loss_fn(out[k], labels[k]) for k in range(seeds)).backward()
        group_optimizer.step()

    seconds = {}
    for name, step in (("one_by_one", one_by_one), ("together", together)) * 2:  # twice, alternating; the last counts
        for _ in range(3):  # warm-up: allocations, oneDNN kernel selection
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        seconds[name] = (time.perf_counter() - start) / steps
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runs = [r for r in ladder(PROFILE) if not r.continues]
    parser.add_argument("--models", nargs="+", default=[r.name for r in runs])
    parser.add_argument("--seeds", type=int, default=3, help="seeds trained together (K)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    parser.add_argument("--out", default=str(benchmark_json().with_name("seeds_together.json")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{cpu_name()}, torch {torch.__version__}, 1 thread; {args.seeds} seeds; the study profile's config for "
          f"each model; seconds per step of {args.seeds} seeds\n")
    print(f"{'model':<6}{'one by one ms':>15}{'together ms':>13}{'speed-up':>10}{'forward diff':>14}{'step diff':>11}",
          flush=True)
    rows = {}
    for name in args.models:
        config = next(r for r in runs if r.name == name).config(PROFILE)
        same = equivalence(config, args.seeds, batch=8)
        seconds = step_seconds(config, args.seeds, args.steps)
        speedup = seconds["one_by_one"] / seconds["together"]
        rows[name] = dict(model=config.model, batch_size=config.batch_size, amp=config.amp,
                          channels_last=config.channels_last, optimizer=config.optimizer, speedup=speedup,
                          **{f"{k}_s": v for k, v in seconds.items()}, **same)
        print(f"{name:<6}{seconds['one_by_one'] * 1e3:>15.1f}{seconds['together'] * 1e3:>13.1f}{speedup:>9.2f}x"
              f"{same['forward_max_abs_diff']:>14.1e}{same['step_max_abs_weight_diff']:>11.1e}", flush=True)
    result = dict(profile=PROFILE, seeds=args.seeds, steps=args.steps, environment=environment(torch.device("cpu")),
                  models=rows)
    atomic_write_json(result, Path(args.out))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
