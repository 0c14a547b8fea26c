"""The one results format: `results.json` in each run folder, and reading all of them back.

A run folder holds `results.json` (config, environment, data checksum, history, final
accuracies, probability vectors) and `checkpoint.pt` (weights). Every table and figure of
the report is made from these files.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from convladder.io import atomic_write_json, read_json

RESULTS = "results.json"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: torch.device) -> dict:
    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "git_commit": git_commit(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def write_results(results: dict, run_dir: Path) -> Path:
    path = Path(run_dir) / RESULTS
    atomic_write_json(results, path)
    return path


def load_results(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / RESULTS
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the training for this run folder first")
    results = read_json(path)
    results["run_dir"] = str(Path(run_dir))
    return results


def collect_runs(runs_dir: str | os.PathLike) -> dict[str, dict]:
    """All finished runs under `runs_dir`, keyed by run name ("A", ..., "GAP", "GAP+")."""
    runs = {}
    for path in sorted(Path(runs_dir).glob(f"*/{RESULTS}")):
        results = load_results(path.parent)
        runs[results["name"]] = results
    return runs
