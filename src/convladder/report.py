"""The PDF report: LaTeX inputs and figures written from results files, compiled with latexmk.

`build_report(layout)` reads every `results.json` of a profile's runs (plus what the analyses
wrote beside them, where `RunLayout` says), writes the figures and `generated/*.tex` into the
profile's `report/` and `figures/` folders, renders the template `report/report.tex.j2` there, and
compiles `report.pdf`. No number in the report is typed by hand.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
from pathlib import Path


from convladder.analysis import (
    MIN_SEEDS, TAKE_OFF_ACC, Comparison, compare, dropout_verdict, generalisation_gaps, gradient_ratio,
    accuracy_at_minutes, ladder_verdicts, study_within, take_off_epoch,
)
from convladder.config import PROGRESSIVE_SIDES, TTA_SHIFTS, TrainConfig
from convladder.profiles import FP32_SUFFIX, SOFTMAX_SUFFIX, STUDY_EPOCHS_STATED, get_profile
from convladder.errors import analysis_test_split
from convladder.io import atomic_write_text, read_json
from convladder.latex import fmt_acc, fmt_ms, render, tex_escape
from convladder.models import DESCRIPTIONS, MODEL_NAMES, count_parameters, create_model
from convladder.other_sizes import STUDY_SIZES
from convladder.paths import RunLayout, benchmark_json, report_template
from convladder.plots import (
    plot_accuracy_minutes, plot_compare, plot_confusion, plot_gradient_norms, plot_history, plot_ladder, plot_mistakes, plot_per_class,
    plot_proba, plot_size_curve, plot_variants, save,
)
from convladder.paths import run_name_of
from convladder.results import collect_runs, summarize
from convladder.study import STUDY_OTHER_SIZES, STUDY_PARAMS_A, STUDY_PARAMS_A_FORMULA, STUDY_RESULTS

RUN_ORDER = ("A", "B", "C", "D", "E", "F", "G", "GAP", "GAP+", "GAP-fast")
# What the fast recipe aims at on a 2-core CPU: this test accuracy within this many minutes of training.
FAST_TARGET_ACC = 0.89
FAST_TARGET_MINUTES = 20
TTA_VIEWS = 2 * len(TTA_SHIFTS)  # test-time views: each shifted window, as it is and mirrored
SIZE_LOSS = 0.1  # an accuracy loss at some input size beyond this: "classifies well only near the training scale"
STUDY_RECIPE = TrainConfig(model="A", epochs=1)  # the defaults: the study's training settings
TEX_INSTALL_HINT = (
    "Install TeX Live to compile it, e.g. `sudo apt-get install latexmk texlive-latex-base "
    "texlive-latex-recommended texlive-fonts-recommended` (or `make tex`), then run the report again."
)


class ReportError(RuntimeError):
    """The report could not be compiled; the LaTeX sources are kept."""


# --- small LaTeX helpers ----------------------------------------------------------------

def finals(seeds: list[dict], key: str) -> list[float]:
    return [r["final"][key] for r in seeds]


def mean_of(seeds: list[dict], key: str) -> float:
    return summarize(finals(seeds, key))[0]


def seeds_text(seeds: list[dict]) -> str:
    n = len(seeds)
    return "1 seed" if n == 1 else f"{n} seeds (mean $\\pm$ standard deviation)"


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.0f}\\,s" if seconds < 120 else f"{seconds / 60:.1f}\\,min"


def file_stem(run_name: str) -> str:
    return run_name.replace("+", "plus")


def macro_name(run_name: str) -> str:
    """A LaTeX command name (letters only): "GAP+" -> "GAPplus", "GAP-fast" -> "GAPfast"."""
    return re.sub(r"[^A-Za-z]", "", run_name.replace("+", "plus"))


# --- pieces of the report ---------------------------------------------------------------

def continued_name(run: dict) -> str | None:
    """The name of the run this run continues (its folder, or the folder above a seed folder)."""
    return run_name_of(run["continued_from"]) if run.get("continued_from") else None


def _ordered(runs: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The ladder's runs in the study's order, then any others; the double-softmax runs are
    left to the diagnosis section, the fp32 run to the training-cost section."""
    names = [n for n in RUN_ORDER if n in runs] + sorted(n for n in runs if n not in RUN_ORDER)
    return {n: runs[n] for n in names if not n.endswith((SOFTMAX_SUFFIX, FP32_SUFFIX))}


def layer_table(model_name: str) -> str:
    """The model's layers, one row each, with their true parameter counts."""
    model = create_model(model_name)
    rows = []
    for name, module in model.named_modules():
        if len(list(module.children())) or not name:
            continue
        params = count_parameters(module)
        rows.append(f"\\texttt{{{tex_escape(name)}}} & \\texttt{{{tex_escape(repr(module))}}} & {params:,} \\\\")
    total = count_parameters(model)
    return (
        "{\\footnotesize\\begin{longtable}{@{}lp{0.72\\textwidth}r@{}}\n\\toprule\nlayer & module & parameters \\\\\n\\midrule\n"
        + "\n".join(rows)
        + f"\n\\midrule\n & total & {total:,} \\\\\n\\bottomrule\n\\end{{longtable}}}}\n"
    )


def recipe_text(config: dict) -> str:
    """The training settings of a run, in words; where they differ from the study's, that is said."""
    text = f"{config['optimizer']} lr {config['lr']:g}, batch {config['batch_size']}"
    extras = []
    if config.get("schedule", "constant") != "constant":
        extras.append(f"{config['schedule']} schedule")
    if config.get("weight_decay"):
        extras.append(f"weight decay {config['weight_decay']:g}")
    if config.get("label_smoothing"):
        extras.append(f"label smoothing {config['label_smoothing']:g}")
    if config.get("augment"):
        flip = "flip in alternate epochs" if config.get("alternating_flip") else "flip"
        extras.append(f"{flip} + crop (moved up to {config.get('crop_pad', 4)} pixels)")
    if config.get("progressive"):
        sides = "/".join(str(side) for side in PROGRESSIVE_SIDES)
        extras.append(f"the first {config['progressive']:.0%} of the epochs on {sides}-pixel images")
    if config.get("amp"):
        extras.append("bf16 autocast")
    if config.get("study_softmax"):
        extras.append("softmax + CE")
    return tex_escape(", ".join([text] + extras))


def is_study_recipe(config: dict) -> bool:
    keys = ("optimizer", "lr", "weight_decay", "schedule", "label_smoothing", "augment", "progressive")
    return all(config.get(k, getattr(STUDY_RECIPE, k)) == getattr(STUDY_RECIPE, k) for k in keys)


def model_section(seeds: list[dict], figures: Path) -> str:
    """One run's layers, parameter count, history over its seeds, accuracies and probability vectors."""
    first = seeds[0]
    name, model = first["name"], first["config"]["model"]
    stem = file_stem(name)
    classes = first["data"]["class_names"]
    save(plot_history([r["history"] for r in seeds], title=f"model {name}"), figures / f"history_{stem}.pdf")
    probas = {"before training": first["proba_before"], "after training": first["proba_after"]}
    probas = {k: v for k, v in probas.items() if v is not None}
    save(plot_proba(probas, classes, title=f"test image {first['probe_index']} (a {classes[first['probe_label']]})"),
         figures / f"proba_{stem}.pdf")
    study = STUDY_RESULTS.get(name, {})
    source = continued_name(first)
    continued = f" It continues run {tex_escape(source)}, seed by seed." if source else ""
    per_seed = "; ".join(f"seed {r['config']['seed']}: {r['final']['val_acc']:.3f}" for r in seeds)
    parts = [
        f"Model {tex_escape(name)}: {tex_escape(DESCRIPTIONS.get(model, model))}. "
        f"{first['parameters']:,} parameters, trained for {first['history']['epoch'][-1]} epochs "
        f"({fmt_seconds(summarize([r['train_seconds'] for r in seeds])[0])} per seed) with {recipe_text(first['config'])}"
        f"{'' if is_study_recipe(first['config']) else ' (not the study' + chr(39) + 's recipe)'}.{continued} "
        f"Accuracy after the last epoch over {seeds_text(seeds)}: train {fmt_ms(finals(seeds, 'train_acc'))}, "
        f"validation {fmt_ms(finals(seeds, 'val_acc'))}, test {fmt_ms(finals(seeds, 'test_acc'))}"
        f"{f' (validation per seed: {per_seed})' if len(seeds) > 1 else ''}; the study reported train "
        f"{fmt_acc(study.get('train_acc'))}, validation {fmt_acc(study.get('val_acc'))}, test {fmt_acc(study.get('test_acc'))}.\n",
    ]
    if source is None:
        parts.append(layer_table(model))
    band = " The line is the mean over the seeds, the shaded band their range." if len(seeds) > 1 else ""
    parts.append(
        "\\begin{figure}[H]\\centering\n"
        f"\\includegraphics[width=\\textwidth]{{history_{stem}.pdf}}\n"
        f"\\caption{{Training history of model {tex_escape(name)}: mean loss and accuracy per epoch on train and "
        f"validation, and seconds per epoch.{band}}}\n\\end{{figure}}\n"
        "\\begin{figure}[H]\\centering\n"
        f"\\includegraphics[width=0.75\\textwidth]{{proba_{stem}.pdf}}\n"
        f"\\caption{{Output probability vector of model {tex_escape(name)} (seed {first['config']['seed']}) for one "
        f"test image.}}\n\\end{{figure}}\n"
    )
    return "".join(parts)


def within_interval(values: list[float], reference: float | None) -> str:
    """Whether the study's run lies in the 95% prediction interval of one more of our seeds
    (analysis.study_within)."""
    inside = study_within(values, reference)
    return "--" if inside is None else ("yes" if inside else "no")


def comparison_text(c: Comparison, high: str, low: str) -> str:
    """One sentence for a comparison drawn by analysis.compare: the difference, its 95% interval, the verdict."""
    interval = "" if c.ci_low is None else f" (95\\% interval {c.ci_low:+.3f} to {c.ci_high:+.3f})"
    if c.verdict == "inconclusive":
        return (f"The difference, {high} minus {low}, is {c.difference:+.3f}{interval}: inconclusive "
                f"({c.reason}; {c.n_high} against {c.n_low} seeds).")
    word = "higher" if c.verdict == "higher" else "lower"
    return f"The difference, {high} minus {low}, is {c.difference:+.3f}{interval}: {high} is {word} ({c.n_high} against {c.n_low} seeds)."


def summary_rows(runs: dict[str, list[dict]]) -> list[dict]:
    """One row of the summary table per run: our final accuracies per seed beside the study's."""
    rows = []
    for name, seeds in runs.items():
        study = {"epochs": None, "train_acc": None, "val_acc": None, "test_acc": None, **STUDY_RESULTS.get(name, {})}
        val = finals(seeds, "val_acc")
        rows.append(dict(
            name=name, parameters=seeds[0]["parameters"], epochs=seeds[0]["history"]["epoch"][-1], seeds=len(seeds),
            train=finals(seeds, "train_acc"), val=val, test=finals(seeds, "test_acc"), study=study,
            difference=None if study["val_acc"] is None else summarize(val)[0] - study["val_acc"],
            within=within_interval(val, study["val_acc"]),
        ))
    return rows


def _count_range(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"exactly {low:,}" if low == high else f"between {low:,} and {high:,}"


def ladder_figure(runs: dict[str, list[dict]], figures: Path) -> str:
    """The ladder's runs on the study's recipe (GAP-fast, with its own recipe and many more epochs,
    has its own figures), so that their few epochs are not squashed beside it."""
    ladder = {name: seeds for name, seeds in runs.items() if is_study_recipe(seeds[0]["config"])}
    if not ladder:
        return "\\emph{No run of this report uses the study's recipe, so the ladder figure is left out.}\n"
    save(plot_ladder(ladder, STUDY_RESULTS), figures / "ladder.pdf")
    epochs = sorted({seeds[0]["history"]["epoch"][-1] for seeds in ladder.values()})
    profile = next(iter(ladder.values()))[0]["config"]["profile"]
    return (
        "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{ladder.pdf}\n"
        "\\caption{The ladder on the study's recipe (profile \\texttt{" + tex_escape(profile) + "}, "
        + ", ".join(map(str, epochs)) + " epochs). Left: validation accuracy of every run per epoch (mean over seeds, "
        "band: range). Right: final validation and test accuracy (mean, error bar: standard deviation over seeds) "
        "beside the study's validation accuracy after its own, longer training.}\n\\end{figure}\n"
    )


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


def other_sizes_section(layout: RunLayout, figures: Path) -> str:
    path = layout.other_sizes_results
    if not path.exists():
        return "\\emph{The other-sizes notebook was not run for this report.}\n"
    study = read_json(path)
    names = study["class_names"]
    rows, figs = [], []
    for item in study["images"]:
        proba = item["proba"]
        top = max(range(len(proba)), key=proba.__getitem__)
        true_p = proba[names.index(item["true"])]
        rows.append(f"{tex_escape(item['title'])} & {item['true']} & {names[top]} & {proba[top]:.3f} & {true_p:.3f} \\\\")
        shutil.copyfile(path.parent / item["file"], figures / f"other_{item['file']}")
        figs.append(f"\\includegraphics[height=1.5cm]{{other_{item['file']}}}")
    study_text = "; ".join(
        f"{s['photo']} predicted {s['predicted']} at {s['probability'] * 100:.6g}\\%" for s in STUDY_OTHER_SIZES
    )
    save(plot_size_curve(study), figures / "size_curve.pdf")
    curve = {size: [seed["accuracy"][size] for seed in study["curve"]] for size in study["sizes"]}
    ordered = sorted(curve, key=lambda size: summarize(curve[size])[0], reverse=True)
    table = " \\\\\n".join(f"{size} & {_area(size) / 1024:.2f} & {fmt_ms(curve[size])}" for size in ordered)
    at32 = summarize(curve["32x32"])[0]
    best = ordered[0]
    study_sizes = ", ".join(f"{w}x{h}: {fmt_ms(curve[f'{w}x{h}'])}" for w, h in STUDY_SIZES)
    within5 = [size for size in ordered if summarize(curve[size])[0] >= at32 - 0.05]
    worst, drop = size_verdict(study)
    scale_text = (
        f"The model runs on every size, as the study said, but it classifies well only near the scale it was trained "
        f"on: at {worst} it loses {drop:.3f}." if drop > SIZE_LOSS else
        f"The model runs on every size, as the study said, and loses at most {drop:.3f} at any size tried."
    )
    seeds = len(study["curve"])
    return (
        f"The weights of run {tex_escape(study['gap_run'])} (first seed) were given images that are not 32x32 (width x "
        "height). The study used two photos of its own; its cat photo is not available, so we use scikit-image's cat "
        "photo (\\texttt{chelsea}) resized to 32x20, and CIFAR test images resized to 32x20 and 32x18.\n\n"
        f"\\begin{{center}}{' '.join(figs)}\\end{{center}}\n"
        "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}llllr@{}}\n\\toprule\n"
        "image & true class & predicted & probability & p(true class) \\\\\n\\midrule\n"
        + "\n".join(rows).replace("%", "\\%")
        + "\n\\bottomrule\n\\end{tabular}\n\\caption{GAP predictions on images of other sizes.}\n\\end{table}\n"
        f"The study reported: {study_text}. Two photos are anecdotes; the curve below measures the same question on "
        f"{study['curve_images']:,} test images resized (bilinear, antialiased) to each size, for "
        f"{'each of ' + str(seeds) + ' seeds' if seeds > 1 else 'one seed'} of {tex_escape(study['gap_run'])}.\n"
        "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{size_curve.pdf}\n"
        "\\caption{GAP test accuracy against input size. Left: square images by side length (band: range over seeds). "
        "Right: other aspect ratios (error bar: range over seeds), the 32x32 accuracy dotted.}\n\\end{figure}\n"
        f"At the training size (32x32) the accuracy is {fmt_ms(curve['32x32'])}; the best size is {best} "
        f"({fmt_ms(curve[best])}). Within 5 points of the 32x32 accuracy: {', '.join(within5)}. At the study's sizes: "
        f"{study_sizes}. {scale_text}\n"
        "{\\footnotesize\\begin{longtable}{@{}lrr@{}}\n\\toprule\nsize (w x h) & area / 32x32 & test accuracy \\\\\n"
        "\\midrule\n" + table + " \\\\\n\\bottomrule\n\\end{longtable}}\n"
    )


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
            name=name, epochs=plain[0]["history"]["epoch"][-1], plain=finals(plain, "val_acc"), soft=finals(soft, "val_acc"),
            study_val=STUDY_RESULTS.get(name, {}).get("val_acc"), study_epochs=STUDY_RESULTS.get(name, {}).get("epochs"),
            take_off_plain=[_never(take_off_epoch(r["history"]["val_acc"])) for r in plain],
            take_off_soft=[_never(t) for t in take_off_soft], left=[t for t in take_off_soft if t is not None],
            c=compare(finals(plain, "val_acc"), finals(soft, "val_acc")),
        ))
    return rows


def _never(epoch: int | None) -> str:
    return "never" if epoch is None else str(epoch)


def softmax_figure(all_runs: dict[str, list[dict]], figures: Path) -> None:
    pairs = [(n, n + SOFTMAX_SUFFIX) for n in MODEL_NAMES if n in all_runs and n + SOFTMAX_SUFFIX in all_runs]
    if pairs:
        save(plot_compare({f"{a}: logits + CE": all_runs[a] for a, _ in pairs}
                          | {f"{a}: softmax + CE": all_runs[b] for a, b in pairs}, title="validation accuracy"),
             figures / "double_softmax.pdf")


def model_e_section(diagnosis: dict | None, runs: dict[str, list[dict]], figures: Path) -> str:
    if diagnosis is None:
        return "\\emph{The diagnosis notebook was not run for this report.}\n"
    save(plot_variants(diagnosis), figures / "e_variants.pdf")
    rows = []
    for v in diagnosis["variants"]:
        accs = [s["final_val_acc"] for s in v["seeds"]]
        learned = sum(s["learned"] for s in v["seeds"])
        rows.append(
            f"{tex_escape(v['label'])} & {summarize([s['logit_std_at_init'] for s in v['seeds']])[0]:.4f} & "
            f"{fmt_ms(accs)} & {learned} of {len(v['seeds'])} \\\\"
        )
    share = diagnosis["one_class_accuracy"]
    by_label = {v["label"]: v for v in diagnosis["variants"]}
    learned = lambda label: sum(s["learned"] for s in by_label[label]["seeds"]) if label in by_label else None  # noqa: E731
    text = []
    if "E" in runs:
        e = runs["E"]
        text.append(f"Trained as specified (logits + cross-entropy, the ladder's run E, {seeds_text(e)}), model E reaches "
                    f"{fmt_ms(finals(e, 'val_acc'))} validation accuracy after {e[0]['history']['epoch'][-1]} epochs on "
                    f"the full training split: " + ("it learns." if mean_of(e, "val_acc") > diagnosis["learned_threshold"] else "it does not learn here either."))
    study_e = by_label.get("E, softmax + CE (the study's)")
    ours_e = by_label.get("E, logits + CE (ours)")
    if study_e and ours_e:
        n = len(study_e["seeds"])
        text.append(
            f"With the study's softmax + cross-entropy it learned in {learned(study_e['label'])} of {n} seed(s) within "
            f"{diagnosis['epochs']} epochs on {diagnosis['train_images']:,} images "
            f"(validation {fmt_ms([s['final_val_acc'] for s in study_e['seeds']])}, against "
            f"{fmt_ms([s['final_val_acc'] for s in ours_e['seeds']])} with logits).")
        he = by_label.get("E, softmax + CE, He init")
        if he:
            default_std = summarize([s["logit_std_at_init"] for s in ours_e["seeds"]])[0]
            he_std = summarize([s["logit_std_at_init"] for s in he["seeds"]])[0]
            text.append(
                f"At initialisation E's logits have standard deviation {default_std:.4f} with PyTorch's default "
                f"initialisation and {he_std:.4f} with He initialisation; with He initialisation the study's setup "
                f"learned in {learned(he['label'])} of {len(he['seeds'])} seed(s) (validation "
                f"{fmt_ms([s['final_val_acc'] for s in he['seeds']])}).")
    for label in ("E, logits + CE, lr 0.01", "F, softmax + CE (the study's)", "F, logits + CE, lr 0.01"):
        if label in by_label:
            v = by_label[label]
            text.append(f"{tex_escape(label)}: validation {fmt_ms([s['final_val_acc'] for s in v['seeds']])}, learned in "
                        f"{learned(label)} of {len(v['seeds'])}.")
    lowest = min(s["final_val_acc"] for v in diagnosis["variants"] for s in v["seeds"])
    text.append(
        f"A model that predicts one class for every image scores that class's share of the validation split, between "
        f"{min(share):.3f} and {max(share):.3f} here, and the lowest validation accuracy of any variant, failed or not, "
        f"is {lowest:.3f}. To score 0.01 a model has to avoid the right class almost always, which no variant did. "
        + ("The study's 0.01 is therefore best read as a measuring or reporting error (for instance a count divided by "
           "the wrong total), not as what E reached." if lowest > 0.05 else
           "One variant came close to it, so a failing E can score below chance here."))
    return (
        "The study reported 0.01 validation accuracy for model E and said it ``does not learn at all''. We trained E "
        f"and F for {diagnosis['epochs']} epochs on {diagnosis['train_images']:,} training images "
        f"({len(diagnosis['seeds'])} seed(s)), changing one thing at a time: the study's softmax + cross-entropy, "
        "He initialisation instead of PyTorch's default, a ten times larger learning rate. A variant counts as having "
        f"learned when its final validation accuracy exceeds {diagnosis['learned_threshold']:g}.\n"
        "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}lrrr@{}}\n\\toprule\n"
        "variant & logit s.d. at init & validation accuracy & learned \\\\\n\\midrule\n"
        + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}\n"
        "\\caption{What makes models E and F fail or learn. Logit s.d.: standard deviation of the last linear layer's "
        "outputs on 512 validation images before training.}\n\\end{table}\n"
        "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{e_variants.pdf}\n"
        "\\caption{E and F variants: validation accuracy per epoch (mean over seeds) and training loss per step (as "
        "optimised: with softmax + CE the loss cannot go below 1.46).}\n\\end{figure}\n"
        + " ".join(text) + "\n"
    )


def _formula(model) -> tuple[str, int]:
    """The parameter count from the layer shapes, as a formula and its value."""
    from torch import nn

    terms, total = [], 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            terms.append(f"({k}*{module.in_channels}+1)*{module.out_channels}")
            total += (k * module.in_channels + 1) * module.out_channels
        elif isinstance(module, nn.Linear):
            terms.append(f"({module.in_features}+1)*{module.out_features}")
            total += (module.in_features + 1) * module.out_features
        elif isinstance(module, nn.BatchNorm2d):
            terms.append(f"2*{module.num_features}")
            total += 2 * module.num_features
    return " + ".join(terms), total


def parameters_section() -> str:
    rows = []
    for name in MODEL_NAMES:
        model = create_model(name)
        formula, value = _formula(model)
        true = count_parameters(model)
        rows.append(f"{name} & {true:,} & {value:,} & {'yes' if value == true else 'no'} \\\\")
    formula_a, value_a = _formula(create_model("A"))
    study_value = eval(STUDY_PARAMS_A_FORMULA, {"__builtins__": {}})  # the study's arithmetic, evaluated
    return (
        f"The study counted model A's parameters as \\texttt{{{tex_escape(STUDY_PARAMS_A_FORMULA)}}} $=$ {study_value}. "
        f"From the layer shapes (a $k\\times k$ convolution has $(k^2 c_\\mathrm{{in}} + 1) c_\\mathrm{{out}}$ "
        f"parameters, a linear layer $(n_\\mathrm{{in}} + 1) n_\\mathrm{{out}}$, a batch norm 2 per channel) model A has "
        f"\\texttt{{{tex_escape(formula_a)}}} $=$ {value_a:,}: the study's formula gave both convolutions one input "
        f"channel and the linear layer one output, {value_a / study_value:.1f} times too few. For every model, the "
        "count from this formula and the count PyTorch reports:\n"
        "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}lrrl@{}}\n\\toprule\n"
        "model & parameters (PyTorch) & from the layer shapes & agree \\\\\n\\midrule\n"
        + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}\n\\caption{True parameter counts.}\n\\end{table}\n"
    )


def gradients_section(diagnosis: dict | None, figures: Path) -> str:
    if diagnosis is None or not diagnosis.get("gradients"):
        return "\\emph{The gradient measurements were not run for this report.}\n"
    save(plot_gradient_norms(diagnosis), figures / "gradient_norms.pdf")
    steps = diagnosis["steps_per_epoch"]
    rows, ratios = [], {}
    for name, seeds in diagnosis["gradients"].items():
        layers = seeds[0]["layers"]
        for layer in layers:
            first = [statistics.median(s["norms"][layer][:steps]) for s in seeds]
            last = [statistics.median(s["norms"][layer][-steps:]) for s in seeds]
            rows.append(f"{name} & \\texttt{{{tex_escape(layer)}}} & {summarize(first)[0]:.2e} & {summarize(last)[0]:.2e} \\\\")
        ratios[name] = summarize([gradient_ratio(s["norms"], s["layers"], steps) for s in seeds])[0]
        ratios[name + "_acc"] = summarize([s["val_acc"][-1] for s in seeds])[0]
    text = ""
    if {"C", "D"} <= diagnosis["gradients"].keys():
        c, d = ratios["C"], ratios["D"]
        verdict = ("the gradient reaching C's first layer is " + (f"{d / c:.0f} times" if d / c >= 2 else "not much")
                   + " smaller, relative to its last layer, than in D")
        text = (
            f"In the first epoch the first convolution's gradient norm is {c:.2e} times the last layer's in model C "
            f"(sigmoid) and {d:.2e} times in model D (ReLU): {verdict}. After {diagnosis['epochs']} epochs on "
            f"{diagnosis['train_images']:,} images C reaches {ratios['C_acc']:.3f} validation accuracy and D "
            f"{ratios['D_acc']:.3f}.\n"
        )
    return (
        f"The study blamed sigmoid for model C's failure (vanishing gradients) without measuring it. We recorded the "
        f"L2 norm of every weight layer's gradient after every step of the first {diagnosis['epochs']} epochs of C and D "
        f"({diagnosis['train_images']:,} training images, {steps} steps per epoch, the study's recipe).\n"
        "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{gradient_norms.pdf}\n"
        "\\caption{Gradient norm of each weight layer per step (first seed; log scale). Layer names are positions in "
        "the model: \\texttt{0.0} is the first convolution, the last name the linear layer.}\n\\end{figure}\n"
        + text
        + "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}llrr@{}}\n\\toprule\n"
        "model & layer & median norm, first epoch & median norm, last epoch \\\\\n\\midrule\n"
        + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}\n\\caption{Gradient norms per layer (mean over seeds of "
        "the median over an epoch's steps).}\n\\end{table}\n"
    )


def errors_section(layout: RunLayout, figures: Path, data_dir) -> str:
    path = layout.errors_results
    if not path.exists():
        return "\\emph{The errors notebook was not run for this report.}\n"
    errors = read_json(path)
    classes = errors["class_names"]
    parts = [
        f"Measured with torchmetrics on a fixed subset of {errors['test_images']:,} of the test images (the accuracy "
        "table uses all of them, so the accuracies here differ from it by the subset's sampling error), for every "
        "seed. Rows of a confusion matrix are the true class, normalised to 1; the matrices are summed over the seeds.\n"
    ]
    for name, run in errors["runs"].items():
        stem = file_stem(name)
        save(plot_confusion(run["seeds"], classes, title=f"{name}, {len(run['seeds'])} seed(s)"), figures / f"confusion_{stem}.pdf")
    figs = " ".join(f"\\includegraphics[width=0.49\\textwidth]{{confusion_{file_stem(n)}.pdf}}" for n in errors["runs"])
    parts.append(f"\\begin{{figure}}[H]\\centering\n{figs}\n\\caption{{Test confusion matrices.}}\n\\end{{figure}}\n")
    save(plot_per_class(errors), figures / "per_class.pdf")
    parts.append("\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{per_class.pdf}\n"
                 "\\caption{Test accuracy per class (mean, error bar: standard deviation over seeds).}\n\\end{figure}\n")
    sentences = []
    for name, run in errors["runs"].items():
        per = [summarize([s["per_class"][c] for s in run["seeds"]])[0] for c in range(len(classes))]
        matrix = [[sum(s["confusion"][i][j] for s in run["seeds"]) for j in range(len(classes))] for i in range(len(classes))]
        pair = max(((i, j) for i in range(len(classes)) for j in range(len(classes)) if i != j), key=lambda ij: matrix[ij[0]][ij[1]])
        row_total = sum(matrix[pair[0]])
        best, worst = max(range(len(classes)), key=per.__getitem__), min(range(len(classes)), key=per.__getitem__)
        sentences.append(
            f"{tex_escape(name)}: accuracy on this subset {fmt_ms([s['acc'] for s in run['seeds']])}; best class {classes[best]} "
            f"({per[best]:.3f}), worst {classes[worst]} ({per[worst]:.3f}); the most frequent confusion is "
            f"{classes[pair[0]]} taken for {classes[pair[1]]} ({matrix[pair[0]][pair[1]] / max(1, row_total):.1%} of the "
            f"{classes[pair[0]]} images)."
        )
    parts.append(" ".join(sentences).replace("%", "\\%") + "\n")
    name, run = list(errors["runs"].items())[-1]
    mistakes = run["seeds"][0].get("mistakes", [])
    if mistakes:
        test = analysis_test_split({"config": {"test_size": errors["test_size"], "split_seed": errors["split_seed"]}},
                                   data_dir, errors["test_images"])
        images = test.images[[m["index"] for m in mistakes]]
        save(plot_mistakes(images, mistakes, classes), figures / "mistakes.pdf")
        parts.append(
            "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{mistakes.pdf}\n"
            f"\\caption{{The {len(mistakes)} most confident mistakes of {tex_escape(name)} (seed "
            f"{run['seeds'][0]['seed']}): true class, then the predicted class and its probability.}}\n\\end{{figure}}\n"
        )
    return "".join(parts)


def conclusions_context(runs: dict[str, list[dict]], layout: RunLayout, diagnosis: dict | None) -> dict:
    """The numbers and verdicts the template's conclusions are worded from: one entry per ladder step
    (analysis.LADDER_STEPS) whose two runs are present, plus the size curve and the double softmax."""
    steps = []
    for v in ladder_verdicts(runs):
        low, high = v.step.low, v.step.high
        entry = dict(
            question=v.step.question, low=low, high=high, changes=v.step.changes, c=v.comparison,
            epochs_low=v.epochs_low, epochs_high=v.epochs_high, same_epochs=v.same_epochs,
            study_epochs=[f"{n} {STUDY_RESULTS[n]['epochs']}" for n in (low, high) if STUDY_RESULTS.get(n, {}).get("epochs")],
            low_val=finals(runs[low], "val_acc"), high_val=finals(runs[high], "val_acc"),
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
    if layout.other_sizes_results.exists():
        study = read_json(layout.other_sizes_results)
        curve = size_means(study)
        worst, drop = size_verdict(study)
        size = dict(count=len(curve), smallest=min(study["sizes"], key=_area), largest=max(study["sizes"], key=_area),
                    at32=curve["32x32"], worst=worst, at_worst=curve[worst], drop=drop, limit=SIZE_LOSS)
    return dict(steps=steps, depth_pair=any((s["low"], s["high"]) == ("D", "E") for s in steps), size=size)


def provenance(runs: dict[str, list[dict]], damaged: list[str] | None = None) -> str:
    missing = (
        "Missing from this report: " + ", ".join(f"\\texttt{{{tex_escape(d)}}}" for d in damaged)
        + " (results file damaged; \\texttt{run\\_all} trains these again).\n"
        if damaged else ""
    )
    flat = [r for seeds in runs.values() for r in seeds]
    first = flat[0]
    commits = sorted({r["environment"]["git_commit"] for r in flat})
    devices = sorted({r["environment"]["device"] + (f" ({r['environment']['gpu']})" if "gpu" in r["environment"] else "")
                      for r in flat})
    by_key = {(r["name"], r["config"]["seed"]): r for r in flat}

    def own_seconds(run: dict) -> float:
        # A continued run's history includes the epochs of the run it continues.
        earlier = by_key.get((continued_name(run), run["config"]["seed"]))
        return run["train_seconds"] - (earlier["train_seconds"] if earlier else 0.0)

    total = sum(own_seconds(run) for run in flat)
    rows = "\n".join(
        f"{tex_escape(name)} & {len(seeds)} & {fmt_seconds(summarize([r['train_seconds'] for r in seeds])[0])} & "
        f"{statistics.median([t for r in seeds for t in r['history']['epoch_seconds']]):.1f}\\,s & {recipe_text(seeds[0]['config'])} \\\\"
        for name, seeds in runs.items()
    )
    return (
        f"Profile \\texttt{{{tex_escape(first['config']['profile'])}}}; code version {tex_escape(', '.join(commits))}; "
        f"data SHA-256 \\texttt{{{first['data']['checksum'][:16]}\\ldots}} "
        f"({first['data']['sizes']['train']:,} / {first['data']['sizes']['val']:,} / {first['data']['sizes']['test']:,} "
        f"train / validation / test images); hardware {tex_escape(first['environment']['cpu'])}, "
        f"{first['environment']['cpu_count']} cores, device {tex_escape(', '.join(devices))}; "
        f"torch {tex_escape(first['environment']['torch'])}, Python {tex_escape(first['environment']['python'])}. "
        f"Total training time over all runs and seeds {fmt_seconds(total)} (the diagnosis experiments not included).\n"
        + missing
        + "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}lrrrp{0.5\\textwidth}@{}}\n\\toprule\n"
        "run & seeds & time per seed & median epoch & recipe \\\\\n\\midrule\n" + rows
        + "\n\\bottomrule\n\\end{tabular}\n\\caption{Training time per run (epochs, validation included); a continued "
        "run's time includes that of the run it continues.}\n\\end{table}\n"
    )


def training_cost_section(benchmark: Path | None, runs: dict[str, list[dict]], figures: Path | None = None) -> str:
    """Seconds per epoch of the study's pipeline against ours, from benchmarks/epoch_time.py's JSON."""
    parts = []
    if benchmark is not None and benchmark.exists():
        bench = read_json(benchmark)
        rows = []
        for name, row in bench["models"].items():
            rows.append(
                f"{tex_escape(name)} & {statistics.median(row['study_style_s']):.1f} & "
                f"{statistics.median(row['ours_fp32_s']):.1f} & {statistics.median(row['ours_s']):.1f} & "
                f"{row['speedup']:.1f}$\\times$ & {row['flops_per_image'] / 1e6:.1f} & {row['gflops']:.0f} & "
                f"{row['fraction_of_fp32_peak']:.0%} & {row['fraction_of_bf16_peak']:.0%} \\\\".replace("%", "\\%")
            )
        scope = "a tenth of the training split (--quick)" if bench.get("quick") else "the training split"
        parts.append(
            f"Seconds for one training epoch over {scope} ({bench['train_images']:,} images, batch "
            f"{bench['batch_size']}, median of {bench['repeats']} repeat(s), data included), measured by "
            "\\texttt{benchmarks/epoch\\_time.py} in one process. \\emph{Study-style}: a dataset that makes a PIL "
            "image and applies \\texttt{ToTensor} per image, one-hot targets, a \\texttt{DataLoader}, NCHW fp32. "
            "\\emph{Ours}: the split as one uint8 tensor, index-slice batches converted as a whole, channels-last; "
            f"in fp32 and with the default {tex_escape(bench.get('amp_dtype', 'bf16'))} autocast. "
            f"Peaks: {bench['cores']} cores $\\times$ {bench['clock_ghz']:.2f}\\,GHz $\\times$ "
            f"{bench['flop_per_cycle_fp32']} FLOP/cycle = {bench['peak_fp32_gflops']:.0f}\\,GFLOP/s in fp32, twice "
            f"that ({bench['peak_bf16_gflops']:.0f}) in bf16. Hardware: {tex_escape(bench['environment']['cpu'])}, "
            f"torch {tex_escape(bench['environment']['torch'])}.\n"
            "\\begin{table}[H]\\centering\\footnotesize\\setlength{\\tabcolsep}{3pt}\n\\begin{tabular}{@{}lrrrrrrrr@{}}\n\\toprule\n"
            "model & study-style (s) & ours fp32 (s) & ours (s) & speed-up & MFLOP/img & GFLOP/s & of fp32 peak & "
            "of bf16 peak \\\\\n\\midrule\n" + "\n".join(rows)
            + "\n\\bottomrule\n\\end{tabular}\n\\caption{Training cost per epoch.}\n\\end{table}\n"
        )
        compiled = {name: row for name, row in bench["models"].items() if row.get("ours_compiled_s")}
        if compiled:
            notes = []
            for name, row in compiled.items():
                plain, fast = statistics.median(row["ours_s"]), statistics.median(row["ours_compiled_s"])
                cost = statistics.median(row["compile_s"]) - plain * bench["batch_size"] / bench["train_images"]
                saved = plain - fast
                payback = (f"pays for its compilation after {cost / saved:.1f} epochs" if saved > 0
                           else "never pays for its compilation")
                notes.append(f"{tex_escape(name)}: {fast:.1f}\\,s per epoch compiled against {plain:.1f}\\,s, "
                             f"compilation {cost:.0f}\\,s, so it {payback}")
            parts.append(
                "\n\\textbf{torch.compile} (same settings, measured by \\texttt{epoch\\_time.py --compile}): "
                + "; ".join(notes) + ". Compilation is paid again for evaluation mode and in every new process; "
                "\\texttt{compile} stays off by default.\n"
            )
        if any(row["fraction_of_fp32_peak"] > 1 for row in bench["models"].values()):
            parts.append(
                "Where a fraction exceeds 100\\%, the count is of the direct convolution's FLOPs (what "
                "\\texttt{torch.utils.flop\\_counter} reports) while the hardware did less or ran faster than "
                "assumed: the clock read from \\texttt{/proc/cpuinfo} is the nominal one, not the boost clock, and "
                "oneDNN may compute 3x3 convolutions with fewer multiplications (Winograd). Such a fraction "
                "compares with the formula's peak; it is not a measured utilisation.\n"
            )
    else:
        parts.append("\\emph{The epoch-time benchmark (benchmarks/epoch\\_time.py) was not run for this report.}\n")
    if runs and figures is not None:
        save(plot_accuracy_minutes(runs), figures / "accuracy_minutes.pdf")
        parts.append(
            "\n\\textbf{Accuracy against training time.} Every run's validation accuracy after each epoch, against the "
            "training minutes spent until then (mean over seeds), so that runs are compared at equal time rather than at "
            "their own budgets.\n\\begin{figure}[H]\\centering\n\\includegraphics[width=0.9\\textwidth]{accuracy_minutes.pdf}\n"
            "\\caption{Validation accuracy against cumulative training minutes (log scale), every run of this report "
            f"(profile \\texttt{{{tex_escape(next(iter(runs.values()))[0]['config']['profile'])}}}).}}\n\\end{{figure}}\n"
        )
    if "GAP-fast" in runs and "GAP+" in runs:
        fast, slow = runs["GAP-fast"], runs["GAP+"]
        slow_minutes = summarize([r["train_seconds"] for r in slow])[0] / 60
        at_equal = [accuracy_at_minutes(r["history"], slow_minutes) for r in fast]
        equal = ("" if any(a is None for a in at_equal) else
                 f" Within the {slow_minutes:.1f} minutes that GAP+ trained, GAP-fast had reached "
                 f"{fmt_ms(at_equal)} validation accuracy, against {fmt_ms(finals(slow, 'val_acc'))} for GAP+.")
        parts.append(
            f"\n\\textbf{{The fast recipe.}} The target we set the GAP layers, trained with a recipe that is not the "
            f"study's: {FAST_TARGET_ACC:.2f} test accuracy within {FAST_TARGET_MINUTES} minutes of training on this CPU. "
            f"GAP-fast ({recipe_text(fast[0]['config'])}, {fast[0]['history']['epoch'][-1]} epochs, {seeds_text(fast)}) "
            f"reaches {fmt_ms(finals(fast, 'test_acc'))} test accuracy in "
            f"{fmt_seconds(summarize([r['train_seconds'] for r in fast])[0])} of training; the study's recipe (run GAP+, "
            f"{slow[0]['history']['epoch'][-1]} epochs) reaches {fmt_ms(finals(slow, 'test_acc'))} in "
            f"{fmt_seconds(summarize([r['train_seconds'] for r in slow])[0])}, and the study reported "
            f"{fmt_acc(STUDY_RESULTS['GAP+']['test_acc'])} after {STUDY_RESULTS['GAP+']['epochs']} epochs.{equal}"
        )
        flip = [r["final"]["test_acc_flip"] for r in fast if "test_acc_flip" in r["final"]]
        if flip:
            parts.append(
                f" Averaging the probabilities for each test image and its mirror image (test-time flip, one more "
                f"forward pass at inference, no change to training) gives {fmt_ms(flip)}."
            )
        tta = [r["final"]["test_acc_tta"] for r in fast if "test_acc_tta" in r["final"]]
        if tta:
            parts.append(
                f" Averaging over {TTA_VIEWS} views (the image and its mirror image, each as it is and moved "
                f"by one pixel up, down, left and right: {TTA_VIEWS} forward passes per image) gives {fmt_ms(tta)}."
            )
        parts.append(" " + fast_target_text(fast))
    fp32 = "G" + FP32_SUFFIX
    if fp32 in runs and "G" in runs:
        amp, plain = runs["G"], runs[fp32]
        epoch = lambda seeds: statistics.median([t for r in seeds for t in r["history"]["epoch_seconds"]])  # noqa: E731
        diff = compare(finals(plain, "test_acc"), finals(amp, "test_acc"))
        parts.append(
            f"\n\\textbf{{Does bfloat16 keep the accuracy?}} Model G trained with bfloat16 autocast (the default, "
            f"{seeds_text(amp)}) reaches {fmt_ms(finals(amp, 'test_acc'))} test accuracy at a median "
            f"{epoch(amp):.1f}\\,s per epoch; the same run in plain fp32 ({seeds_text(plain)}) reaches "
            f"{fmt_ms(finals(plain, 'test_acc'))} at {epoch(plain):.1f}\\,s per epoch, both after "
            f"{amp[0]['history']['epoch'][-1]} epochs. " + comparison_text(diff, "bfloat16", "fp32")
            + "\n"
        )
    return "".join(parts)


def fast_target_text(fast: list[dict]) -> str:
    """Whether the GAP-fast runs met the target of FAST_TARGET_ACC test accuracy within
    FAST_TARGET_MINUTES of training (every seed): plainly, or only with test-time augmentation."""
    minutes = max(r["train_seconds"] for r in fast) / 60
    target = f"The target, {FAST_TARGET_ACC:.2f} test accuracy within {FAST_TARGET_MINUTES} minutes of training,"
    lowest = lambda key: min(r["final"].get(key, 0.0) for r in fast)  # noqa: E731
    if minutes > FAST_TARGET_MINUTES:
        verdict = f"is not met: training took {minutes:.1f} minutes"
    elif lowest("test_acc") >= FAST_TARGET_ACC:
        verdict = f"is met ({minutes:.1f} minutes)"
    elif lowest("test_acc_flip") >= FAST_TARGET_ACC:
        verdict = f"is met with test-time flip, not without it ({minutes:.1f} minutes)"
    elif lowest("test_acc_tta") >= FAST_TARGET_ACC:
        verdict = (f"is met with the {TTA_VIEWS}-view test-time augmentation only, not with the plain "
                   f"model or test-time flip alone ({minutes:.1f} minutes)")
    else:
        verdict = f"is not met: the accuracy falls short ({minutes:.1f} minutes)"
    return f"{target} {verdict}.\n"


def document_context(runs: dict[str, list[dict]], written: set[str]) -> dict:
    """What the template's front matter and section scaffolding read."""
    first = next(iter(runs.values()))[0]
    profile = first["config"]["profile"]
    try:
        description = get_profile(profile).description
    except ValueError:
        description = "custom settings"

    def model_section(name: str) -> str:
        piece = f"model_{file_stem(name)}"
        return f"\\input{{generated/{piece}.tex}}" if piece in written else "\\emph{Not trained for this report.}"

    return dict(
        profile=profile, profile_description=description, study_params_A=STUDY_PARAMS_A,
        study_params_A_formula=STUDY_PARAMS_A_FORMULA, epochs_stated=sorted(STUDY_EPOCHS_STATED),
        seed_count=max(len(seeds) for seeds in runs.values()), min_seeds=MIN_SEEDS, sizes=first["data"]["sizes"],
        params={name: count_parameters(create_model(name)) for name in MODEL_NAMES}, model_section=model_section,
    )


def write_sources(layout: RunLayout, data_dir=None, benchmark: Path | None = None) -> Path:
    """Write figures and generated LaTeX; returns the report folder holding report.tex."""
    run_dir = layout.root
    benchmark = Path(benchmark) if benchmark else benchmark_json()
    damaged: list[str] = []
    runs = collect_runs(run_dir, damaged)
    if not runs:
        raise ReportError(f"no finished runs (results.json) under {run_dir}: train some models first")
    report_dir, figures = layout.report_dir, layout.figures_dir
    generated = report_dir / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    ordered = _ordered(runs)
    if not ordered:
        raise ReportError(f"no ladder runs under {run_dir} (only double-softmax runs): train some models first")
    extra = {name: seeds for name, seeds in runs.items() if name not in ordered}
    diagnosis_path = layout.diagnosis_results
    diagnosis = read_json(diagnosis_path) if diagnosis_path.exists() else None
    pieces = {
        "ladder": ladder_figure(ordered, figures),
        "other_sizes": other_sizes_section(layout, figures),
        "errors": errors_section(layout, figures, data_dir),
        "model_e": model_e_section(diagnosis, ordered, figures),
        "parameters": parameters_section(),
        "gradients": gradients_section(diagnosis, figures),
        "provenance": provenance({**ordered, **extra}, damaged),
        "training_cost": training_cost_section(benchmark, runs, figures),
    }
    for name, seeds in ordered.items():
        pieces[f"model_{file_stem(name)}"] = model_section(seeds, figures)
    for name, text in pieces.items():
        atomic_write_text(text, generated / f"{name}.tex")
    softmax_figure(runs, figures)
    context = {**document_context(ordered, set(pieces)), "summary": summary_rows(ordered), "data": data_context(layout),
               "softmax": softmax_rows(runs), "take_off_acc": f"{TAKE_OFF_ACC:g}",
               "conclusions": conclusions_context(runs, layout, diagnosis)}
    atomic_write_text(render(report_template(), context), report_dir / "report.tex")
    return report_dir


def compile_pdf(report_dir: Path) -> Path:
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        raise ReportError(f"latexmk / pdflatex not found; the LaTeX sources are in {report_dir}. {TEX_INSTALL_HINT}")
    cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"]
    proc = subprocess.run(cmd, cwd=report_dir, capture_output=True, text=True)
    if proc.returncode != 0:
        log = (report_dir / "report.log")
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else proc.stdout[-3000:]
        raise ReportError(f"latexmk failed in {report_dir} (see report.log there):\n{tail}")
    return report_dir / "report.pdf"


def build_report(layout: RunLayout, data_dir=None, benchmark=None) -> Path:
    """Write the report's sources from a profile's runs and compile its PDF (`layout.pdf`).

    `benchmark`: the JSON of benchmarks/epoch_time.py (default runs/benchmark/epoch_time.json).
    """
    return compile_pdf(write_sources(layout, data_dir, benchmark))
