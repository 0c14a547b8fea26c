"""Prediction on image files with a trained run: loading weights and turning files into tensors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from convladder.augment import resize
from convladder.config import TrainConfig
from convladder.models import accepts_any_size, create_model, predict_proba
from convladder.results import load_results, resolve_run_folder
from convladder.training import CHECKPOINT

# GAP pools three times by 2 before its global average: smaller sides leave nothing to pool.
MIN_SIDE = 8


def load_trained_model(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """The model of a finished run, with its weights, and that run's results. A run folder
    with seed folders gives its lowest seed."""
    run_dir = resolve_run_folder(run_dir)
    results = load_results(run_dir)
    config = TrainConfig.from_dict(results["config"])
    model = create_model(config.model, study_softmax=config.study_softmax)
    state = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), results


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """An image file as float RGB in [0, 1], shape (3, H, W); grayscale, palette, alpha and
    16-bit images are converted."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(img, dtype=np.float64)
                array = array / (65535.0 if array.max() > 255 else 255.0)
                rgb = np.repeat(array[..., None], 3, axis=2)
            else:
                if img.mode in ("RGBA", "LA", "P", "PA"):
                    img = img.convert("RGBA")
                    background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(background, img)
                rgb = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise FileNotFoundError(f"no image file at {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not an image that Pillow can read ({err})") from None
    return torch.from_numpy(rgb).permute(2, 0, 1).float()


def fit_to_model(image: torch.Tensor, model_name: str, max_side: int = 256) -> torch.Tensor:
    """Size an image for a model: 32x32 for the fixed-size models; GAP keeps the image's own
    size, enlarged to at least MIN_SIDE and reduced to at most `max_side` per side."""
    _, h, w = image.shape
    if not accepts_any_size(model_name):
        return resize(image[None], 32, 32)[0]
    scale = max(MIN_SIDE / min(h, w), 1.0) if min(h, w) < MIN_SIDE else min(max_side / max(h, w), 1.0)
    if scale != 1.0:
        image = resize(image[None], max(MIN_SIDE, round(h * scale)), max(MIN_SIDE, round(w * scale)))[0]
    return image


def predict_file(run_dir: str | os.PathLike, path: str | os.PathLike) -> dict:
    """Class probabilities for one image file, with the run's class names."""
    model, results = load_trained_model(run_dir)
    image = fit_to_model(load_image(path), results["config"]["model"])
    proba = predict_proba(model, image[None])[0].tolist()
    names = results["data"]["class_names"]
    return {"file": str(path), "size": list(image.shape[1:]), "proba": dict(zip(names, proba))}
