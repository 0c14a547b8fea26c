"""The one place for run settings: the training config and the profiles that size the work.

A profile says how much data and how many epochs each model gets; notebooks, the CLI and
the tests all read profiles from here. `TrainConfig` is what one run is trained with, and
it is written verbatim into that run's `results.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from convladder.models import ANY_SIZE_MODELS, MODEL_NAMES, accepts_any_size, check_model_name

# Epochs the study trained for. Where the study is silent (D to G) we chose a value and
# the report says so: `STUDY_EPOCHS_STATED` lists the models whose count is the study's.
STUDY_EPOCHS = {"A": 150, "B": 150, "C": 16, "D": 16, "E": 16, "F": 30, "G": 30, "GAP": 120}
STUDY_EPOCHS_STATED = {"A", "B", "C", "GAP"}
# GAP was trained for 120 epochs, then continued for 120 more ("GAP+" is the continuation).
STUDY_CONTINUATION_EPOCHS = 120


# Progressive resizing: the sides of the training images before the full 32 (see TrainConfig.progressive).
PROGRESSIVE_SIDES = (16, 20, 24, 28)

# Not the study's: a recipe that trains the GAP layers, unchanged, to high accuracy in few
# CPU minutes. One-cycle SGD with Nesterov momentum, label smoothing, flip + crop (each image
# mirrored in every other epoch, crops moved by up to 2 pixels), and the first half of the epochs
# on smaller images (a 16-pixel epoch costs about a third of a 32-pixel one).
FAST_GAP_RECIPE = dict(
    optimizer="sgd", lr=0.2, batch_size=256, weight_decay=5e-4, schedule="onecycle", label_smoothing=0.1, augment=True,
    crop_pad=2, alternating_flip=True, progressive=0.5,
)

# Test-time augmentation for runs trained with flips and crops: each test image and its mirror
# image, seen through these windows ((dy, dx) offsets of random_crop): 10 views in all.
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


@dataclass(frozen=True)
class Profile:
    """How much work one run of the whole ladder does."""

    name: str
    train_size: int | None  # None: the whole split (42,000 / 8,000 / 10,000)
    val_size: int | None
    test_size: int | None
    epochs: dict[str, int]  # per model name
    continuation_epochs: int  # extra epochs for "GAP+"
    fast_gap_epochs: int  # epochs of "GAP-fast", the GAP layers with FAST_GAP_RECIPE
    description: str
    batch_size: int = 128
    seeds: int = 1  # seeds per model of the ladder (A ... GAP+): tables show mean and spread
    extra_seeds: int = 1  # seeds of the runs beyond the ladder (double-softmax runs, GAP-fast)
    # Diagnosis experiments (model E's failure, gradient norms) train on this many images for
    # `diagnosis_epochs`; the error analysis and the size curve use `analysis_images` test images.
    diagnosis_train_size: int | None = None
    diagnosis_epochs: int = 1
    analysis_images: int | None = None


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        train_size=256,
        val_size=128,
        test_size=128,
        epochs={name: 1 for name in MODEL_NAMES},
        continuation_epochs=1,
        fast_gap_epochs=1,
        batch_size=64,
        diagnosis_train_size=128,
        analysis_images=128,
        description="a few hundred images, one epoch per model: checks that everything runs (CI)",
    ),
    "quick": Profile(
        name="quick",
        train_size=None,
        val_size=None,
        test_size=None,
        # Sized so that everything, GAP-fast's 20 minutes included, takes under an hour on a 2-core CPU.
        epochs={"A": 10, "B": 3, "C": 3, "D": 3, "E": 3, "F": 3, "G": 3, "GAP": 2},
        continuation_epochs=2,
        fast_gap_epochs=35,  # about 18.5 minutes on a 2-core CPU: within the fast recipe's 20-minute budget
        seeds=2,
        diagnosis_train_size=8_000,
        diagnosis_epochs=3,
        analysis_images=2_000,
        description="full splits, few epochs, 2 seeds, sized for a 2-core CPU (the provenance section gives the time measured)",
    ),
    "full": Profile(
        name="full",
        train_size=None,
        val_size=None,
        test_size=None,
        epochs=dict(STUDY_EPOCHS),
        continuation_epochs=STUDY_CONTINUATION_EPOCHS,
        fast_gap_epochs=60,
        seeds=5,
        extra_seeds=5,
        diagnosis_epochs=5,
        description="the study's epoch counts, 5 seeds (a GPU is advised)",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass
class TrainConfig:
    """Everything that decides the outcome of one training run."""

    model: str  # the model's name in the registry (A to G, GAP)
    epochs: int  # total epochs; a run continued with more epochs goes on from its checkpoint
    lr: float = 1e-3  # learning rate (the study's 0.001); with schedule onecycle, the peak
    batch_size: int = 128  # images per optimisation step
    optimizer: str = "adam"  # the study states only lr 0.001; our ladder assumes Adam
    momentum: float = 0.9  # SGD only; 0 is plain SGD (PyTorch's default)
    nesterov: bool = True  # SGD only: Nesterov momentum (needs momentum > 0)
    seed: int = 0  # seeds the initial weights, the batch order and the augmentation
    split_seed: int = 42  # fixes the 42,000 / 8,000 train/validation split
    train_size: int | None = None  # training images; None: the whole split
    val_size: int | None = None  # validation images; None: the whole split
    test_size: int | None = None  # test images; None: all 10,000
    study_softmax: bool = False  # softmax in the model, then cross-entropy (the study's setup)
    weight_decay: float = 0.0  # L2 penalty on every weight, as the optimizer applies it
    schedule: str = "constant"  # constant, or onecycle: warm up to lr, then anneal, over the run's epochs
    label_smoothing: float = 0.0  # of the training loss (evaluation uses plain cross-entropy)
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
            raise ValueError(
                f"progressive resizing needs a model that takes any image size ({', '.join(ANY_SIZE_MODELS)}); "
                f"model {self.model} has a fixed-size classifier"
            )
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must not be negative, got {self.weight_decay!r}")
        for name in ("train_size", "val_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer or None (whole split), got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_profile(cls, profile: str | Profile, model: str, **overrides) -> "TrainConfig":
        prof = get_profile(profile) if isinstance(profile, str) else profile
        values = dict(
            model=model,
            epochs=prof.epochs[check_model_name(model)],
            batch_size=prof.batch_size,
            train_size=prof.train_size,
            val_size=prof.val_size,
            test_size=prof.test_size,
            profile=prof.name,
        )
        values.update(overrides)
        return cls(**values)


OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class PlannedRun:
    """One run of the ladder: a run name, its model, total epochs, seeds, the run it continues.

    Each seed trains into its own folder, `<run folder>/seed<k>`."""

    name: str
    model: str
    epochs: int
    seeds: tuple[int, ...] = (0,)
    continues: str | None = None
    recipe: dict = field(default_factory=dict)  # TrainConfig overrides (hyper-parameters only)

    def config(self, profile: str, seed: int = 0) -> "TrainConfig":
        return config_from_parameters(profile, self.model, epochs=self.epochs, seed=seed, **self.recipe)


# The study's setup for the double-softmax diagnosis: softmax in the model, then cross-entropy.
STUDY_SOFTMAX_RUNS = ("A", "D")
SOFTMAX_SUFFIX = "-softmax"
FP32_SUFFIX = "-fp32"


def ladder(profile: str | Profile, models: list[str] | None = None) -> list[PlannedRun]:
    """The runs a profile makes: every model, then GAP continued ("GAP+"), as in the study;
    beyond the study, A and D with the study's softmax + cross-entropy ("A-softmax", "D-softmax"),
    G without bfloat16 autocast ("G-fp32") and the GAP layers with a fast recipe ("GAP-fast")."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    chosen = list(MODEL_NAMES) if models is None else list(models)
    for name in chosen:
        check_model_name(name)
    seeds, extra = tuple(range(prof.seeds)), tuple(range(prof.extra_seeds))
    runs = [PlannedRun(name, name, prof.epochs[name], seeds) for name in chosen]
    if "GAP" in chosen:
        runs.append(PlannedRun("GAP+", "GAP", prof.epochs["GAP"] + prof.continuation_epochs, seeds, continues="GAP"))
    runs += [
        PlannedRun(name + SOFTMAX_SUFFIX, name, prof.epochs[name], extra, recipe={"study_softmax": True})
        for name in STUDY_SOFTMAX_RUNS if name in chosen
    ]
    if "G" in chosen:  # does bfloat16 autocast keep the accuracy? G trained in plain fp32
        runs.append(PlannedRun("G" + FP32_SUFFIX, "G", prof.epochs["G"], extra, recipe={"amp": False}))
    if "GAP" in chosen:
        runs.append(PlannedRun("GAP-fast", "GAP", prof.fast_gap_epochs, extra, recipe=dict(FAST_GAP_RECIPE)))
    return runs


def config_from_parameters(profile: str, model: str, **parameters) -> TrainConfig:
    """A TrainConfig from notebook or CLI parameters; None means "the profile's value"."""
    overrides = {k: v for k, v in parameters.items() if v is not None}
    return TrainConfig.from_profile(profile, model, **overrides)
