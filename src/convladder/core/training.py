"""The Trainer: the study's `train_step` / `val_step` / history, on a tensor-native data path.

Each split lives as one uint8 tensor on the training device; a batch is an index slice,
converted to float in [0, 1] as a whole. After every epoch the Trainer writes a
checkpoint (model, optimizer, history, RNG state) atomically, so `fit` continues a
finished or interrupted run from its last completed epoch, with the same result as an
uninterrupted run on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm  # text bars: they stream through papermill to the terminal

from convladder.core.augment import augment_batch, resize, shift
from convladder.core.config import (
    LOOKAHEAD_DECAY, LOOKAHEAD_EVERY, LOOKAHEAD_POW, LOOKAHEAD_START, PROGRESSIVE_SIDES, TRIANGLE, TrainConfig, fixed_plan,
    steps_per_epoch,
)
from convladder.core.data import Split
from convladder.tools.hardware import bf16_unit
from convladder.tools.memory import keep_freed_memory
from convladder.tools.files import CheckpointError, atomic_torch_save, first_line, load_checkpoint_file
from convladder.results.layout import CHECKPOINT_FILE
from convladder.core.models import ends_in_softmax

CHECKPOINT = CHECKPOINT_FILE  # the name every module uses for a seed's checkpoint
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def choose_device(device: str = "auto") -> torch.device:
    """"auto" (CUDA when present, else the CPU), "cpu", "cuda" or "cuda:N"; ValueError otherwise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda (cuda:N for the N-th GPU)") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available here; use cpu or auto")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    elif chosen.type != "cpu":
        raise ValueError(f"device {device!r} is not supported; use auto, cpu or cuda")
    return chosen


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the hardware runs it fast, else None (plain fp32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and bf16_unit() is not None:
        return torch.bfloat16
    return None


def parameter_groups(model: nn.Module, config: TrainConfig):
    """What the optimizer trains: the model's own parameter groups where it defines
    `param_groups(config)` (model H: a larger learning rate for its batch-norm biases), else all of
    its parameters with the config's learning rate and weight decay."""
    own = getattr(model, "param_groups", None)
    return own(config) if own is not None else model.parameters()


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay
        )
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def make_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    """onecycle and triangle (see TrainConfig.schedule), stepped after every batch: each parameter group
    peaks at its own learning rate (config.lr unless the model's param_groups set another)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total, pct_start=0.25, anneal_strategy="linear", cycle_momentum=False,
        )
    if config.schedule == "triangle":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: piecewise_linear(step / total, TRIANGLE))
    return None


def piecewise_linear(x: float, corners) -> float:
    """The value at `x` of the line through `corners` ((x, y) pairs, x ascending), constant beyond them."""
    (x0, y0), *rest = corners
    if x <= x0:
        return y0
    for x1, y1 in rest:
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        x0, y0 = x1, y1
    return y0


class Trainer:
    """Trains one model on a train split, validating on a validation split after each epoch."""

    def __init__(
        self,
        model: nn.Module,
        train: Split,
        val: Split,
        config: TrainConfig,
        run_dir: str | os.PathLike | None = None,
        device: str = "auto",
        provenance: dict | None = None,
    ):
        self.config = config
        # What produced the run beyond its config (code version, data checksum): saved in every
        # checkpoint, so an unfinished run can be checked before it is continued.
        self.provenance = provenance or {}
        self.device = choose_device(device)
        if self.device.type == "cpu":  # each step's buffers stay mapped for the next (tools/memory.py)
            keep_freed_memory()
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.optimizer = make_optimizer(config, parameter_groups(self.model, config))
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.eval_loss_fn = nn.CrossEntropyLoss()
        self.amp_dtype = autocast_dtype(self.device) if config.amp else None
        self.train_data = Split(train.images.to(self.device), train.labels.to(self.device))
        self.val_data = Split(val.images.to(self.device), val.labels.to(self.device))
        self.steps_per_epoch = steps_per_epoch(len(train), config.batch_size, config.drop_last)
        self.scheduler = make_scheduler(config, self.optimizer, self.steps_per_epoch)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.history: dict[str, list] = {key: [] for key in HISTORY_KEYS}
        # Called after every optimisation step with the step's loss, gradients still in place
        # (the diagnosis experiments record losses and gradient norms with it).
        self.on_step = None
        self.train_side: int | None = None  # set per epoch by progressive resizing
        # lookahead's slow copy of the model's floating-point state (None: not started, or no lookahead)
        self.slow: dict[str, torch.Tensor] | None = None
        # alternating flip: image i is mirrored in the epochs whose parity differs from parity[i]
        self.flip_parity = None
        if config.alternating_flip:
            parity_generator = torch.Generator().manual_seed(config.seed)
            self.flip_parity = torch.randint(0, 2, (len(train),), generator=parity_generator).to(self.device)
        torch.manual_seed(config.seed)
        if self.run_dir is not None and (self.run_dir / CHECKPOINT).exists():
            self.load_checkpoint(self.run_dir / CHECKPOINT)

    @property
    def epochs_done(self) -> int:
        return len(self.history["epoch"])

    # --- steps ---------------------------------------------------------------------------

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255)
        if self.model.training and self.train_side is not None:
            x = resize(x, self.train_side, self.train_side)
        return x.contiguous(memory_format=self.memory_format)

    def input_side(self, epoch: int) -> int | None:
        """Side length of the training images in `epoch` (0-based) under progressive resizing;
        None: the images' own size. The first `progressive` fraction of the epochs steps
        through PROGRESSIVE_SIDES in equal parts."""
        small = int(self.config.progressive * self.config.epochs)
        if epoch >= small:
            return None
        return PROGRESSIVE_SIDES[epoch * len(PROGRESSIVE_SIDES) // small]

    def flip_mask(self, indices: torch.Tensor, epoch: int) -> torch.Tensor | None:
        """Which of the training images at `indices` are mirrored in `epoch` under alternating
        flip (each in every other epoch); None: a random half, drawn with the crops."""
        if self.flip_parity is None:
            return None
        return self.flip_parity[indices] != epoch % 2

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _loss_and_correct(self, images: torch.Tensor, labels: torch.Tensor, loss_fn):
        with self._autocast():
            out = self.forward(self._inputs(images))
        out = out.float()
        loss = loss_fn(out, labels)
        correct = (out.argmax(dim=1) == labels).sum()
        return loss, correct

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
        """One optimisation step on a uint8 batch; returns (mean loss, number correct)."""
        self.model.train()
        loss, correct = self._loss_and_correct(images, labels, self.loss_fn)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.item(), int(correct)

    @torch.no_grad()
    def val_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
        """Loss (plain cross-entropy) and number correct on a uint8 batch, in evaluation mode."""
        self.model.eval()
        loss, correct = self._loss_and_correct(images, labels, self.eval_loss_fn)
        return loss.item(), int(correct)

    def evaluate(self, split: Split, batch_size: int = 1000) -> dict[str, float]:
        """Mean loss and accuracy over a whole split."""
        images, labels = split.images.to(self.device), split.labels.to(self.device)
        total_loss, total_correct = 0.0, 0
        for start in range(0, len(labels), batch_size):
            x, y = images[start : start + batch_size], labels[start : start + batch_size]
            loss, correct = self.val_step(x, y)
            total_loss += loss * len(y)
            total_correct += correct
        n = max(1, len(labels))
        return {"loss": total_loss / n, "acc": total_correct / n}

    @torch.no_grad()
    def evaluate_tta(self, split: Split, shifts=((0, 0),), batch_size: int = 1000) -> float:
        """Accuracy with test-time augmentation, for runs trained with flips and crops: the mean
        of the probabilities over each image's views, the image and its mirror image seen
        through every window in `shifts` ((dy, dx) offsets, as random_crop cuts them)."""
        self.model.eval()
        images, labels = split.images.to(self.device), split.labels.to(self.device)
        correct = 0
        for start in range(0, len(labels), batch_size):
            batch = images[start : start + batch_size]
            proba = 0
            for dy, dx in shifts:
                x = self._inputs(shift(batch, dy, dx))
                with self._autocast():
                    out = self.forward(torch.cat([x, x.flip(3)])).float()
                out = out if ends_in_softmax(self.model) else out.softmax(dim=1)
                proba = proba + out[: len(x)] + out[len(x) :]
            correct += int((proba.argmax(dim=1) == labels[start : start + batch_size]).sum())
        return correct / max(1, len(labels))

    # --- lookahead -----------------------------------------------------------------------

    def _float_state(self) -> dict[str, torch.Tensor]:
        """The model's weights and batch-norm statistics (its floating-point state), in place."""
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def _pull_to_slow(self, rho: float) -> None:
        """Move the slow copy toward the model by 1 - rho, then set the model to it."""
        for name, value in self._float_state().items():
            self.slow[name].lerp_(value, 1 - rho)
            value.copy_(self.slow[name])

    def lookahead_step(self, step: int) -> None:
        """After optimisation step `step` (counted from 1 over the whole run): lookahead (LOOKAHEAD_*)."""
        total = self.config.epochs * self.steps_per_epoch
        if not self.config.lookahead or step % LOOKAHEAD_EVERY or step < LOOKAHEAD_START * total:
            return
        if self.slow is None:
            self.slow = {k: v.detach().clone() for k, v in self._float_state().items()}
        else:
            self._pull_to_slow(LOOKAHEAD_DECAY**LOOKAHEAD_EVERY * (step / total) ** LOOKAHEAD_POW)

    # --- the loop ------------------------------------------------------------------------

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        # Seeded per epoch: order and augmentation do not depend on where a run resumed.
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)

    def train_epoch(self, epoch: int, progress: bool = True) -> tuple[float, float]:
        """One pass over the train split (0-based `epoch`; without its last, incomplete batch under
        drop_last); returns the mean loss and accuracy over the images trained on."""
        gen = self._epoch_generator(epoch)
        self.train_side = self.input_side(epoch)
        order = torch.randperm(len(self.train_data), generator=gen).to(self.device)
        bs, n = self.config.batch_size, min(len(self.train_data), self.steps_per_epoch * self.config.batch_size)
        total_loss, total_correct = 0.0, 0
        batches = tqdm(range(0, n, bs), desc=f"epoch {epoch + 1}", leave=False, disable=not progress, mininterval=2)
        for b, first in enumerate(batches):
            idx = order[first : first + bs]
            images = self.train_data.images[idx]
            if self.config.augment:
                images = augment_batch(images, gen, self.config.crop_pad, self.flip_mask(idx, epoch))
            loss, correct = self.train_step(images, self.train_data.labels[idx])
            self.lookahead_step(epoch * self.steps_per_epoch + b + 1)
            if self.on_step is not None:
                self.on_step(loss)
            if not math.isfinite(loss):
                kept = (
                    f"The last good checkpoint (epoch {self.epochs_done}) is kept in {self.run_dir / CHECKPOINT}"
                    if self.run_dir is not None and (self.run_dir / CHECKPOINT).exists()
                    else "No epoch had finished, so there is no checkpoint"
                )
                raise TrainingDiverged(
                    f"model {self.config.model}: loss became {loss} in epoch {epoch + 1}, batch {b + 1}. "
                    f"{kept}; try a smaller learning rate."
                )
            total_loss += loss * len(idx)
            total_correct += correct
        if self.slow is not None:  # the epoch ends on the averaged weights
            self._pull_to_slow(1.0)
        return total_loss / n, total_correct / n

    def fit(self, epochs: int | None = None, progress: bool = True) -> dict[str, list]:
        """Train until `epochs` epochs are done in total (continuing from a checkpoint)."""
        target = epochs if epochs is not None else self.config.epochs
        epoch_bar = tqdm(
            range(self.epochs_done, target), initial=self.epochs_done, total=target,
            desc=f"model {self.config.model}", disable=not progress, mininterval=2,
        )
        for epoch in epoch_bar:
            start = time.perf_counter()
            train_loss, train_acc = self.train_epoch(epoch, progress)
            val = self.evaluate(self.val_data)
            seconds = time.perf_counter() - start
            for key, value in zip(
                HISTORY_KEYS,
                (epoch + 1, train_loss, train_acc, val["loss"], val["acc"], seconds),
            ):
                self.history[key].append(value)
            epoch_bar.set_postfix(train_acc=f"{train_acc:.3f}", val_acc=f"{val['acc']:.3f}")
            if self.run_dir is not None:
                self.save_checkpoint(self.run_dir / CHECKPOINT)
        return self.history

    # --- checkpoints ---------------------------------------------------------------------

    def save_checkpoint(self, path: Path) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "config": self.config.to_dict(),
            "rng_cpu": torch.get_rng_state(),
            "provenance": self.provenance,
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.slow is not None:
            state["lookahead"] = self.slow
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        atomic_torch_save(state, path)

    def load_checkpoint(self, path: Path) -> None:
        state = load_checkpoint_file(path, map_location=self.device)
        if state["config"]["model"] != self.config.model:
            raise ValueError(
                f"{path} holds a checkpoint of model {state['config']['model']}, not {self.config.model}; "
                f"use another run folder"
            )
        if self.config.fixed_length and state["config"]["epochs"] != self.config.epochs:
            raise ValueError(
                f"{path} follows a {fixed_plan(self.config)} over {state['config']['epochs']} epochs; "
                f"it cannot be extended to {self.config.epochs}. Train a new run with the longer schedule."
            )
        done = len(state["history"]["epoch"])
        if done > self.config.epochs:
            raise ValueError(
                f"{path} holds {done} finished epochs, more than the {self.config.epochs} asked for; ask for at "
                f"least {done} epochs, or train again from epoch 0 into a fresh run folder"
            )
        wanted = self.config.to_dict()
        # Only the epoch count may change when a run continues (the study's GAP 120 -> 240).
        changed = {k: (v, wanted.get(k)) for k, v in state["config"].items() if k != "epochs" and wanted.get(k) != v}
        if changed:
            listed = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
            raise ValueError(
                f"{path} was trained with other settings ({listed}); continue it with the same settings, "
                f"or train into another run folder (or delete this one to start over)"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(
                f"{path} holds weights that do not fit model {self.config.model}'s layers, which its config names "
                f"({first_line(err)}); the run folder is mixed up: train it into another folder, or again from epoch 0 "
                f"with --restart"
            ) from None
        self.history = {key: list(state["history"][key]) for key in HISTORY_KEYS}
        self.slow = state.get("lookahead")
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
