"""Whole-batch augmentation on uint8 image tensors: random crop with padding, horizontal flip.

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


def random_crop(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each side by `pad` (reflection) and cut a random window of the original size."""
    n, c, h, w = images.shape
    padded = F.pad(images.float() if images.dtype == torch.uint8 else images, (pad, pad, pad, pad), mode="reflect")
    padded = padded.to(images.dtype)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(images.device)
    rows = (dy[:, None] + torch.arange(h, device=images.device)[None, :])[:, None, :, None]  # n,1,h,1
    cols = (dx[:, None] + torch.arange(w, device=images.device)[None, :])[:, None, None, :]  # n,1,1,w
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def augment_batch(images: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    return random_flip(random_crop(images, pad, generator), generator)
