"""Where things live: the one place that names files and folders.

`RunLayout` says where every file of one profile's runs lives (runs, seed folders, checkpoints,
results, the analyses, the report, the HTML copies of the executed notebooks); the functions
below name the repository's own folders (notebooks, the report template, the exported PDFs).
Every module and notebook asks here instead of joining paths itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/convladder
ASSETS_DIR = PACKAGE_DIR / "assets"

# The files of one seed of a run.
RESULTS_FILE = "results.json"
CHECKPOINT_FILE = "checkpoint.pt"
# What the analyses write into their folders.
OTHER_SIZES_FILE = "other_sizes.json"
ERRORS_FILE = "errors.json"
MISTAKES_FILE = "mistakes.pt"  # the images behind errors.json's most confident mistakes
DIAGNOSIS_FILE = "diagnosis.json"
STABILITY_FILE = "stability.json"  # one GAP-fast stability run (experiments/stability.py)
LAYER_PROFILE_FILE = "layer_profile.json"  # model H's per-layer profile, beside its runs (benchmarks/model_h.py)


def project_root() -> Path:
    """The repository root (for an editable install), else the current directory."""
    candidate = PACKAGE_DIR.parents[1]
    if (candidate / "notebooks").is_dir() and (candidate / "report").is_dir():
        return candidate
    return Path.cwd()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def report_template() -> Path:
    """The paper's Jinja2 template (the study profile's report); rendered into a profile's report folder as report.tex."""
    return project_root() / "report" / "report.tex.j2"


def run_report_template() -> Path:
    """The run report's template: every profile's report but the study's (tables, figures, verdicts, little prose)."""
    return project_root() / "report" / "run.tex.j2"


def h_note_template() -> Path:
    """Model H's technical note, rendered instead of the report for the h profile's runs."""
    return project_root() / "report" / "h.tex.j2"


# Where an export writes into the repository: report/<profile>.pdf and figures/<profile>/. As git pathspecs from
# its root: tracked products, not sources, so a checkout whose only changes are these still names its commit clean
# (records.git_commit).
EXPORTED_PDF_DIR, EXPORTED_FIGURES_DIR = "report", "figures"
EXPORTED_PATHS = (f"{EXPORTED_PDF_DIR}/*.pdf", f"{EXPORTED_FIGURES_DIR}/")
# In figures/<profile>/: the names of the figures the last export wrote there, one a line. A new export removes
# those it no longer includes and nothing else (a user's own file there stays).
EXPORTED_LIST = ".exported"


def exported_pdf(profile: str) -> Path:
    """The exported report of a profile, kept in the repository (`report/<profile>.pdf`)."""
    return project_root() / EXPORTED_PDF_DIR / f"{profile}.pdf"


def exported_figures(profile: str) -> Path:
    return project_root() / EXPORTED_FIGURES_DIR / profile


def benchmark_json() -> Path:
    """What benchmarks/epoch_time.py measured; the report's training-cost section reads it."""
    return project_root() / "runs" / "benchmark" / "epoch_time.json"


def seed_dir(run_folder: str | os.PathLike, seed: int) -> Path:
    """The folder of one seed of a run."""
    return Path(run_folder) / f"seed{seed}"


def seed_dirs(run_folder: str | os.PathLike) -> list[Path]:
    """The seed folders of a run (`seed<k>`), finished or not, in seed order."""
    found = [f for f in Path(run_folder).glob("seed*") if f.is_dir() and is_seed_dir(f)]
    return sorted(found, key=lambda f: int(f.name[4:]))


def is_seed_dir(folder: str | os.PathLike) -> bool:
    return re.fullmatch(r"seed\d+", Path(folder).name) is not None


def run_name_of(folder: str | os.PathLike) -> str:
    """The run name of a run folder or of one of its seed folders (`runs/quick/GAP/seed2` -> "GAP")."""
    path = Path(folder)
    return path.parent.name if is_seed_dir(path) else path.name


def lock_path(seed_folder: Path) -> Path:
    """The lock of a seed folder: beside it, not in it, since a retrained run replaces the folder."""
    return seed_folder.with_name(f".{seed_folder.name}.lock")


def staging_dir(seed_folder: Path) -> Path:
    """Where a stale run trains again while the old one stays in place."""
    return seed_folder.with_name(f".{seed_folder.name}.retrain")


def replaced_dir(seed_folder: Path) -> Path:
    """Where the old run waits while a retrained one takes its place (gone when the swap is done)."""
    return seed_folder.with_name(f".{seed_folder.name}.old")


# Profiles whose runs take hours on a 2-core CPU: their run folders live in the results archive and
# are committed, so that their report can be rebuilt anywhere without training them again.
ARCHIVED_PROFILES = frozenset({"study", "h", "h-e16", "h-b512", "h95", "h95-e16"})


def results_archive(name: str) -> Path:
    """A folder of archived results of long runs, committed to the repository (`results/<name>`)."""
    return project_root() / "results" / name


@dataclass(frozen=True)
class RunLayout:
    """The files of one profile's runs, under `root` (`runs/<profile>` unless chosen)."""

    root: Path

    @classmethod
    def of(cls, profile: str, run_dir: str | os.PathLike | None = None) -> "RunLayout":
        """The profile's run folder: `runs/<profile>`, or `results/<profile>` for a profile whose runs
        take hours and are committed (ARCHIVED_PROFILES); `run_dir` if given."""
        if run_dir:
            return cls(Path(run_dir))
        return cls(results_archive(profile) if profile in ARCHIVED_PROFILES else project_root() / "runs" / profile)

    # runs and their seeds
    def run(self, name: str) -> Path:
        return self.root / name

    def seed(self, name: str, seed: int) -> Path:
        return seed_dir(self.run(name), seed)

    def results(self, name: str, seed: int) -> Path:
        return self.seed(name, seed) / RESULTS_FILE

    def checkpoint(self, name: str, seed: int) -> Path:
        return self.seed(name, seed) / CHECKPOINT_FILE

    def train_notebook(self, name: str, seed: int | None = None) -> Path:
        """The executed copy of `10_train` for one run, or for one of its seeds where each seed trains as a step of
        its own (side by side, or on a cluster)."""
        return self.run(name) / ("train.ipynb" if seed is None else f"train-seed{seed}.ipynb")

    def notebook(self, stem: str) -> Path:
        """The executed copy of one of the profile's other notebooks."""
        return self.root / f"{stem}.ipynb"

    # what the analyses write
    @property
    def layer_profile(self) -> Path:
        return self.root / LAYER_PROFILE_FILE

    @property
    def data_facts(self) -> Path:
        return self.root / "data.json"

    @property
    def other_sizes_dir(self) -> Path:
        return self.root / "other_sizes"

    def other_sizes_results(self, run_name: str) -> Path:
        """What the other-sizes study wrote for one GAP run (its images beside it)."""
        return self.other_sizes_dir / run_name / OTHER_SIZES_FILE

    @property
    def errors_dir(self) -> Path:
        return self.root / "errors"

    @property
    def errors_results(self) -> Path:
        return self.errors_dir / ERRORS_FILE

    @property
    def mistake_images(self) -> Path:
        return self.errors_dir / MISTAKES_FILE

    @property
    def diagnosis_dir(self) -> Path:
        return self.root / "diagnosis"

    @property
    def diagnosis_results(self) -> Path:
        return self.diagnosis_dir / DIAGNOSIS_FILE

    # the report and the browsable copies
    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def pdf(self) -> Path:
        return self.report_dir / "report.pdf"

    @property
    def html_dir(self) -> Path:
        return self.root / "html"
