"""The profiles that size the work, and the ladder's runs: how much data, how many epochs and
seeds each model gets. Notebooks, the CLI, the pipeline and the tests read profiles from here.
A profile decides which configs are trained, not what a config yields, so it stays outside the
training code's version (`versions.code_version`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from convladder.core.config import TrainConfig
from convladder.core.registry import check_model_name, entry, model_names, study_model_names

# Epochs the study trained for. Where the study is silent (D to G) we chose a value and
# the report says so: `STUDY_EPOCHS_STATED` lists the models whose count is the study's.
STUDY_EPOCHS = {"A": 150, "B": 150, "C": 16, "D": 16, "E": 16, "F": 30, "G": 30, "GAP": 120}
STUDY_EPOCHS_STATED = {"A", "B", "C", "GAP"}
# GAP was trained for 120 epochs, then continued for 120 more ("GAP+" is the continuation).
STUDY_CONTINUATION_EPOCHS = 120


# Not the study's: a recipe that trains the GAP layers, unchanged, to high accuracy in few
# CPU minutes. One-cycle SGD with Nesterov momentum, label smoothing, flip + crop (each image
# mirrored in every other epoch, crops moved by up to 2 pixels), and the first half of the epochs
# on smaller images (a 16-pixel epoch costs about a third of a 32-pixel one).
FAST_GAP_RECIPE = dict(
    optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True, batch_size=256, weight_decay=5e-4, schedule="onecycle",
    label_smoothing=0.1, augment=True, crop_pad=2, alternating_flip=True, progressive=0.5, study_softmax=False,
)


# The study's recipe as the recipe search recovered it (results/recipe-search; the report's recipe
# section): its lr 0.001 and softmax output, with SGD, momentum 0.9 (no Nesterov), batch 32. With it
# model A leaves chance at epoch 123 of 150 (the study: about 140); with Adam, at epoch 2.
RECOVERED_STUDY_RECIPE = dict(optimizer="sgd", momentum=0.9, nesterov=False, batch_size=32, study_softmax=True)


# Model H's recipe (its layers are in model_h.py; its batch-norm biases learn at model_h.BIAS_LR_SCALE
# times lr): airbench94's published values converted to our mean loss over the batch (lr 11.5 per 1024
# summed examples -> about 1.5; its weight decay likewise), its triangle schedule and lookahead, each
# image mirrored in every other epoch, crops moved by up to 2 pixels, the last incomplete batch left out.
# Measured on the 42,000 / 8,000 split (runs/tune-h, AMD EPYC Zen 4, 2 cores): 10 epochs give validation
# accuracy 0.930, 0.937 with test-time augmentation, in 17 minutes of training.
H_RECIPE = dict(
    optimizer="sgd", lr=1.5, momentum=0.85, nesterov=True, batch_size=1024, drop_last=True, weight_decay=1.3e-3,
    schedule="triangle", label_smoothing=0.2, lookahead=True, augment=True, crop_pad=2, alternating_flip=True,
)
# A model with a recipe of its own (its registry entry's `recipe`) trains with it in every profile unless a
# setting is given (config_from_parameters); the others with their profile's.
MODEL_RECIPES = {"h": H_RECIPE}
# H's epochs in its final runs: chosen on the validation split (10 epochs gave 0.937 with test-time
# augmentation, short of 0.94; 13 fit in the 30 minutes of the AMD target on all 50,000 images)
H_EPOCHS = 13
# H's final runs train on all 50,000 training images, as the fast-training literature's do (its
# settings were chosen on the 42,000 / 8,000 split, so the test set chose nothing).
H_FINAL = dict(train_split="train+val")
# The settings of each model's final runs, in a profile of final runs (Profile.final_runs).
FINAL_SETTINGS = {"H": H_FINAL}
# H's ablations: one idea left out each (model_h.INGREDIENTS, and the recipe's); each a run "H-<name>",
# with its TrainConfig change and what it leaves out, in words.
H_ABLATIONS = {
    "no-whitening": (dict(without="whitening"), "no patch whitening (a trainable 2x2 conv instead)"),
    "no-dirac": (dict(without="dirac"), "no identity initialisation of the convs"),
    "no-bias-lr": (dict(without="bias_lr"), "batch-norm biases at the common learning rate"),
    "no-lookahead": (dict(lookahead=False), "no lookahead (weight averaging)"),
    "no-label-smoothing": (dict(label_smoothing=0.0), "no label smoothing"),
    "random-flip": (dict(alternating_flip=False), "random flips instead of alternating ones"),
    "no-augment": (dict(augment=False, alternating_flip=False), "no flips and no crops"),
}
# Each model's ablations, run once each in a profile of final runs.
ABLATIONS = {"H": H_ABLATIONS}


@dataclass(frozen=True)
class Profile:
    """How much work one run of the whole ladder does."""

    name: str
    train_size: int | None  # None: the whole split (42,000 / 8,000 / 10,000)
    val_size: int | None
    test_size: int | None
    epochs: dict[str, int]  # per model name; H trains in the profiles that give it epochs
    continuation_epochs: int  # extra epochs for "GAP+"
    fast_gap_epochs: int  # epochs of "GAP-fast", the GAP layers with FAST_GAP_RECIPE
    description: str
    batch_size: int = 128
    seeds: int = 1  # seeds per model of the ladder (A ... GAP+): tables show mean and spread
    extra_seeds: int = 1  # seeds of the runs beyond the ladder (double-softmax runs, GAP-fast)
    # Diagnosis experiments (model E's failure, gradient norms) train on this many images for
    # `diagnosis_epochs`; the size curve uses `analysis_images` test images per size (None: all).
    diagnosis_train_size: int | None = None
    diagnosis_epochs: int = 1
    analysis_images: int | None = None
    # TrainConfig settings of every run of a model without a recipe of its own (A ... GAP+; the runs beyond
    # the ladder change settings on top of it); empty: our ladder's recipe (Adam, logits)
    recipe: dict = field(default_factory=dict)
    model_seeds: dict = field(default_factory=dict)  # seeds of the runs (by name) that cost hours, if fewer
    extras: bool = True  # the runs beyond the ladder (A-softmax, D-softmax, G-fp32, GAP-fast)
    final_runs: bool = False  # runs are final (FINAL_SETTINGS: H on all 50,000 training images), with one run per ablation


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        train_size=256,
        val_size=128,
        test_size=128,
        epochs={name: 1 for name in model_names()},  # H: one step (its batch of 1024 holds all 256 images)
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
        # Sized for a 2-core CPU: the whole profile took 69.9 minutes on an AMD EPYC (Zen 4), GAP-fast 18.9 of them.
        # No H yet: it joins with a measured budget once its recipe is tuned (the profile's total stays ~75 min).
        epochs={"A": 10, "B": 3, "C": 3, "D": 3, "E": 3, "F": 3, "G": 3, "GAP": 2},
        continuation_epochs=2,
        fast_gap_epochs=35,  # about 18.5 minutes on a 2-core CPU: within the fast recipe's 20-minute budget
        seeds=3,  # the fewest from which the report draws a verdict (analysis.MIN_SEEDS)
        diagnosis_train_size=8_000,
        diagnosis_epochs=3,
        analysis_images=2_000,
        description="full splits, few epochs, 3 seeds, sized for a 2-core CPU (the appendix gives the training time measured)",
    ),
    "study": Profile(
        name="study",
        train_size=None,
        val_size=None,
        test_size=None,
        epochs=dict(STUDY_EPOCHS),
        continuation_epochs=STUDY_CONTINUATION_EPOCHS,
        fast_gap_epochs=0,  # no GAP-fast: extras off
        recipe=dict(RECOVERED_STUDY_RECIPE),
        seeds=3,
        # GAP continued to 240 epochs ("GAP+") once: 120 more epochs cost about 1.8 hours on a 2-core CPU. The
        # profile's runs take about 7.5 hours there, trained two at a time (convladder all --workers 2;
        # benchmarks/profile_time.py), one after another with two threads about 12
        model_seeds={"GAP+": 1},
        extras=False,
        diagnosis_train_size=8_000,
        diagnosis_epochs=3,
        analysis_images=2_000,
        description="the study's epoch counts with its recipe as recovered (SGD momentum 0.9, batch 32, softmax "
                    "output, lr 0.001); 3 seeds of every model, GAP continued to 240 epochs once; archived in "
                    "results/study",
    ),
    "h": Profile(
        name="h",
        train_size=None,
        val_size=None,
        test_size=None,
        epochs={"H": H_EPOCHS},
        continuation_epochs=0,
        fast_gap_epochs=0,
        seeds=3,
        extras=False,
        final_runs=True,
        description="model H alone, at its target: 3 seeds on all 50,000 training images and one run of each "
                    "ablation; archived in results/h (the quick and study reports read it)",
    ),
    "full": Profile(
        name="full",
        train_size=None,
        val_size=None,
        test_size=None,
        epochs={**STUDY_EPOCHS, "H": H_EPOCHS},
        final_runs=True,
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


# The GAP runs given other sizes (experiments/other_sizes.py): the study's GAP (continued), and GAP-fast,
# whose first epochs were trained on smaller images (progressive resizing).
OTHER_SIZES_RUNS = ("GAP+", "GAP-fast")

# The study's setup for the double-softmax diagnosis: softmax in the model, then cross-entropy.
STUDY_SOFTMAX_RUNS = ("A", "D")
SOFTMAX_SUFFIX = "-softmax"
FP32_SUFFIX = "-fp32"


def ladder(profile: str | Profile, models: list[str] | None = None) -> list[PlannedRun]:
    """The runs a profile makes: every model of the study, then GAP continued ("GAP+"), as in the
    study; every other registered model the profile gives epochs (our model H) with its own recipe, and
    in a profile of final runs one run per ablation (ABLATIONS); beyond the study, A and
    D with the study's softmax + cross-entropy ("A-softmax", "D-softmax"), G without bfloat16
    autocast ("G-fp32") and the GAP layers with a fast recipe ("GAP-fast")."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    chosen = [name for name in model_names() if name in prof.epochs] if models is None else list(models)
    for name in chosen:
        check_model_name(name)
        if name not in prof.epochs:
            raise ValueError(f"profile {prof.name} has no runs of model {name}")
    extra = tuple(range(prof.extra_seeds))

    def seeds(name: str) -> tuple[int, ...]:
        return tuple(range(prof.model_seeds.get(name, prof.seeds)))

    rungs = set(study_model_names())
    runs = [PlannedRun(name, name, prof.epochs[name], seeds(name)) for name in chosen if name in rungs]
    if "GAP" in chosen:
        runs.append(PlannedRun("GAP+", "GAP", prof.epochs["GAP"] + prof.continuation_epochs,
                               tuple(range(prof.model_seeds.get("GAP+", len(seeds("GAP"))))), continues="GAP"))
    for name in (name for name in chosen if name not in rungs):  # models beyond the ladder (H), each with its recipe
        runs.append(PlannedRun(name, name, prof.epochs[name], seeds(name)))
        if prof.final_runs:
            runs += [PlannedRun(f"{name}-{ablation}", name, prof.epochs[name], (0,), recipe=dict(change))
                     for ablation, (change, _) in ABLATIONS.get(name, {}).items()]
    if not prof.extras:
        return runs
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
    """A TrainConfig from notebook or CLI parameters; None means "the profile's value": its sizes and
    epochs, and its recipe (the study profile's: the study's as recovered), or for a model with a
    recipe of its own (its registry entry's, MODEL_RECIPES) that recipe's value."""
    overrides = {k: v for k, v in parameters.items() if v is not None}
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if check_model_name(model) not in prof.epochs and "epochs" not in overrides:
        raise ValueError(f"profile {prof.name} gives model {model} no epochs; give them (--epochs)")
    values = dict(
        model=model,
        epochs=prof.epochs.get(model),
        batch_size=prof.batch_size,
        train_size=prof.train_size,
        val_size=prof.val_size,
        test_size=prof.test_size,
        profile=prof.name,
    )
    own = entry(model).recipe
    values.update(MODEL_RECIPES[own] if own else prof.recipe)  # a model's own recipe, else the profile's
    if prof.final_runs:
        values.update(FINAL_SETTINGS.get(model, {}))
    values.update(overrides)
    return TrainConfig(**values)
