"""The report's ladder: which runs form it, its tables (the ladder, the study's epochs, the recipes,
the models' layers), the double-softmax rows, and the conclusions the verdicts draw."""

from __future__ import annotations

from pathlib import Path

import convladder.report.figures as draw
from convladder.analysis.architecture import architecture, layer_formula
from convladder.analysis.statistics import (
    LADDER_STEPS, MIN_SEEDS, TAKE_OFF_LOW_ACC, compare, dropout_verdict, final_values, first_above,
    generalisation_gaps, gradient_ratio, holm_family, late_rise, ladder_verdicts, prediction_interval,
    study_below_chance, study_within, study_accuracy_interval, take_off_epoch, take_off_shifts,
)
from convladder.core.config import PROGRESSIVE_SIDES, TTA_SHIFTS, TrainConfig, fixed_plan
from convladder.core.registry import model_names
from convladder.plan.profiles import (
    FP32_SUFFIX,
    SOFTMAX_SUFFIX,
    STUDY_EPOCHS_INFERRED,
    STUDY_EPOCHS_STATED,
    get_profile,
    profile_recipe,
)
from convladder.plan.recipes import LADDER, label, recorded_recipe
from convladder.plan.study import (
    STUDY_CURVES,
    STUDY_PARAMS_A,
    STUDY_PARAMS_A_FORMULA,
    STUDY_RESULTS,
)
from convladder.report.figures import file_stem
from convladder.results.layout import RunLayout, run_name_of
from convladder.results.records import summarize
from convladder.tools.files import read_json
from convladder.results.schema import final_epoch

RUN_ORDER = ("A", "B", "C", "D", "E", "F", "G", "GAP", "GAP+", "GAP-fast")


def continued_name(run: dict) -> str | None:
    """The name of the run this run continues (its folder, or the folder above a seed folder)."""
    return run_name_of(run["continued_from"]) if run["continued_from"] else None


def continued_starts(runs: dict[str, list[dict]]) -> dict[str, dict]:
    """The runs among `runs` that continue another of them: name -> the run continued and the first epoch of its own."""
    found = {}
    for name, seeds in runs.items():
        parent = continued_name(seeds[0])
        if parent in runs:
            found[name] = dict(parent=parent, start=final_epoch(runs[parent][0]) + 1)
    return found


def _ordered(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The ladder's runs in the study's order, then any others; the double-softmax runs are
    left to the diagnosis section, the fp32 run to the training-cost section."""
    names = [n for n in RUN_ORDER if n in runs] + sorted(n for n in runs if n not in RUN_ORDER)
    return {n: runs[n] for n in names if not n.endswith((SOFTMAX_SUFFIX, FP32_SUFFIX))}


def profile_of(runs: dict[str, list[dict]]) -> str:
    """The profile the runs were trained in (as the first run recorded it)."""
    return next(iter(runs.values()))[0]["config"].get("profile", "custom")


def is_ladder_recipe(run: dict) -> bool:
    """Whether a run (its results) was trained with the recipe its profile plans for its model with no
    change of its own (the quick profile: our assumption for the ladder, Adam on logits; the study
    profile: the study's recipe as the recipe search recovered it; H: its own), not with one of the
    recipes beyond the ladder (double softmax, fp32, GAP-fast). The run's recorded recipe decides."""
    recorded = recorded_recipe(run)
    try:
        return recorded == profile_recipe(run["config"].get("profile", "custom"), run["config"]["model"])
    except ValueError:  # a run of no profile (custom): our ladder's recipe as it is
        return recorded == {"name": LADDER, "changes": {}}


def recipes_context(runs: dict[str, list[dict]]) -> list[dict]:
    """The distinct recipes the report's runs recorded (a name and its changes), each with the runs that used
    it and one config to describe it; the ladder's recipe first."""
    groups: dict[str, dict] = {}
    for name, seeds in runs.items():
        recorded = recorded_recipe(seeds[0])
        group = groups.setdefault(label(recorded), dict(
            config=seeds[0]["config"], name=recorded["name"], changes=recorded["changes"],
            ladder=is_ladder_recipe(seeds[0]), runs=[]))
        group["runs"].append(name)
    return sorted(groups.values(), key=lambda g: not g["ladder"])


def model_context(seeds: list[dict], folder: Path, layers_in: str | None) -> dict:
    """One run for the appendix: what it recorded (layers, parameters, recipe, accuracies per seed)
    and its figures. `layers_in`: the run whose layer table this run shares (None: its own)."""
    first = seeds[0]
    study = STUDY_RESULTS.get(first["name"], {})
    measured = generalisation_gaps(seeds) is not None  # the training split also evaluated in evaluation mode
    eval_train = [r["final"]["train_acc_eval"] for r in seeds] if measured else None
    return dict(
        name=first["name"], stem=file_stem(first["name"]), model=first["config"]["model"], parameters=first["parameters"],
        epochs=final_epoch(first), seconds=summarize([r["train_seconds"] for r in seeds])[0],
        config=first["config"], ladder_recipe=is_ladder_recipe(first), continued=continued_name(first),
        seeds=[r["config"]["seed"] for r in seeds], train=final_values(seeds, "train_acc"), train_eval=eval_train,
        val=final_values(seeds, "val_acc"), test=final_values(seeds, "test_acc"),
        study=[(key, study[key]) for key in ("train_acc", "val_acc", "test_acc") if study.get(key) is not None],
        study_epochs=study.get("epochs"), layers=None if layers_in else first["layers"], layers_in=layers_in,
        history=draw.history(seeds, folder), proba=draw.probabilities(first, folder), probe_seed=first["config"]["seed"],
    )


def models_context(runs: dict[str, list[dict]], folder: Path) -> list[dict]:
    """Every run of the ladder for the appendix; a model's layer table is shown once, with the first
    run that trained it from scratch."""
    shown: dict[str, str] = {}
    models = []
    for name, seeds in runs.items():
        model = seeds[0]["config"]["model"]
        own = model not in shown and not continued_name(seeds[0]) and seeds[0]["layers"] is not None
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
        layers = seeds[0]["layers"]
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
    (analysis.study_within): for a take-off epoch."""
    inside = study_within(values, reference)
    return "--" if inside is None else ("yes" if inside else "no")


def accuracy_within(values: list[float], reference: float | None, val_images: int,
                    split_quantile: str = "normal") -> tuple[str, tuple | None]:
    """Whether the study's validation accuracy lies in analysis.study_accuracy_interval (our seeds' prediction
    interval widened by both splits' sampling noise and the study's rounding), and that interval; "n/c" (not
    compared) where the study's number lies below what a model that learned nothing scores (analysis.below_chance)."""
    interval = study_accuracy_interval(values, val_images, split_quantile=split_quantile)
    if reference is None or interval is None:
        return "--", interval
    if study_below_chance(reference):
        return "n/c", interval
    return ("yes" if interval[0] <= reference <= interval[1] else "no"), interval


def summary_rows(runs: dict[str, list[dict]]) -> list[dict]:
    """One row of the summary table per run: our final accuracies per seed beside the study's."""
    rows = []
    for name, seeds in runs.items():
        study = {"epochs": None, "train_acc": None, "val_acc": None, "test_acc": None, **STUDY_RESULTS.get(name, {})}
        val = final_values(seeds, "val_acc")
        within, interval = accuracy_within(val, study["val_acc"], seeds[0]["data"]["sizes"]["val"])
        wide = accuracy_within(val, study["val_acc"], seeds[0]["data"]["sizes"]["val"], split_quantile="t")[0]
        rows.append(dict(
            name=name, parameters=seeds[0]["parameters"], epochs=final_epoch(seeds[0]), seeds=len(seeds),
            train=final_values(seeds, "train_acc"), val=val, test=final_values(seeds, "test_acc"), study=study,
            difference=None if study["val_acc"] is None or within == "n/c" else summarize(val)[0] - study["val_acc"],
            within=within, interval=interval, construction_decides=wide != within,
            train_rise=[late_rise(r["history"]) for r in seeds],
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
        epochs = final_epoch(seeds[0])
        if not study.get("epochs") or epochs != study["epochs"] or not is_ladder_recipe(seeds[0]):
            continue
        val = final_values(seeds, "val_acc")
        row = dict(name=name, epochs=epochs, seeds=len(seeds), val=val, study_val=study["val_acc"],
                   within=accuracy_within(val, study["val_acc"], seeds[0]["data"]["sizes"]["val"])[0],
                   test=final_values(seeds, "test_acc"),
                   study_test=study["test_acc"], curve=None)
        if name in STUDY_CURVES:
            take_offs = [take_off_epoch(r["history"]["val_acc"]) for r in seeds]
            left = [float(t) for t in take_offs if t is not None]
            never = len(take_offs) - len(left)  # a seed that never left chance has no take-off to put in an interval
            low = [take_off_epoch(r["history"]["val_acc"], TAKE_OFF_LOW_ACC) for r in seeds]  # the sensitivity check
            row["curve"] = dict(take_offs=[_never(t) for t in take_offs], study=STUDY_CURVES[name]["take_off"], never=never,
                                low_take_offs=[_never(t) for t in low],
                                # each seed's first epoch above the low threshold, even one it falls back from
                                low_first=[_never(first_above(r["history"]["val_acc"], TAKE_OFF_LOW_ACC)) for r in seeds],
                                within=within_interval(left, STUDY_CURVES[name]["take_off"]) if not never else "--",
                                low=min(left, default=None), high=max(left, default=None),
                                interval=prediction_interval(left) if not never else None,
                                shifts=take_off_shifts({f"{name} seed {r['config']['seed']}": r["history"]["val_acc"]
                                                        for r in seeds}))
        rows.append(row)
    return rows


def _count_range(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"exactly {low:,}" if low == high else f"between {low:,} and {high:,}"


def softmax_rows(all_runs: dict[str, list[dict]]) -> list[dict]:
    """Each model trained both ways, logits and the study's softmax + cross-entropy: the numbers and the
    verdict (analysis.compare) the template words."""
    rows = []
    for name in model_names():
        if name not in all_runs or name + SOFTMAX_SUFFIX not in all_runs:
            continue
        plain, soft = all_runs[name], all_runs[name + SOFTMAX_SUFFIX]
        take_off_soft = [take_off_epoch(r["history"]["val_acc"]) for r in soft]
        rows.append(dict(
            name=name, epochs=final_epoch(plain[0]), plain=final_values(plain, "val_acc"),
            soft=final_values(soft, "val_acc"),
            study_val=STUDY_RESULTS.get(name, {}).get("val_acc"), study_epochs=STUDY_RESULTS.get(name, {}).get("epochs"),
            take_off_plain=[_never(take_off_epoch(r["history"]["val_acc"])) for r in plain],
            take_off_soft=[_never(t) for t in take_off_soft], left=[t for t in take_off_soft if t is not None],
            c=compare(final_values(plain, "val_acc"), final_values(soft, "val_acc")),
        ))
    return rows


def parameters_context(runs: dict[str, list[dict]]) -> dict:
    """Every architecture's parameter count as its runs recorded it, beside the count from its recorded
    layer shapes (analysis.architecture.layer_formula), and the study's formula for model A."""
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
                    at32=curve["32x32"], worst=worst, at_worst=curve[worst], drop=drop, limit=SIZE_LOSS,
                    images=study["curve_images"])
    missing = [dict(question=step.question, low=step.low, high=step.high, changes=step.changes,
                    absent=[n for n in (step.low, step.high) if n not in runs])
               for step in LADDER_STEPS if not (step.low in runs and step.high in runs)]
    order = {(step.low, step.high): i for i, step in enumerate(LADDER_STEPS)}
    questions = sorted(steps + missing, key=lambda q: order[q["low"], q["high"]])
    for entry, p_holm in zip(steps, holm_family([entry["c"] for entry in steps])):  # over the questions answered
        entry["p_holm"] = p_holm
    return dict(steps=steps, missing=missing, questions=questions,
                depth_pair=any((s["low"], s["high"]) == ("D", "E") for s in steps), size=size)


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
        study_params_A_formula=STUDY_PARAMS_A_FORMULA, epochs_stated=sorted(STUDY_EPOCHS_STATED - STUDY_EPOCHS_INFERRED.keys()),
        epochs_inferred=STUDY_EPOCHS_INFERRED,
        seed_count=max(seeds), min_seeds=MIN_SEEDS, sizes=first["data"]["sizes"],
        # the fewest and most seeds of a model the verdicts compare (GAP+ and the runs beyond the ladder are in none),
        # and the models with too few for a verdict
        fewest_seeds=min([row["seeds"] for row in paired] or seeds),
        most_paired_seeds=max([row["seeds"] for row in paired] or seeds),
        few_seeded=[row["name"] for row in paired if row["seeds"] < MIN_SEEDS],
        fewer_seeds=[row for row in summary if row["seeds"] < max(seeds)],  # the runs with fewer than the most seeds
        subset=first["config"].get("train_size") is not None, epochs_low=min(epochs), epochs_high=max(epochs), best=best,
        shorter=[row for row in summary if row["study"]["epochs"] and row["epochs"] < row["study"]["epochs"]],
        # the models of the ladder whose epochs the study does not state: their epochs are our choice
        chosen_epochs=[row for row in ladder if not row["study"]["epochs"]],
        called=[s for s in steps if s["c"].verdict != "inconclusive"], progressive_sides=list(PROGRESSIVE_SIDES),
        params={row["name"]: row["parameters"] for row in summary},
    )


TTA_VIEWS = 2 * len(TTA_SHIFTS)  # test-time views: each shifted window, as it is and mirrored


# an accuracy loss at some input size beyond this: "classifies well only near the training scale"; the sizes within it
# of 32x32 are listed as those it classifies well (one threshold for both)
SIZE_LOSS = 0.1


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


def _never(epoch: int | None) -> str:
    return "never" if epoch is None else str(epoch)
