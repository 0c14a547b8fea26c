"""The PDF report: orchestration. Collect the runs, build the template's context, render, compile.

`build_report(layout)` reads every `results.json` of a profile's runs (plus what the analyses
wrote beside them, where `RunLayout` says), has `convladder.figures` write the figures into the
profile's `figures/` folder, renders the template `report/report.tex.j2` (and the sections it
includes from `report/sections/`) into `report/report.tex` with the context built here, and
compiles `report.pdf`. The context holds numbers, verdicts (from `convladder.analysis`) and
recorded strings only; every sentence and every table's markup is in the template. No number
in the report is typed by hand.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import torch

import convladder.figures as draw
from convladder.analysis import (
    LADDER_STEPS, MIN_SEEDS, TAKE_OFF_ACC, accuracy_at_minutes, architecture, compare, dropout_verdict,
    final_values, generalisation_gaps, gradient_ratio, ladder_verdicts, layer_formula, study_within, take_off_epoch,
)
from convladder.config import PROGRESSIVE_SIDES, TTA_SHIFTS, TrainConfig
from convladder.profiles import FP32_SUFFIX, SOFTMAX_SUFFIX, STUDY_EPOCHS_STATED, PROFILES, config_from_parameters, get_profile
from convladder.hardware import bf16_unit_name, cpu_names
from convladder.io import atomic_write_text, claim, read_json, refuse_links_leaving
from convladder.report_h import TARGET_ACC, h_context
from convladder.figures import file_stem
from convladder.latex import render
from convladder.models import MODEL_NAMES
from convladder.other_sizes import OTHER_SIZES_RUNS, STUDY_SIZES
from convladder.paths import RunLayout, benchmark_json, report_template, results_archive
from convladder.recipe_search import archived_candidates, closest_candidate
from convladder.stability import archived_stability, stability_summary
from convladder.plots import (
    curve_lengths, log_epochs, plot_confusion, plot_mistakes, plot_per_class, plot_recipe_search, plot_size_curve,
    plot_stability, save,
)
from convladder.paths import run_name_of
from convladder.results import collect_runs, git_commit, summarize
from convladder.versions import code_version
from convladder.training import fixed_plan
from convladder.study import STUDY_CURVES, STUDY_OTHER_SIZES, STUDY_PARAMS_A, STUDY_PARAMS_A_FORMULA, STUDY_RESULTS

RUN_ORDER = ("A", "B", "C", "D", "E", "F", "G", "GAP", "GAP+", "GAP-fast")
# What the fast recipe aims at on a 2-core CPU: this test accuracy within this many minutes of training.
FAST_TARGET_ACC = 0.89
FAST_TARGET_MINUTES = 20
TTA_VIEWS = 2 * len(TTA_SHIFTS)  # test-time views: each shifted window, as it is and mirrored
SIZE_LOSS = 0.1  # an accuracy loss at some input size beyond this: "classifies well only near the training scale"
DEFAULT_RECIPE = TrainConfig(model="A", epochs=1)  # TrainConfig's defaults, for configs that omit a key
# The settings that make a recipe (what the setup's recipe list groups runs by).
RECIPE_KEYS = ("optimizer", "lr", "momentum", "nesterov", "batch_size", "drop_last", "weight_decay", "schedule",
               "label_smoothing", "lookahead", "augment", "crop_pad", "alternating_flip", "progressive", "amp",
               "study_softmax", "train_split", "without")
# The diagnosis variants of model E the model-E section words (convladder.diagnosis.E_VARIANTS).
E_OURS, E_STUDY, E_HE = "E, logits + CE (ours)", "E, softmax + CE (the study's)", "E, softmax + CE, He init"
E_OTHERS = ("E, logits + CE, lr 0.01", "F, softmax + CE (the study's)", "F, logits + CE, lr 0.01")
TEX_INSTALL_HINT = (
    "Install TeX Live to compile it, e.g. `sudo apt-get install latexmk texlive-latex-base "
    "texlive-latex-recommended texlive-fonts-recommended` (or `make tex`), then run the report again."
)


class ReportError(RuntimeError):
    """The report could not be compiled; the LaTeX sources are kept."""


# --- the template's context, piece by piece ----------------------------------------------

def continued_name(run: dict) -> str | None:
    """The name of the run this run continues (its folder, or the folder above a seed folder)."""
    return run_name_of(run["continued_from"]) if run.get("continued_from") else None


def _ordered(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The ladder's runs in the study's order, then any others; the double-softmax runs are
    left to the diagnosis section, the fp32 run to the training-cost section."""
    names = [n for n in RUN_ORDER if n in runs] + sorted(n for n in runs if n not in RUN_ORDER)
    return {n: runs[n] for n in names if not n.endswith((SOFTMAX_SUFFIX, FP32_SUFFIX))}


def recipe_key(config: dict) -> tuple:
    """The training settings of a run that make its recipe (not the model, epochs, seed or data);
    momentum and Nesterov only count for SGD."""
    sgd = config.get("optimizer", DEFAULT_RECIPE.optimizer) == "sgd"
    return tuple(config.get(k, getattr(DEFAULT_RECIPE, k)) if sgd or k not in ("momentum", "nesterov") else None
                 for k in RECIPE_KEYS)


def profile_of(runs: dict[str, list[dict]]) -> str:
    """The profile the runs were trained in (as the first run recorded it)."""
    return next(iter(runs.values()))[0]["config"].get("profile", "custom")


def is_ladder_recipe(config: dict) -> bool:
    """Whether a run was trained with its profile's recipe for the ladder (the quick profile: our
    assumption, Adam on logits; the study profile: the study's recipe as the recipe search recovered
    it), not with one of the recipes beyond the ladder (double softmax, fp32, GAP-fast)."""
    try:
        profile = get_profile(config.get("profile", "custom"))
    except ValueError:
        return recipe_key(config) == recipe_key(DEFAULT_RECIPE.to_dict())
    reference = config_from_parameters(profile, config["model"], epochs=1).to_dict()
    return recipe_key(config) == recipe_key(reference)


def recipes_context(runs: dict[str, list[dict]]) -> list[dict]:
    """The distinct training recipes of the report's runs, each with the runs that used it; the
    ladder's recipe first."""
    groups: dict[tuple, dict] = {}
    for name, seeds in runs.items():
        config = seeds[0]["config"]
        entry = groups.setdefault(recipe_key(config), dict(config=config, ladder=is_ladder_recipe(config), runs=[]))
        entry["runs"].append(name)
    return sorted(groups.values(), key=lambda g: not g["ladder"])


def model_context(seeds: list[dict], folder: Path, layers_in: str | None) -> dict:
    """One run for the appendix: what it recorded (layers, parameters, recipe, accuracies per seed)
    and its figures. `layers_in`: the run whose layer table this run shares (None: its own)."""
    first = seeds[0]
    study = STUDY_RESULTS.get(first["name"], {})
    eval_train = [r["final"]["train_acc_eval"] for r in seeds] if all("train_acc_eval" in r["final"] for r in seeds) else None
    return dict(
        name=first["name"], stem=file_stem(first["name"]), model=first["config"]["model"], parameters=first["parameters"],
        epochs=first["history"]["epoch"][-1], seconds=summarize([r["train_seconds"] for r in seeds])[0],
        config=first["config"], ladder_recipe=is_ladder_recipe(first["config"]), continued=continued_name(first),
        seeds=[r["config"]["seed"] for r in seeds], train=final_values(seeds, "train_acc"), train_eval=eval_train,
        val=final_values(seeds, "val_acc"), test=final_values(seeds, "test_acc"),
        study=[(key, study[key]) for key in ("train_acc", "val_acc", "test_acc") if study.get(key) is not None],
        study_epochs=study.get("epochs"), layers=None if layers_in else first.get("layers"), layers_in=layers_in,
        history=draw.history(seeds, folder), proba=draw.probabilities(first, folder), probe_seed=first["config"]["seed"],
    )


def models_context(runs: dict[str, list[dict]], folder: Path) -> list[dict]:
    """Every run of the ladder for the appendix; a model's layer table is shown once, with the first
    run that trained it from scratch."""
    shown: dict[str, str] = {}
    models = []
    for name, seeds in runs.items():
        model = seeds[0]["config"]["model"]
        own = model not in shown and not continued_name(seeds[0]) and "layers" in seeds[0]
        models.append(model_context(seeds, folder, None if own else shown.get(model)))
        if own:
            shown[model] = name
    return models


def ladder_table(runs: dict[str, list[dict]]) -> list[dict]:
    """One row per architecture (A ... GAP), read from the layers its first run recorded, with the
    entries that changed from the rung before."""
    rows, before = [], None
    for name, seeds in runs.items():
        model = seeds[0]["config"]["model"]
        if any(row["model"] == model for row in rows):
            continue
        layers = seeds[0].get("layers")
        if layers is None:
            rows.append(dict(model=model, run=name, recorded=False, parameters=seeds[0]["parameters"], changed=[]))
            continue
        arch = architecture(layers)
        changed = [] if before is None else [key for key in arch if arch[key] != before[key]]
        rows.append(dict(model=model, run=name, recorded=True, changed=changed, **arch,
                         parameters_agree=arch["parameters"] == seeds[0]["parameters"]))
        rows[-1]["parameters"] = seeds[0]["parameters"]
        before = arch
    return rows


def within_interval(values: list[float], reference: float | None) -> str:
    """Whether the study's run lies in the 95% prediction interval of one more of our seeds
    (analysis.study_within)."""
    inside = study_within(values, reference)
    return "--" if inside is None else ("yes" if inside else "no")


def summary_rows(runs: dict[str, list[dict]]) -> list[dict]:
    """One row of the summary table per run: our final accuracies per seed beside the study's."""
    rows = []
    for name, seeds in runs.items():
        study = {"epochs": None, "train_acc": None, "val_acc": None, "test_acc": None, **STUDY_RESULTS.get(name, {})}
        val = final_values(seeds, "val_acc")
        rows.append(dict(
            name=name, parameters=seeds[0]["parameters"], epochs=seeds[0]["history"]["epoch"][-1], seeds=len(seeds),
            train=final_values(seeds, "train_acc"), val=val, test=final_values(seeds, "test_acc"), study=study,
            difference=None if study["val_acc"] is None else summarize(val)[0] - study["val_acc"],
            within=within_interval(val, study["val_acc"]),
        ))
    return rows


def study_epochs_rows(runs: dict[str, list[dict]]) -> list[dict]:
    """The runs trained with their profile's ladder recipe for exactly the epochs the study stated
    (A and B 150, GAP 120, GAP+ 240): the study's slow starts (the epoch each seed left chance) and
    end points beside ours, each judged by the one rule of the summary table (analysis.study_within:
    the study's run in the 95% prediction interval of one more of our seeds)."""
    rows = []
    for name, seeds in runs.items():
        study = STUDY_RESULTS.get(name, {})
        epochs = seeds[0]["history"]["epoch"][-1]
        if not study.get("epochs") or epochs != study["epochs"] or not is_ladder_recipe(seeds[0]["config"]):
            continue
        val = final_values(seeds, "val_acc")
        row = dict(name=name, epochs=epochs, seeds=len(seeds), val=val, study_val=study["val_acc"],
                   within=within_interval(val, study["val_acc"]), test=final_values(seeds, "test_acc"),
                   study_test=study["test_acc"], curve=None)
        if name in STUDY_CURVES:
            take_offs = [take_off_epoch(r["history"]["val_acc"]) for r in seeds]
            left = [float(t) for t in take_offs if t is not None]
            never = len(take_offs) - len(left)  # a seed that never left chance has no take-off to put in an interval
            row["curve"] = dict(take_offs=[_never(t) for t in take_offs], study=STUDY_CURVES[name]["take_off"], never=never,
                                within=within_interval(left, STUDY_CURVES[name]["take_off"]) if not never else "--")
        rows.append(row)
    return rows


def _count_range(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"exactly {low:,}" if low == high else f"between {low:,} and {high:,}"


def data_context(layout: RunLayout) -> dict | None:
    """What the data notebook recorded (data.json), for the template's data section; None if it did not run."""
    if not layout.data_facts.exists():
        return None
    facts = read_json(layout.data_facts)
    return {**facts, "train_range": _count_range(facts["train_counts"]), "test_range": _count_range(facts["test_counts"]),
            "full_split_sizes": facts.get("full_split_sizes"),  # absent from data.json files written before it
            "mean_text": ", ".join(f"{v:.4f}" for v in facts["train_mean"]),
            "std_text": ", ".join(f"{v:.4f}" for v in facts["train_std"]),
            "samples": (layout.figures_dir / "samples.png").exists()}


def _area(size: str) -> int:
    width, height = size.split("x")
    return int(width) * int(height)


def size_means(study: dict) -> dict[str, float]:
    """Mean test accuracy over seeds for every input size of the size curve."""
    return {size: summarize([seed["accuracy"][size] for seed in study["curve"]])[0] for size in study["sizes"]}


def size_verdict(study: dict) -> tuple[str, float]:
    """The input size with the lowest mean accuracy, and how far below the 32x32 accuracy it lies."""
    means = size_means(study)
    worst = min(means, key=means.get)
    return worst, means["32x32"] - means[worst]


def other_sizes_context(layout: RunLayout, figures: Path) -> dict | None:
    """What the other-sizes study measured for each GAP run (GAP+, GAP-fast), for the template's
    image-size section; None if it did not run. Writes the size-curve figure and copies the images."""
    studies = {name: read_json(layout.other_sizes_results(name)) for name in OTHER_SIZES_RUNS
               if layout.other_sizes_results(name).exists()}
    if not studies:
        return None
    save(plot_size_curve(studies), figures / "size_curve.pdf")
    runs = []
    for name, study in studies.items():
        names = study["class_names"]
        images = []
        for item in study["images"]:
            proba = item["proba"]
            top = max(range(len(proba)), key=proba.__getitem__)
            file = f"other_{file_stem(name)}_{item['file']}"
            shutil.copyfile(layout.other_sizes_results(name).parent / item["file"], figures / file)
            images.append(dict(title=item["title"], true=item["true"], predicted=names[top], p_top=proba[top],
                               p_true=proba[names.index(item["true"])], file=file))
        curve = {size: [seed["accuracy"][size] for seed in study["curve"]] for size in study["sizes"]}
        means = size_means(study)
        worst, drop = size_verdict(study)
        runs.append(dict(
            name=name, seeds=len(study["curve"]), images=images, curve_images=study["curve_images"], curve=curve,
            at32=curve["32x32"], best=max(means, key=means.get), worst=worst, drop=drop, narrow=drop > SIZE_LOSS,
            within5=[size for size in sorted(means, key=means.get, reverse=True) if means[size] >= means["32x32"] - 0.05],
        ))
    first = next(iter(studies.values()))
    sizes = sorted(first["sizes"], key=lambda size: (size.split("x")[0] != size.split("x")[1], _area(size), size))
    return dict(runs=runs, sizes=[dict(size=size, area=_area(size) / 1024) for size in sizes],
                study_sizes=[f"{w}x{h}" for w, h in STUDY_SIZES], study_reported=STUDY_OTHER_SIZES,
                limit=SIZE_LOSS)


def softmax_rows(all_runs: dict[str, list[dict]]) -> list[dict]:
    """Each model trained both ways, logits and the study's softmax + cross-entropy: the numbers and the
    verdict (analysis.compare) the template words."""
    rows = []
    for name in MODEL_NAMES:
        if name not in all_runs or name + SOFTMAX_SUFFIX not in all_runs:
            continue
        plain, soft = all_runs[name], all_runs[name + SOFTMAX_SUFFIX]
        take_off_soft = [take_off_epoch(r["history"]["val_acc"]) for r in soft]
        rows.append(dict(
            name=name, epochs=plain[0]["history"]["epoch"][-1], plain=final_values(plain, "val_acc"),
            soft=final_values(soft, "val_acc"),
            study_val=STUDY_RESULTS.get(name, {}).get("val_acc"), study_epochs=STUDY_RESULTS.get(name, {}).get("epochs"),
            take_off_plain=[_never(take_off_epoch(r["history"]["val_acc"])) for r in plain],
            take_off_soft=[_never(t) for t in take_off_soft], left=[t for t in take_off_soft if t is not None],
            c=compare(final_values(plain, "val_acc"), final_values(soft, "val_acc")),
        ))
    return rows


def _never(epoch: int | None) -> str:
    return "never" if epoch is None else str(epoch)


def diagnosis_recipe(diagnosis: dict, runs: dict[str, list[dict]]) -> dict:
    """The recipe the diagnosis trained with (TrainConfig's defaults at its batch size, as diagnosis.py
    builds it), and whether it is the one the ladder's runs of this report used."""
    config = {**DEFAULT_RECIPE.to_dict(), "batch_size": diagnosis["batch_size"], "study_softmax": False}
    ladder = [seeds[0]["config"] for seeds in runs.values() if is_ladder_recipe(seeds[0]["config"])]
    return dict(config=config, ladders=bool(ladder) and recipe_key(config) == recipe_key(ladder[0]))


def model_e_context(diagnosis: dict | None, runs: dict[str, list[dict]], recipe: dict | None) -> dict | None:
    """What the diagnosis measured about E and F (diagnosis.json), for the model-E section; `recipe`: its
    diagnosis_recipe."""
    if diagnosis is None:
        return None

    def variant(v: dict | None) -> dict | None:
        if v is None:
            return None
        seeds = v["seeds"]
        return dict(label=v["label"], logit_std=summarize([s["logit_std_at_init"] for s in seeds])[0],
                    val=[s["final_val_acc"] for s in seeds], learned=sum(s["learned"] for s in seeds), seeds=len(seeds))

    by_label = {v["label"]: v for v in diagnosis["variants"]}
    ladder_e = None
    if "E" in runs:
        e = runs["E"]
        ladder_e = dict(val=final_values(e, "val_acc"), epochs=e[0]["history"]["epoch"][-1], seeds=len(e),
                        softmax=bool(e[0]["config"].get("study_softmax")),
                        learned=summarize(final_values(e, "val_acc"))[0] > diagnosis["learned_threshold"])
    return dict(
        epochs=diagnosis["epochs"], images=diagnosis["train_images"], seeds=len(diagnosis["seeds"]),
        recipe=recipe, threshold=diagnosis["learned_threshold"], variants=[variant(v) for v in diagnosis["variants"]],
        ladder_e=ladder_e, ours=variant(by_label.get(E_OURS)), study=variant(by_label.get(E_STUDY)),
        he=variant(by_label.get(E_HE)), others=[variant(by_label[label]) for label in E_OTHERS if label in by_label],
        share_low=min(diagnosis["one_class_accuracy"]), share_high=max(diagnosis["one_class_accuracy"]),
        lowest=min(s["final_val_acc"] for v in diagnosis["variants"] for s in v["seeds"]),
    )


def parameters_context(runs: dict[str, list[dict]]) -> dict:
    """Every architecture's parameter count as its runs recorded it, beside the count from its recorded
    layer shapes (analysis.layer_formula), and the study's formula for model A."""
    rows, formula_a = [], None
    for row in ladder_table(runs):
        seeds = runs[row["run"]]
        if not row["recorded"]:
            rows.append(dict(model=row["model"], recorded=row["parameters"], from_shapes=None))
            continue
        terms, total = layer_formula(seeds[0]["layers"])
        rows.append(dict(model=row["model"], recorded=row["parameters"], from_shapes=total))
        if row["model"] == "A":
            formula_a = dict(terms=" + ".join(terms), total=total)
    return dict(rows=rows, a=formula_a, study_formula=STUDY_PARAMS_A_FORMULA, study_value=STUDY_PARAMS_A)


def gradients_context(diagnosis: dict | None, recipe: dict | None) -> dict | None:
    """The gradient norms the diagnosis recorded for C and D: per layer, the median over the first and
    the last epoch's steps (mean over seeds), and the first-over-last-layer ratio (analysis.gradient_ratio);
    `recipe`: the diagnosis's (diagnosis_recipe)."""
    if diagnosis is None or not diagnosis.get("gradients"):
        return None
    steps = diagnosis["steps_per_epoch"]
    rows, models = [], {}
    for name, seeds in diagnosis["gradients"].items():
        for layer in seeds[0]["layers"]:
            rows.append(dict(model=name, layer=layer,
                             first=summarize([statistics.median(s["norms"][layer][:steps]) for s in seeds])[0],
                             last=summarize([statistics.median(s["norms"][layer][-steps:]) for s in seeds])[0]))
        models[name] = dict(ratio=summarize([gradient_ratio(s["norms"], s["layers"], steps) for s in seeds])[0],
                            val=[s["val_acc"][-1] for s in seeds], seeds=len(seeds))
    pair = None
    if {"C", "D"} <= models.keys():
        pair = dict(c=models["C"]["ratio"], d=models["D"]["ratio"], factor=models["D"]["ratio"] / models["C"]["ratio"])
    return dict(rows=rows, models=models, pair=pair, steps=steps, epochs=diagnosis["epochs"],
                recipe=recipe,
                images=diagnosis["train_images"])


def stability_context(figures: Path) -> dict | None:
    """The archived GAP-fast stability run (results/gap-fast-stability), for the template's section
    beside GAP-fast; None if it is not in the archive. Writes its figure."""
    archived = archived_stability()
    if not archived:
        return None
    result = archived[0]
    save(plot_stability(result), figures / "gap_fast_stability.pdf")
    config = result["config"]
    return dict(summary=stability_summary(result), epochs=len(result["epochs"]), seed=config["seed"],
                runs=len(archived), recalibration_images=result["recalibration_images"], ema_decay=result["ema_decay"],
                batch_size=config["batch_size"], lr=config["lr"], code_version=result["code_version"],
                seconds=sum(row["seconds"] for row in result["epochs"]))


def recipe_search_context(figures: Path) -> dict | None:
    """The archived recipe search (results/recipe-search), for the template's section; None if the
    archive holds none. Writes the figure of the candidates' validation curves."""
    candidates = archived_candidates()
    if not candidates:
        return None
    save(plot_recipe_search(candidates, STUDY_CURVES), figures / "recipe_search.pdf")
    models = sorted({c["model"] for c in candidates})
    order = {"Adam": 0, "plain SGD": 1}
    rows = sorted(candidates, key=lambda c: (c["model"], order.get(c["optimizer"], 2), c["output"], -c["batch_size"]))
    cpus = sorted({c["cpu"] for c in candidates if c["cpu"]})
    return dict(rows=rows, study=STUDY_CURVES, models=models, cpus=cpus,
                closest={model: closest_candidate(candidates, model) for model in models},
                unfinished=[c for c in candidates if not c["finished"]], seeds=sorted({c["seed"] for c in candidates}))


def errors_context(layout: RunLayout, figures: Path, test_images: int) -> dict | None:
    """What the error analysis measured (errors.json, mistakes.pt), for the template's error section;
    None if it did not run. `test_images`: how many the accuracy table's runs were tested on.
    Writes the confusion, per-class and mistakes figures."""
    if not layout.errors_results.exists():
        return None
    errors = read_json(layout.errors_results)
    classes = errors["class_names"]
    runs = []
    for name, run in errors["runs"].items():
        seeds = run["seeds"]
        stem = file_stem(name)
        save(plot_confusion(seeds, classes, title=f"{name}, summed over {len(seeds)} seed{'s' if len(seeds) > 1 else ''}"),
             figures / f"confusion_{stem}.pdf")
        per = [summarize([s["per_class"][c] for s in seeds])[0] for c in range(len(classes))]
        matrix = [[sum(s["confusion"][i][j] for s in seeds) for j in range(len(classes))] for i in range(len(classes))]
        true, taken = max(((i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j),
                          key=lambda ij: matrix[ij[0]][ij[1]])
        best, worst = max(range(len(classes)), key=per.__getitem__), min(range(len(classes)), key=per.__getitem__)
        runs.append(dict(name=name, seeds=len(seeds), acc=[s["acc"] for s in seeds], confusion_file=f"confusion_{stem}.pdf",
                         best=classes[best], best_acc=per[best], worst=classes[worst], worst_acc=per[worst],
                         confused=classes[true], confused_as=classes[taken],
                         confused_share=matrix[true][taken] / max(1, sum(matrix[true]))))
    save(plot_per_class(errors), figures / "per_class.pdf")
    mistakes = None
    name, run = list(errors["runs"].items())[-1]
    shown = run["seeds"][0].get("mistakes", [])
    if shown and layout.mistake_images.exists():
        images = torch.load(layout.mistake_images, weights_only=True).get(name)
        if images is not None and len(images) == len(shown):
            save(plot_mistakes(images, shown, classes), figures / "mistakes.pdf")
            mistakes = dict(run=name, seed=run["seeds"][0]["seed"], count=len(shown))
    return dict(runs=runs, test_images=errors["test_images"], all_test_images=errors["test_images"] == test_images,
                mistakes=mistakes)


def longer_run(seeds: list[dict], epochs: int) -> dict:
    """The model of a ladder pair that trained longer (`epochs`, as its verdict counted them): where it
    ended, and what ties its plan to its length (training.fixed_plan; empty for a constant learning
    rate), for the report's wording."""
    return dict(name=seeds[0]["name"], epochs=epochs, val=final_values(seeds, "val_acc"),
                plan=fixed_plan(TrainConfig.from_dict(seeds[0]["config"])))


def conclusions_context(runs: dict[str, list[dict]], layout: RunLayout, diagnosis: dict | None) -> dict:
    """The numbers and verdicts the template's conclusions are worded from: one entry per ladder step
    (analysis.LADDER_STEPS) whose two runs are present, plus the size curve and the double softmax."""
    steps = []
    for v in ladder_verdicts(runs):
        low, high = v.step.low, v.step.high
        entry = dict(
            question=v.step.question, low=low, high=high, changes=v.step.changes, c=v.comparison,
            epochs_low=v.epochs_low, epochs_high=v.epochs_high, same_epochs=v.same_epochs, at_epoch=v.at_epoch,
            study_epochs=[f"{n} {STUDY_RESULTS[n]['epochs']}" for n in (low, high) if STUDY_RESULTS.get(n, {}).get("epochs")],
            low_val=v.low_values, high_val=v.high_values,
            # the model that trained longer, and where it ended (its accuracy at the compared epoch is in low/high_val)
            longer=None if v.same_epochs else longer_run(runs[high if v.epochs_high > v.epochs_low else low],
                                                         max(v.epochs_low, v.epochs_high)),
            gradients=None, large_lr=None, gap=None,
        )
        if (low, high) == ("C", "D") and diagnosis and {"C", "D"} <= diagnosis.get("gradients", {}).keys():
            steps_per_epoch = diagnosis["steps_per_epoch"]
            entry["gradients"] = dict(images=diagnosis["train_images"], **{
                n: summarize([gradient_ratio(s["norms"], s["layers"], steps_per_epoch) for s in diagnosis["gradients"][n]])[0]
                for n in ("C", "D")})
        if (low, high) == ("E", "F") and diagnosis:
            by = {d["label"]: d for d in diagnosis["variants"]}
            e, f = by.get("E, logits + CE, lr 0.01"), by.get("F, logits + CE, lr 0.01")
            if e and f:
                entry["large_lr"] = dict(
                    epochs=diagnosis["epochs"], images=diagnosis["train_images"], seeds=len(e["seeds"]),
                    threshold=f"{diagnosis['learned_threshold']:g}",
                    e=[s["final_val_acc"] for s in e["seeds"]], f=[s["final_val_acc"] for s in f["seeds"]],
                    e_learned=sum(s["learned"] for s in e["seeds"]), f_learned=sum(s["learned"] for s in f["seeds"]),
                )
        if (low, high) == ("F", "G"):
            gap = dropout_verdict(runs)
            if gap is not None:
                entry["gap"] = dict(f=generalisation_gaps(runs["F"]), g=generalisation_gaps(runs["G"]), c=gap)
        steps.append(entry)
    size = None
    if layout.other_sizes_results("GAP+").exists():
        study = read_json(layout.other_sizes_results("GAP+"))
        curve = size_means(study)
        worst, drop = size_verdict(study)
        size = dict(count=len(curve), smallest=min(study["sizes"], key=_area), largest=max(study["sizes"], key=_area),
                    at32=curve["32x32"], worst=worst, at_worst=curve[worst], drop=drop, limit=SIZE_LOSS)
    missing = [dict(question=step.question, low=step.low, high=step.high, changes=step.changes,
                    absent=[n for n in (step.low, step.high) if n not in runs])
               for step in LADDER_STEPS if not (step.low in runs and step.high in runs)]
    order = {(step.low, step.high): i for i, step in enumerate(LADDER_STEPS)}
    questions = sorted(steps + missing, key=lambda q: order[q["low"], q["high"]])
    return dict(steps=steps, missing=missing, questions=questions,
                depth_pair=any((s["low"], s["high"]) == ("D", "E") for s in steps), size=size)


def provenance_context(runs: dict[str, list[dict]], damaged: list[str] | None = None) -> dict:
    """Where the numbers come from: code, data, hardware and training time, as the runs recorded them."""
    flat = [r for seeds in runs.values() for r in seeds]
    first = flat[0]
    environment = first["environment"]
    commits = sorted({r["environment"]["git_commit"] for r in flat})
    by_key = {(r["name"], r["config"]["seed"]): r for r in flat}

    def own_seconds(run: dict) -> float:
        # A continued run's history includes the epochs of the run it continues.
        earlier = by_key.get((continued_name(run), run["config"]["seed"]))
        return run["train_seconds"] - (earlier["train_seconds"] if earlier else 0.0)

    def core_share(environment: dict) -> float:
        # a run of one thread on two cores left the other core to a second run (all of them, unrecorded)
        cores = environment["cpu_count"] or 1
        return min(environment.get("torch_threads") or cores, cores) / cores

    versions = sorted({r.get("code_version") for r in flat if r.get("code_version")})
    return dict(
        built_from=git_commit(), built_code_current=code_version() in versions,
        commits=commits, dirty=any(c.endswith("-dirty") for c in commits),
        code_versions=versions,
        checksum=first["data"]["checksum"][:16], sizes=first["data"]["sizes"],
        # runs continued over several sessions may have trained on different machines: each is named
        cpus=cpu_names(r["environment"] for r in flat),
        cpu_counts=sorted({r["environment"]["cpu_count"] for r in flat if r["environment"].get("cpu_count")}),
        torch=environment["torch"],
        # PyTorch's threads per run (a profile's runs may have trained one thread each, two side by side)
        threads=sorted({r["environment"]["torch_threads"] for r in flat if r["environment"].get("torch_threads")}),
        python=environment["python"],
        devices=sorted({r["environment"]["device"] + (f" ({r['environment']['gpu']})" if "gpu" in r["environment"] else "")
                        for r in flat}),
        total_seconds=sum(own_seconds(run) for run in flat), damaged=damaged or [],
        machine_seconds=sum(own_seconds(run) * core_share(run["environment"]) for run in flat),
        rows=[dict(name=name, seeds=len(seeds), epochs=seeds[0]["history"]["epoch"][-1],
                   cpus=cpu_names(r["environment"] for r in seeds),
                   seconds=summarize([r["train_seconds"] for r in seeds])[0],
                   epoch_seconds=statistics.median([t for r in seeds for t in r["history"]["epoch_seconds"]]))
              for name, seeds in runs.items()],
    )


def benchmark_source(benchmark: str | Path | None = None) -> Path | None:
    """The epoch-time benchmark the report reads: `benchmark` if given; else this machine's
    (runs/benchmark, where benchmarks/epoch_time.py writes), else the archived one
    (results/benchmark, committed). None, with a one-line note, when neither exists: the report
    then has no training-cost table."""
    if benchmark is not None:
        return Path(benchmark)
    for candidate in (benchmark_json(), results_archive("benchmark") / benchmark_json().name):
        if candidate.exists():
            return candidate
    print(f"convladder: no epoch-time benchmark ({benchmark_json()}): the report leaves out its training-cost "
          "table; run `python benchmarks/epoch_time.py` (a few minutes) to measure it", file=sys.stderr)
    return None


def benchmark_context(benchmark: Path | None) -> dict | None:
    """Seconds per epoch of the study's pipeline against ours (benchmarks/epoch_time.py's JSON)."""
    if benchmark is None or not benchmark.exists():
        return None
    bench = read_json(benchmark)
    rows, compiled = [], []
    for name, row in bench["models"].items():
        rows.append(dict(name=name, study_style=statistics.median(row["study_style_s"]),
                         fp32=statistics.median(row["ours_fp32_s"]), ours=statistics.median(row["ours_s"]),
                         speedup=row["speedup"], mflops=row["flops_per_image"] / 1e6, gflops=row["gflops"],
                         fp32_peak=100 * row["fraction_of_fp32_peak"], bf16_peak=100 * row["fraction_of_bf16_peak"]))
        if row.get("ours_compiled_s"):
            plain, fast = statistics.median(row["ours_s"]), statistics.median(row["ours_compiled_s"])
            cost = statistics.median(row["compile_s"]) - plain * bench["batch_size"] / bench["train_images"]
            saved = plain - fast
            compiled.append(dict(name=name, plain=plain, compiled=fast, cost=cost,
                                 payback=cost / saved if saved > 0 else None))
    return dict(
        quick=bool(bench.get("quick")), train_images=bench["train_images"], batch_size=bench["batch_size"],
        repeats=bench["repeats"], amp_dtype=str(bench.get("amp_dtype", "bf16")).removeprefix("torch."),
        cores=bench["cores"], clock_ghz=bench["clock_ghz"], flop_per_cycle=bench["flop_per_cycle_fp32"],
        flop_per_cycle_bf16=bench.get("flop_per_cycle_bf16", 2 * bench["flop_per_cycle_fp32"]),
        bf16_unit=bf16_unit_name(bench.get("bf16_unit", "avx512_bf16")) or "no bf16 unit",
        peak_fp32=bench["peak_fp32_gflops"], peak_bf16=bench["peak_bf16_gflops"], cpu=bench["environment"]["cpu"],
        torch=bench["environment"]["torch"], rows=rows, compiled=compiled,
        over_peak=any(row["fraction_of_fp32_peak"] > 1 for row in bench["models"].values()),
    )


def fast_context(runs: dict[str, list[dict]]) -> dict | None:
    """GAP-fast against GAP+ (the study's recipe): accuracy, training time, accuracy at GAP+'s minutes,
    test-time augmentation, and whether the target was met (fast_target)."""
    if "GAP-fast" not in runs or "GAP+" not in runs:
        return None
    fast, slow = runs["GAP-fast"], runs["GAP+"]
    slow_minutes = summarize([r["train_seconds"] for r in slow])[0] / 60
    at_equal = [accuracy_at_minutes(r["history"], slow_minutes) for r in fast]
    optional = lambda key: [r["final"][key] for r in fast if key in r["final"]] or None  # noqa: E731
    return dict(
        config=fast[0]["config"], epochs=fast[0]["history"]["epoch"][-1], seeds=len(fast), test=final_values(fast, "test_acc"),
        seconds=summarize([r["train_seconds"] for r in fast])[0], slow_epochs=slow[0]["history"]["epoch"][-1],
        slow_test=final_values(slow, "test_acc"), slow_val=final_values(slow, "val_acc"),
        slow_seconds=summarize([r["train_seconds"] for r in slow])[0], slow_minutes=slow_minutes,
        at_equal=None if any(a is None for a in at_equal) else at_equal,
        study_test=STUDY_RESULTS["GAP+"]["test_acc"], study_epochs=STUDY_RESULTS["GAP+"]["epochs"],
        flip=optional("test_acc_flip"), tta=optional("test_acc_tta"), tta_views=TTA_VIEWS,
        target=fast_target(fast), target_acc=FAST_TARGET_ACC, target_minutes=FAST_TARGET_MINUTES,
        stem=file_stem("GAP-fast"),
    )


def fp32_context(runs: dict[str, list[dict]]) -> dict | None:
    """Model G with bfloat16 autocast (the default) against the same run in plain fp32."""
    fp32 = "G" + FP32_SUFFIX
    if fp32 not in runs or "G" not in runs:
        return None
    amp, plain = runs["G"], runs[fp32]
    epoch = lambda seeds: statistics.median([t for r in seeds for t in r["history"]["epoch_seconds"]])  # noqa: E731
    return dict(amp=final_values(amp, "test_acc"), plain=final_values(plain, "test_acc"), amp_epoch=epoch(amp),
                plain_epoch=epoch(plain), epochs=amp[0]["history"]["epoch"][-1],
                c=compare(final_values(plain, "test_acc"), final_values(amp, "test_acc")))


def fast_target(fast: list[dict]) -> dict:
    """Whether the GAP-fast runs met the target of FAST_TARGET_ACC test accuracy within
    FAST_TARGET_MINUTES of training (every seed): "met", "met_with_flip", "met_with_tta" (test-time
    augmentation needed), "too_slow" or "short"; and the minutes of the slowest seed."""
    minutes = max(r["train_seconds"] for r in fast) / 60
    lowest = lambda key: min(r["final"].get(key, 0.0) for r in fast)  # noqa: E731
    if minutes > FAST_TARGET_MINUTES:
        verdict = "too_slow"
    elif lowest("test_acc") >= FAST_TARGET_ACC:
        verdict = "met"
    elif lowest("test_acc_flip") >= FAST_TARGET_ACC:
        verdict = "met_with_flip"
    elif lowest("test_acc_tta") >= FAST_TARGET_ACC:
        verdict = "met_with_tta"
    else:
        verdict = "short"
    return dict(verdict=verdict, minutes=minutes)


PAIRED = {name for step in LADDER_STEPS for name in (step.low, step.high)}  # the models the verdicts compare


def document_context(runs: dict[str, list[dict]], summary: list[dict], steps: list[dict]) -> dict:
    """What the front matter, abstract, setup and limitations read: the profile, the epochs and seeds,
    the best model, the count of verdicts drawn."""
    first = next(iter(runs.values()))[0]
    profile = first["config"]["profile"]
    try:
        description = get_profile(profile).description
    except ValueError:
        description = "custom settings"
    epochs = [row["epochs"] for row in summary]
    seeds = [row["seeds"] for row in summary]
    ladder = [row for row in summary if row["name"] in STUDY_RESULTS]
    paired = [row for row in summary if row["name"] in PAIRED]
    best = max(ladder or summary, key=lambda row: summarize(row["test"])[0])
    return dict(
        profile=profile, profile_description=description, study_params_A=STUDY_PARAMS_A,
        study_params_A_formula=STUDY_PARAMS_A_FORMULA, epochs_stated=sorted(STUDY_EPOCHS_STATED),
        seed_count=max(seeds), min_seeds=MIN_SEEDS, sizes=first["data"]["sizes"],
        # the fewest and most seeds of a model the verdicts compare (GAP+ and the runs beyond the ladder are in none),
        # and the models with too few for a verdict
        fewest_seeds=min([row["seeds"] for row in paired] or seeds),
        most_paired_seeds=max([row["seeds"] for row in paired] or seeds),
        few_seeded=[row["name"] for row in paired if row["seeds"] < MIN_SEEDS],
        subset=first["config"].get("train_size") is not None, epochs_low=min(epochs), epochs_high=max(epochs), best=best,
        shorter=[row for row in summary if row["study"]["epochs"] and row["epochs"] < row["study"]["epochs"]],
        # the models of the ladder whose epochs the study does not state: their epochs are our choice
        chosen_epochs=[row for row in ladder if not row["study"]["epochs"]],
        called=[s for s in steps if s["c"].verdict != "inconclusive"], progressive_sides=list(PROGRESSIVE_SIDES),
        params={row["name"]: row["parameters"] for row in summary},
    )


def write_sources(layout: RunLayout, benchmark: Path | None = None) -> Path:
    """Write the figures and render the template into report.tex; returns the report folder holding it."""
    run_dir = layout.root
    benchmark = benchmark_source(benchmark)
    damaged: list[str] = []
    runs = collect_runs(run_dir, damaged)
    if not runs:
        raise ReportError(f"no finished runs (results.json) under {run_dir}: train some models first")
    report_dir, figures = layout.report_dir, layout.figures_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    ordered = _ordered(runs)
    if not ordered:
        raise ReportError(f"no ladder runs under {run_dir} (only double-softmax runs): train some models first")
    if all(seeds[0]["config"]["model"] == "H" for seeds in ordered.values()):
        raise ReportError(f"{run_dir} holds model H's runs alone, which have no report of their own: the quick and "
                          f"study reports show them (convladder report --profile quick)")
    extra = {name: seeds for name, seeds in runs.items() if name not in ordered}
    diagnosis_path = layout.diagnosis_results
    diagnosis = read_json(diagnosis_path) if diagnosis_path.exists() else None
    everything = {**ordered, **extra}
    summary = summary_rows(ordered)
    conclusions = conclusions_context(runs, layout, diagnosis)
    for step in conclusions["steps"]:
        step["figure"] = draw.pair(ordered, step["low"], step["high"], figures)
        step["log_epochs"] = log_epochs(curve_lengths({step["low"]: ordered[step["low"]], step["high"]: ordered[step["high"]]}))
    ladder_recipe = {name: seeds for name, seeds in ordered.items() if is_ladder_recipe(seeds[0]["config"])}
    softmax = softmax_rows(runs)
    recipe = diagnosis_recipe(diagnosis, ordered) if diagnosis else None
    model_e, gradients = model_e_context(diagnosis, ordered, recipe), gradients_context(diagnosis, recipe)
    if model_e:
        model_e["figure"] = draw.variants(diagnosis, figures)
    if gradients:
        gradients["figure"] = draw.gradient_norms(diagnosis, figures)
    context = {
        **document_context(ordered, summary, conclusions["steps"]), "summary": summary, "data": data_context(layout),
        "ladder_figure": draw.ladder(ladder_recipe, figures) if ladder_recipe else None,
        "ladder_log_epochs": log_epochs(curve_lengths(ladder_recipe)),
        "ladder_epochs": sorted({seeds[0]["history"]["epoch"][-1] for seeds in ladder_recipe.values()}),
        "ladder_table": ladder_table(ordered), "recipes": recipes_context(everything),
        "recovered_recipe": bool(get_profile(profile_of(ordered)).recipe) if profile_of(ordered) in PROFILES else False,
        "study_epochs": study_epochs_rows(ordered),
        "softmax": softmax, "softmax_figure": draw.double_softmax(runs, [row["name"] for row in softmax], figures),
        "take_off_acc": f"{TAKE_OFF_ACC:g}", "conclusions": conclusions, "model_e": model_e,
        "parameters": parameters_context(ordered), "gradients": gradients,
        "provenance": provenance_context(everything, damaged), "benchmark": benchmark_context(benchmark),
        "fast": fast_context(runs), "fp32": fp32_context(runs), "minutes_figure": draw.accuracy_minutes(runs, figures),
        "models": models_context(ordered, figures),
    }
    test_images = next(iter(ordered.values()))[0]["data"]["sizes"]["test"]
    context.update(other_sizes=other_sizes_context(layout, figures), errors=errors_context(layout, figures, test_images),
                   stability=stability_context(figures), recipe_search=recipe_search_context(figures),
                   h=h_context(everything, figures, code_version("H")), h_target_acc=TARGET_ACC)
    atomic_write_text(render(report_template(), context), report_dir / "report.tex")
    return report_dir


def compile_pdf(report_dir: Path) -> Path:
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        raise ReportError(f"latexmk / pdflatex not found; the LaTeX sources are in {report_dir}. {TEX_INSTALL_HINT}")
    for output in report_dir.glob("report.*"):  # what latexmk and pdflatex write, by name: never through a link
        claim(output)
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"]
    proc = subprocess.run(cmd, cwd=report_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        log = (report_dir / "report.log")
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else proc.stdout[-3000:]
        raise ReportError(f"latexmk failed in {report_dir} (see report.log there):\n{tail}")
    return report_dir / "report.pdf"


def build_report(layout: RunLayout, benchmark=None) -> Path:
    """Write the report's sources from a profile's runs and compile its PDF (`layout.pdf`).

    `benchmark`: the JSON of benchmarks/epoch_time.py (default: `benchmark_source`'s choice).
    """
    from filelock import FileLock

    refuse_links_leaving(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(claim(layout.root / ".report.lock"))  # two reports of one folder take turns, not LaTeX's files
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        print(f"waiting for another report of {layout.root} to finish", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        return compile_pdf(write_sources(layout, benchmark))
    finally:
        lock.release()
