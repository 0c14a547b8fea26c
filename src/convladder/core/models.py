"""Models A to G and GAP exactly as the study defines them, and `create_model`, which builds any
registered model (core/registry.py; our model H lives in model_h.py) by name.

Every study model ends in Softmax. Here a model ends in its last Linear layer and gives
logits, trained with cross-entropy; `create_model(..., study_softmax=True)` appends the
study's Softmax so that "softmax then cross-entropy" (a double softmax) can be measured.
`predict_proba` gives probabilities either way.
"""

from __future__ import annotations

import torch
from torch import nn

from convladder.core.blocks import get_conv_block
from convladder.core.registry import check_without, entry


def model_a() -> nn.Sequential:
    return _minimal(5)


def model_b() -> nn.Sequential:
    return _minimal(20)


def _minimal(filters: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, filters, 3, padding="same"),
        nn.Sigmoid(),
        nn.Conv2d(filters, filters, 3, padding="same"),
        nn.Sigmoid(),
        nn.MaxPool2d(8),  # 32x32 -> 4x4
        nn.Flatten(),
        nn.Linear(filters * 4 * 4, 10),
    )


def model_c() -> nn.Sequential:
    return _two_blocks("sigmoid")


def model_d() -> nn.Sequential:
    return _two_blocks("relu")


def _two_blocks(activation: str) -> nn.Sequential:
    return nn.Sequential(
        get_conv_block(3, 20, 20, activation_func_str=activation),
        get_conv_block(20, 40, 40, activation_func_str=activation),
        nn.Flatten(),
        nn.Linear(40 * 8 * 8, 10),
    )


def model_e() -> nn.Sequential:
    return _four_blocks(batch_norm=False, dropout=(None,) * 4)


def model_f() -> nn.Sequential:
    return _four_blocks(batch_norm=True, dropout=(None,) * 4)


def model_g() -> nn.Sequential:
    return _four_blocks(batch_norm=True, dropout=(0.1, 0.2, 0.3, 0.4))


def _four_blocks(batch_norm: bool, dropout: tuple) -> nn.Sequential:
    channels = (3, 20, 40, 80, 160)
    blocks = [
        get_conv_block(c_in, c_out, c_out, batch_norm=batch_norm, dropout_rate=p)
        for c_in, c_out, p in zip(channels, channels[1:], dropout)
    ]
    return nn.Sequential(*blocks, nn.Flatten(), nn.Linear(160 * 2 * 2, 10))


def model_gap() -> nn.Sequential:
    return nn.Sequential(
        get_conv_block(3, 20, 20, batch_norm=True, dropout_rate=0.1),
        get_conv_block(20, 40, 40, batch_norm=True, dropout_rate=0.2),
        get_conv_block(40, 80, 80, batch_norm=True, dropout_rate=0.3),
        nn.Conv2d(80, 160, 3, padding="same"),
        nn.ReLU(),
        nn.BatchNorm2d(160),
        nn.Conv2d(160, 160, 3, padding="same"),
        nn.ReLU(),
        nn.BatchNorm2d(160),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Dropout(0.4),
        nn.Flatten(),
        nn.Linear(160, 10),
    )


def create_model(name: str, study_softmax: bool = False, without: tuple[str, ...] = ()) -> nn.Sequential:
    """Build a registered model by name ("A" ... "G", "GAP", "H"); `without`: ingredients left out
    (registry.ingredients)."""
    model = entry(name).build(without=check_without(name, without)) if without else entry(name).build()
    if study_softmax:
        model.append(nn.Softmax(dim=1))
    return model


def scale_initial_weights(model: nn.Module, factor: float) -> nn.Module:
    """Multiply every convolution's and linear layer's weights by `factor` (biases kept): a smaller or larger
    initial weight scale than PyTorch's (TrainConfig.init_scale). 1 changes nothing."""
    if factor != 1:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.weight.mul_(factor)
    return model


def ends_in_softmax(model: nn.Module) -> bool:
    return isinstance(model, nn.Sequential) and isinstance(model[-1], nn.Softmax)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layer_records(model: nn.Module) -> list[dict]:
    """Every leaf module of the model, in order: its name, how PyTorch prints it, its parameters
    (recorded in each run's results.json, so that the report describes the model that was trained)."""
    return [
        {"name": name, "module": repr(module), "parameters": count_parameters(module)}
        for name, module in model.named_modules()
        if name and not list(module.children())
    ]


@torch.no_grad()
def predict_proba(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities for float images in [0, 1] of shape (N, 3, H, W)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = model(images.to(device)).float()
    model.train(was_training)
    return out if ends_in_softmax(model) else out.softmax(dim=1)
