"""The profiles that size the work, and the ladder's runs: how much data, how many epochs and
seeds each model gets. Notebooks, the CLI, the pipeline and the tests read profiles from here.
A profile decides which configs are trained, not what a config yields, so it stays outside the
training code's version (`versions.code_version`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from convladder.core.config import TrainConfig
from convladder.core.registry import check_model_name, entry, model_names, study_model_names
from convladder.plan.recipes import GAP_FAST, H_B512, LADDER, STUDY_RECOVERED, get_recipe, record

# Epochs the study trained for. Where the study is silent (D to G) we chose a value and
# the report says so: `STUDY_EPOCHS_STATED` lists the models whose count is the study's.
STUDY_EPOCHS = {"A": 150, "B": 150, "C": 16, "D": 16, "E": 16, "F": 30, "G": 30, "GAP": 120}
STUDY_EPOCHS_STATED = {"A", "B", "C", "GAP"}
# Of those, the counts the study implies rather than states, and where it implies them (the report says so).
STUDY_EPOCHS_INFERRED = {"A": "the study trains B, model A with 20 filters, for 150 epochs, and says A began to "
                              "improve around epoch 140"}
# GAP was trained for 120 epochs, then continued for 120 more ("GAP+" is the continuation).
STUDY_CONTINUATION_EPOCHS = 120


# H's epochs in its final runs: chosen on the validation split (10 epochs gave 0.937 with test-time
# augmentation, short of 0.94; 13 fit in the 30 minutes of the AMD target on all 50,000 images)
H_EPOCHS = 13
# H's final runs train on all 50,000 training images, as the fast-training literature's do (its
# settings were chosen on the 42,000 / 8,000 split, so the test set chose nothing).
H_FINAL = dict(train_split="train+val")
# H-95's epochs in its first final runs (results/h95): airbench95's 15 (Jordan 2024), which the 70 minutes of the AMD target allow
# (benchmarks/h_step_time.py: a step of H-95 costs 2.3 times H's, about 54 training minutes for 15 epochs on the
# AMD EPYC Zen 4; results/h-tuning says what 15 reach on validation)
H95_EPOCHS = 15
# H-95's second final runs (results/h95-e16): 16 epochs, the most whose seeds keep inside the 70 minutes with a few to
# spare (the first runs' epochs took 3.7-3.9 minutes and their evaluation 4.0: about 64-67 minutes for 16). Planned
# after the first runs' three seeds fell 0.00063 short of the target with TTA (a second look at the test set).
H95_E16_EPOCHS = 16
# H's runs at the milestone of issue 28 (results/h-e16): H itself >= 0.940 without test-time augmentation within the 30
# minutes of the AMD target. 16 epochs, the most that keep a seed inside them at h's typical epoch (h's epochs took
# 99-114 s and its evaluation 106-136 s: 28.2 minutes for 16 at the fastest, 32.7 at the slowest, seed 0's, which ran
# beside other work). Planned after h's test accuracy was known (0.9357 plain at 13 epochs; a second look at the test
# set); the tuning run h-tuning/h-e16 tried 16 on validation.
H_E16_EPOCHS = 16
# H's second runs at that milestone (results/h-b512): the same 16 epochs with the recipe h-b512 (batch 512, learning rate
# halved), after its tuning run (h-tuning/h-e16-b512) reached 0.940 on validation where h-e16's reached 0.933. Planned
# after h-e16's test accuracy was known (0.93827 plain, 0.00173 short): a third look at the test set.
# The settings of each model's final runs, in a profile of final runs (Profile.final_runs).
FINAL_SETTINGS = {"H": H_FINAL, "H95": H_FINAL}
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
    fast_gap_epochs: int  # epochs of "GAP-fast", the GAP layers with the gap-fast recipe
    description: str
    batch_size: int = 128
    seeds: int = 1  # seeds per model of the ladder (A ... GAP+): tables show mean and spread
    extra_seeds: int = 1  # seeds of the runs beyond the ladder (double-softmax runs, GAP-fast)
    # Diagnosis experiments (model E's failure, gradient norms) train on this many images for
    # `diagnosis_epochs`; the size curve uses `analysis_images` test images per size (None: all).
    diagnosis_train_size: int | None = None
    diagnosis_epochs: int = 1
    analysis_images: int | None = None
    # the named recipe (plan/recipes.py) of every run of a model without a recipe of its own (A ... GAP+; the
    # runs beyond the ladder change settings on top of it)
    recipe: str = LADDER
    model_seeds: dict = field(default_factory=dict)  # seeds of the runs (by name) that cost hours, if fewer
    extras: bool = True  # the runs beyond the ladder (A-softmax, D-softmax, G-fp32, GAP-fast)
    final_runs: bool = False  # runs are final (FINAL_SETTINGS: H on all 50,000 training images), with one run per ablation
    ablations: bool = True  # in a profile of final runs: the ablations (ABLATIONS) train too
    # the named recipe of a model in this profile where it is not the model's own (its registry entry's)
    model_recipes: dict = field(default_factory=dict)


H_PROFILE = "h"  # model H's final runs and ablations (results/h); its report is H's note
H95_PROFILE = "h95"  # model H-95's first final runs, 15 epochs (results/h95)
H95_E16_PROFILE = "h95-e16"  # model H-95's second final runs, 16 epochs (results/h95-e16)
H_E16_PROFILE = "h-e16"  # model H at 16 epochs, its milestone runs (results/h-e16); no ablations
H_B512_PROFILE = "h-b512"  # model H at 16 epochs and batch 512, its second milestone runs (results/h-b512); no ablations
FINAL_PROFILE = {"H": H_PROFILE, "H95": H95_E16_PROFILE}  # the profile of each model's final runs (the latest)
# The profiles of a model's earlier final runs, oldest first: kept in the archive and reported beside the latest
EARLIER_PROFILES = {"H": (), "H95": (H95_PROFILE,)}
# The profiles of each attempt at H's milestone (issue 28: H itself >= 0.940 without test-time augmentation within its
# minutes), the first first; H's note reports every one that has runs
MILESTONE_PROFILES = {"H": (H_E16_PROFILE, H_B512_PROFILE)}
# Archives (results/<name>) of a profile's final runs trained again, with the same config, on the other CPU kind its
# model's goals name (`benchmarks/model_h.py --run-dir results/<name>`): each judged by that CPU's limit in H's note
OTHER_CPU_ARCHIVES = {H_E16_PROFILE: ("h-e16-intel",), H95_E16_PROFILE: ("h95-e16-intel",)}
# H's final runs; H-95's are the same but for the model and its epochs
_H = Profile(
    name=H_PROFILE,
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
)
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
        recipe=STUDY_RECOVERED,
        seeds=3,
        # GAP continued to 240 epochs ("GAP+") once: 120 more epochs cost about 1.8 hours on a 2-core CPU. The
        # profile's runs take about 7.5 hours there, trained two at a time (convladder all --workers 2;
        # benchmarks/profile_time.py), one after another with two threads about 12. Projected again on 2026-12-06
        # (AMD EPYC Zen 4, alone): 7.1 h two at a time with a chain per seed (7.5 h as a chain per model), 9.8 h
        # one after another with two threads
        model_seeds={"GAP+": 1},
        extras=False,
        diagnosis_train_size=8_000,
        diagnosis_epochs=3,
        analysis_images=2_000,
        description="the study's epoch counts with its recipe as recovered (SGD momentum 0.9, batch 32, softmax "
                    "output, lr 0.001); 3 seeds of every model, GAP continued to 240 epochs once; archived in "
                    "results/study",
    ),
    H_PROFILE: _H,
    H95_PROFILE: replace(
        _H, name=H95_PROFILE, epochs={"H95": H95_EPOCHS},
        description="model H-95 alone, at its target (issue 28), its first final runs: 15 epochs, 3 seeds on all 50,000 "
                    "training images; archived in results/h95",
    ),
    H95_E16_PROFILE: replace(
        _H, name=H95_E16_PROFILE, epochs={"H95": H95_E16_EPOCHS},
        description="model H-95 alone, at its target (issue 28), its second final runs: 16 epochs, 3 seeds on all "
                    "50,000 training images; archived in results/h95-e16",
    ),
    H_E16_PROFILE: replace(
        _H, name=H_E16_PROFILE, epochs={"H": H_E16_EPOCHS}, ablations=False,
        description="model H alone at 16 epochs, the milestone of issue 28 (>= 0.940 without test-time augmentation "
                    "within 30 AMD minutes): 3 seeds on all 50,000 training images, no ablations; archived in "
                    "results/h-e16",
    ),
    H_B512_PROFILE: replace(
        _H, name=H_B512_PROFILE, epochs={"H": H_E16_EPOCHS}, ablations=False, model_recipes={"H": H_B512},
        description="model H alone at 16 epochs and batch 512 (recipe h-b512), the second try at the milestone of "
                    "issue 28 (>= 0.940 without test-time augmentation within 30 AMD minutes): 3 seeds on all 50,000 "
                    "training images, no ablations; archived in results/h-b512",
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
    recipe: str | None = None  # a named recipe instead of the one the model trains with in its profile
    changes: dict = field(default_factory=dict)  # TrainConfig settings on top of the recipe (hyper-parameters only)

    def config(self, profile: str, seed: int = 0) -> TrainConfig:
        return self.plan(profile, seed)[0]

    def plan(self, profile: str, seed: int = 0) -> tuple[TrainConfig, dict]:
        """The seed's config and the recipe it records (plan_config)."""
        return plan_config(profile, self.model, recipe=self.recipe, epochs=self.epochs, seed=seed, **self.changes)


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
        if prof.final_runs and prof.ablations:
            runs += [PlannedRun(f"{name}-{ablation}", name, prof.epochs[name], (0,), changes=dict(change))
                     for ablation, (change, _) in ABLATIONS.get(name, {}).items()]
    if not prof.extras:
        return runs
    runs += [
        PlannedRun(name + SOFTMAX_SUFFIX, name, prof.epochs[name], extra, changes={"study_softmax": True})
        for name in STUDY_SOFTMAX_RUNS if name in chosen
    ]
    if "G" in chosen:  # does bfloat16 autocast keep the accuracy? G trained in plain fp32
        runs.append(PlannedRun("G" + FP32_SUFFIX, "G", prof.epochs["G"], extra, changes={"amp": False}))
    if "GAP" in chosen:
        runs.append(PlannedRun("GAP-fast", "GAP", prof.fast_gap_epochs, extra, recipe=GAP_FAST))
    return runs


def model_recipe(profile: str | Profile, model: str) -> str:
    """The named recipe `model` trains with in `profile`: the profile's for that model (Profile.model_recipes), else
    its registry entry's own, else the profile's."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    return prof.model_recipes.get(model) or entry(model).recipe or prof.recipe


def plan_config(profile: str | Profile, model: str, recipe: str | None = None, **parameters) -> tuple[TrainConfig, dict]:
    """A run's TrainConfig and the recipe it records ({"name", "changes"}: plan/recipes.py) from notebook or CLI
    parameters; None means "the profile's value": its sizes and epochs, and the named `recipe` (None: the
    one the model trains with in the profile, model_recipe), then a final run's settings (FINAL_SETTINGS),
    then the parameters given. This is the one place where a profile, a recipe and the parameters merge."""
    overrides = {k: v for k, v in parameters.items() if v is not None}
    prof = get_profile(profile) if isinstance(profile, str) else profile
    if check_model_name(model) not in prof.epochs and "epochs" not in overrides:
        raise ValueError(f"profile {prof.name} gives model {model} no epochs; give them (--epochs)")
    name = recipe or model_recipe(prof, model)
    values = dict(
        model=model,
        epochs=prof.epochs.get(model),
        batch_size=prof.batch_size,
        train_size=prof.train_size,
        val_size=prof.val_size,
        test_size=prof.test_size,
        profile=prof.name,
    )
    values.update(get_recipe(name).settings)
    if prof.final_runs:
        values.update(FINAL_SETTINGS.get(model, {}))
    values.update(overrides)
    config = TrainConfig(**values)
    return config, record(config, name)


def config_from_parameters(profile: str | Profile, model: str, **parameters) -> TrainConfig:
    """plan_config's TrainConfig alone."""
    return plan_config(profile, model, **parameters)[0]


def profile_recipe(profile: str, model: str) -> dict:
    """The recipe record of a run of `model` trained as `profile` plans it with no change of its own:
    what the report's ladder runs record."""
    return plan_config(profile, model, epochs=1)[1]
