"""Whole-batch augmentation on uint8 image tensors: random crop with padding, horizontal flip;
and resizing of float image batches.

No per-image Python: one gather does every crop of a batch. Random numbers come from a
CPU generator the caller seeds, so a resumed run draws the same augmentations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def flip_where(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose entry in the boolean `flip` is set."""
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(3), images)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror about half of the images left-right."""
    return flip_where(images, torch.rand(len(images), generator=generator) < 0.5)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map positions in [-size+1, 2*size-2] into [0, size-1] by reflection about the edges
    (as padding with mode="reflect" does)."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def crop_at(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Windows of the images' own size whose top-left corners sit at (dy, dx), one offset pair
    per image (negative: above / left of the image); positions outside the image read its
    reflection (as padding with mode="reflect" would). One gather, no padded copy."""
    n, c, h, w = images.shape
    rows = _reflect(dy.to(images.device)[:, None] + torch.arange(h, device=images.device)[None, :], h)[:, None, :, None]
    cols = _reflect(dx.to(images.device)[:, None] + torch.arange(w, device=images.device)[None, :], w)[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return images[batch, channel, rows, cols]


def random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each side by `pad` (reflection) and cut a random window of the original size."""
    n = len(images)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator) - pad
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator) - pad
    return crop_at(images, dy, dx)


def shift(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Every image seen through the same window: the one random_crop cuts at offset (dy, dx)."""
    n = len(images)
    return crop_at(images, torch.full((n,), dy), torch.full((n,), dx))


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: torch.Tensor | None = None
) -> torch.Tensor:
    """A random crop, then a horizontal flip of the images where the boolean `flip` is set
    (None: of a random half)."""
    images = random_crop(images, pad, generator)
    return random_flip(images, generator) if flip is None else flip_where(images, flip)


def resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize float images (N, 3, H, W) in [0, 1] with antialiasing."""
    return F.interpolate(images, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
