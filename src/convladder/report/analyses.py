"""The report's context from the analyses beside the runs: the data, other input sizes, the error
analysis, the diagnosis (model E, gradient norms), GAP-fast's stability and the recipe search."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import torch

from convladder.analysis.recipe_search import (SELECTION_SEED, archived_candidates, candidate_rows, choice_forced,
                                               closest_candidate, further_seeds, output_pairs, softmax_escapes)
from convladder.analysis.stability import archived_stability, stability_summary
from convladder.analysis.statistics import (
    final_values,
    gradient_ratio,
    take_off_shifts,
)
from convladder.core.config import TrainConfig
from convladder.plan.profiles import OTHER_SIZES_RUNS
from convladder.plan.recipes import LADDER, record, recorded_recipe
from convladder.plan.study import STUDY_CURVES, STUDY_OTHER_SIZES, STUDY_SIZES
from convladder.report.figures import file_stem, weight_layer_names
from convladder.report.ladder import (
    SIZE_LOSS,
    _area,
    _count_range,
    is_ladder_recipe,
    size_means,
    size_verdict,
)
from convladder.report.archive_plots import plot_longer, plot_recipe_search, plot_stability
from convladder.report.error_plots import plot_confusion, plot_mistakes, plot_per_class
from convladder.report.plots import plot_size_curve, save
from convladder.results.layout import RunLayout
from convladder.results.records import summarize
from convladder.tools.files import DamagedFile, copy_file, read_json
from convladder.tools.hardware import plain_cpu_name
from convladder.results.schema import final_epoch

# The diagnosis variants of model E the model-E section words (convladder.experiments.diagnosis.E_VARIANTS).
E_OURS, E_STUDY, E_HE = "E, logits + CE (ours)", "E, softmax + CE (the study's)", "E, softmax + CE, He init"


E_OTHERS = ("E, logits + CE, lr 0.01", "F, softmax + CE (the study's)", "F, logits + CE, lr 0.01")


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








def image_name(name: str) -> str:
    """An image file name from an other-sizes study's JSON, which names files beside it: a plain `.png` name, never a
    path (a JSON written elsewhere could name any file to be copied into the report); DamagedFile otherwise."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.png", str(name)):
        raise DamagedFile(f"an other-sizes study names the image {name!r}, not a file name of its own: it is damaged "
                          f"or not convladder's; run the other-sizes step again")
    return name


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
            source = layout.other_sizes_results(name).parent / image_name(item["file"])
            file = f"other_{file_stem(name)}_{source.name}"
            copy_file(source, figures / file)
            images.append(dict(title=item["title"], true=item["true"], predicted=names[top], p_top=proba[top],
                               p_true=proba[names.index(item["true"])], file=file,
                               correct=names[top] == item["true"],
                               photo=not item["file"].startswith("test")))  # the cat photo, not a CIFAR test image
        curve = {size: [seed["accuracy"][size] for seed in study["curve"]] for size in study["sizes"]}
        means = size_means(study)
        worst, drop = size_verdict(study)
        runs.append(dict(
            # the single images are classified by the run's first seed, the first of the curve's
            name=name, seeds=len(study["curve"]), images=images, image_seed=study["curve"][0]["seed"],
            curve_images=study["curve_images"], curve=curve,
            at32=curve["32x32"], best=max(means, key=means.get), worst=worst, drop=drop, narrow=drop > SIZE_LOSS,
            near=[size for size in sorted(means, key=means.get, reverse=True)
                  if size != "32x32" and means[size] >= means["32x32"] - SIZE_LOSS],
        ))
    first = next(iter(studies.values()))
    sizes = sorted(first["sizes"], key=lambda size: (size.split("x")[0] != size.split("x")[1], _area(size), size))
    return dict(runs=runs, sizes=[dict(size=size, area=_area(size) / 1024) for size in sizes],
                study_sizes=[f"{w}x{h}" for w, h in STUDY_SIZES], study_reported=STUDY_OTHER_SIZES,
                limit=SIZE_LOSS)




def diagnosis_recipe(diagnosis: dict, runs: dict[str, list[dict]]) -> dict:
    """The recipe the diagnosis trained with (our ladder's, Adam on logits, at its batch size, as diagnosis.py
    builds it), and whether it is the one the ladder's runs of this report recorded."""
    config = TrainConfig(model="E", epochs=1, batch_size=diagnosis["batch_size"]).to_dict()
    recorded = record(config, LADDER)
    ladder = [recorded_recipe(seeds[0]) for seeds in runs.values() if is_ladder_recipe(seeds[0])]
    return dict(config=config, recipe=recorded, ladders=bool(ladder) and ladder[0] == recorded)


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
        ladder_e = dict(val=final_values(e, "val_acc"), epochs=final_epoch(e[0]), seeds=len(e),
                        softmax=bool(e[0]["config"].get("study_softmax")),
                        learned=summarize(final_values(e, "val_acc"))[0] > diagnosis["learned_threshold"])
    return dict(
        epochs=diagnosis["epochs"], images=diagnosis["train_images"], seeds=len(diagnosis["seeds"]),
        recipe=recipe, threshold=diagnosis["learned_threshold"], variants=[variant(v) for v in diagnosis["variants"]],
        ladder_e=ladder_e, ours=variant(by_label.get(E_OURS)), study=variant(by_label.get(E_STUDY)),
        he=variant(by_label.get(E_HE)), others=[variant(by_label[label]) for label in E_OTHERS if label in by_label],
        share_low=min(diagnosis["one_class_accuracy"]), share_high=max(diagnosis["one_class_accuracy"]),
        # the lowest validation accuracy of any variant or of any seed of the ladder's E
        lowest=min([s["final_val_acc"] for v in diagnosis["variants"] for s in v["seeds"]]
                   + (ladder_e["val"] if ladder_e else [])),
    )


def gradients_context(diagnosis: dict | None, recipe: dict | None) -> dict | None:
    """The gradient norms the diagnosis recorded for C and D: per layer, the median over the first and
    the last epoch's steps (mean over seeds), and the first-over-last-layer ratio (analysis.gradient_ratio);
    `recipe`: the diagnosis's (diagnosis_recipe)."""
    if diagnosis is None or not diagnosis.get("gradients"):
        return None
    steps = diagnosis["steps_per_epoch"]
    rows, models = [], {}
    for name, seeds in diagnosis["gradients"].items():
        names = weight_layer_names(seeds[0]["layers"])
        for layer in seeds[0]["layers"]:
            rows.append(dict(model=name, layer=layer, name=names[layer],
                             first=summarize([statistics.median(s["norms"][layer][:steps]) for s in seeds])[0],
                             last=summarize([statistics.median(s["norms"][layer][-steps:]) for s in seeds])[0]))
        models[name] = dict(ratio=summarize([gradient_ratio(s["norms"], s["layers"], steps) for s in seeds])[0],
                            val=[s["val_acc"][-1] for s in seeds], seeds=len(seeds))
    pair = None
    if {"C", "D"} <= models.keys():
        pair = dict(c=models["C"]["ratio"], d=models["D"]["ratio"], factor=models["D"]["ratio"] / models["C"]["ratio"])
    return dict(rows=rows, models=models, pair=pair, steps=steps, epochs=diagnosis["epochs"],
                recipe=recipe, seeds=min(m["seeds"] for m in models.values()),
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
    runs = sorted(candidates, key=lambda c: (c["model"], order.get(c["optimizer"], 2), c["output"], -c["batch_size"],
                                             c["seed"]))
    cpus = sorted({plain_cpu_name(c["cpu"]) for c in candidates if c["cpu"]})
    closest = {model: closest_candidate(candidates, model) for model in models}
    return dict(rows=candidate_rows(runs), runs=runs, study=STUDY_CURVES, models=models, cpus=cpus, closest=closest,
                forced={model: choice_forced(runs, model, chosen) for model, chosen in closest.items() if chosen},
                selection_seed=SELECTION_SEED, further={model: further_seeds(runs, model) for model in models},
                selection_runs=[c for c in runs if c["seed"] == SELECTION_SEED], output_pairs=output_pairs(runs),
                softmax_escapes=softmax_escapes(runs),
                unfinished=[c for c in candidates if not c["finished"]],
                shifts=take_off_shifts({i: c["curve"] for i, c in enumerate(runs)}))  # by run: the template words it


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
        title = f"{name}, summed over {len(seeds)} seeds" if len(seeds) > 1 else f"{name}, one seed"
        save(plot_confusion(seeds, classes, title=title), figures / f"confusion_{stem}.pdf")
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


def longer_context(runs: dict[str, list[dict]], out_dir: Path | None = None, figures: Path | None = None) -> dict | None:
    """The study profile's C, D and E continued to 150 epochs (results/study-150), for the template's section:
    each seed's take-off and accuracy at each budget, D's first epoch at the study's D accuracy, and the ReLU,
    depth and batch-norm questions at every budget (Welch, Holm over all of them). None without the archive.
    `runs`: the study profile's runs (F's for the batch-norm question)."""
    from convladder.analysis.longer_training import BUDGETS, archived_seeds, budget_verdicts, first_epoch_at
    from convladder.analysis.statistics import holm_family, mean_interval
    from convladder.plan.study import STUDY_RESULTS

    continued = archived_seeds(out_dir)
    if not continued:
        return None
    verdicts = budget_verdicts(continued, runs)
    first: dict[tuple[str, str], tuple[int, str]] = {}  # each pair's first budget and its verdict there
    for v, p_holm in zip(verdicts, holm_family([v["comparison"] for v in verdicts])):  # in budget order
        v.update(c=v.pop("comparison"), p_holm=p_holm)
        budget, verdict = first.setdefault((v["low"], v["high"]), (v["budget"], v["c"].verdict))
        v.update(first_budget=budget, first_verdict=verdict, changed=v["c"].verdict != verdict)
    d_target = STUDY_RESULTS["D"]["val_acc"]
    rows = [dict(model=model, **s) for model, seeds in continued.items() for s in seeds]
    d_finished = [s for s in continued.get("D", []) if s["finished"]]
    # D's gap between training (the study's way: the epoch's batches, in training mode) and validation accuracy
    d_gap = {b: dict(mean=sum(gaps) / len(gaps), interval=mean_interval(gaps), n=len(gaps),
                     val=sum(s["at"][b] for s in d_finished) / len(gaps))
             for b in (min(BUDGETS), max(BUDGETS))
             if (gaps := [s["train_at"][b] - s["at"][b] for s in d_finished if b in s["at"]]) and len(gaps) == len(d_finished)}
    if figures is not None:
        save(plot_longer(rows, d_target, min(BUDGETS)), figures / "longer.pdf")
    return dict(rows=rows, budgets=BUDGETS, verdicts=verdicts, epochs=max(s["epochs"] for s in rows),
                figure="longer.pdf" if figures is not None else None,
                unfinished=[r for r in rows if not r["finished"]], d_target=d_target,
                d_crossing=[first_epoch_at(s["curve"], d_target) for s in continued.get("D", [])], d_gap=d_gap,
                never={model: [s["seed"] for s in seeds if s["take_off"] is None] for model, seeds in continued.items()},
                seeds={model: len(seeds) for model, seeds in continued.items()},
                shifts=take_off_shifts({f"{r['model']} seed {r['seed']}": r["curve"] for r in rows}))


def ladder_diagnosis_context(runs: dict[str, list[dict]], out_dir: Path | None = None) -> dict | None:
    """The diagnoses under the study profile's recipe (results/study-diagnosis), for the template's section: E's
    variants against the profile's E (Welch, Holm over the variants), and C's and D's first-to-last layer ratios of
    gradient and update norms per seed, C against D on their log10 (Welch). None without the archive."""
    import math

    from convladder.analysis.ladder_diagnosis import E_VARIANTS, EPOCHS, archived, gradient_ratios, variant_comparisons
    from convladder.analysis.statistics import compare, take_off_epoch

    found = archived(out_dir)
    if not found:
        return None
    e_runs = runs.get("E", [])
    baseline = [r["final"]["val_acc"] for r in e_runs if final_epoch(r) == EPOCHS]
    variants = variant_comparisons(found, baseline)
    ratios = {r[0]["model"]: r for r in gradient_ratios(found).values()}
    logs = {model: [math.log10(s["grad_ratio"]) for s in seeds] for model, seeds in ratios.items()}
    return dict(epochs=EPOCHS, variants=variants, baseline=baseline,
                baseline_take_offs=[take_off_epoch(r["history"]["val_acc"]) for r in e_runs],
                ratios=ratios, gradient_epochs=max((len(s["val_acc"]) for seeds in ratios.values() for s in seeds),
                                                   default=0),
                c_vs_d=compare(logs["C"], logs["D"]) if {"C", "D"} <= logs.keys() else None,
                # by (variant, seed): the template words the variant
                shifts=take_off_shifts({(name, r["config"]["seed"]): r["history"]["val_acc"]
                                        for name, seeds in [("E", e_runs)] + [(v, found.get(v, [])) for v in E_VARIANTS]
                                        for r in seeds}))


def recipe_probes_context(runs: dict[str, list[dict]], out_dir: Path | None = None) -> dict | None:
    """The recipe probes (results/recipe-probes), for the template's section: each probe seed beside the study
    profile's run of the same model and seed (the recipe unchanged), bfloat16 against fp32, and the finished probe of
    B whose take-off lies closest to the study's, with every finished seed of B and every run of A with the same change.
    None without the archive.
    `runs`: the study profile's runs."""
    from convladder.analysis.recipe_probes import EPOCHS, archived_probes, precision_comparisons
    from convladder.plan.study import STUDY_CURVES

    probes = archived_probes(out_dir, runs)
    if not probes:
        return None
    probes.sort(key=lambda p: (p["model"], sorted(p["changes"].items(), key=str), p["seed"]))
    b_taking_off = [p for p in probes if p["model"] == "B" and p["finished"] and p["take_off"] is not None]
    closest = min(b_taking_off, key=lambda p: abs(p["take_off"] - STUDY_CURVES["B"]["take_off"]), default=None)
    closest_a = [p for p in probes if closest and p["model"] == "A" and p["changes"] == closest["changes"]]
    # every finished seed of B with the closest probe's change, so that its take-off is not one seed picked of several
    closest_b = [p for p in probes if closest and p["model"] == "B" and p["finished"] and p["changes"] == closest["changes"]]
    return dict(rows=probes, epochs=EPOCHS, study=STUDY_CURVES, precision=precision_comparisons(probes, runs),
                unfinished=[p for p in probes if not p["finished"]], closest=closest, closest_a=closest_a,
                closest_b=closest_b,
                # labelled by the row's index: the template words the change (change_words)
                shifts=take_off_shifts({i: p["curve"] for i, p in enumerate(probes) if p["finished"]}))


def recipe_robustness_context(runs: dict[str, list[dict]], out_dir: Path | None = None) -> dict | None:
    """The six questions under the study profile's recipe and under Adam at the same epochs (results/study-adam),
    for the template's section. None until the archive holds a finished run."""
    from convladder.analysis.recipe_robustness import ARCHIVE, EPOCHS, robustness_rows
    from convladder.results.layout import results_archive
    from convladder.results.records import collect_runs

    adam = collect_runs(Path(out_dir) if out_dir else results_archive(ARCHIVE))
    if not adam:
        return None
    rows = robustness_rows(runs, adam)
    return dict(rows=rows, epochs=EPOCHS, seeds={model: len(seeds) for model, seeds in adam.items()},
                vals={model: final_values(seeds, "val_acc") for model, seeds in adam.items()},
                answered=[r for r in rows if r.answered],
                flips=[r for r in rows if r.flips])
