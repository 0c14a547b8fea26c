"""The one results format: `results.json` in each run folder, and reading all of them back.

A run is trained once per seed; each seed's folder (`<run folder>/seed<k>`) holds
`results.json` (config, environment, data checksum, history, final accuracies, probability
vectors) and `checkpoint.pt` (weights). Every table and figure of the report is made from
these files.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from convladder.tools.hardware import bf16_unit, cpu_name
from convladder.tools.files import DamagedFile, atomic_write_json, read_json
from convladder.results.layout import EXPORTED_PATHS, RESULTS_FILE, is_seed_dir, seed_dirs
from convladder.results.schema import NewerSchema, RunResults, migrate, results_problem, with_every_fact, write_problem

def git_commit(where: Path | None = None) -> str:
    """The short commit of the checkout holding `where` (default: this package), with "-dirty" when a tracked
    file differs from it; the exported PDFs and figures (layout.EXPORTED_PATHS) do not count: an export
    changes them, and a second export from the same checkout is still built from that commit."""
    where = where or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=where,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)",
             *(f":(top,exclude){path}" for path in EXPORTED_PATHS)],
            capture_output=True, text=True, cwd=where,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment(device: torch.device) -> dict:
    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_bf16_unit": bf16_unit(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def write_results(results: dict, run_dir: Path) -> Path:
    """`results` as the run folder's results.json, at the current schema version (every optional fact present:
    schema.with_every_fact, which completes `results` in place, so that the caller holds what the file holds)."""
    problem = write_problem(results)
    if problem:
        raise ValueError(f"results of run {results.get('name')!r} not written: {problem} (a bug in the code that made them)")
    path = Path(run_dir) / RESULTS_FILE
    atomic_write_json(with_every_fact(results), path)
    return path



class DamagedResults(ValueError):
    """A results file that is not valid JSON or lacks what every results file holds."""


class NewerResults(DamagedResults):
    """A results file of a later schema version than this code knows: a newer convladder's run, not damage. Readers
    skip it as they skip a damaged file; training refuses to replace it (core.runs.train_run)."""


def read_results(path: str | os.PathLike) -> RunResults:
    """A results.json, checked (io.read_json's limits, then schema.results_problem) and migrated to the current
    schema version (schema.migrate); DamagedResults naming the file and what is wrong. FileNotFoundError when there
    is none."""
    path = Path(path)
    try:
        results = read_json(path)
    except DamagedFile as err:
        raise DamagedResults(str(err)) from None
    problem = results_problem(results)
    if problem:
        raise DamagedResults(f"{path} is damaged ({problem}); train the run again (convladder all does it by itself)")
    try:
        return migrate(results)
    except NewerSchema as err:
        raise NewerResults(f"{path} has {err}") from None


def read_seed(folder: str | os.PathLike) -> tuple[dict, dict, dict | None] | None:
    """A seed folder as far as it trained: (config, history, results) from its results.json once finished
    (read_results), (config, history, None) from its checkpoint before; None when it holds neither."""
    from convladder.results.layout import CHECKPOINT_FILE
    from convladder.tools.files import load_checkpoint_file

    folder = Path(folder)
    if (folder / RESULTS_FILE).exists():
        results = read_results(folder / RESULTS_FILE)
        return results["config"], results["history"], results
    if (folder / CHECKPOINT_FILE).exists():
        state = load_checkpoint_file(folder / CHECKPOINT_FILE)
        return state["config"], state["history"], None
    return None


def load_results(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the training for this run folder first")
    results = read_results(path)
    results["run_dir"] = str(Path(run_dir))
    return results


def summarize(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("nothing to summarize")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def seed_folders(run_folder: str | os.PathLike) -> list[Path]:
    """A run's finished seed folders in seed order (or the folder itself for a single run)."""
    run_folder = Path(run_folder)
    if (run_folder / RESULTS_FILE).exists():
        return [run_folder]
    found = [folder for folder in seed_dirs(run_folder) if (folder / RESULTS_FILE).exists()]
    if not found:
        raise FileNotFoundError(f"{run_folder} holds no finished run ({RESULTS_FILE}, or seed*/{RESULTS_FILE}): "
                                f"train it first")
    return found


def resolve_run_folder(path: str | os.PathLike) -> Path:
    """`path` itself when it holds a finished run, else its lowest seed's folder."""
    return seed_folders(path)[0]


def _misplaced(results: dict, folder: Path, root: Path) -> str | None:
    """What a results file records of its run and seed when that differs from the folder it lies in
    (`<run>/seed<k>` or `<run>`): a file copied from one run's folder into another's does not count there."""
    run = folder.parent.name if is_seed_dir(folder) and folder.parent != root else folder.name
    seed = int(folder.name[4:]) if is_seed_dir(folder) else results["config"]["seed"]
    if results["name"] != run or results["config"]["seed"] != seed:
        return f"run {results['name']} seed {results['config']['seed']}"
    return None


def collect_runs(runs_dir: str | os.PathLike, damaged: list[str] | None = None) -> dict[str, list[dict]]:
    """All finished runs under `runs_dir`, keyed by run name ("A", ..., "GAP", "GAP+"):
    for each, the results of its seeds in seed order (one folder level or two: `A/` or `A/seed0/`).

    A damaged results file is skipped with a one-line warning; its folder is appended to
    `damaged` when a list is given, so that a report can say which run is missing."""
    runs: dict[str, list[dict]] = {}
    root = Path(runs_dir)
    for path in sorted(root.glob(f"*/{RESULTS_FILE}")) + sorted(root.glob(f"*/seed*/{RESULTS_FILE}")):
        try:
            results = load_results(path.parent)
            misplaced = _misplaced(results, path.parent, root)
            if misplaced:
                raise DamagedResults(f"{path} records {misplaced}, not where it lies; move it back, or train this run")
        except DamagedResults as err:
            print(f"warning: skipped {err}", file=sys.stderr, flush=True)
            if damaged is not None:
                damaged.append(str(path.parent.relative_to(root)))
            continue
        runs.setdefault(results["name"], []).append(results)
    for seeds in runs.values():
        seeds.sort(key=lambda r: r["config"]["seed"])
    return runs
