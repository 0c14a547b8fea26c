"""The longer runs of the ladder's failing rungs, read (results/study-150, trained by
convladder.experiments.longer_training): each seed's curve to 150 epochs, its take-off, and the ReLU, depth
and batch-norm questions at every budget both models' seeds reached."""

from __future__ import annotations

from pathlib import Path

from convladder.analysis.statistics import take_off_epoch
from convladder.results.layout import results_archive, seed_dirs

ARCHIVE = "study-150"
MODELS = ("C", "D", "E")
BUDGETS = (16, 30, 60, 150)  # the epochs at which each seed's accuracy is read


def first_epoch_at(curve: list[float], accuracy: float) -> int | None:
    """The first epoch (1-based) whose validation accuracy is at least `accuracy`; None if none was."""
    return next((epoch for epoch, acc in enumerate(curve, start=1) if acc >= accuracy), None)


def archived_seeds(out_dir: str | Path | None = None) -> dict[str, list[dict]]:
    """Every continued seed in the archive, finished (its results.json) or not (its checkpoint's history), by
    model, in seed order: seed, finished, epochs done, the validation curve, take-off epoch, and the
    validation accuracy after each of BUDGETS that it reached."""
    from convladder.results.records import read_seed

    out_dir = Path(out_dir) if out_dir else results_archive(ARCHIVE)
    found: dict[str, list[dict]] = {}
    for model in MODELS:
        for config, history, results in filter(None, map(read_seed, seed_dirs(out_dir / model))):
            val = list(history["val_acc"])
            found.setdefault(model, []).append(dict(
                seed=config["seed"], finished=results is not None, epochs=len(val), curve=val, take_off=take_off_epoch(val),
                at={b: val[b - 1] for b in BUDGETS if b <= len(val)}, minutes=sum(history["epoch_seconds"]) / 60,
                # training accuracy as the study measured it: over the epoch's batches, in training mode
                train_at={b: history["train_acc"][b - 1] for b in BUDGETS if b <= len(val)},
            ))
    return found


def budget_verdicts(continued: dict[str, list[dict]], ladder: dict[str, list[dict]]) -> list[dict]:
    """The ReLU (C to D), depth (D to E) and batch-norm (E to F) questions at every budget of BUDGETS where
    every seed of both models reached it (so at 16 epochs from the archived runs, later from the seeds
    continued so far): validation accuracy after that epoch, Welch (analysis.compare).
    `continued`: archived_seeds(); `ladder`: the study profile's runs (collect_runs), for F (30 epochs)."""
    from convladder.analysis.statistics import LADDER_STEPS, compare

    # each seed's longest curve: its continuation where there is one (whose first epochs are the archived run's)
    by_seed: dict[str, dict[int, list[float]]] = {}
    for model, seeds in ladder.items():
        if model in ("C", "D", "E", "F"):
            by_seed[model] = {r["config"]["seed"]: list(r["history"]["val_acc"]) for r in seeds}
    for model, seeds in continued.items():
        for s in seeds:
            if len(s["curve"]) >= len(by_seed.setdefault(model, {}).get(s["seed"], [])):
                by_seed[model][s["seed"]] = s["curve"]
    curves = {model: list(seeds.values()) for model, seeds in by_seed.items()}
    verdicts = []
    for step in LADDER_STEPS:
        if (step.low, step.high) not in (("C", "D"), ("D", "E"), ("E", "F")):
            continue
        for budget in BUDGETS:
            low, high = curves.get(step.low, []), curves.get(step.high, [])
            if not low or not high or min(len(c) for c in low + high) < budget:
                continue
            comparison = compare([c[budget - 1] for c in low], [c[budget - 1] for c in high])
            verdicts.append(dict(question=step.question, low=step.low, high=step.high, budget=budget,
                                 comparison=comparison))
    return verdicts
