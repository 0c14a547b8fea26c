"""The error analysis's figures: confusion matrices, accuracy per class, the most confident mistakes (plots.py
holds the shared helpers and the ladder's own figures)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def plot_confusion(seeds: list[dict], class_names, title: str = "") -> Figure:
    """The confusion matrix summed over seeds, each row in percent of the true class's images (whole numbers, large
    enough to read at 0.47 of the page's width: 8.5 pt numbers on a 3-inch figure come out at about 8 pt)."""
    matrix = torch.tensor([s["confusion"] for s in seeds], dtype=torch.float64).sum(0)
    rows = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(3.0, 2.95))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{100 * rows[i, j]:.0f}", ha="center", va="center",
                    fontsize=8.5, color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted", fontsize=8.5)
    ax.set_ylabel("true", fontsize=8.5)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def plot_per_class(errors: dict) -> Figure:
    """Per-class test accuracy of each analysed run: mean over seeds, error bar the standard deviation."""
    from convladder.results.records import summarize

    names, classes = list(errors["runs"]), errors["class_names"]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        seeds = errors["runs"][name]["seeds"]
        stats = [summarize([s["per_class"][c] for s in seeds]) for c in range(len(classes))]
        ax.bar([c + (k - (len(names) - 1) / 2) * width for c in range(len(classes))], [m for m, _ in stats], width,
               yerr=[s for _, s in stats], capsize=2, label=name)
    ax.set_xticks(range(len(classes)), classes)
    ax.set(ylabel="test accuracy (recall)", ylim=(0, 1), title="accuracy per class")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def probability_label(p: float) -> str:
    """A probability in a few characters that still tells near-certain ones apart: 0.87, or 1-3e-05 where two
    decimals would round it to 1.00."""
    return f"{p:.2f}" if p < 0.995 else f"1-{1 - p:.0e}"


def plot_mistakes(images: torch.Tensor, mistakes: list[dict], class_names, cols: int = 8) -> Figure:
    """The most confident mistakes: each image with its true class and the prediction's probability."""
    rows = max(1, -(-len(mistakes) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.35, rows * 1.7), squeeze=False)
    for ax, image, m in zip(axes.flat, images, mistakes):
        ax.imshow(image.permute(1, 2, 0))
        predicted = f"{class_names[m['predicted']]} {probability_label(m['confidence'])}"
        ax.set_title(f"{class_names[m['true']]}\n-> {predicted}", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig
