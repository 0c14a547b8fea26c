"""The models as the runs recorded them (results.json "layers"): what each is made of, and its parameter count
from the recorded layer shapes."""

from __future__ import annotations

import re

_CONV = re.compile(r"^Conv2d\((\d+), (\d+), kernel_size=\((\d+), (\d+)\)")
_LINEAR = re.compile(r"^Linear\(in_features=(\d+), out_features=(\d+)")
_NORM = re.compile(r"^BatchNorm2d\((\d+)")
_DROPOUT = re.compile(r"^Dropout\(p=([0-9.]+)")
_MAX_POOL = re.compile(r"^MaxPool2d\(kernel_size=(\d+)")


def architecture(layers: list[dict]) -> dict:
    """What a model is made of, read from its recorded layers (name, module as PyTorch prints it,
    parameters): the filters of each convolution, the activations, batch norm, the dropout rates,
    the max-pool sizes, whether a global average pool feeds the classifier, the classifier's
    inputs, and the parameter count."""
    modules = [layer["module"] for layer in layers]
    linear = [m for m in map(_LINEAR.match, modules) if m]
    return dict(
        convs=[int(m.group(2)) for m in map(_CONV.match, modules) if m],
        activations=sorted({m.split("(")[0] for m in modules if m.startswith(("ReLU", "Sigmoid", "Tanh", "GELU"))}),
        batch_norm=any(_NORM.match(m) for m in modules),
        dropout=[float(m.group(1)) for m in map(_DROPOUT.match, modules) if m],
        max_pools=[int(m.group(1)) for m in map(_MAX_POOL.match, modules) if m],
        global_pool=any(m.startswith("AdaptiveAvgPool2d") for m in modules),
        features=int(linear[-1].group(1)) if linear else None,
        parameters=sum(layer["parameters"] for layer in layers),
    )


def layer_formula(layers: list[dict]) -> tuple[list[str], int]:
    """The parameter count from the recorded layer shapes: a k x k convolution has (k^2 c_in + 1) c_out
    parameters, a linear layer (n_in + 1) n_out (without their "+ 1" where PyTorch printed bias=False),
    a batch norm 2 per channel. The terms, and their sum."""
    terms, total = [], 0
    for module in (layer["module"] for layer in layers):
        bias = 0 if "bias=False" in module else 1
        if conv := _CONV.match(module):
            c_in, c_out, kh, kw = map(int, conv.groups())
            terms.append(f"({kh * kw}*{c_in}{'+1' * bias})*{c_out}")
            total += (kh * kw * c_in + bias) * c_out
        elif linear := _LINEAR.match(module):
            n_in, n_out = map(int, linear.groups())
            terms.append(f"({n_in}{'+1' * bias})*{n_out}")
            total += (n_in + bias) * n_out
        elif norm := _NORM.match(module):
            terms.append(f"2*{norm.group(1)}")
            total += 2 * int(norm.group(1))
    return terms, total
