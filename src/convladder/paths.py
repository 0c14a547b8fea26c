"""Where things live: the repository's notebooks and report template, and run folders."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The repository root (for an editable install), else the current directory."""
    candidate = PACKAGE_DIR.parents[1]
    if (candidate / "notebooks").is_dir() and (candidate / "report").is_dir():
        return candidate
    return Path.cwd()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def report_template() -> Path:
    return project_root() / "report" / "report.tex"


def default_run_dir(profile: str) -> Path:
    return project_root() / "runs" / profile
