"""The GAP model on images that are not 32x32, as in the study's last experiment."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from convladder.data import get_splits, load_cifar10
from convladder.io import atomic_write_json
from convladder.models import predict_proba
from convladder.predict import load_trained_model, resize

# (width, height), as the study wrote them: a 32x20 cat and a 32x18 frog.
STUDY_SIZES = ((32, 20), (32, 18))
RESULTS = "other_sizes.json"


def chelsea() -> torch.Tensor:
    """scikit-image's cat photo as float (3, H, W) in [0, 1]."""
    from skimage import data

    return torch.from_numpy(data.chelsea()).permute(2, 0, 1).float() / 255


def _save_png(image: torch.Tensor, path: Path, scale: int = 4) -> None:
    pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    h, w = pixels.shape[:2]
    Image.fromarray(pixels).resize((w * scale, h * scale), Image.NEAREST).save(path)


@torch.no_grad()
def accuracy_at(model, images: torch.Tensor, labels: torch.Tensor, width: int, height: int, batch: int = 1000) -> float:
    correct = 0
    for start in range(0, len(labels), batch):
        x = resize(images[start : start + batch].float() / 255, height, width)
        correct += int((predict_proba(model, x).argmax(1) == labels[start : start + batch]).sum())
    return correct / len(labels)


def other_sizes_study(
    gap_run: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    examples: int = 4,
    out_dir: str | os.PathLike = "other_sizes",
) -> dict:
    """Predictions of a trained GAP run on the cat photo and resized CIFAR test images,
    and test accuracy at 32x32, 32x20 and 32x18; written to `out_dir/other_sizes.json`."""
    model, results = load_trained_model(gap_run)
    if results["config"]["model"] != "GAP":
        raise ValueError(f"{gap_run} is a run of model {results['config']['model']}; other sizes need a GAP run")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = results["data"]["class_names"]
    config = results["config"]
    test = get_splits(load_cifar10(data_dir), test_size=config["test_size"], split_seed=config["split_seed"])["test"]

    items = []
    cat = resize(chelsea()[None], 20, 32)[0]
    _save_png(cat, out_dir / "chelsea_32x20.png")
    items.append({"title": "cat photo (chelsea), 32x20", "file": "chelsea_32x20.png", "true": "cat",
                  "proba": predict_proba(model, cat[None])[0].tolist()})
    for i in range(min(examples, len(test))):
        width, height = STUDY_SIZES[i % len(STUDY_SIZES)]
        image = resize(test.images[i : i + 1].float() / 255, height, width)[0]
        file = f"test{i}_{width}x{height}.png"
        _save_png(image, out_dir / file)
        items.append({"title": f"test image {i}, {width}x{height}", "file": file, "true": names[int(test.labels[i])],
                      "proba": predict_proba(model, image[None])[0].tolist()})

    accuracy = {f"{w}x{h}": accuracy_at(model, test.images, test.labels, w, h) for w, h in ((32, 32), *STUDY_SIZES)}
    study = {"gap_run": results["name"], "class_names": names, "images": items, "accuracy_by_size": accuracy,
             "test_images": len(test)}
    atomic_write_json(study, out_dir / RESULTS)
    return study
