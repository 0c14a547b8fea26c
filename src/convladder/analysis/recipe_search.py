"""The recipe search's archive, read: every candidate recipe's run (results/recipe-search, trained by
convladder.experiments.recipe_search) with its take-off epoch, and the one closest to the study's curve."""

from __future__ import annotations

from pathlib import Path

from convladder.analysis.statistics import take_off_epoch
from convladder.plan.study import STUDY_CURVES
from convladder.results.layout import CHECKPOINT_FILE, RESULTS_FILE, results_archive
from convladder.tools.files import load_checkpoint_file, read_json


def default_out_dir() -> Path:
    return results_archive("recipe-search")


def recipe_label(config: dict) -> str:
    """The optimizer of a candidate in words: Adam, plain SGD, or SGD with momentum."""
    if config["optimizer"] == "adam":
        return "Adam"
    if config.get("momentum", 0) == 0:
        return "plain SGD"
    return f"SGD, momentum {config['momentum']:g}"


def archived_candidates(out_dir: str | Path | None = None) -> list[dict]:
    """Every candidate in the archive, finished (results.json) or not (its checkpoint's history):
    recipe, epochs done of those planned, take-off epoch, last validation accuracy, the curve."""
    out_dir = Path(out_dir) if out_dir else default_out_dir()
    found = []
    for folder in sorted(out_dir.glob("*/seed*")):
        if (folder / RESULTS_FILE).exists():
            results = read_json(folder / RESULTS_FILE)
            config, history, finished = results["config"], results["history"], True
            minutes, cpu = results["train_seconds"] / 60, results["environment"].get("cpu")
        elif (folder / CHECKPOINT_FILE).exists():
            state = load_checkpoint_file(folder / CHECKPOINT_FILE)
            config, history, finished = state["config"], state["history"], False
            minutes, cpu = sum(history["epoch_seconds"]) / 60, None
        else:
            continue
        val = list(history["val_acc"])
        found.append(dict(
            name=folder.parent.name, seed=config["seed"], model=config["model"], optimizer=recipe_label(config),
            output="softmax" if config["study_softmax"] else "logits", batch_size=config["batch_size"],
            epochs=len(val), planned=config["epochs"], finished=finished, take_off=take_off_epoch(val),
            val_acc=val[-1], curve=val, minutes=minutes, cpu=cpu,
        ))
    return found


def closest_candidate(candidates: list[dict], model: str) -> dict | None:
    """The finished candidate of `model` whose take-off epoch lies closest to the study's (ties: the
    closer validation accuracy at the end); None if none of them left chance."""
    study = STUDY_CURVES[model]
    taking_off = [c for c in candidates if c["model"] == model and c["finished"] and c["take_off"] is not None]
    if not taking_off:
        return None
    return min(taking_off, key=lambda c: (abs(c["take_off"] - study["take_off"]), abs(c["val_acc"] - study["val_acc"])))
