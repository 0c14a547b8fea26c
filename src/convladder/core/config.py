"""The one configuration of a training run: `TrainConfig`, written verbatim into each run's
`results.json`, and the constants its training reads. How much work a profile does (data
sizes, epochs, seeds, the ladder's runs) is in `plan/profiles.py`: a change there makes no finished
run stale, a change here does.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields

from convladder.core.registry import accepts_any_size, check_model_name, check_without, entries

TRAIN_SIZE, VAL_SIZE = 42_000, 8_000  # the study's split of the 50,000 training images (core/data.py)

# Progressive resizing: the sides of the training images before the full 32 (see TrainConfig.progressive).
PROGRESSIVE_SIDES = (16, 20, 24, 28)

# Test-time augmentation for runs trained with flips and crops: each test image and its mirror
# image, seen through these windows ((dy, dx) offsets of random_crop): 10 views in all.
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))

# The triangle schedule: (fraction of the run's steps, multiple of the learning rate) corners, linear
# in between: from 0.2 of the peak up to the peak at 23% of the steps, then down to 0.07 of it.
TRIANGLE = ((0.0, 0.2), (0.23, 1.0), (1.0, 0.07))

# Lookahead (TrainConfig.lookahead): from LOOKAHEAD_START (a fraction of the run's steps) on, every
# LOOKAHEAD_EVERY steps a slow copy of the weights and batch-norm statistics moves toward the trained
# ones by 1 - rho, and the model is set to it; rho = LOOKAHEAD_DECAY ** LOOKAHEAD_EVERY * (step /
# steps) ** LOOKAHEAD_POW grows from 0 to 0.77 over the run: fast at first, averaging strongly at the
# end. After every epoch the model is set to the slow copy, which evaluation and checkpoints see.
LOOKAHEAD_EVERY = 5
LOOKAHEAD_DECAY = 0.95
LOOKAHEAD_POW = 3
LOOKAHEAD_START = 0.3


@dataclass
class TrainConfig:
    """Everything that decides the outcome of one training run."""

    model: str  # the model's name in the registry (A to G, GAP, H)
    epochs: int  # total epochs; a run continued with more epochs goes on from its checkpoint
    lr: float = 1e-3  # learning rate (the study's 0.001); with schedule onecycle, the peak
    batch_size: int = 128  # images per optimisation step
    # leave out each epoch's last, incomplete batch (its few images would move batch norm's statistics and, at a
    # high learning rate, the weights far), unless it is the only one; off: every image in every epoch, as the study
    drop_last: bool = False
    optimizer: str = "adam"  # the study states only lr 0.001; our ladder assumes Adam
    momentum: float = 0.9  # SGD only; 0 is plain SGD (PyTorch's default)
    nesterov: bool = True  # SGD only: Nesterov momentum (needs momentum > 0)
    seed: int = 0  # seeds the initial weights, the batch order and the augmentation
    split_seed: int = 42  # fixes the 42,000 / 8,000 train/validation split
    train_size: int | None = None  # training images; None: the whole split
    val_size: int | None = None  # validation images; None: the whole split
    test_size: int | None = None  # test images; None: all 10,000
    study_softmax: bool = False  # softmax in the model, then cross-entropy (the study's setup)
    init_scale: float = 1.0  # every conv and linear layer's initial weights times this (1: PyTorch's initialisation)
    # ingredients of the model left out, comma-separated, for ablations (models.ingredients; model H's only)
    without: str = ""
    # "train": the training split (42,000; validation held out); "train+val": all 50,000 training images, as the
    # fast-training literature trains its final runs (the validation accuracy is then on images trained on)
    train_split: str = "train"
    weight_decay: float = 0.0  # L2 penalty on every weight, as the optimizer applies it
    # constant; onecycle: warm up from lr / 25 to lr in the first quarter, then anneal to nearly 0; triangle:
    # from 0.2 lr up to lr at 23% of the steps, then down to 0.07 lr (TRIANGLE). Both over the run's epochs.
    schedule: str = "constant"
    label_smoothing: float = 0.0  # of the training loss (evaluation uses plain cross-entropy)
    lookahead: bool = False  # average the weights with a slow copy while training (LOOKAHEAD_*)
    augment: bool = False  # random crop and horizontal flip; off in the study's recipe
    crop_pad: int = 4  # the random crop's window moves up to this many pixels each way (with augment)
    # With augment: every image mirrored in every other epoch (from a random first epoch) instead
    # of in a random half of the epochs.
    alternating_flip: bool = False
    # Fraction of the epochs trained on smaller images first (progressive resizing, for models that
    # take any size): the side grows through PROGRESSIVE_SIDES, then the rest of the run is at 32.
    progressive: float = 0.0
    channels_last: bool = True  # channels-last memory format (faster convolutions on CPU and GPU)
    amp: bool = True  # bfloat16 autocast where the hardware supports it (CPU with AVX512-BF16, CUDA)
    compile: bool = False  # torch.compile the model
    profile: str = "custom"  # the profile the run belongs to (recorded, not used in training)

    def __post_init__(self) -> None:
        check_model_name(self.model)
        check_without(self.model, self.left_out)
        if not isinstance(self.epochs, int) or self.epochs <= 0:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.optimizer == "sgd" and self.nesterov and self.momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0; for plain SGD set nesterov=False (--no-nesterov)")
        if self.train_split not in TRAIN_SPLITS:
            raise ValueError(f"unknown train_split {self.train_split!r}; choose one of {', '.join(TRAIN_SPLITS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not isinstance(self.crop_pad, int) or not 0 <= self.crop_pad < 16:
            raise ValueError(f"crop_pad must be an integer number of pixels in [0, 16), got {self.crop_pad!r}")
        if self.alternating_flip and not self.augment:
            raise ValueError("alternating_flip is a way of flipping the augmented images; it needs augment=True")
        if not 0 <= self.progressive < 1:
            raise ValueError(f"progressive must be a fraction of the epochs in [0, 1), got {self.progressive!r}")
        if self.progressive and not accepts_any_size(self.model):
            any_size = ", ".join(e.name for e in entries(lambda e: e.any_size))
            raise ValueError(
                f"progressive resizing needs a model that takes any image size ({any_size}); "
                f"model {self.model} has a fixed-size classifier"
            )
        if not self.init_scale > 0:
            raise ValueError(f"init_scale must be positive, got {self.init_scale!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must not be negative, got {self.weight_decay!r}")
        for name in ("train_size", "val_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer or None (whole split), got {value!r}")

    @property
    def left_out(self) -> tuple[str, ...]:
        """`without` as a tuple of ingredient names."""
        return tuple(item.strip() for item in self.without.split(",") if item.strip())

    @property
    def fixed_length(self) -> bool:
        """Whether the run's plan depends on its total epochs (a schedule, progressive resizing or
        lookahead), so that a finished run cannot be continued to more epochs."""
        return self.schedule != "constant" or bool(self.progressive) or self.lookahead

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def completed(cls, recorded: dict) -> dict:
        """A recorded config with the default of every setting added since it was written: a run reads as
        trained with the default of a setting it predates (the one migration of an older config). So a new
        setting's default must be what training did before it existed."""
        return {**{f.name: f.default for f in fields(cls) if f.name not in recorded and f.default is not MISSING},
                **recorded}

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "onecycle", "triangle")
TRAIN_SPLITS = ("train", "train+val")


def fixed_plan(config: TrainConfig) -> str:
    """What ties a run to its total epochs (config.fixed_length), in words."""
    plans = [f"{config.schedule} schedule"] if config.schedule != "constant" else []
    plans += ["progressive resizing"] if config.progressive else []
    plans += ["lookahead"] if config.lookahead else []
    return " and ".join(plans)


def steps_per_epoch(images: int, batch_size: int, drop_last: bool) -> int:
    """Optimisation steps in one epoch over `images`: drop_last leaves out the last, incomplete batch, unless it is
    the only one (fewer images than a batch)."""
    return max(1, images // batch_size) if drop_last else math.ceil(images / batch_size)
