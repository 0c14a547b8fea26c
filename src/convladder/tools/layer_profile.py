"""Where a training step's time goes, layer by layer: the seconds of each leaf module's forward and
backward pass, its FLOPs, and the fraction of the CPU's peak it reaches (benchmarks/model_h.py).

The time of a layer's forward pass runs from its forward pre-hook to its forward hook; that of its
backward pass from its backward pre-hook to its backward hook. On the CPU every operation finishes
before the next starts, so these spans add up to the step, less the loss, the optimizer and what
runs between layers (reported as "other"). A layer whose input needs no gradient (the first) has its
backward hooks fire together, so its backward pass (its weights' gradients only) counts as "other".
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections import defaultdict

from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def leaf_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {name: module for name, module in model.named_modules() if name and not list(module.children())}


@contextlib.contextmanager
def layer_timer(model: nn.Module):
    """Accumulate each leaf module's forward and backward seconds into the yielded dict
    {name: {"forward": s, "backward": s}} while the context is open."""
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: {"forward": 0.0, "backward": 0.0})
    started: dict[tuple[str, str], float] = {}
    handles = []

    def start(name, phase):
        def hook(*_):
            started[name, phase] = time.perf_counter()
        return hook

    def stop(name, phase):
        def hook(*_):
            seconds[name][phase] += time.perf_counter() - started.pop((name, phase))
        return hook

    for name, module in leaf_modules(model).items():
        handles += [
            module.register_forward_pre_hook(start(name, "forward")),
            module.register_forward_hook(stop(name, "forward")),
            module.register_full_backward_pre_hook(start(name, "backward")),
            module.register_full_backward_hook(stop(name, "backward")),
        ]
    try:
        with warnings.catch_warnings():  # the first layer's hooks: see the module's docstring
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield seconds
    finally:
        for handle in handles:
            handle.remove()


def layer_flops(model: nn.Module, step) -> dict[str, float]:
    """FLOPs of each leaf module (forward and backward) in one call of `step()` (counted by
    torch.utils.flop_counter, which attributes them to the modules that ran them)."""
    with FlopCounterMode(display=False) as counter:
        step()
    counts = counter.get_flop_counts()  # keyed by the module's name after the model's class name
    root = type(model).__name__
    return {name: float(sum(counts.get(f"{root}.{name}", {}).values())) for name in leaf_modules(model)}


def profile_layers(model: nn.Module, step, steps: int = 3) -> dict:
    """Run `step()` (one training step of `model`) once to warm up, once under the FLOP counter, then
    `steps` times timed: each layer's kind (class name), mean forward and backward seconds per step and
    FLOPs per step, and the step's mean seconds."""
    step()
    flops = layer_flops(model, step)
    with layer_timer(model) as seconds:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - start) / steps
    layers = {
        name: {"kind": type(module).__name__, "forward": seconds[name]["forward"] / steps,
               "backward": seconds[name]["backward"] / steps, "flops": flops[name]}
        for name, module in leaf_modules(model).items()
    }
    return {"step_seconds": total, "layers": layers,
            "other_seconds": total - sum(row["forward"] + row["backward"] for row in layers.values())}
