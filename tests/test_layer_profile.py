"""The per-layer profile: every leaf module's forward and backward seconds and FLOPs."""

import torch
from torch import nn

from convladder.tools.layer_profile import layer_flops, profile_layers


def small_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


def test_each_layer_gets_its_flops_and_seconds():
    torch.manual_seed(0)
    model = small_model()
    x, y = torch.rand(4, 3, 16, 16), torch.randint(0, 10, (4,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    flops = layer_flops(model, step)
    conv_forward = 2 * 4 * 16 * 16 * 8 * 3 * 9  # 2 FLOP per multiply-add, batch 4
    assert flops["0"] == 2 * conv_forward  # forward, and the weight's gradient (the input needs none)
    assert flops["4"] == 3 * 2 * 4 * 8 * 10  # forward, gradients of the weight and of the input
    assert flops["1"] == flops["2"] == 0  # GELU and pooling: no matrix products
    profile = profile_layers(model, step, steps=2)
    assert set(profile["layers"]) == {"0", "1", "2", "3", "4"}
    for row in profile["layers"].values():
        assert row["forward"] > 0 and row["backward"] >= 0
    assert profile["layers"]["4"]["backward"] > 0
    spent = sum(row["forward"] + row["backward"] for row in profile["layers"].values())
    assert 0 < spent < profile["step_seconds"] and profile["other_seconds"] > 0
