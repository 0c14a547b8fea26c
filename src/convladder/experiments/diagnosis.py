"""Experiments that diagnose the study's anomalies, beyond its own runs.

- Model E "does not learn at all" (validation accuracy 0.01, below chance): E and F are
  trained briefly under variations of the study's setup (its softmax + cross-entropy,
  initialisation, learning rate) to see which ones fail and whether batch norm (F) rescues
  them. The scale of the logits at initialisation is measured for each.
- Sigmoid against ReLU: the gradient norm of every weight layer at every step of the first
  epochs of models C (sigmoid) and D (ReLU), which the study only asserted vanish.
- What a model that predicts one class would score: the class shares of the validation split.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm  # text bars: they stream through papermill to the terminal

from convladder.core.config import TrainConfig
from convladder.core.data import get_splits, load_cifar10
from convladder.results.layout import DIAGNOSIS_FILE
from convladder.tools.files import atomic_write_json, read_json
from convladder.core.models import create_model
from convladder.core.versions import DIAGNOSIS_VERSION, code_version
from convladder.core.training import Trainer

LEARNED = 0.2  # validation accuracy above which a variant counts as having learned (chance is 0.1)


@dataclass(frozen=True)
class Variant:
    label: str
    model: str
    study_softmax: bool = False
    init: str = "default"  # "default": PyTorch's; "he": Kaiming normal for ReLU, zero biases
    overrides: dict = field(default_factory=dict)


E_VARIANTS = (
    Variant("E, logits + CE (ours)", "E"),
    Variant("E, softmax + CE (the study's)", "E", study_softmax=True),
    Variant("E, softmax + CE, He init", "E", study_softmax=True, init="he"),
    Variant("E, logits + CE, lr 0.01", "E", overrides={"lr": 0.01}),
    Variant("F, softmax + CE (the study's)", "F", study_softmax=True),
    Variant("F, logits + CE, lr 0.01", "F", overrides={"lr": 0.01}),
)
GRADIENT_MODELS = ("C", "D")


def init_weights(model: nn.Module, init: str) -> nn.Module:
    if init == "he":
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
    elif init != "default":
        raise ValueError(f"unknown init {init!r}; use 'default' or 'he'")
    return model


def weight_layers(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weight tensor of every convolution and linear layer, by module name."""
    return {name: module.weight for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))}


@torch.no_grad()
def logit_std(model: nn.Module, images: torch.Tensor) -> float:
    """Standard deviation of the last linear layer's outputs (before any softmax) on `images`, as
    training sees them: in training mode, so that batch norm normalises with the batch's statistics
    (in evaluation mode fresh batch-norm layers are near the identity). Dropout is switched off."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    saved = {name: buf.clone() for name, buf in model.named_buffers()}  # the batch must not move the running statistics
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen = []
    handle = last.register_forward_hook(lambda _m, _i, out: seen.append(out.float()))
    model(images.float() / 255)
    handle.remove()
    for name, buf in model.named_buffers():
        buf.copy_(saved[name])
    model.train()
    return float(seen[0].std())


def _trainer(model_name: str, study_softmax: bool, init: str, splits, config: TrainConfig, device: str) -> Trainer:
    torch.manual_seed(config.seed)
    model = init_weights(create_model(model_name, study_softmax=study_softmax), init)
    return Trainer(model, splits["train"], splits["val"], config, device=device)


def run_variant(variant: Variant, splits, epochs: int, seed: int, batch_size: int, device: str = "auto") -> dict:
    """Train one variant from scratch; its validation accuracy per epoch and loss per step."""
    config = TrainConfig(model=variant.model, epochs=epochs, seed=seed, batch_size=batch_size,
                         study_softmax=variant.study_softmax, **variant.overrides)
    trainer = _trainer(variant.model, variant.study_softmax, variant.init, splits, config, device)
    start_std = logit_std(trainer.model, splits["val"].images[:512].to(trainer.device))
    losses: list[float] = []
    trainer.on_step = losses.append
    history = trainer.fit(epochs, progress=False)
    final = history["val_acc"][-1]
    return {"seed": seed, "lr": config.lr, "logit_std_at_init": start_std, "val_acc": history["val_acc"],
            "train_acc": history["train_acc"], "step_loss": losses, "final_val_acc": final,
            "learned": final > LEARNED and all(math.isfinite(x) for x in losses)}


def gradient_norms(model_name: str, splits, epochs: int, seed: int, batch_size: int, device: str = "auto") -> dict:
    """The L2 norm of every weight layer's gradient after every step of `epochs` epochs."""
    config = TrainConfig(model=model_name, epochs=epochs, seed=seed, batch_size=batch_size)
    trainer = _trainer(model_name, False, "default", splits, config, device)
    layers = weight_layers(trainer.model)
    norms: dict[str, list[float]] = {name: [] for name in layers}

    def record(_loss: float) -> None:
        for name, weight in layers.items():
            norms[name].append(float(weight.grad.norm()))

    trainer.on_step = record
    history = trainer.fit(epochs, progress=False)
    return {"seed": seed, "layers": list(layers), "norms": norms, "val_acc": history["val_acc"]}


def diagnose(
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    epochs: int = 3,
    seeds: tuple[int, ...] = (0,),
    batch_size: int = 128,
    val_size: int | None = None,
    device: str = "auto",
) -> dict:
    """Run every experiment on `train_size` training images and write `out_dir/diagnosis.json`;
    a finished diagnosis of the same settings, code and data is read back instead."""
    dataset = load_cifar10(data_dir)
    settings = {"train_size": train_size, "val_size": val_size, "epochs": epochs, "seeds": list(seeds),
                "batch_size": batch_size, "data_checksum": dataset.checksum,
                "code_version": code_version() + DIAGNOSIS_VERSION,
                "variants": [repr(v) for v in E_VARIANTS]}
    path = Path(out_dir) / DIAGNOSIS_FILE
    if path.exists():
        try:
            previous = read_json(path)
            if previous.get("settings") == settings:
                return previous
        except ValueError:
            pass  # unreadable: run again
    splits = get_splits(dataset, train_size, val_size)
    val_counts = splits["val"].class_counts()
    results = {
        "settings": settings,
        "train_images": len(splits["train"]), "val_images": len(splits["val"]), "epochs": epochs,
        "seeds": list(seeds), "batch_size": batch_size, "learned_threshold": LEARNED,
        "steps_per_epoch": math.ceil(len(splits["train"]) / batch_size),
        "one_class_accuracy": [c / len(splits["val"]) for c in val_counts],
        "class_names": list(dataset.class_names),
        "variants": [], "gradients": {},
    }
    jobs = [(v, s) for v in E_VARIANTS for s in seeds]
    for variant, seed in tqdm(jobs, desc="E/F variants"):
        entry = next((e for e in results["variants"] if e["label"] == variant.label), None)
        if entry is None:
            entry = {"label": variant.label, "model": variant.model, "study_softmax": variant.study_softmax,
                     "init": variant.init, "overrides": variant.overrides, "seeds": []}
            results["variants"].append(entry)
        entry["seeds"].append(run_variant(variant, splits, epochs, seed, batch_size, device))
    for name in tqdm(GRADIENT_MODELS, desc="gradient norms"):
        results["gradients"][name] = [gradient_norms(name, splits, epochs, seed, batch_size, device) for seed in seeds]
    atomic_write_json(results, path)
    return results
