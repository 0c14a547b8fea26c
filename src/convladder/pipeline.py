"""The whole profile, in order: data facts, every run of the ladder, the analyses, the report.

Each step executes one of the notebooks with papermill and keeps the executed copy (and an HTML
copy of it) in the profile's run folder. A run that is finished and current (same settings,
training code and data) is reused; an interrupted one continues; a stale one trains again
from epoch 0 beside the old one. The kernel's output, the training progress bars included,
streams to this process's terminal as it comes.

    convladder all --profile quick            # or: papermill notebooks/run_all.ipynb ...
    convladder all --profile study --workers 2   # two runs at a time, one thread each

With `workers` above 1 the training notebooks run side by side (convladder.workers), and with
`cluster` on a Ray cluster (convladder.cluster); both train each seed as a step of its own.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from convladder.core.registry import study_model_names
from convladder.plan.profiles import H_PROFILE, OTHER_SIZES_RUNS, PlannedRun, ladder
from convladder.results.layout import ARCHIVED_PROFILES, EXPORTED_LIST, RunLayout, exported_figures, exported_pdf, notebooks_dir
from convladder.tools.files import (atomic_write_bytes, atomic_write_text, claim, copy_file, refuse_linked_folders,
                                    refuse_links_leaving, remove_own_temporaries)

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
    seconds: dict[str, float] = field(default_factory=dict)  # each step's (side by side: more than the wall time)
    wall_seconds: float = 0.0


class StepFailed(RuntimeError):
    """A notebook failed; finished runs are kept, and running the same command again continues."""


def planned(run: PlannedRun, profile: str) -> dict:
    """What the training notebook receives of a planned run: its config (seed 0's; the notebook sets each
    seed) and the recipe it records, serialised."""
    config, recipe = run.plan(profile)
    return {"config": config.to_dict(), "recipe": recipe}


def plan(profile: str, layout: RunLayout, data_dir: str | None, models=None, force: bool = False,
         retrain_stale: bool = False, per_seed: bool = False) -> list[Step]:
    """The steps of a profile, the reused runs left out. In an archived profile (its runs take hours)
    a stale run is reported and kept as it is unless `retrain_stale` (or `force`) asks for hours of
    training; elsewhere a stale run trains again. A run's seeds train in one step, or with `per_seed` (runs
    trained side by side or on a cluster) each in a step of its own, so that they can train at the same time."""
    from convladder.core.data import load_cifar10
    from convladder.core.runs import run_state

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
        for seeds in ([[seed] for seed in todo] if per_seed else [todo]):
            steps.append(Step(
                "10_train", layout.train_notebook(run.name, seeds[0] if per_seed else None),
                {**common, "name": run.name, "planned": planned(run, profile), "seeds": seeds,
                 "resume_from": run.continues, "restart": force, "retrain_stale": True},
                f"train {run.name} ({run.epochs} epoch{'s' if run.epochs != 1 else ''}, seed{'s' if len(seeds) > 1 else ''} "
                f"{', '.join(map(str, seeds))})",
            ))
    names = {run.name for run in runs}
    gap_runs = [name for name in OTHER_SIZES_RUNS if name in names]
    if gap_runs:
        steps.append(Step("20_other_sizes", layout.notebook("20_other_sizes"), {**common, "gap_runs": gap_runs},
                          "GAP at other image sizes"))
    if {"G", "GAP+"} & names:
        steps.append(Step("30_errors", layout.notebook("30_errors"),
                          {**common, "run_names": sorted({"G", "GAP+"} & names)}, "error analysis"))
    if not names & set(study_model_names()):  # model H alone: its note in the h profile, else no report
        if profile == H_PROFILE:
            steps.append(Step("90_report", layout.notebook("90_report"), common, "model H's note"))
        else:
            print("only model H's runs in this call: no analyses and no report (the h profile's report is H's note, "
                  "convladder report --profile h)", flush=True)
        return steps
    if models is None:  # the diagnosis trains its own variants of C, D, E and F
        steps.append(Step("40_diagnosis", layout.notebook("40_diagnosis"), common, "diagnosis of the anomalies"))
    steps.append(Step("90_report", layout.notebook("90_report"), common, "report"))
    return steps


def execute(step: Step, layout: RunLayout, html: bool = True, log: Path | None = None) -> float:
    """Run one step's notebook, streaming its output here (or into the file `log`); returns its seconds."""
    import papermill as pm

    start = time.perf_counter()
    step.output.parent.mkdir(parents=True, exist_ok=True)
    from nbclient.exceptions import DeadKernelError

    claim(step.output)  # papermill writes the executed notebook by its name: never through a link
    stream = open(claim(log), "w", encoding="utf-8") if log else None
    try:
        pm.execute_notebook(
            _literal(notebooks_dir() / f"{step.notebook}.ipynb"), _literal(step.output), parameters=step.parameters,
            progress_bar=False, stdout_file=stream or sys.stdout, stderr_file=stream or sys.stderr,
            extra_arguments=KERNEL_ARGUMENTS,
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
        if stream:
            stream.close()
        if html and step.output.exists():
            try:
                export_html(step.output, layout.html_dir / _html_name(step, layout))
            except Exception as err:  # a missing HTML copy must not hide the step's own outcome
                print(f"note: no HTML copy of {step.output} ({err})", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def _literal(path: Path) -> str:
    """A path papermill takes as it is: it fills `{name}` in paths with the parameters (str.format), so a
    folder named `{x}` or `{profile}` needs its braces doubled."""
    return str(path).replace("{", "{{").replace("}", "}}")


def _html_name(step: Step, layout: RunLayout) -> str:
    """`10_train_<run>.html`, `10_train_<run>_seed<k>.html` for a seed's own step, `<stem>.html` for the others."""
    if step.notebook == "10_train":
        seed = step.output.stem.removeprefix("train").removeprefix("-")
        return f"10_train_{step.output.parent.name}{'_' + seed if seed else ''}.html"
    return f"{step.output.stem}.html"


def export_html(notebook: Path, target: Path) -> None:
    """An HTML copy of an executed notebook, for readers without Jupyter."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    atomic_write_text(body, target)


def included_figures(report_tex: Path, figures_dir: Path) -> list[Path]:
    """The files of `figures_dir` that the LaTeX source includes (\\includegraphics; a name without an extension
    is looked up as .pdf and .png, as pdflatex does), in the order they appear, each once."""
    import re

    found: list[Path] = []
    for name in re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", report_tex.read_text()):
        path = figures_dir / name
        candidates = [path] if path.suffix else [path.with_suffix(".pdf"), path.with_suffix(".png")]
        file = next((candidate for candidate in candidates if candidate.is_file()), None)
        if file is not None and file not in found:
            found.append(file)
    return found


def export_report(profile: str, layout: RunLayout) -> Path:
    """Copy the profile's PDF to `report/<profile>.pdf` and the figures it includes (not whatever else an earlier
    build left in the figures folder) to `figures/<profile>/` of the repository: each profile has its own files, so
    no profile's export replaces another's. Of what is there, only the figures an earlier export wrote
    (EXPORTED_LIST) and no longer includes are removed; a user's own files stay, and no folder on the way may be a
    link (LinkError, nothing written)."""
    target, figures = exported_pdf(profile), exported_figures(profile)
    refuse_linked_folders(target.parent.parent, target.parent, figures)  # from the repository's root
    included = included_figures(layout.report_dir / "report.tex", layout.figures_dir)
    names = [figure.name for figure in included]
    atomic_write_bytes(layout.pdf.read_bytes(), target)
    figures.mkdir(parents=True, exist_ok=True)
    earlier = exported_before(figures)
    for name in earlier - set(names):
        (figures / name).unlink(missing_ok=True)  # a link there goes, never what it points to
    for figure in included:
        copy_file(figure, figures / figure.name)
    atomic_write_text("".join(f"{name}\n" for name in names), figures / EXPORTED_LIST)
    remove_own_temporaries(target.parent, [target.name])  # what an interrupted export left
    remove_own_temporaries(figures, [*earlier, *names, EXPORTED_LIST])
    others = sorted(p.name for p in figures.iterdir() if p.name not in {*names, EXPORTED_LIST})
    if others:
        print(f"{figures} also holds files this export did not write ({', '.join(others[:5])}"
              f"{', ...' if len(others) > 5 else ''}): left as they are", flush=True)
    return target


def exported_before(figures: Path) -> set[str]:
    """The names of the figures an earlier export wrote to `figures`: its EXPORTED_LIST (plain names only). Without
    the list (an export made before it existed, or the list removed) none: what cannot be shown to be an export's
    stays, and the export names it."""
    listed = figures / EXPORTED_LIST
    names = listed.read_text(errors="replace").splitlines() if listed.is_file() and not listed.is_symlink() else []
    return {name for name in names if name and "/" not in name and not name.startswith(".")
            and ((figures / name).is_file() or (figures / name).is_symlink())}


def run_pipeline(
    profile: str = "quick",
    data_dir: str | None = None,
    run_dir: str | None = None,
    models: list[str] | None = None,
    force: bool = False,
    export: bool = False,
    html: bool = True,
    retrain_stale: bool = False,
    workers: int = 1,
    cluster: str | None = None,
) -> PipelineResult:
    """Everything a profile makes, ending in its PDF (`runs/<profile>/report/report.pdf`);
    `export` also copies it to `report/<profile>.pdf` of the repository. `workers` above 1 trains that
    many seeds side by side (workers.execute_side_by_side); `cluster` (a Ray address, or "auto": RAY_ADDRESS) trains
    every run on that Ray cluster instead (cluster.execute_on_cluster)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if cluster:  # Ray, the address and the cluster checked before any work; Ray is imported on this path only
        from convladder.cluster import execute_on_cluster, resolve

        cluster = resolve(cluster)
    layout = RunLayout.of(profile, Path(run_dir).resolve() if run_dir else None)
    refuse_links_leaving(layout.root)  # every write below stays in the run folder
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    start = time.perf_counter()
    steps = plan(profile, layout, data_dir, models, force, retrain_stale, per_seed=bool(cluster) or workers > 1)
    training = [step for step in steps if step.notebook == "10_train"]
    side_by_side = bool(cluster) or (workers > 1 and len(training) > 1)
    seconds: dict[str, float] = {}
    for number, step in enumerate(steps, start=1):
        if side_by_side and step.notebook == "10_train":
            if step is training[0]:
                how = f"on the Ray cluster at {cluster}" if cluster else f"{workers} runs at a time"
                print(f"[{number}-{number + len(training) - 1}/{len(steps)}] training, {how}", flush=True)
                if cluster:
                    seconds.update(execute_on_cluster(training, layout, cluster, data_dir, html))
                else:
                    from convladder.workers import execute_side_by_side

                    seconds.update(execute_side_by_side(training, layout, workers, html))
            continue
        print(f"[{number}/{len(steps)}] {step.label} -> {step.output}", flush=True)
        seconds[step.label] = execute(step, layout, html)
        print(f"[{number}/{len(steps)}] {step.label}: done in {_minutes(seconds[step.label])}", flush=True)
    reported = any(step.notebook == "90_report" for step in steps)
    exported = export_report(profile, layout) if export and reported else None
    result = PipelineResult(layout.pdf if reported else None, exported, seconds, time.perf_counter() - start)
    made = f"report: {exported or layout.pdf}" if reported else f"runs: {layout.root}"
    print(f"{made} (total {_minutes(result.wall_seconds)}; executed notebooks as HTML in {layout.html_dir})", flush=True)
    return result


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
