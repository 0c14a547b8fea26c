"""The whole profile, in order: data facts, every run of the ladder, the analyses, the report.

Each step executes one of the notebooks with papermill and keeps the executed copy (and an HTML
copy of it) in the profile's run folder. A run that is finished and current (same settings,
training code and data) is reused; an interrupted one continues; a stale one trains again
from epoch 0 beside the old one. The kernel's output, the training progress bars included,
streams to this process's terminal as it comes.

    convladder all --profile quick            # or: papermill notebooks/run_all.ipynb ...
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from convladder.models import STUDY_MODEL_NAMES
from convladder.other_sizes import OTHER_SIZES_RUNS
from convladder.profiles import ladder
from convladder.paths import ARCHIVED_PROFILES, RunLayout, exported_figures, exported_pdf, notebooks_dir


# The kernel's own log (a notice that it listens on the loopback interface, a note when it is shut
# down) says nothing to act on; a failing cell is reported through the notebook, with its traceback.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


@dataclass
class Step:
    """One notebook execution: which notebook, where its executed copy goes, with what."""

    notebook: str
    output: Path
    parameters: dict
    label: str


@dataclass
class PipelineResult:
    pdf: Path | None  # None: the profile has no report of its own (model H's)
    exported: Path | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class StepFailed(RuntimeError):
    """A notebook failed; finished runs are kept, and running the same command again continues."""


def plan(profile: str, layout: RunLayout, data_dir: str | None, models=None, force: bool = False,
         retrain_stale: bool = False) -> list[Step]:
    """The steps of a profile, the reused runs left out. In an archived profile (its runs take hours)
    a stale run is reported and kept as it is unless `retrain_stale` (or `force`) asks for hours of
    training; elsewhere a stale run trains again."""
    from convladder.data import load_cifar10
    from convladder.runs import run_state

    runs = ladder(profile, models)  # checks the profile and the model names before any work
    common = {"profile": profile, "data_dir": data_dir, "run_dir": str(layout.root)}
    steps = [Step("00_data", layout.notebook("00_data"), common, "data facts")]
    checksum = load_cifar10(data_dir).checksum
    archived = profile in ARCHIVED_PROFILES
    for run in runs:
        todo = []
        for seed in run.seeds:
            state = run_state(layout.seed(run.name, seed), run.config(profile, seed), checksum)
            if force or state.kind in ("new", "resumable") or (state.kind == "stale" and (retrain_stale or not archived)):
                todo.append(seed)
            elif state.kind == "stale":
                print(f"{run.name}, seed {seed}: archived run is stale ({state.reason}); kept and reported as it is. "
                      f"To train it again (hours): convladder all --profile {profile} --retrain-stale", flush=True)
        if not todo:
            print(f"{run.name}: seeds {list(run.seeds)} finished and current in {layout.run(run.name)}, reused",
                  flush=True)
            continue
        steps.append(Step(
            "10_train", layout.train_notebook(run.name),
            {**common, "model": run.model, "name": run.name, "epochs": run.epochs, "recipe": run.recipe,
             "seeds": todo, "resume_from": run.continues, "restart": force, "retrain_stale": True},
            f"train {run.name} ({run.epochs} epoch{'s' if run.epochs != 1 else ''}, seed{'s' if len(todo) > 1 else ''} "
            f"{', '.join(map(str, todo))})",
        ))
    names = {run.name for run in runs}
    gap_runs = [name for name in OTHER_SIZES_RUNS if name in names]
    if gap_runs:
        steps.append(Step("20_other_sizes", layout.notebook("20_other_sizes"), {**common, "gap_runs": gap_runs},
                          "GAP at other image sizes"))
    if {"G", "GAP+"} & names:
        steps.append(Step("30_errors", layout.notebook("30_errors"),
                          {**common, "run_names": sorted({"G", "GAP+"} & names)}, "error analysis"))
    if not names & set(STUDY_MODEL_NAMES):  # model H alone: a report needs the ladder's runs
        print(f"only model H's runs in this call: no analyses and no report (a profile's report shows H's "
              f"section: its own runs of H, else the h profile's archive)", flush=True)
        return steps
    if models is None:  # the diagnosis trains its own variants of C, D, E and F
        steps.append(Step("40_diagnosis", layout.notebook("40_diagnosis"), common, "diagnosis of the anomalies"))
    steps.append(Step("90_report", layout.notebook("90_report"), common, "report"))
    return steps


def execute(step: Step, layout: RunLayout, html: bool = True) -> float:
    """Run one step's notebook, streaming its output here; returns its seconds."""
    import papermill as pm

    start = time.perf_counter()
    step.output.parent.mkdir(parents=True, exist_ok=True)
    from nbclient.exceptions import DeadKernelError

    try:
        pm.execute_notebook(
            str(notebooks_dir() / f"{step.notebook}.ipynb"), str(step.output), parameters=step.parameters,
            progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr, extra_arguments=KERNEL_ARGUMENTS,
        )
    except pm.PapermillExecutionError as err:
        raise StepFailed(
            f"{step.label} failed ({err.ename}: {err.evalue.strip().splitlines()[0] if err.evalue.strip() else ''}); "
            f"the executed notebook with the traceback is {step.output}. Finished runs are kept: mend the cause "
            f"and run the same command again"
        ) from None
    except DeadKernelError:
        raise StepFailed(
            f"{step.label}: the notebook's kernel died (out of memory?); finished epochs and runs are kept, and "
            f"running the same command again continues"
        ) from None
    finally:
        if html and step.output.exists():
            try:
                export_html(step.output, layout.html_dir / _html_name(step, layout))
            except Exception as err:  # a missing HTML copy must not hide the step's own outcome
                print(f"note: no HTML copy of {step.output} ({err})", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def _html_name(step: Step, layout: RunLayout) -> str:
    if step.notebook == "10_train":
        return f"10_train_{step.output.parent.name}.html"
    return f"{step.output.stem}.html"


def export_html(notebook: Path, target: Path) -> None:
    """An HTML copy of an executed notebook, for readers without Jupyter."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")


def export_report(profile: str, layout: RunLayout) -> Path:
    """Copy the profile's PDF and figures to `report/<profile>.pdf` and `figures/<profile>/` of the
    repository: each profile has its own files, so no profile's export replaces another's."""
    import shutil

    target = exported_pdf(profile)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.pdf, target)
    figures = exported_figures(profile)
    if figures.exists():
        shutil.rmtree(figures)
    shutil.copytree(layout.figures_dir, figures)
    return target


def run_pipeline(
    profile: str = "quick",
    data_dir: str | None = None,
    run_dir: str | None = None,
    models: list[str] | None = None,
    force: bool = False,
    export: bool = False,
    html: bool = True,
    retrain_stale: bool = False,
) -> PipelineResult:
    """Everything a profile makes, ending in its PDF (`runs/<profile>/report/report.pdf`);
    `export` also copies it to `report/<profile>.pdf` of the repository."""
    layout = RunLayout.of(profile, Path(run_dir).resolve() if run_dir else None)
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    steps = plan(profile, layout, data_dir, models, force, retrain_stale)
    seconds: dict[str, float] = {}
    for number, step in enumerate(steps, start=1):
        print(f"[{number}/{len(steps)}] {step.label} -> {step.output}", flush=True)
        seconds[step.label] = execute(step, layout, html)
        print(f"[{number}/{len(steps)}] {step.label}: done in {_minutes(seconds[step.label])}", flush=True)
    reported = any(step.notebook == "90_report" for step in steps)
    exported = export_report(profile, layout) if export and reported else None
    result = PipelineResult(layout.pdf if reported else None, exported, seconds)
    made = f"report: {exported or layout.pdf}" if reported else f"runs: {layout.root}"
    print(f"{made} (total {_minutes(result.total_seconds)}; executed notebooks as HTML in {layout.html_dir})", flush=True)
    return result


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
