"""The PDF report: orchestration. Collect the runs, build the template's context, render, compile.

`build_report(layout)` reads every `results.json` of a profile's runs (plus what the analyses
wrote beside them, where `RunLayout` says), has `convladder.report.figures` write the figures into the
profile's `figures/` folder, renders a template into `report/report.tex` with the context built here (the
study paper `report/report.tex.j2` for the study profile, the run report `report/run.tex.j2` for every other, each
with what it includes from `report/sections/`, `report/study/` and `report/floats/`), and
compiles `report.pdf`. The context holds numbers, verdicts (from `convladder.analysis.statistics`) and
recorded strings only; every sentence and every table's markup is in the template. No number
in the report is typed by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import convladder.report.figures as draw
from convladder.analysis.statistics import MIN_SEEDS, RISE_EPOCHS, TAKE_OFF_ACC, TAKE_OFF_LOW_ACC
from convladder.core.config import PROGRESSIVE_SIDES
from convladder.core.versions import code_version
from convladder.plan.recipes import STUDY_RECOVERED, recorded_recipe
from convladder.plan.study import STUDY_CURVES, STUDY_RESULTS
from convladder.report.analyses import (
    data_context,
    diagnosis_recipe,
    errors_context,
    gradients_context,
    ladder_diagnosis_context,
    longer_context,
    recipe_probes_context,
    recipe_robustness_context,
    model_e_context,
    other_sizes_context,
    recipe_search_context,
    stability_context,
)
import convladder.report.h as report_h
from convladder.analysis.h_targets import TARGET_ACC
from convladder.report.h import h_context
from convladder.report.ladder import (
    _ordered,
    conclusions_context,
    continued_starts,
    document_context,
    is_ladder_recipe,
    ladder_table,
    models_context,
    parameters_context,
    profile_of,
    recipes_context,
    softmax_rows,
    study_epochs_rows,
    summary_rows,
)
from convladder.report.family import paper_family
from convladder.report.latex import UnsupportedClaim, render
from convladder.report.plots import LOSS_WINDOWS, chance_names, curve_lengths, log_epochs
from convladder.report.question_plots import panel_end
from convladder.report.setup import (benchmark_context, benchmark_source, experiment_archives, fast_context, fp32_context,
                                     provenance_context)
from convladder.results.layout import RunLayout, h_note_template, report_template, run_report_template
from convladder.results.records import collect_runs
from convladder.tools.files import atomic_write_text, claim, read_json, refuse_links_leaving
from convladder.results.schema import final_epoch

TEX_INSTALL_HINT = (
    "Install TeX Live to compile it, e.g. `sudo apt-get install latexmk texlive-latex-base "
    "texlive-latex-recommended texlive-fonts-recommended` (or `make tex`), then run the report again."
)


class ReportError(RuntimeError):
    """The report could not be compiled; the LaTeX sources are kept."""


def write_sources(layout: RunLayout, benchmark: Path | None = None, draft: bool = False, paper: bool = False) -> Path:
    """Write the figures and render the template into report.tex: model H's note where the runs are H's alone, the
    paper for the study profile's runs (or any profile's with `paper`: its prose is written for the study), else the
    run report. Returns the report folder holding it."""
    damaged: list[str] = []
    runs = collect_runs(layout.root, damaged)
    if not runs:
        raise ReportError(f"no finished runs (results.json) under {layout.root}: train some models first")
    if all(seeds[0]["config"]["model"] == "H" for seeds in runs.values()):
        return write_h_note(layout, _ordered(runs), damaged, draft)
    context = report_context(layout, runs, damaged, benchmark)
    template = report_template() if paper or context["profile"] == "study" else run_report_template()
    return write_tex(template, context, draft, layout.report_dir)


def write_tex(template: Path, context: dict, draft: bool, report_dir: Path) -> Path:
    """Render `template` with `context` into report_dir/report.tex; a claim that no longer holds (latex.claim) is a
    ReportError naming it. Returns report_dir."""
    try:
        text = render(template, context, draft)
    except UnsupportedClaim as err:
        raise ReportError(str(err)) from None
    atomic_write_text(text, report_dir / "report.tex")
    return report_dir


def report_context(layout: RunLayout, runs: dict[str, list[dict]], damaged: list[str],
                   benchmark: Path | None = None) -> dict:
    """What the report's template reads, from a profile's runs (`damaged`: run folders that could not be read), writing
    the figures it includes into the profile's figures folder."""
    run_dir = layout.root
    first = next((seeds[0] for seeds in runs.values() if seeds), None)
    benchmark = benchmark_source(benchmark, first["environment"].get("cpu") if first else None)
    report_dir, figures = layout.report_dir, layout.figures_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    ordered = _ordered(runs)
    if not ordered:
        raise ReportError(f"no ladder runs under {run_dir} (only double-softmax runs): train some models first")
    extra = {name: seeds for name, seeds in runs.items() if name not in ordered}
    study = profile_of(ordered) == "study"  # the study paper: its archived experiments, and no per-run appendix
    diagnosis_path = layout.diagnosis_results
    diagnosis = read_json(diagnosis_path) if diagnosis_path.exists() else None
    everything = {**ordered, **extra}
    summary = summary_rows(ordered)
    conclusions = conclusions_context(runs, layout, diagnosis)
    for letter, step in zip("abcdefghij", conclusions["steps"]):
        step["panel"] = letter
        lengths = curve_lengths({step["low"]: ordered[step["low"]], step["high"]: ordered[step["high"]]})
        step["shown_to"] = panel_end(lengths, None if step["same_epochs"] else step["at_epoch"])
        step["log_epochs"] = log_epochs([min(length, step["shown_to"] or length) for length in lengths])
    ladder_recipe = {name: seeds for name, seeds in ordered.items() if is_ladder_recipe(seeds[0])}
    continued = continued_starts(ladder_recipe)
    softmax = softmax_rows(runs)
    recipe = diagnosis_recipe(diagnosis, ordered) if diagnosis else None
    # the study paper diagnoses E and the gradients under its own recipe (ladder_diagnosis below); the first diagnoses,
    # under Adam where E learns, are the run reports'
    model_e, gradients = (None, None) if study else (model_e_context(diagnosis, ordered, recipe),
                                                     gradients_context(diagnosis, recipe))
    if model_e:
        model_e["figure"] = draw.variants(diagnosis, figures)
    if gradients:
        gradients["figure"] = draw.gradient_norms(diagnosis, figures)
    context = {
        **document_context(ordered, summary, conclusions["steps"]), "summary": summary, "data": data_context(layout),
        "ladder_figure": draw.ladder(ladder_recipe, figures, {name: c["start"] for name, c in continued.items()})
        if ladder_recipe else None, "ladder_continued": continued,
        "ladder_at_chance": chance_names(ladder_recipe, {name: c["start"] for name, c in continued.items()}),
        "questions_figure": draw.questions(ordered, conclusions["steps"], figures) if conclusions["steps"] else None,
        "ladder_log_epochs": log_epochs(curve_lengths(ladder_recipe)),
        "ladder_epochs": sorted({final_epoch(seeds[0]) for seeds in ladder_recipe.values()}),
        "ladder_table": ladder_table(ordered), "recipes": recipes_context(everything),
        "recovered_recipe": any(recorded_recipe(seeds[0])["name"] == STUDY_RECOVERED for seeds in ladder_recipe.values()),
        "study_epochs": study_epochs_rows(ordered),
        "softmax": softmax, "softmax_figure": draw.double_softmax(runs, [row["name"] for row in softmax], figures),
        "take_off_acc": TAKE_OFF_ACC, "take_off_low_acc": TAKE_OFF_LOW_ACC, "rise_epochs": RISE_EPOCHS,
        "study_curves": STUDY_CURVES, "study_results": STUDY_RESULTS,
        "conclusions": conclusions, "model_e": model_e, "loss_windows": LOSS_WINDOWS,
        "parameters": parameters_context(ordered), "gradients": gradients,
        "provenance": provenance_context(everything, damaged), "benchmark": benchmark_context(benchmark),
        "fast": fast_context(runs), "fp32": fp32_context(runs), "minutes_figure": draw.accuracy_minutes(
            runs, figures, {name: c["start"] for name, c in continued_starts(runs).items()}),
        "minutes_at_chance": chance_names(runs, {name: c["start"] for name, c in continued_starts(runs).items()}),
        # the run reports' per-run appendix (the study paper's appendix has none: its figures are not drawn)
        "models": models_context(ordered, figures) if not study else [],
    }
    test_images = next(iter(ordered.values()))[0]["data"]["sizes"]["test"]
    context.update(other_sizes=other_sizes_context(layout, figures), errors=errors_context(layout, figures, test_images),
                   stability=stability_context(figures), recipe_search=recipe_search_context(figures),
                   # the study profile's C, D and E continued to 150 epochs (results/study-150): the study's runs only
                   longer=longer_context(ordered, figures=figures) if study else None,
                   # E's variants and C's and D's gradients under the study profile's recipe (results/study-diagnosis)
                   ladder_diagnosis=ladder_diagnosis_context(ordered) if study else None,
                   # the recipe, one change at a time (results/recipe-probes), and the questions under Adam (study-adam)
                   probes=recipe_probes_context(ordered) if study else None,
                   robustness=recipe_robustness_context(ordered) if study else None,
                   # where each of those archives came from (the appendix's reproduction table)
                   experiment_archives=experiment_archives() if study else [],
                   h=h_context(everything, figures, code_version("H")), h_target_acc=TARGET_ACC)
    context["paper_family"] = paper_family(context) if study else None
    return context


def write_h_note(layout: RunLayout, runs: dict[str, list[dict]], damaged: list[str], draft: bool = False) -> Path:
    """Model H's technical note (report/h.tex.j2) from the h profile's runs: H's seeds, its ablations, the
    per-layer profile beside them, and the frontier of accuracy against minutes with the study profile's
    ladder (its archive, where present) for comparison. Returns the report folder holding report.tex."""
    report_dir, figures = layout.report_dir, layout.figures_dir
    report_dir.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    ladder_root = report_h.ladder_layout().root
    ladder = {name: seeds for name, seeds in _ordered(collect_runs(ladder_root)).items()
              if not report_h.in_h_family(seeds[0]["config"]["model"])} if ladder_root.exists() else {}
    h = h_context({**runs, **ladder}, figures, code_version("H"), profile_file=layout.layer_profile, with_h95=True)
    context = dict(h=h, h_target_acc=TARGET_ACC, min_seeds=MIN_SEEDS, progressive_sides=list(PROGRESSIVE_SIDES),
                   provenance=provenance_context(runs, damaged), frontier_ladder=list(ladder))
    return write_tex(h_note_template(), context, draft, report_dir)


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


def build_report(layout: RunLayout, benchmark=None, draft: bool = False, paper: bool = False) -> Path:
    """Write the report's sources from a profile's runs and compile its PDF (`layout.pdf`).

    `benchmark`: the JSON of benchmarks/epoch_time.py (default: `benchmark_source`'s choice). `draft`: an authored
    sentence whose claim no longer holds is marked in the PDF instead of stopping the build (latex.claim). `paper`:
    the long-form paper instead of the run report for a profile other than the study's (write_sources).
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
        return compile_pdf(write_sources(layout, benchmark, draft, paper))
    finally:
        lock.release()
