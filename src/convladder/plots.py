"""The study's figures: training history, random samples, probability vectors."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def plot_history(history: dict, title: str = "") -> Figure:
    """Per epoch: mean loss and accuracy on train and validation, and the epoch's seconds."""
    epochs = history["epoch"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(epochs, history["train_loss"], label="train", marker=".")
    axes[0].plot(epochs, history["val_loss"], label="validation", marker=".")
    axes[0].set(title="cross-entropy loss", xlabel="epoch")
    axes[1].plot(epochs, history["train_acc"], label="train", marker=".")
    axes[1].plot(epochs, history["val_acc"], label="validation", marker=".")
    axes[1].axhline(0.1, color="grey", lw=0.8, ls=":", label="chance")
    axes[1].set(title="accuracy", xlabel="epoch", ylim=(0, 1))
    axes[2].bar(epochs, history["epoch_seconds"], color="tab:gray")
    axes[2].set(title="epoch time (s)", xlabel="epoch")
    for ax in axes[:2]:
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_samples(images: torch.Tensor, labels: torch.Tensor, class_names, rows: int = 4, cols: int = 8) -> Figure:
    """A grid of images (uint8 or float, N x 3 x H x W) with their labels (Figure 1)."""
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.45))
    for ax, image, label in zip(axes.flat, images, labels):
        pixels = image.permute(1, 2, 0)
        ax.imshow(pixels if pixels.dtype == torch.uint8 else pixels.clamp(0, 1))
        ax.set_title(class_names[int(label)], fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(images):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_proba(probas: dict[str, list[float]], class_names, title: str = "") -> Figure:
    """Bar charts of probability vectors side by side, e.g. {"before": [...], "after": [...]}."""
    fig, axes = plt.subplots(1, len(probas), figsize=(4.2 * len(probas), 3), squeeze=False)
    for ax, (label, proba) in zip(axes[0], probas.items()):
        ax.bar(range(len(proba)), proba, color="tab:blue")
        ax.set_xticks(range(len(proba)), class_names, rotation=60, fontsize=8)
        ax.set(title=label, ylim=(0, 1), ylabel="probability")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_ladder(runs: list[dict], study: dict) -> Figure:
    """Validation accuracy per epoch for every run, and final accuracies beside the study's."""
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    for run in runs:
        curves.plot(run["history"]["epoch"], run["history"]["val_acc"], label=run["name"], marker="." if len(run["history"]["epoch"]) < 30 else None)
    curves.axhline(0.1, color="grey", lw=0.8, ls=":")
    curves.set(title="validation accuracy", xlabel="epoch", ylim=(0, 1))
    curves.grid(alpha=0.3)
    curves.legend(ncol=3, fontsize=8)
    names = [run["name"] for run in runs]
    x = range(len(runs))
    width = 0.27
    bars.bar([i - width for i in x], [run["final"]["val_acc"] for run in runs], width, label="ours, validation")
    bars.bar(list(x), [run["final"]["test_acc"] for run in runs], width, label="ours, test")
    study_val = [study.get(name, {}).get("val_acc") for name in names]
    bars.bar([i + width for i in x], [v if v is not None else 0 for v in study_val], width, label="study, validation",
             color="tab:gray")
    bars.set_xticks(list(x), names, rotation=45, fontsize=8)
    bars.set(title="final accuracy", ylim=(0, 1))
    bars.legend(fontsize=8)
    bars.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=150)
    plt.close(fig)
    return path
