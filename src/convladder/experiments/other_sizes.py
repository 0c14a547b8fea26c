"""The GAP model on images that are not 32x32: the study's last experiment, and a curve of
test accuracy against input size and aspect ratio (width x height)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from PIL import Image

from tqdm import tqdm  # text bars: they stream through papermill to the terminal

from convladder.core.augment import resize
from convladder.experiments.error_analysis import accuracy, analysis_test_split, predict_split
from convladder.plan.study import STUDY_SIZES
from convladder.results.records import seed_folders
from convladder.results.layout import ASSETS_DIR, OTHER_SIZES_FILE
from convladder.tools.files import atomic_write_bytes, atomic_write_json
from convladder.core.models import predict_proba
from convladder.core.predict import load_trained_model

# Squares from 16 to 64 pixels per side, then other aspect ratios (width x height).
SQUARE_SIDES = (16, 20, 24, 28, 32, 40, 48, 56, 64)
CURVE_SIZES = tuple((s, s) for s in SQUARE_SIDES) + ((32, 24), (32, 16), (24, 32), (16, 32), (48, 32), (64, 32))


def chelsea() -> torch.Tensor:
    """The cat photo of scikit-image's sample data (Chelsea, 451x300, CC0 by Stefan van der Walt),
    as float (3, H, W) in [0, 1]; a copy ships in `assets/chelsea.png`."""
    import numpy as np

    with Image.open(ASSETS_DIR / "chelsea.png") as img:
        pixels = np.asarray(img.convert("RGB"))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255


def _save_png(image: torch.Tensor, path: Path, scale: int = 4) -> None:
    """The image as a PNG, `scale` times its size, written atomically (a link at `path` is replaced, not written
    through: Pillow's own save would open the name and write into whatever file a link there points to)."""
    pixels = (image.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    h, w = pixels.shape[:2]
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((w * scale, h * scale), Image.NEAREST).save(buffer, format="PNG")
    atomic_write_bytes(buffer.getvalue(), path)


def other_sizes_study(
    gap_run: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    examples: int = 4,
    out_dir: str | os.PathLike = "other_sizes",
    curve_images: int | None = None,
    curve_sizes: tuple[tuple[int, int], ...] = CURVE_SIZES,
) -> dict:
    """Predictions of a trained GAP run (its first seed) on the cat photo and resized CIFAR
    test images, as in the study; and test accuracy as a function of input size for every
    seed of the run (on the first `curve_images` test images). Written to `out_dir/other_sizes.json`."""
    folders = seed_folders(gap_run)
    model, results = load_trained_model(folders[0])
    if results["config"]["model"] != "GAP":
        raise ValueError(f"{gap_run} is a run of model {results['config']['model']}; other sizes need a GAP run")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = results["data"]["class_names"]
    test = analysis_test_split(results, data_dir, None)

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

    curve_test = analysis_test_split(results, data_dir, curve_images)
    sizes = list(dict.fromkeys([(32, 32), *STUDY_SIZES, *curve_sizes]))
    curve = []
    for folder in tqdm(folders, desc="size curve (seeds)"):
        seed_model, seed_results = load_trained_model(folder)
        accuracy_by_size = {
            f"{w}x{h}": accuracy(predict_split(seed_model, curve_test.images, size=(w, h)), curve_test.labels)
            for w, h in sizes
        }
        curve.append({"seed": seed_results["config"]["seed"], "accuracy": accuracy_by_size})
    study = {"gap_run": results["name"], "class_names": names, "images": items, "curve": curve,
             "curve_images": len(curve_test), "sizes": [f"{w}x{h}" for w, h in sizes]}
    atomic_write_json(study, out_dir / OTHER_SIZES_FILE)
    return study
