"""The CPU's peak rates and a model's training FLOPs per image."""

import pytest
import torch
from torch import nn

from convladder.tools.hardware import bf16_unit, peaks, training_flops_per_image


@pytest.mark.parametrize("flags, unit, per_cycle", [
    ({"avx512f", "amx_bf16", "avx512_bf16"}, "amx_bf16", 1024),
    ({"avx512f", "avx512_bf16"}, "avx512_bf16", 64),
    ({"avx2"}, None, 32),
])
def test_the_bf16_peak_follows_the_cpus_bf16_unit(flags, unit, per_cycle):
    assert bf16_unit(flags) == unit
    peak = peaks(cores=2, clock_ghz=2.5, flags=flags)
    assert peak["fp32"] == 2 * 2.5 * 32
    assert peak["bf16"] == 2 * 2.5 * per_cycle and peak["flop_per_cycle_bf16"] == per_cycle


def test_training_flops_of_a_linear_model_are_forward_and_weight_gradient():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10, bias=False))
    # forward: 2 FLOP per weight; backward: the weight's gradient (the input needs none)
    assert training_flops_per_image(model) == 2 * 2 * 3 * 32 * 32 * 10


def test_counting_flops_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10)).eval()
    model(torch.rand(1, 3, 32, 32))  # materialise the lazy layer
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert training_flops_per_image(model, side=32) > 0
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
