"""The recipe probes, read (results/recipe-probes, trained by convladder.experiments.recipe_probes): each probe
seed's take-off and accuracy beside the study profile's run of the same model and seed with the recipe unchanged,
and plain fp32 against bfloat16 autocast over the seeds both have."""

from __future__ import annotations

from pathlib import Path

from convladder.analysis.statistics import compare, compare_paired, first_above, take_off_epoch
from convladder.plan.recipes import STUDY_RECOVERED, changes
from convladder.results.layout import results_archive, seed_dirs

ARCHIVE = "recipe-probes"
EPOCHS = 150  # the study's epochs for A and B: every probe is read after them (a longer one also at its end)
MODELS = ("A", "B")


def archived_probes(out_dir: str | Path | None = None, ladder: dict[str, list[dict]] | None = None) -> list[dict]:
    """Every probe seed in the archive (folders `<model>-<probe>/seed<k>`), finished (results.json) or not (its
    checkpoint's history), in folder order: probe, model, seed, what it changes from the recovered recipe, epochs
    done and planned, take-off, validation accuracy after EPOCHS (None before) and at its last epoch, minutes; and,
    from `ladder` (the study profile's runs), the take-off and validation after EPOCHS of its run of the same model
    and seed with the recipe unchanged (None where that run has not reached EPOCHS)."""
    from convladder.results.records import read_seed

    out_dir = Path(out_dir) if out_dir else results_archive(ARCHIVE)
    base = unchanged_curves(ladder or {})
    found = []
    runs = sorted(f for f in out_dir.iterdir() if f.is_dir() and "-" in f.name) if out_dir.is_dir() else []
    for folder in (seed for run in runs for seed in seed_dirs(run)):
        seed = read_seed(folder)
        if seed is None:
            continue
        config, history, results = seed
        finished = results is not None
        model, probe = folder.parent.name.split("-", 1)
        val = list(history["val_acc"])
        unchanged = base.get((model, config["seed"]), [])
        reached = len(unchanged) >= EPOCHS
        found.append(dict(probe=probe, model=model, seed=config["seed"], changes=changes(config, STUDY_RECOVERED),
                          config=config, code_version=(results or {}).get("code_version"),
                          finished=finished, epochs=len(val), planned=config["epochs"], take_off=take_off_epoch(val),
                          first_above=first_above(val), val_acc=val[-1],
                          val_150=val[EPOCHS - 1] if len(val) >= EPOCHS else None,
                          minutes=sum(history["epoch_seconds"]) / 60, curve=val,
                          unchanged_take_off=take_off_epoch(unchanged) if reached else None,
                          unchanged_val=unchanged[EPOCHS - 1] if reached else None))
    return found


def unchanged_curves(ladder: dict[str, list[dict]]) -> dict[tuple[str, int], list[float]]:
    """The study profile's validation curves of A and B by (model, seed): the recipe unchanged."""
    return {(m, r["config"]["seed"]): list(r["history"]["val_acc"]) for m in MODELS for r in ladder.get(m, [])}


def precision_comparisons(probes: list[dict], ladder: dict[str, list[dict]]) -> list[dict]:
    """For each model with finished fp32 seeds that the study profile also trained: bfloat16 (the profile's runs)
    against plain fp32 on validation accuracy after EPOCHS, over the seeds both have, paired by seed where each pair
    differs in the precision alone (then a seed sets the same initial weights and batch order on both sides:
    analysis.compare_paired), else by Welch's test (analysis.compare)."""
    base = unchanged_curves(ladder)
    runs = {(m, r["config"]["seed"]): r for m in MODELS for r in ladder.get(m, [])}
    fp32 = {(p["model"], p["seed"]): p for p in probes if p["changes"] == {"amp": False} and p["val_150"] is not None}
    out = []
    for model in MODELS:
        seeds = sorted(s for m, s in fp32 if m == model and len(base.get((m, s), [])) >= EPOCHS)
        if seeds:
            bf16 = [base[model, s][EPOCHS - 1] for s in seeds]
            plain = [fp32[model, s]["val_150"] for s in seeds]
            paired = all(precision_alone(fp32[model, s], runs[model, s]) for s in seeds)
            out.append(dict(model=model, seeds=seeds, bf16=bf16, fp32=plain,
                            take_offs_bf16=[take_off_epoch(base[model, s]) for s in seeds],
                            take_offs_fp32=[fp32[model, s]["take_off"] for s in seeds],
                            c=(compare_paired if paired else compare)(bf16, plain)))
    return out


def precision_alone(probe: dict, run: dict) -> bool:
    """Whether a probe seed and the study profile's run of the same seed differ in the precision alone: their
    configs but `amp` (and the profile's name), and their training code's declared version where both recorded one."""
    a, b = probe["config"], run["config"]
    differ = {key for key in a.keys() | b.keys() if key != "profile" and a.get(key) != b.get(key)}
    versions = {probe.get("code_version"), run.get("code_version")} - {None, ""}
    return differ == {"amp"} and len(versions) <= 1
