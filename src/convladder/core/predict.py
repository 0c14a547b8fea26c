"""Prediction on image files with a trained run: loading weights and turning files into tensors."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

from convladder.core.augment import resize
from convladder.core.config import TrainConfig
from convladder.core.models import create_model, predict_proba
from convladder.core.registry import accepts_any_size
from convladder.tools.files import CheckpointError, load_checkpoint_file
from convladder.results.layout import RESULTS_FILE
from convladder.results.records import load_results, resolve_run_folder
from convladder.core.training import CHECKPOINT

# GAP pools three times by 2 before its global average: smaller sides leave nothing to pool.
MIN_SIDE = 8
# Images are fed at most this many pixels per side (GAP takes any size; the others get 32x32).
MAX_SIDE = 256
# Beyond this ratio of the sides an image cannot be both at most MAX_SIDE and at least MIN_SIDE.
MAX_ASPECT = MAX_SIDE // MIN_SIDE
# Formats that cannot be decoded at a reduced size (all but JPEG) are refused above this many
# pixels: decoding them whole would cost about 4 bytes a pixel, several times over.
MAX_DECODE_PIXELS = 40_000_000


def load_trained_model(run_dir: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """The model of a finished run, with its weights, and that run's results. A run folder
    with seed folders gives its lowest seed."""
    run_dir = resolve_run_folder(run_dir)
    results = load_results(run_dir)
    config = TrainConfig.from_dict(results["config"])
    model = create_model(config.model, study_softmax=config.study_softmax, without=config.left_out)
    path = Path(run_dir) / CHECKPOINT
    state = load_checkpoint_file(path)
    saved_model = (state.get("config") or {}).get("model")
    if saved_model not in (None, config.model):
        raise CheckpointError(f"{path} holds a checkpoint of model {saved_model}, not of model {config.model} that "
                              f"{RESULTS_FILE} names; the run folder is mixed up: train it again")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise CheckpointError(f"{path} holds weights that do not fit model {config.model}'s layers (which its "
                              f"config names); the run folder is mixed up: train it again") from None
    return model.eval(), results


def load_image(path: str | os.PathLike, max_side: int = MAX_SIDE) -> torch.Tensor:
    """An image file as float RGB in [0, 1], shape (3, H, W), at most about `max_side` pixels on its
    longer side (reduced while or right after decoding, so memory stays bounded); grayscale,
    palette, alpha and 16-bit images are converted. Refuses, with the reason, images whose sides
    differ by more than MAX_ASPECT times and huge images of formats that cannot be decoded small."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes are checked below
            img = Image.open(path)
        with img:
            w, h = img.size
            if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
                raise ValueError(f"{path} is {w}x{h} pixels: its sides differ more than {MAX_ASPECT} times, which "
                                 f"no model here can be fed; crop it first")
            # A progressive JPEG keeps every coefficient of the full image while decoding, even at a reduced
            # size: it is held to the limit at its full size, like the formats that cannot be decoded small.
            progressive = bool(img.info.get("progressive") or img.info.get("progression"))
            if isinstance(img, JpegImageFile) and not progressive:  # JPEG and its multi-picture variant MPO
                img.draft(img.mode, (max_side, max_side))  # decoded at 1/2, 1/4 or 1/8 of the size
            if img.size[0] * img.size[1] > MAX_DECODE_PIXELS:
                raise ValueError(f"{path} is {w}x{h} pixels, too large to decode (at most {MAX_DECODE_PIXELS:,} "
                                 f"pixels for {img.format or 'this format'}); shrink it first")
            img.load()
            if img.mode == "1":
                img = img.convert("L")  # one byte a pixel, which Image.reduce takes (bilevel it does not)
            if img.mode.startswith("I;16"):
                img = img.convert("I")  # 32-bit integers: a mode Image.reduce takes
            img = _reduce(img, max_side)
            if img.mode == "I":
                array = np.asarray(img, dtype=np.float32)
                array = array / (65535.0 if array.max() > 255 else 255.0)
                rgb = np.repeat(array[..., None], 3, axis=2)
            else:
                if img.mode in ("RGBA", "LA", "P", "PA"):
                    img = _reduce(img.convert("RGBA"), max_side)
                    background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                    img = Image.alpha_composite(background, img)
                rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise FileNotFoundError(f"no image file at {path}") from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path} is refused as a decompression bomb ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as err:
        raise ValueError(f"{path} is not an image that Pillow can read ({err})") from None
    except ValueError as err:  # ours name the file; Pillow's (a text-chunk bomb: "Decompressed Data Too Large") do not
        if str(path) in str(err):
            raise
        raise ValueError(f"{path} is refused: {err}") from None
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()


def _reduce(img: Image.Image, max_side: int) -> Image.Image:
    """`img` shrunk by a whole factor (box filter) towards `max_side`, where its mode allows."""
    factor = max(img.size) // max_side
    if factor < 2:
        return img
    try:
        return img.reduce(factor)
    except ValueError:  # a mode Image.reduce does not take (palette, 16-bit): converted later, then reduced
        return img


def fit_to_model(image: torch.Tensor, model_name: str, max_side: int = MAX_SIDE) -> torch.Tensor:
    """Size an image for a model: 32x32 for the fixed-size models; GAP keeps the image's own
    shape, reduced to at most `max_side` per side, then enlarged to at least MIN_SIDE."""
    _, h, w = image.shape
    if not accepts_any_size(model_name):
        return resize(image[None], 32, 32)[0]
    scale = min(max_side / max(h, w), 1.0)
    scale = max(scale, MIN_SIDE / min(h, w))
    if scale != 1.0:
        new_h = min(max_side, max(MIN_SIDE, round(h * scale)))
        new_w = min(max_side, max(MIN_SIDE, round(w * scale)))
        image = resize(image[None], new_h, new_w)[0]
    return image


def predict_file(run_dir: str | os.PathLike, path: str | os.PathLike) -> dict:
    """Class probabilities for one image file, with the run's class names."""
    model, results = load_trained_model(run_dir)
    image = fit_to_model(load_image(path), results["config"]["model"])
    proba = predict_proba(model, image[None])[0].tolist()
    names = results["data"]["class_names"]
    return {"file": str(path), "size": list(image.shape[1:]), "proba": dict(zip(names, proba))}
