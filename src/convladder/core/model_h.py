"""Model H, the ladder's top rung: a small network built to train to high accuracy in few CPU minutes.

Our own code after the ideas the fast CIFAR-10 training literature published (airbench and its
predecessors): a fixed first layer that whitens 2x2 patches, computed from the training images;
three conv-pool-BN-GELU blocks of widths 64, 256, 256 whose convolutions start as identities where
their shapes allow; batch norm with its scale fixed at 1 and its bias learnt at a larger learning
rate; a global max-pool and a scaled-down linear classifier. The recipe that trains it
(`h` in plan/recipes.py) is kept with the named recipes.

This module is outside the code version of the other models' runs (its registry entry's family is
its own: core/registry.py): a change here makes only H's runs stale. It fills in the Trainer's
generic hooks: `init_from_data` (called by `runs._train` on the training images before training)
and `param_groups` (read by `training.parameter_groups`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from convladder.core.h_design import (  # noqa: F401  (INGREDIENTS: read through this module too)
    BIAS_LR_SCALE, BN_MOMENTUM, HEAD_SCALE, INGREDIENTS, WHITEN_EPS, WHITEN_IMAGES, WHITEN_PATCH, WIDTHS, WIDTHS_95,
)


class Scale(nn.Module):
    """Multiply by a constant."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:.4g}"


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch norm whose scale stays 1 (only its bias is learnt)."""
    norm = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)
    norm.weight.requires_grad_(False)
    return norm


def conv_block(c_in: int, c_out: int, dirac: bool = True) -> nn.Sequential:
    """conv - max-pool - BN - GELU - conv - BN - GELU; with `dirac`, both convolutions start as
    identities on the channels their shapes allow (`dirac_init`)."""
    block = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        pool=nn.MaxPool2d(2),
        norm1=batch_norm(c_out),
        act1=nn.GELU(),
        conv2=nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        norm2=batch_norm(c_out),
        act2=nn.GELU(),
    ))
    if dirac:
        dirac_init(block.conv1)
        dirac_init(block.conv2)
    return block


@torch.no_grad()
def dirac_init(conv: nn.Conv2d) -> None:
    """Make the first `in_channels` filters pass their input channel through unchanged (a conv with
    fewer outputs than inputs keeps its random initialisation)."""
    if conv.out_channels >= conv.in_channels:
        nn.init.dirac_(conv.weight[: conv.in_channels])


def patches(images: torch.Tensor, size: int = WHITEN_PATCH) -> torch.Tensor:
    """Every size x size patch of float images (N, C, H, W), one row each: (N * positions, C * size^2),
    in the order a conv's weight (C, size, size) is flattened."""
    c = images.shape[1]
    cols = nn.functional.unfold(images, size)  # (N, C * size^2, positions)
    return cols.transpose(1, 2).reshape(-1, c * size * size)


def whitening(
    images: torch.Tensor, size: int = WHITEN_PATCH, eps: float = WHITEN_EPS, chunk: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight (k, C, size, size) and bias (k) of a conv whose outputs on the patches of uint8
    `images` have zero mean and, up to `eps`, the identity as covariance: the patch covariance's
    eigenvectors scaled by 1 / sqrt(eigenvalue + eps), largest eigenvalue first. Accumulated in
    float64, a chunk of images at a time; deterministic."""
    total, outer, count = 0, 0, 0
    for start in range(0, len(images), chunk):
        rows = patches(images[start : start + chunk].double() / 255, size)
        total = total + rows.sum(0)
        outer = outer + rows.T @ rows
        count += len(rows)
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    weight = eigenvectors.T / torch.sqrt(eigenvalues.clamp(min=0) + eps)[:, None]
    return weight.reshape(-1, images.shape[1], size, size).float(), (-weight @ mean).float()


class ModelH(nn.Sequential):
    """Patch whitening (both signs of each whitened component: 24 channels, frozen) - GELU - three
    conv blocks - global max-pool - linear classifier scaled by HEAD_SCALE; logits for images of any
    size from 9 pixels up. `without`: INGREDIENTS left out, for ablations."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS, classes: int = 10, without: tuple[str, ...] = ()):
        whiten_channels = 2 * 3 * WHITEN_PATCH**2
        channels = (whiten_channels, *widths)
        dirac = "dirac" not in without
        super().__init__(OrderedDict(
            whiten=nn.Conv2d(3, whiten_channels, WHITEN_PATCH, padding=0, bias=True),
            act=nn.GELU(),
            **{f"block{i + 1}": conv_block(c_in, c_out, dirac)
               for i, (c_in, c_out) in enumerate(zip(channels, channels[1:]))},
            pool=nn.AdaptiveMaxPool2d(1),
            flatten=nn.Flatten(),
            head=nn.Linear(widths[-1], classes, bias=False),
            scale=Scale(HEAD_SCALE),
        ))
        self.whitened = "whitening" not in without
        self.bias_lr_scale = BIAS_LR_SCALE if "bias_lr" not in without else 1.0
        # set from the data by init_from_data, then fixed (without whitening: trained from PyTorch's initialisation)
        self.whiten.weight.requires_grad_(not self.whitened)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening layer from the patches of the first WHITEN_IMAGES of the uint8 training
        images (N, 3, H, W): each whitened component and its negative. The bias that centres the
        patches is learnt from there on. (Nothing without whitening.)"""
        if not self.whitened:
            return
        weight, bias = whitening(images[:WHITEN_IMAGES])
        self.whiten.weight.copy_(torch.cat([weight, -weight]))
        self.whiten.bias.copy_(torch.cat([bias, -bias]))

    def param_groups(self, config) -> list[dict]:
        """The optimizer's parameter groups: the batch-norm biases at BIAS_LR_SCALE times the learning
        rate (1 without bias_lr), with the weight decay divided by it (so they decay as fast per step as
        the rest); every other trainable parameter as the config says. Frozen parameters are left out."""
        biases = [m.bias for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        chosen = {id(p) for p in biases}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in chosen]
        return [
            dict(params=rest),
            dict(params=biases, lr=config.lr * self.bias_lr_scale, weight_decay=config.weight_decay / self.bias_lr_scale),
        ]


def model_h95(classes: int = 10, without: tuple[str, ...] = ()) -> ModelH:
    """Model H-95: H with the wider blocks WIDTHS_95 (the registry's "H95")."""
    return ModelH(WIDTHS_95, classes, without)
