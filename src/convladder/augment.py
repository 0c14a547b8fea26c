"""Whole-batch augmentation on uint8 image tensors: random crop with padding, horizontal flip;
and resizing of float image batches.

No per-image Python: one gather does every crop of a batch. Random numbers come from a
CPU generator the caller seeds, so a resumed run draws the same augmentations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror about half of the images left-right."""
    flip = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map positions in [-size+1, 2*size-2] into [0, size-1] by reflection about the edges
    (as padding with mode="reflect" does)."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each side by `pad` (reflection) and cut a random window of the original size.

    The padded image is never built: one gather reads every window straight from the batch."""
    n, c, h, w = images.shape
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    rows = _reflect(dy[:, None] + torch.arange(h, device=images.device)[None, :] - pad, h)[:, None, :, None]  # n,1,h,1
    cols = _reflect(dx[:, None] + torch.arange(w, device=images.device)[None, :] - pad, w)[:, None, None, :]  # n,1,1,w
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return images[batch, channel, rows, cols]


def augment_batch(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    return random_flip(random_crop(images, pad, generator), generator)


def resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize float images (N, 3, H, W) in [0, 1] with antialiasing."""
    return F.interpolate(images, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
