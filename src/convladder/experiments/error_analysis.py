"""Where trained models go wrong: confusion matrix, per-class accuracy and the most
confident mistakes on the test set, over every seed of a run. Metrics from torchmetrics."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from convladder.core.augment import resize
from convladder.core.data import Split, get_splits, load_cifar10
from convladder.results.layout import ERRORS_FILE, MISTAKES_FILE, RunLayout
from convladder.tools.files import atomic_torch_save, atomic_write_json
from convladder.core.models import predict_proba
from convladder.core.predict import load_trained_model
from convladder.results.records import seed_folders

NUM_CLASSES = 10


@torch.no_grad()
def predict_split(model: torch.nn.Module, images: torch.Tensor, size: tuple[int, int] | None = None,
                  batch_size: int = 500) -> torch.Tensor:
    """Class probabilities for uint8 images (N, 3, 32, 32), optionally resized to (width, height) first."""
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].float() / 255
        if size is not None:
            x = resize(x, size[1], size[0])
        out.append(predict_proba(model, x))
    return torch.cat(out) if out else torch.empty(0, NUM_CLASSES)


def accuracy(proba: torch.Tensor, labels: torch.Tensor) -> float:
    return float(MulticlassAccuracy(NUM_CLASSES, average="micro")(proba, labels))


def confusion(proba: torch.Tensor, labels: torch.Tensor) -> dict:
    """Confusion matrix (rows: true class, columns: predicted), per-class accuracy (recall) and accuracy."""
    matrix = MulticlassConfusionMatrix(NUM_CLASSES)(proba, labels)
    per_class = MulticlassAccuracy(NUM_CLASSES, average=None)(proba, labels)
    return {"confusion": matrix.tolist(), "per_class": per_class.tolist(), "acc": accuracy(proba, labels)}


def confident_mistakes(proba: torch.Tensor, labels: torch.Tensor, count: int) -> list[dict]:
    """The wrong predictions made with the highest probability, most confident first."""
    confidence, predicted = proba.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:count]
    return [{"index": int(i), "true": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": float(confidence[i]), "p_true": float(proba[i, labels[i]])} for i in order]


def analysis_test_split(results: dict, data_dir, images: int | None) -> Split:
    """The test images a run was evaluated on, or the first `images` of them."""
    config = results["config"]
    test = get_splits(load_cifar10(data_dir), test_size=config["test_size"], split_seed=config["split_seed"])["test"]
    if images is not None and images < len(test):
        test = Split(test.images[:images], test.labels[:images])
    return test


def error_analysis(
    run_dir: str | os.PathLike,
    run_names: tuple[str, ...] = ("G", "GAP+"),
    data_dir: str | os.PathLike | None = None,
    images: int | None = None,
    mistakes: int = 24,
    out_dir: str | os.PathLike | None = None,
) -> dict:
    """Confusion matrices and per-class accuracy of every seed of each named run under
    `run_dir` on its test images (`images`: only the first that many), and the most confident
    mistakes of each run's first seed; written to `out_dir/errors.json` (default
    `run_dir/errors`), the mistaken images themselves to `out_dir/mistakes.pt` (uint8, by run
    name), so that the report shows them without loading the dataset."""
    run_dir = Path(run_dir)
    analysis: dict = {"runs": {}}
    mistaken_images: dict[str, torch.Tensor] = {}
    for name in run_names:
        seeds = []
        for folder in seed_folders(run_dir / name):
            model, results = load_trained_model(folder)
            test = analysis_test_split(results, data_dir, images)
            proba = predict_split(model, test.images)
            entry = {"seed": results["config"]["seed"], **confusion(proba, test.labels)}
            if not seeds:
                entry["mistakes"] = confident_mistakes(proba, test.labels, mistakes)
                mistaken_images[name] = test.images[[m["index"] for m in entry["mistakes"]]].clone()
            seeds.append(entry)
        analysis["runs"][name] = {"seeds": seeds}
        analysis.update(class_names=results["data"]["class_names"], test_images=len(test),
                        test_size=results["config"]["test_size"], split_seed=results["config"]["split_seed"])
    out_dir = Path(out_dir) if out_dir else RunLayout(run_dir).errors_dir
    atomic_torch_save(mistaken_images, out_dir / MISTAKES_FILE)
    atomic_write_json(analysis, out_dir / ERRORS_FILE)
    return analysis
