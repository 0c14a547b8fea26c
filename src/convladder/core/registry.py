"""The one model registry: every model the pipeline can train, by name, with what the plan and the
training code's version need to know about it. Light on purpose (no torch): the
report and the plan read it without importing the layers; `models.create_model` builds an entry's
model by importing its builder only then.

Adding a model (see CONTRIBUTING.md): write its module with a builder function, `register` an entry
(its own family and code version if its training should be versioned apart from the ladder's), and
a named recipe (plan/recipes.py) if it trains with one of its own; `plan.profiles.ladder` then
plans its runs in every profile that gives it epochs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from convladder.core.h_design import INGREDIENTS as H_INGREDIENTS

# The ladder's family: the study's models (A to G, GAP), built in core/models.py and trained by the
# shared training code. Its declared version is in core/versions.py.
LADDER = "ladder"


@dataclass(frozen=True)
class ModelEntry:
    """What the pipeline and the report know about one model."""

    name: str
    builder: str  # "module:function" building the model; imported only when it is built
    family: str = LADDER  # whose declared code version covers its runs (versions.CODE_VERSIONS)
    study: bool = False  # a rung of the study's ladder (A to G, GAP): planned, tabled and compared as one
    any_size: bool = False  # a global pooling before the classifier: takes any image size
    recipe: str | None = None  # its own named recipe (plan/recipes.py); None: its profile's
    ingredients: tuple[str, ...] = ()  # what an ablation may leave out (TrainConfig.without)

    def build(self, **kwargs):
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)(**kwargs)


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model; a name is registered once."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove a model (for tests that register a toy one)."""
    _REGISTRY.pop(name, None)


def entry(name: str) -> ModelEntry:
    return _REGISTRY[check_model_name(name)]


def model_names() -> tuple[str, ...]:
    """Every registered model, in registration order."""
    return tuple(_REGISTRY)


def study_model_names() -> tuple[str, ...]:
    return tuple(name for name, e in _REGISTRY.items() if e.study)


def entries(select: Callable[[ModelEntry], bool] = lambda e: True) -> list[ModelEntry]:
    return [e for e in _REGISTRY.values() if select(e)]


def check_model_name(name: str) -> str:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_REGISTRY)}")
    return name


def accepts_any_size(name: str) -> bool:
    return entry(name).any_size


def ingredients(name: str) -> tuple[str, ...]:
    """What an ablation may leave out of the model (TrainConfig.without)."""
    return entry(name).ingredients


def check_without(name: str, without: tuple[str, ...]) -> tuple[str, ...]:
    """`without` if the model has each of these ingredients, else ValueError."""
    unknown = [item for item in without if item not in ingredients(name)]
    if unknown:
        raise ValueError(f"model {name} has no ingredient {', '.join(map(repr, unknown))} to leave out; "
                         f"it has: {', '.join(ingredients(name)) or 'none'}")
    return tuple(without)


_LADDER_MODULE = "convladder.core.models"
for _name, _any_size in (("A", False), ("B", False), ("C", False), ("D", False), ("E", False), ("F", False),
                         ("G", False), ("GAP", True)):
    register(ModelEntry(_name, f"{_LADDER_MODULE}:model_{_name.lower()}", study=True, any_size=_any_size))
# Our model H: a family of its own (tuning it leaves the ladder's runs current), its own recipe, and the
# ideas its ablations leave out one at a time.
register(ModelEntry("H", "convladder.core.model_h:ModelH", family="H", any_size=True, recipe="h",
                    ingredients=H_INGREDIENTS))
# Model H-95: H's layers, wider (h_design.WIDTHS_95), with its own recipe; the same code as H, so H's family.
register(ModelEntry("H95", "convladder.core.model_h:model_h95", family="H", any_size=True, recipe="h95",
                    ingredients=H_INGREDIENTS))
