"""GAP-fast's stability runs, read: the archived runs of convladder.experiments.stability
(results/gap-fast-stability) and how much steadier each remedy makes the validation accuracy."""

from __future__ import annotations

from pathlib import Path

from convladder.results.layout import STABILITY_FILE, results_archive
from convladder.tools.files import read_json

def stability_dir() -> Path:
    return results_archive("gap-fast-stability")


SERIES = ("val_acc", "val_acc_recalibrated", "val_acc_ema")
# A remedy "removes" the jumps when its mean epoch-to-epoch change is at most this fraction of the run's own.
STEADIER = 0.5


def archived_stability() -> list[dict]:
    """Every archived stability run (one per seed), oldest seed first."""
    return [read_json(path) for path in sorted(stability_dir().glob(f"seed*/{STABILITY_FILE}"))]


def stability_summary(result: dict) -> dict:
    """For the full-size epochs (after progressive resizing) of one stability run: per series, the
    mean and largest drop from one epoch to the next and the range; and each series' last value."""
    full = [row for row in result["epochs"] if row["side"] == 32]
    summary = {"full_size_from": full[0]["epoch"] if full else None, "epochs": len(result["epochs"])}
    for key in SERIES:
        values = [row[key] for row in full]
        steps = [b - a for a, b in zip(values, values[1:])]
        summary[key] = dict(
            mean_change=sum(abs(x) for x in steps) / len(steps) if steps else 0.0,
            largest_drop=-min(steps) if steps and min(steps) < 0 else 0.0,
            low=min(values) if values else None, high=max(values) if values else None,
            last=result["epochs"][-1][key],
        )
    plain = summary["val_acc"]["mean_change"]
    summary["steadier"] = {key: summary[key]["mean_change"] <= STEADIER * plain for key in SERIES[1:]}
    summary["steadier_fraction"] = STEADIER
    # each remedy's mean epoch-to-epoch change as a fraction of the run's own (None where the run's own is 0)
    summary["change_ratio"] = {key: summary[key]["mean_change"] / plain if plain else None for key in SERIES[1:]}
    return summary
