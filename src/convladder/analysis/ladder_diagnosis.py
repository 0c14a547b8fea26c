"""The diagnoses under the ladder's own recipe, read (results/study-diagnosis, trained by
convladder.experiments.ladder_diagnosis): model E's variants against the study profile's E, and C's and D's
gradient and update norms from the first layer to the last."""

from __future__ import annotations

import statistics
from pathlib import Path

from convladder.analysis.statistics import compare, holm_family, take_off_epoch
from convladder.results.layout import RESULTS_FILE, results_archive, seed_dirs

PROFILE = "study"  # the experiments train with the study profile's recipe
ARCHIVE = "study-diagnosis"
EPOCHS = 16
# variant -> (model, softmax output, initialisation)
E_VARIANTS = {
    "E-logits": ("E", False, "default"),
    "E-he": ("E", True, "he"),
    "E-he-logits": ("E", False, "he"),
}
GRADIENT_RUNS = {"C-gradients": "C", "D-gradients": "D"}
GRADIENTS_FILE = "gradients.json"


def archived(out_dir: str | Path | None = None) -> dict[str, list[dict]]:
    """The finished seeds of every experiment in the archive (results.json or gradients.json), by name."""
    from convladder.tools.files import read_json

    out_dir = Path(out_dir) if out_dir else results_archive(ARCHIVE)
    found: dict[str, list[dict]] = {}
    for name in (*E_VARIANTS, *GRADIENT_RUNS):
        for folder in seed_dirs(out_dir / name):
            path = folder / (RESULTS_FILE if name in E_VARIANTS else GRADIENTS_FILE)
            if path.exists():
                found.setdefault(name, []).append(read_json(path))
    return found


def variant_comparisons(found: dict[str, list[dict]], baseline: list[float]) -> list[dict]:
    """Each E variant with finished seeds: its validation accuracies and take-off epochs, and its difference from
    the study profile's E (`baseline`: its seeds' validation accuracy after the same epochs; Welch, Holm over
    the variants compared)."""
    variants = []
    for name in E_VARIANTS:
        seeds = sorted(found.get(name, []), key=lambda r: r["config"]["seed"])
        if seeds:
            variants.append(dict(name=name, seeds=[r["config"]["seed"] for r in seeds],
                                 val=[r["final"]["val_acc"] for r in seeds],
                                 tests=[r["final"]["test_acc"] for r in seeds],
                                 take_offs=[take_off_epoch(r["history"]["val_acc"]) for r in seeds],
                                 softmax=E_VARIANTS[name][1], init=E_VARIANTS[name][2],
                                 c=compare(baseline, [r["final"]["val_acc"] for r in seeds]) if baseline else None))
    compared = [v for v in variants if v["c"] is not None]
    for v, p_holm in zip(compared, holm_family([v["c"] for v in compared])):
        v["p_holm"] = p_holm
    return variants


def gradient_ratios(found: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Per gradient run and seed: the median over the first epoch's records of the first weight layer's gradient
    norm over the last layer's, and the same of the update norms (what momentum SGD moved the weights by)."""
    ratios: dict[str, list[dict]] = {}
    for name in GRADIENT_RUNS:
        for r in sorted(found.get(name, []), key=lambda r: r["seed"]):
            first, last = r["layers"][0], r["layers"][-1]
            steps = r["steps_per_epoch"] // r["record_every"]  # the first epoch's records
            ratio = {f"{kind}_ratio": statistics.median(a / b for a, b in zip(r["record"][f"{kind}:{first}"][:steps],
                                                                    r["record"][f"{kind}:{last}"][:steps]) if b)
                     for kind in ("grad", "update")}
            ratios.setdefault(name, []).append(dict(seed=r["seed"], model=r["model"], first=first, last=last,
                                                    val_acc=r["history"]["val_acc"], record_every=r["record_every"],
                                                    records=steps, **ratio))
    return ratios
