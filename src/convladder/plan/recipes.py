"""Named recipes: how a model is trained (optimizer, batch, schedule, augmentation, output), each with
a name that is recorded with every run it trains (`results.json`'s "recipe": the recipe's name and
what the run changed on top of it), so a report reads what a run used instead of re-deriving it.

A recipe is a set of TrainConfig settings over TrainConfig's defaults. A profile trains its ladder
with one recipe (Profile.recipe), a model with a recipe of its own (its registry entry's `recipe`)
with that one everywhere, and a run may change settings on top (PlannedRun.changes, CLI options).
A named recipe does not change once runs have recorded it: a new recipe gets a new name.
"""

from __future__ import annotations

from dataclasses import dataclass

from convladder.core.config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    settings: dict  # TrainConfig settings over its defaults
    description: str  # in words, with where it comes from
    short: str = ""  # a few words for a table; empty: the name


LADDER = "ladder"
STUDY_RECOVERED = "study-recovered"
GAP_FAST = "gap-fast"
H = "h"
H95 = "h95"
H_B512 = "h-b512"

# Model H's recipe's settings (the recipe `h` below says where they come from); H-95's changes one of them.
H_SETTINGS = dict(optimizer="sgd", lr=1.5, momentum=0.85, nesterov=True, batch_size=1024, drop_last=True,
                  weight_decay=1.3e-3, schedule="triangle", label_smoothing=0.2, lookahead=True, augment=True,
                  crop_pad=2, alternating_flip=True)

RECIPES: dict[str, Recipe] = {
    LADDER: Recipe(
        LADDER, {},
        "our assumption for the ladder where the study states only the learning rate 0.001: Adam, batch 128, "
        "logits into the cross-entropy, bfloat16 autocast where the CPU has it",
        "Adam, logits"),
    # The recipe search (results/recipe-search; the report's recipe section): the study's lr 0.001 and softmax
    # output, with SGD, momentum 0.9 (no Nesterov), batch 32. With it model A leaves chance at epoch 123 of
    # 150 (the study: about 140); with Adam, at epoch 2.
    STUDY_RECOVERED: Recipe(
        STUDY_RECOVERED, dict(optimizer="sgd", momentum=0.9, nesterov=False, batch_size=32, study_softmax=True),
        "the study's recipe as the recipe search recovered it: SGD with momentum 0.9 (no Nesterov), batch 32, "
        "lr 0.001, the softmax output into the cross-entropy",
        "SGD momentum, batch 32, softmax"),
    # Not the study's: trains the GAP layers, unchanged, to high accuracy in few CPU minutes. One-cycle SGD with
    # Nesterov momentum, label smoothing, flip + crop (each image mirrored in every other epoch, crops moved by
    # up to 2 pixels), and the first half of the epochs on smaller images (a 16-pixel epoch costs about a third
    # of a 32-pixel one).
    GAP_FAST: Recipe(
        GAP_FAST, dict(optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True, batch_size=256, weight_decay=5e-4,
                       schedule="onecycle", label_smoothing=0.1, augment=True, crop_pad=2, alternating_flip=True,
                       progressive=0.5, study_softmax=False),
        "a fast recipe for the GAP layers (not the study's): one-cycle SGD with Nesterov momentum, label "
        "smoothing, flips and crops, progressive resizing (Smith and Topin 2019; Howard 2018)",
        "one-cycle, augmented"),
    # Model H's (its layers are in core/model_h.py; its batch-norm biases learn at model_h.BIAS_LR_SCALE times lr):
    # airbench94's published values converted to our mean loss over the batch (lr 11.5 per 1024 summed examples
    # -> about 1.5; its weight decay likewise), its triangle schedule and lookahead, each image mirrored in every
    # other epoch, crops moved by up to 2 pixels, the last incomplete batch left out. Measured on the 42,000 /
    # 8,000 split (runs/tune-h, AMD EPYC Zen 4, 2 cores): 10 epochs give validation accuracy 0.930, 0.937 with
    # test-time augmentation, in 17 minutes of training.
    H: Recipe(
        H, H_SETTINGS,
        "model H's recipe, after airbench94 (Jordan 2024): triangle schedule, Nesterov SGD, label smoothing, "
        "lookahead, alternating flips and crops",
        "H's (airbench94)"),
    # Model H-95's: H's recipe with airbench95's learning rate (10 per 1024 summed examples where airbench94's is
    # 11.5, converted as H's: 1.5 x 10 / 11.5 = 1.3). Its epochs are its profile's (chosen on the 42,000 / 8,000
    # split: results/h-tuning).
    H95: Recipe(
        H95, {**H_SETTINGS, "lr": 1.3},
        "model H-95's recipe: H's with airbench95's learning rate (Jordan 2024)",
        "H-95's (airbench95)"),
    # Model H's recipe at half its batch: twice the steps per epoch, which a CPU pays little for (a GPU takes large
    # batches for its throughput; here an epoch of 42,000 images took 84-85 s at 512 as at 1,024), the learning
    # rate halved with the batch (airbench's rule: a fixed rate per summed example), so that weight decay per epoch is
    # unchanged. Measured on the 42,000 / 8,000 split at 16 epochs (results/h-tuning/h-e16-b512, AMD EPYC Zen 4):
    # validation 0.940 plain against 0.933 at batch 1,024 (h-tuning/h-e16), one seed each.
    H_B512: Recipe(
        H_B512, {**H_SETTINGS, "batch_size": 512, "lr": 0.75},
        "model H's recipe at batch 512 with the learning rate halved (0.75): twice the steps per epoch",
        "H's at batch 512"),
}

# The settings that make a recipe: what a run's recorded recipe compares (not the model, epochs, seed, data or
# split, nor how fast it computes but for bfloat16 autocast, which changes what it computes).
RECIPE_KEYS = ("optimizer", "lr", "momentum", "nesterov", "batch_size", "drop_last", "weight_decay", "schedule",
               "label_smoothing", "lookahead", "augment", "crop_pad", "alternating_flip", "progressive", "amp",
               "study_softmax", "without", "init_scale")

_DEFAULTS = TrainConfig(model="A", epochs=1).to_dict()


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_values(config: dict) -> dict:
    """A config's recipe settings (RECIPE_KEYS), TrainConfig's defaults for those it omits (an older run's);
    momentum and Nesterov only count for SGD (None otherwise)."""
    sgd = config.get("optimizer", _DEFAULTS["optimizer"]) == "sgd"
    return {k: config.get(k, _DEFAULTS[k]) if sgd or k not in ("momentum", "nesterov") else None for k in RECIPE_KEYS}


def changes(config: dict, name: str) -> dict:
    """What `config` (a TrainConfig as a dict) sets differently from the named recipe."""
    base = recipe_values({**_DEFAULTS, **get_recipe(name).settings})
    return {k: v for k, v in recipe_values(config).items() if base[k] != v}


def record(config: dict | TrainConfig, name: str) -> dict:
    """The recipe a run records: its name and what the run's config changes on top of it."""
    config = config.to_dict() if isinstance(config, TrainConfig) else config
    return {"name": name, "changes": changes(config, name)}


def closest(config: dict) -> dict:
    """The record of the named recipe `config` changes least (the first in RECIPES on a tie): what a run
    that recorded no recipe (trained before recipes were recorded) used."""
    return min((record(config, name) for name in RECIPES), key=lambda r: len(r["changes"]))


def recorded_recipe(results: dict) -> dict:
    """The recipe a run's results record, or for a run trained before runs recorded one, the closest
    named recipe to its config (`closest`): the one migration of older results."""
    recorded = results.get("recipe")
    if isinstance(recorded, dict) and recorded.get("name") in RECIPES and isinstance(recorded.get("changes"), dict):
        return recorded
    return closest(results["config"])


def label(recorded: dict) -> str:
    """A recorded recipe in a few words: its name and its changes."""
    changed = ", ".join(f"{k}={v}" for k, v in sorted(recorded["changes"].items()))
    return recorded["name"] + (f" with {changed}" if changed else "")
