"""The study's building block: two 'same' convolutions, optional batch norm, pooling, dropout."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def get_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def get_conv_block(
    in_ch: int,
    mid_ch: int,
    out_ch: int,
    kernel_a_size: int = 3,
    kernel_b_size: int = 3,
    pool_size: int = 2,
    activation_func_str: str = "relu",
    batch_norm: bool = False,
    dropout_rate: float | None = None,
) -> nn.Sequential:
    """Conv-act-[BN]-conv-act-[BN]-maxpool-[dropout], exactly as the study defines it.

    Batch norm comes after the activation, as in the study.
    """
    get_activation(activation_func_str)  # fail before building anything
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, mid_ch, kernel_a_size, stride=1, padding="same"),
        get_activation(activation_func_str),
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(mid_ch))
    layers += [
        nn.Conv2d(mid_ch, out_ch, kernel_b_size, stride=1, padding="same"),
        get_activation(activation_func_str),
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.MaxPool2d(pool_size))
    if dropout_rate is not None:
        layers.append(nn.Dropout(dropout_rate))
    return nn.Sequential(*layers)
