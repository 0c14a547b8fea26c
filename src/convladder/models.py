"""Models A to G and GAP exactly as the study defines them, and our model H, built by name through
one registry.

Every study model ends in Softmax. Here a model ends in its last Linear layer and gives
logits, trained with cross-entropy; `create_model(..., study_softmax=True)` appends the
study's Softmax so that "softmax then cross-entropy" (a double softmax) can be measured.
`predict_proba` gives probabilities either way.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from convladder.blocks import get_conv_block


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


def model_h(without: tuple[str, ...] = ()) -> nn.Sequential:
    from convladder.model_h import ModelH  # lazy: see MODEL_MODULES

    return ModelH(without=without)


MODELS: dict[str, Callable[[], nn.Sequential]] = {
    "A": model_a,
    "B": model_b,
    "C": model_c,
    "D": model_d,
    "E": model_e,
    "F": model_f,
    "G": model_g,
    "GAP": model_gap,
    "H": model_h,
}
MODEL_NAMES = tuple(MODELS)
STUDY_MODEL_NAMES = ("A", "B", "C", "D", "E", "F", "G", "GAP")  # the study's ladder

# Models whose code lives in a module of their own, imported only when such a model is built: the
# training code's version (versions.code_version) is declared per family: each of these models is one, so
# that tuning one of them leaves the other models' runs current.
MODEL_MODULES = {"H": "model_h"}

# Models whose classifier sees a global pooling of the channels (average: GAP, maximum: H): they take
# any image size.
ANY_SIZE_MODELS = ("GAP", "H")


def accepts_any_size(name: str) -> bool:
    return check_model_name(name) in ANY_SIZE_MODELS


def check_model_name(name: str) -> str:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return name


def ingredients(name: str) -> tuple[str, ...]:
    """What an ablation may leave out of the model (TrainConfig.without): model H's ideas, none for the others."""
    if check_model_name(name) != "H":
        return ()
    from convladder.model_h import INGREDIENTS  # lazy: see MODEL_MODULES

    return INGREDIENTS


def check_without(name: str, without: tuple[str, ...]) -> tuple[str, ...]:
    """`without` if the model has each of these ingredients, else ValueError."""
    unknown = [item for item in without if item not in ingredients(name)]
    if unknown:
        raise ValueError(f"model {name} has no ingredient {', '.join(map(repr, unknown))} to leave out; "
                         f"it has: {', '.join(ingredients(name)) or 'none'}")
    return tuple(without)


def create_model(name: str, study_softmax: bool = False, without: tuple[str, ...] = ()) -> nn.Sequential:
    """Build a model by name ("A" ... "G", "GAP", "H"); `without`: ingredients left out (see `ingredients`)."""
    model = MODELS[name](without=check_without(name, without)) if without else MODELS[check_model_name(name)]()
    if study_softmax:
        model.append(nn.Softmax(dim=1))
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
