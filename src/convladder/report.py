"""The PDF report: LaTeX inputs and figures written from results files, compiled with latexmk.

`build_report(run_dir, report_root)` reads every `results.json` under `run_dir` (plus
`data.json` and `other_sizes/other_sizes.json` when present), writes
`report_root/figures/*` and `report_root/report/generated/*.tex`, copies the template
`report/report.tex` there when `report_root` is not the repository, and compiles
`report_root/report/report.pdf`. No number in the report is typed by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import torch

from convladder.config import STUDY_EPOCHS_STATED, TrainConfig, get_profile
from convladder.data import get_splits, load_cifar10
from convladder.io import atomic_write_text, read_json
from convladder.models import DESCRIPTIONS, count_parameters, create_model
from convladder.other_sizes import RESULTS as OTHER_SIZES_RESULTS
from convladder.paths import project_root, report_template
from convladder.plots import plot_history, plot_ladder, plot_proba, plot_samples, save
from convladder.results import collect_runs
from convladder.study import STUDY_OTHER_SIZES, STUDY_PARAMS_A, STUDY_PARAMS_A_FORMULA, STUDY_RESULTS

RUN_ORDER = ("A", "B", "C", "D", "E", "F", "G", "GAP", "GAP+", "GAP-fast")
STUDY_RECIPE = TrainConfig(model="A", epochs=1)  # the defaults: the study's training settings
TEX_INSTALL_HINT = (
    "Install TeX Live to compile it, e.g. `sudo apt-get install latexmk texlive-latex-base "
    "texlive-latex-recommended texlive-fonts-recommended` (or `make tex`), then run the report again."
)


class ReportError(RuntimeError):
    """The report could not be compiled; the LaTeX sources are kept."""


# --- small LaTeX helpers ----------------------------------------------------------------

def tex_escape(text: str) -> str:
    replacements = {
        "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    }
    return "".join(replacements.get(ch, ch) for ch in str(text))


def fmt_acc(value: float | None) -> str:
    return "--" if value is None else f"{value:.3f}"


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.0f}\\,s" if seconds < 120 else f"{seconds / 60:.1f}\\,min"


def file_stem(run_name: str) -> str:
    return run_name.replace("+", "plus")


def macro_name(run_name: str) -> str:
    """A LaTeX command name (letters only): "GAP+" -> "GAPplus", "GAP-fast" -> "GAPfast"."""
    return re.sub(r"[^A-Za-z]", "", run_name.replace("+", "plus"))


# --- pieces of the report ---------------------------------------------------------------

def _ordered(runs: dict[str, dict]) -> list[dict]:
    known = [runs[name] for name in RUN_ORDER if name in runs]
    return known + [r for name, r in sorted(runs.items()) if name not in RUN_ORDER]


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
        extras.append("flip + crop")
    if config.get("amp"):
        extras.append("bf16 autocast")
    if config.get("study_softmax"):
        extras.append("softmax + CE")
    return tex_escape(", ".join([text] + extras))


def is_study_recipe(config: dict) -> bool:
    keys = ("optimizer", "lr", "weight_decay", "schedule", "label_smoothing", "augment")
    return all(config.get(k, getattr(STUDY_RECIPE, k)) == getattr(STUDY_RECIPE, k) for k in keys)


def model_section(run: dict, figures: Path) -> str:
    """One model's layers, parameter count, history figure, accuracies and probability vectors."""
    name, model = run["name"], run["config"]["model"]
    stem = file_stem(name)
    classes = run["data"]["class_names"]
    save(plot_history(run["history"], title=f"model {name}"), figures / f"history_{stem}.pdf")
    probas = {"before training": run["proba_before"], "after training": run["proba_after"]}
    probas = {k: v for k, v in probas.items() if v is not None}
    save(plot_proba(probas, classes, title=f"test image {run['probe_index']} (a {classes[run['probe_label']]})"),
         figures / f"proba_{stem}.pdf")
    final, study = run["final"], STUDY_RESULTS.get(name, {})
    continued = f" It continues run {tex_escape(Path(run['continued_from']).name)}." if run.get("continued_from") else ""
    parts = [
        f"Model {tex_escape(name)}: {tex_escape(DESCRIPTIONS.get(model, model))}. "
        f"{run['parameters']:,} parameters, trained for {run['history']['epoch'][-1]} epochs "
        f"({fmt_seconds(run['train_seconds'])}) with {recipe_text(run['config'])}"
        f"{'' if is_study_recipe(run['config']) else ' (not the study' + chr(39) + 's recipe)'}.{continued} "
        f"Accuracy after the last epoch: train {fmt_acc(final['train_acc'])}, validation {fmt_acc(final['val_acc'])}, "
        f"test {fmt_acc(final['test_acc'])}; the study reported train {fmt_acc(study.get('train_acc'))}, "
        f"validation {fmt_acc(study.get('val_acc'))}, test {fmt_acc(study.get('test_acc'))}.\n",
    ]
    if not run.get("continued_from"):
        parts.append(layer_table(model))
    parts.append(
        "\\begin{figure}[H]\\centering\n"
        f"\\includegraphics[width=\\textwidth]{{history_{stem}.pdf}}\n"
        f"\\caption{{Training history of model {tex_escape(name)}: mean loss and accuracy per epoch on train and "
        f"validation, and seconds per epoch.}}\n\\end{{figure}}\n"
        "\\begin{figure}[H]\\centering\n"
        f"\\includegraphics[width=0.75\\textwidth]{{proba_{stem}.pdf}}\n"
        f"\\caption{{Output probability vector of model {tex_escape(name)} for one test image.}}\n\\end{{figure}}\n"
    )
    return "".join(parts)


def summary_table(runs: list[dict]) -> str:
    rows = []
    for run in runs:
        name, final = run["name"], run["final"]
        study = STUDY_RESULTS.get(name, {})
        diff = (final["val_acc"] - study["val_acc"]) if study.get("val_acc") is not None else None
        rows.append(
            f"{tex_escape(name)} & {run['parameters']:,} & {run['history']['epoch'][-1]} / "
            f"{study.get('epochs') or '--'} & {fmt_acc(final['train_acc'])} & {fmt_acc(final['val_acc'])} & "
            f"{fmt_acc(final['test_acc'])} & {fmt_acc(study.get('train_acc'))} & {fmt_acc(study.get('val_acc'))} & "
            f"{fmt_acc(study.get('test_acc'))} & {'--' if diff is None else f'{diff:+.3f}'} & "
            f"{fmt_seconds(run['train_seconds'])} \\\\"
        )
    return (
        "\\begin{table}[H]\\centering\\small\\setlength{\\tabcolsep}{4pt}\n"
        "\\begin{tabular}{@{}lrrrrrrrrrr@{}}\n\\toprule\n"
        " & & epochs & \\multicolumn{3}{c}{ours} & \\multicolumn{3}{c}{study} & val. & training \\\\\n"
        "\\cmidrule(lr){4-6}\\cmidrule(lr){7-9}\n"
        "model & parameters & ours / study & train & val. & test & train & val. & test & ours$-$study & time \\\\\n"
        "\\midrule\n" + "\n".join(rows) + "\n\\bottomrule\n\\end{tabular}\n"
        "\\caption{Accuracy of every model after its last epoch, ours beside the study's. Train accuracy is the "
        "mean over the last epoch's batches (in training mode, as the study measured it); validation and test "
        "accuracy are measured in evaluation mode after the epoch. A dash: the study reported no number.}\n"
        "\\label{tab:summary}\n\\end{table}\n"
    )


def _count_range(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"exactly {low:,}" if low == high else f"between {low:,} and {high:,}"


def ladder_figure(runs: list[dict], figures: Path) -> str:
    save(plot_ladder(runs, STUDY_RESULTS), figures / "ladder.pdf")
    return (
        "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{ladder.pdf}\n"
        "\\caption{Left: validation accuracy of every run per epoch. Right: final validation and test accuracy, "
        "ours beside the study's validation accuracy.}\n\\end{figure}\n"
    )


def data_section(run_dir: Path, figures: Path, data_dir) -> str:
    facts_path = run_dir / "data.json"
    dataset = load_cifar10(data_dir)
    splits = get_splits(dataset)
    pick = torch.randperm(len(splits["train"]), generator=torch.Generator().manual_seed(0))[:32]
    save(plot_samples(splits["train"].images[pick], splits["train"].labels[pick], dataset.class_names),
         figures / "samples.png")
    facts = read_json(facts_path) if facts_path.exists() else None
    text = (
        f"The data folder holds {len(dataset.train):,} training and {len(dataset.test):,} test images of "
        f"{len(dataset.class_names)} classes ({', '.join(dataset.class_names)}); every class has "
        f"{_count_range(dataset.train.class_counts())} training images and "
        f"{_count_range(dataset.test.class_counts())} test images. The training images are split into "
        f"{len(splits['train']):,} for training and {len(splits['val']):,} for validation with a fixed seed. "
        f"SHA-256 of the batch files: \\texttt{{{dataset.checksum[:16]}\\ldots}}.\n"
    )
    if facts:
        mean = ", ".join(f"{v:.4f}" for v in facts["train_mean"])
        std = ", ".join(f"{v:.4f}" for v in facts["train_std"])
        text += f"Per-channel mean of the training pixels ({mean}), standard deviation ({std}).\n"
    text += (
        "\\begin{figure}[H]\\centering\n\\includegraphics[width=\\textwidth]{samples.png}\n"
        "\\caption{Random training samples with their labels (the study's Figure 1).}\n\\end{figure}\n"
    )
    return text


def _area(size: str) -> int:
    width, height = size.split("x")
    return int(width) * int(height)


def other_sizes_section(run_dir: Path, figures: Path) -> str:
    path = run_dir / "other_sizes" / OTHER_SIZES_RESULTS
    if not path.exists():
        return "\\emph{The other-sizes notebook was not run for this report.}\n"
    study = read_json(path)
    names = study["class_names"]
    rows, figs = [], []
    for i, item in enumerate(study["images"]):
        proba = item["proba"]
        top = max(range(len(proba)), key=proba.__getitem__)
        true_p = proba[names.index(item["true"])]
        rows.append(f"{tex_escape(item['title'])} & {item['true']} & {names[top]} & {proba[top]:.3f} & {true_p:.3f} \\\\")
        shutil.copyfile(path.parent / item["file"], figures / f"other_{item['file']}")
        figs.append(f"\\includegraphics[height=1.5cm]{{other_{item['file']}}}")
    accuracy = dict(sorted(study["accuracy_by_size"].items(), key=lambda kv: _area(kv[0]), reverse=True))
    acc_text = ", ".join(f"{size}: {value:.3f}" for size, value in accuracy.items())
    study_text = "; ".join(
        f"{s['photo']} predicted {s['predicted']} at {s['probability'] * 100:.6g}\\%" for s in STUDY_OTHER_SIZES
    )
    return (
        f"The weights of run {tex_escape(study['gap_run'])} were given images that are not 32x32 (width x height). "
        "The study used two photos of its own; its cat photo is not available, so we use scikit-image's cat "
        "photo (\\texttt{chelsea}) resized to 32x20, and CIFAR test images resized to 32x20 and 32x18.\n\n"
        f"\\begin{{center}}{' '.join(figs)}\\end{{center}}\n"
        "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}llllr@{}}\n\\toprule\n"
        "image & true class & predicted & probability & p(true class) \\\\\n\\midrule\n"
        + "\n".join(rows).replace("%", "\\%")
        + "\n\\bottomrule\n\\end{tabular}\n\\caption{GAP predictions on images of other sizes.}\n\\end{table}\n"
        f"Accuracy on all {study['test_images']:,} test images resized to each size: {acc_text}. "
        f"The study reported: {study_text}.\n"
    )


def conclusions_section(runs: dict[str, dict], run_dir: Path) -> str:
    """The study's conclusions, each set beside what this run measured."""
    val = {name: run["final"]["val_acc"] for name, run in runs.items()}
    items = []
    if {"B", "D"} <= val.keys() or {"A", "G"} <= val.keys():
        shallow = max((n for n in ("A", "B") if n in val), key=val.get, default=None)
        deep = max((n for n in ("D", "E", "F", "G", "GAP", "GAP+") if n in val), key=val.get, default=None)
        if shallow and deep:
            verdict = "confirmed" if val[deep] > val[shallow] + 0.05 else "not confirmed by this run"
            items.append(
                f"\\item \\textbf{{Depth.}} The best shallow model ({shallow}) reaches {val[shallow]:.3f} validation "
                f"accuracy, the best deeper one ({deep}) {val[deep]:.3f}: {verdict}."
            )
    if {"C", "D"} <= val.keys():
        verdict = "confirmed" if val["D"] > val["C"] + 0.05 else "not confirmed by this run"
        items.append(
            f"\\item \\textbf{{ReLU instead of sigmoid.}} Model C (sigmoid) reaches {val['C']:.3f}, model D (ReLU, the same "
            f"layers otherwise) {val['D']:.3f}: {verdict}. The gradient measurements that would show vanishing "
            f"gradients directly are not part of this report."
        )
    if {"E", "F"} <= val.keys():
        verdict = "confirmed" if val["F"] > val["E"] + 0.05 else (
            "qualified: without batch norm model E also learns here" if val["E"] > 0.2 else "not confirmed by this run")
        items.append(
            f"\\item \\textbf{{Batch norm lets the deeper model fit.}} Model E (no batch norm) reaches {val['E']:.3f}, "
            f"model F (batch norm) {val['F']:.3f}: {verdict}. The study's 0.01 for E is below chance (0.1) "
            f"for a balanced 10-class set, which points to a measuring problem rather than a model that learns nothing."
        )
    if {"F", "G"} <= runs.keys():
        gap_f = runs["F"]["final"]["train_acc"] - val["F"]
        gap_g = runs["G"]["final"]["train_acc"] - val["G"]
        verdict = "confirmed" if gap_g < gap_f and val["G"] >= val["F"] else "qualified"
        items.append(
            f"\\item \\textbf{{Dropout generalises better.}} The train$-$validation gap is {gap_f:+.3f} for F and "
            f"{gap_g:+.3f} for G (dropout); validation accuracy {val['F']:.3f} against {val['G']:.3f}: {verdict}."
        )
    path = run_dir / "other_sizes" / OTHER_SIZES_RESULTS
    if path.exists():
        acc = dict(sorted(read_json(path)["accuracy_by_size"].items(), key=lambda kv: _area(kv[0]), reverse=True))
        items.append(
            "\\item \\textbf{Global average pooling takes other sizes.} The GAP model classifies test images of every "
            "size tried without any change (" + ", ".join(f"{k}: {v:.3f}" for k, v in acc.items())
            + "): confirmed that it runs, with the accuracy cost of the resizing shown."
        )
    if not items:
        return "\\emph{Too few models were trained in this run to test the study's conclusions.}\n"
    return "\\begin{itemize}\n" + "\n".join(items) + "\n\\end{itemize}\n"


def provenance(runs: list[dict]) -> str:
    envs = {run["name"]: run["environment"] for run in runs}
    first = runs[0]
    commits = sorted({env["git_commit"] for env in envs.values()})
    devices = sorted({env["device"] + (f" ({env['gpu']})" if "gpu" in env else "") for env in envs.values()})
    by_name = {run["name"]: run for run in runs}

    def own_seconds(run: dict) -> float:
        # A continued run's history includes the epochs of the run it continues.
        source = Path(run["continued_from"]).name if run.get("continued_from") else None
        return run["train_seconds"] - (by_name[source]["train_seconds"] if source in by_name else 0.0)

    total = sum(own_seconds(run) for run in runs)
    rows = "\n".join(
        f"{tex_escape(run['name'])} & {fmt_seconds(run['train_seconds'])} & "
        f"{statistics.median(run['history']['epoch_seconds']):.1f}\\,s & {recipe_text(run['config'])} \\\\"
        for run in runs
    )
    return (
        f"Profile \\texttt{{{tex_escape(first['config']['profile'])}}}; code version {tex_escape(', '.join(commits))}; "
        f"data SHA-256 \\texttt{{{first['data']['checksum'][:16]}\\ldots}} "
        f"({first['data']['sizes']['train']:,} / {first['data']['sizes']['val']:,} / {first['data']['sizes']['test']:,} "
        f"train / validation / test images); hardware {tex_escape(first['environment']['cpu'])}, "
        f"{first['environment']['cpu_count']} cores, device {tex_escape(', '.join(devices))}; "
        f"torch {tex_escape(first['environment']['torch'])}, Python {tex_escape(first['environment']['python'])}. "
        f"Total training time {fmt_seconds(total)}.\n"
        "\\begin{table}[H]\\centering\\small\n\\begin{tabular}{@{}lrrp{0.55\\textwidth}@{}}\n\\toprule\n"
        "run & training time & median epoch & recipe \\\\\n\\midrule\n" + rows
        + "\n\\bottomrule\n\\end{tabular}\n\\caption{Training time per run (epochs, validation included); a continued run's time includes that of the run it continues.}\n\\end{table}\n"
    )


def training_cost_section(benchmark: Path | None, runs: dict[str, dict]) -> str:
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
    if "GAP-fast" in runs and "GAP+" in runs:
        fast, slow = runs["GAP-fast"], runs["GAP+"]
        parts.append(
            f"\n\\textbf{{Accuracy per CPU-minute.}} The GAP layers trained with the GAP-fast recipe "
            f"({recipe_text(fast['config'])}) reach {fast['final']['test_acc']:.3f} test accuracy in "
            f"{fmt_seconds(fast['train_seconds'])} of training; the study's recipe (run GAP+) reaches "
            f"{slow['final']['test_acc']:.3f} in {fmt_seconds(slow['train_seconds'])}, and the study reported "
            f"{fmt_acc(STUDY_RESULTS['GAP+']['test_acc'])} after {STUDY_RESULTS['GAP+']['epochs']} epochs.\n"
        )
    return "".join(parts)


def macros(runs: list[dict]) -> str:
    profile = runs[0]["config"]["profile"]
    try:
        description = get_profile(profile).description
    except ValueError:
        description = "custom settings"
    lines = [
        f"\\newcommand{{\\profilename}}{{{tex_escape(profile)}}}",
        f"\\newcommand{{\\profiledescription}}{{{tex_escape(description)}}}",
        f"\\newcommand{{\\studyparamsA}}{{{STUDY_PARAMS_A}}}",
        f"\\newcommand{{\\studyparamsAformula}}{{\\texttt{{{tex_escape(STUDY_PARAMS_A_FORMULA)}}}}}",
        f"\\newcommand{{\\epochsstated}}{{{', '.join(sorted(STUDY_EPOCHS_STATED))}}}",
    ]
    for run in runs:
        m = macro_name(run["name"])
        lines.append(f"\\newcommand{{\\params{m}}}{{{run['parameters']:,}}}")
    return "\n".join(lines) + "\n"


# --- building ---------------------------------------------------------------------------

def default_benchmark() -> Path:
    return project_root() / "runs" / "benchmark" / "epoch_time.json"


def write_sources(run_dir: Path, report_root: Path, data_dir=None, benchmark: Path | None = None) -> Path:
    """Write figures and generated LaTeX; returns the report folder holding report.tex."""
    run_dir, report_root = Path(run_dir), Path(report_root)
    benchmark = Path(benchmark) if benchmark else default_benchmark()
    runs = collect_runs(run_dir)
    if not runs:
        raise ReportError(f"no finished runs (results.json) under {run_dir}: train some models first")
    report_dir, figures = report_root / "report", report_root / "figures"
    generated = report_dir / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    template = report_template()
    if template.resolve() != (report_dir / "report.tex").resolve():
        shutil.copyfile(template, report_dir / "report.tex")
    ordered = _ordered(runs)
    pieces = {
        "macros": macros(ordered),
        "data": data_section(run_dir, figures, data_dir),
        "summary": summary_table(ordered) + ladder_figure(ordered, figures),
        "other_sizes": other_sizes_section(run_dir, figures),
        "conclusions": conclusions_section(runs, run_dir),
        "provenance": provenance(ordered),
        "training_cost": training_cost_section(benchmark, runs),
    }
    for run in ordered:
        pieces[f"model_{file_stem(run['name'])}"] = model_section(run, figures)
    for name, text in pieces.items():
        atomic_write_text(text, generated / f"{name}.tex")
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


def build_report(run_dir: str | os.PathLike, report_root: str | os.PathLike, data_dir=None, benchmark=None) -> Path:
    """Write the report's sources from the runs under `run_dir` and compile the PDF.

    `benchmark`: the JSON of benchmarks/epoch_time.py (default runs/benchmark/epoch_time.json).
    """
    return compile_pdf(write_sources(Path(run_dir), Path(report_root), data_dir, benchmark))
