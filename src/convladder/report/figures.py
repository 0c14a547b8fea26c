"""The report's figures: each function takes what the runs recorded, saves one figure (with
`plots.py`) into a profile's figures folder, and returns the file name the template includes.
No prose here and no numbers computed for the text: `report/build.py` and its section modules build the context, the template
words it.
"""

from __future__ import annotations

from pathlib import Path

from convladder.analysis.statistics import study_below_chance
from convladder.plan.profiles import SOFTMAX_SUFFIX
from convladder.plan.study import STUDY_RESULTS
from convladder.report.archive_plots import plot_frontier
from convladder.report.question_plots import plot_questions
from convladder.report.plots import (
    plot_accuracy_minutes,
    plot_compare,
    plot_gradient_norms,
    plot_history,
    plot_ladder,
    plot_proba,
    plot_variants,
    save,
)


def file_stem(run_name: str) -> str:
    """A file-name-safe stem of a run name that LaTeX's \\includegraphics takes: "GAP+" -> "GAPplus"; any
    other character but letters, digits, '_', '.' and '-' as '-' and its hex code ("GAP fast" -> "GAP-20fast")."""
    name = run_name.replace("+", "plus")
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_.-" else f"-{ord(c):x}" for c in name)


def ladder(runs: dict[str, list[dict]], figures: Path, starts: dict[str, int] | None = None) -> str:
    """Validation accuracy per epoch of the given runs (a continued run from `starts`' epoch on), and their final
    accuracies beside the study's (but for a study number below what a model that learned nothing scores, which
    the summary table does not compare either: analysis.below_chance)."""
    compared = {name: numbers for name, numbers in STUDY_RESULTS.items()
                if numbers.get("val_acc") is None or not study_below_chance(numbers["val_acc"])}
    save(plot_ladder(runs, compared, starts), figures / "ladder.pdf")
    return "ladder.pdf"


def history(seeds: list[dict], figures: Path) -> str:
    """Loss, accuracy and seconds per epoch of one run over its seeds."""
    name = f"history_{file_stem(seeds[0]['name'])}.pdf"
    save(plot_history([r["history"] for r in seeds], title=f"model {seeds[0]['name']}"), figures / name)
    return name


def probabilities(run: dict, figures: Path) -> str | None:
    """The output probabilities of one seed for its probe test image, before and after training."""
    probas = {"before training": run["proba_before"], "after training": run["proba_after"]}
    probas = {label: proba for label, proba in probas.items() if proba is not None}
    if not probas:
        return None
    classes = run["data"]["class_names"]
    name = f"proba_{file_stem(run['name'])}.pdf"
    title = f"test image {run['probe_index']} (a {classes[run['probe_label']]})"
    save(plot_proba(probas, classes, title=title), figures / name)
    return name


def questions(runs: dict[str, list[dict]], steps: list[dict], figures: Path) -> str:
    """The questions' pairs of runs in one figure, a panel per step (conclusions_context's, each with its panel letter),
    in the steps' order."""
    name = "questions.pdf"
    names = list(dict.fromkeys(name for s in steps for name in (s["low"], s["high"])))
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    panels = [dict(letter=s["panel"], low=s["low"], high=s["high"], at_epoch=None if s["same_epochs"] else s["at_epoch"],
                   runs=runs, colors=colors) for s in steps]
    save(plot_questions(panels), figures / name)
    return name


def double_softmax(all_runs: dict[str, list[dict]], models: list[str], figures: Path) -> str | None:
    """Validation accuracy per epoch of each model trained on logits and with the study's softmax."""
    if not models:
        return None
    curves = {f"{m}: logits + CE": all_runs[m] for m in models} | {
        f"{m}: softmax + CE": all_runs[m + SOFTMAX_SUFFIX] for m in models}
    save(plot_compare(curves, title="validation accuracy"), figures / "double_softmax.pdf")
    return "double_softmax.pdf"


def variants(diagnosis: dict, figures: Path) -> str:
    """The E and F variants of the diagnosis: validation accuracy per epoch and loss per step."""
    save(plot_variants(diagnosis), figures / "e_variants.pdf")
    return "e_variants.pdf"


def weight_layer_names(layers: list[str]) -> dict[str, str]:
    """A reader's names for the weight layers of C or D (module names as recorded, input first): convolutions, then
    one linear classifier at the end."""
    return {layer: "linear" if i == len(layers) - 1 else f"conv {i + 1}" for i, layer in enumerate(layers)}


def gradient_norms(diagnosis: dict, figures: Path) -> str:
    """The gradient norm of each weight layer per step, for the models the diagnosis measured (C and D, whose weight
    layers are convolutions and one linear classifier at the end: "conv 1" is the one nearest the input)."""
    layers = next(iter(diagnosis["gradients"].values()))[0]["layers"]
    save(plot_gradient_norms(diagnosis, weight_layer_names(layers)), figures / "gradient_norms.pdf")
    return "gradient_norms.pdf"


def accuracy_minutes(runs: dict[str, list[dict]], figures: Path, starts: dict[str, int]) -> str:
    """Every run's validation accuracy against its cumulative training minutes; a run in `starts` (one that
    continues another, GAP+: name -> its own first epoch) from that epoch on."""
    save(plot_accuracy_minutes(runs, starts=starts), figures / "accuracy_minutes.pdf")
    return "accuracy_minutes.pdf"


def frontier(groups: list[dict], figures: Path) -> str:
    """Test accuracy against training minutes of every seed of the given groups of runs."""
    save(plot_frontier(groups), figures / "frontier.pdf")
    return "frontier.pdf"
