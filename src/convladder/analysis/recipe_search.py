"""The recipe search's archive, read: every candidate recipe's run (results/recipe-search, trained by
convladder.experiments.recipe_search) with its take-off epoch, and the one closest to the study's curve."""

from __future__ import annotations

from pathlib import Path

from convladder.analysis.statistics import take_off_epoch
from convladder.plan.study import STUDY_CURVES
from convladder.results.layout import results_archive
from convladder.results.records import read_seed


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
        seed = read_seed(folder)
        if seed is None:
            continue
        config, history, results = seed
        finished = results is not None
        minutes = (results["train_seconds"] if finished else sum(history["epoch_seconds"])) / 60
        cpu = results["environment"].get("cpu") if finished else None
        val = list(history["val_acc"])
        found.append(dict(
            name=folder.parent.name, seed=config["seed"], model=config["model"], optimizer=recipe_label(config),
            output="softmax" if config["study_softmax"] else "logits", batch_size=config["batch_size"],
            epochs=len(val), planned=config["epochs"], finished=finished, take_off=take_off_epoch(val),
            val_acc=val[-1], curve=val, minutes=minutes, cpu=cpu,
        ))
    return found


SELECTION_SEED = 0  # the search chose its recipe on this seed's runs; further seeds test the choice, not remake it


def candidate_rows(runs: list[dict]) -> list[dict]:
    """The runs grouped by candidate (one folder per candidate, one seed folder per run): the candidate's recipe, its
    runs in seed order and their seeds, and whether all of them finished, for a table of candidates."""
    grouped: dict[str, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["name"], []).append(run)
    rows = []
    for name, found in grouped.items():
        found = sorted(found, key=lambda r: r["seed"])
        rows.append(dict({key: found[0][key] for key in ("name", "model", "optimizer", "output", "batch_size", "planned")},
                         runs=found, seeds=[r["seed"] for r in found], finished=all(r["finished"] for r in found)))
    return rows


def further_seeds(runs: list[dict], model: str) -> dict:
    """What the seeds after the selection's say about `model`'s candidates that stayed at chance on it: the finished
    further runs of those candidates (`of_stalled`), those of them that left chance (`left`), the candidates."""
    stalled = {r["name"] for r in runs if r["model"] == model and r["seed"] == SELECTION_SEED and r["finished"]
               and r["take_off"] is None}
    of_stalled = [r for r in runs if r["name"] in stalled and r["seed"] != SELECTION_SEED and r["finished"]]
    return dict(of_stalled=of_stalled, left=[r for r in of_stalled if r["take_off"] is not None],
                candidates=sorted({r["name"] for r in of_stalled}))


def output_pairs(runs: list[dict], model: str = "A") -> list[dict]:
    """`model`'s recipes trained both on logits and with the study's softmax (same optimizer and batch, one candidate a
    side) on the selection seed, in the order of `runs`: each output's finished runs in seed order, its take-off on the
    selection seed (`take_off`), and how many of its runs leave chance (`left`); `stalls`: logits leave chance on the
    selection seed and the softmax does not."""
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in runs:
        if r["model"] == model and r["finished"]:
            groups.setdefault((r["optimizer"], r["batch_size"]), {"logits": [], "softmax": []})[r["output"]].append(r)
    pairs = []
    for (optimizer, batch_size), outputs in groups.items():
        selected = {output: [r for r in found if r["seed"] == SELECTION_SEED] for output, found in outputs.items()}
        if not selected["logits"] or not selected["softmax"]:
            continue
        if any(len({r["name"] for r in found}) > 1 for found in outputs.values()):
            continue  # several candidates share the optimizer, batch and output (another setting differs): no one pair
        sides = {output: dict(runs=sorted(found, key=lambda r: r["seed"]), take_off=selected[output][0]["take_off"],
                              left=sum(r["take_off"] is not None for r in found)) for output, found in outputs.items()}
        pairs.append(dict(optimizer=optimizer, batch_size=batch_size, **sides,
                          stalls=sides["logits"]["take_off"] is not None and sides["softmax"]["take_off"] is None))
    return pairs


def softmax_escapes(runs: list[dict], model: str = "A") -> list[dict]:
    """The recipes (optimizer, batch size) under which some finished run of `model` with the study's softmax output
    leaves chance, each once, in the order of `runs`."""
    found: list[dict] = []
    for r in runs:
        recipe = dict(optimizer=r["optimizer"], batch_size=r["batch_size"])
        if r["model"] == model and r["output"] == "softmax" and r["finished"] and r["take_off"] is not None \
                and recipe not in found:
            found.append(recipe)
    return found


def choice_forced(runs: list[dict], model: str, chosen: dict) -> dict | None:
    """How little the selection seed's runs of `model` leave to choose: when `chosen` is the only finished candidate
    whose take-off comes late (every other that leaves chance does so in less than half its epochs), the others that
    never leave chance (`stalled`) and those that leave it early (`early`, `latest`: the last of their take-offs);
    None when another candidate also leaves chance late."""
    others = [r for r in runs if r["model"] == model and r["seed"] == SELECTION_SEED and r["finished"]
              and r["name"] != chosen["name"]]
    early = [r for r in others if r["take_off"] is not None]
    latest = max((r["take_off"] for r in early), default=None)
    if latest is not None and latest * 2 >= chosen["take_off"]:
        return None
    return dict(others=len(others), stalled=len(others) - len(early), early=len(early), latest=latest)


def closest_candidate(candidates: list[dict], model: str) -> dict | None:
    """The finished run of `model` on the selection seed whose take-off epoch lies closest to the study's (ties:
    the closer validation accuracy at the end); None if none of them left chance. Runs of further seeds do not
    take part: they test the choice made on the selection seed (further_seeds) instead of changing it."""
    study = STUDY_CURVES[model]
    taking_off = [c for c in candidates if c["model"] == model and c["finished"] and c["take_off"] is not None
                  and c["seed"] == SELECTION_SEED]
    if not taking_off:
        return None
    return min(taking_off, key=lambda c: (abs(c["take_off"] - study["take_off"]), abs(c["val_acc"] - study["val_acc"])))
