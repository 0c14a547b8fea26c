"""The one place for run settings: the training config and the profiles that size the work.

A profile says how much data and how many epochs each model gets; notebooks, the CLI and
the tests all read profiles from here. `TrainConfig` is what one run is trained with, and
it is written verbatim into that run's `results.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from convladder.models import MODEL_NAMES, check_model_name

# Epochs the study trained for. Where the study is silent (D to G) we chose a value and
# the report says so: `STUDY_EPOCHS_STATED` lists the models whose count is the study's.
STUDY_EPOCHS = {"A": 150, "B": 150, "C": 16, "D": 16, "E": 16, "F": 30, "G": 30, "GAP": 120}
STUDY_EPOCHS_STATED = {"A", "B", "C", "GAP"}
# GAP was trained for 120 epochs, then continued for 120 more ("GAP+" is the continuation).
STUDY_CONTINUATION_EPOCHS = 120


@dataclass(frozen=True)
class Profile:
    """How much work one run of the whole ladder does."""

    name: str
    train_size: int | None  # None: the whole split (42,000 / 8,000 / 10,000)
    val_size: int | None
    test_size: int | None
    epochs: dict[str, int]  # per model name
    continuation_epochs: int  # extra epochs for "GAP+"
    description: str
    batch_size: int = 128
    seeds: tuple[int, ...] = (0,)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        train_size=256,
        val_size=128,
        test_size=128,
        epochs={name: 1 for name in MODEL_NAMES},
        continuation_epochs=1,
        batch_size=64,
        description="a few hundred images, one epoch per model: checks that everything runs (CI)",
    ),
    "quick": Profile(
        name="quick",
        train_size=None,
        val_size=None,
        test_size=None,
        epochs={"A": 60, "B": 30, "C": 16, "D": 16, "E": 8, "F": 10, "G": 15, "GAP": 15},
        continuation_epochs=15,
        description="full splits, few epochs: the whole ladder in about an hour on a 2-core CPU",
    ),
    "full": Profile(
        name="full",
        train_size=None,
        val_size=None,
        test_size=None,
        epochs=dict(STUDY_EPOCHS),
        continuation_epochs=STUDY_CONTINUATION_EPOCHS,
        description="the study's epoch counts (a GPU is advised)",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass
class TrainConfig:
    """Everything that decides the outcome of one training run."""

    model: str
    epochs: int
    lr: float = 1e-3
    batch_size: int = 128
    optimizer: str = "adam"  # the study used Adam with lr 0.001
    seed: int = 0
    split_seed: int = 42  # fixes the 42,000 / 8,000 train/validation split
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    study_softmax: bool = False  # True: softmax in the model, then cross-entropy (the study's setup)
    channels_last: bool = True
    amp: bool = True  # bfloat16 autocast where the hardware supports it (CPU with AVX512-BF16, CUDA)
    profile: str = "custom"

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


@dataclass(frozen=True)
class PlannedRun:
    """One run of the ladder: a run name, its model, total epochs, the run it continues."""

    name: str
    model: str
    epochs: int
    continues: str | None = None


def ladder(profile: str | Profile, models: list[str] | None = None) -> list[PlannedRun]:
    """The runs a profile makes: every model, then GAP continued ("GAP+"), as in the study."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    chosen = list(MODEL_NAMES) if models is None else list(models)
    for name in chosen:
        check_model_name(name)
    runs = [PlannedRun(name, name, prof.epochs[name]) for name in chosen]
    if "GAP" in chosen:
        runs.append(PlannedRun("GAP+", "GAP", prof.epochs["GAP"] + prof.continuation_epochs, continues="GAP"))
    return runs


def config_from_parameters(profile: str, model: str, **parameters) -> TrainConfig:
    """A TrainConfig from notebook or CLI parameters; None means "the profile's value"."""
    overrides = {k: v for k, v in parameters.items() if v is not None}
    return TrainConfig.from_profile(profile, model, **overrides)
