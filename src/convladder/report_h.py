"""The report's section on model H, the ladder's top rung: its final runs against their targets, its
ablations, where its training time goes, and accuracy against training minutes beside the ladder's runs.

H's runs are read from the h profile's archive (results/h, `convladder all --profile h`), so that every
report (quick, study) shows them without training them; the per-layer profile is the JSON that
`benchmarks/model_h.py --layers` writes there.
"""

from __future__ import annotations

from pathlib import Path

import convladder.figures as draw
from convladder.analysis import MIN_SEEDS, prediction_interval, single_run_verdict
from convladder.io import read_json
from convladder.paths import RunLayout
from convladder.profiles import H_ABLATIONS
from convladder.results import collect_runs, summarize

H_PROFILE = "h"
# Issue 14's targets: mean test accuracy over at least MIN_SEEDS seeds, and minutes of training and
# evaluation per seed, by the CPU's bfloat16 unit (hardware.bf16_unit); the milestone on the way.
TARGET_ACC = 0.94
TARGET_MINUTES = {"amx_bf16": 15, "avx512_bf16": 30}
MILESTONE_ACC = 0.93
MILESTONE_MINUTES = {"amx_bf16": 10, "avx512_bf16": 20}
BF16_UNIT_NAMES = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}
LAYER_PROFILE = "layer_profile.json"  # in the h profile's run folder
# A convolution taking more than LARGE_SHARE of the step runs "at the peak" from AT_PEAK of the nominal bf16 peak on.
LARGE_SHARE, AT_PEAK = 0.05, 0.9

# What each ablation leaves out, in words (the runs "H-<name>" of profiles.H_ABLATIONS).
ABLATION_WORDS = {
    "no-whitening": "no patch whitening (a trainable 2$\\times$2 conv instead)",
    "no-dirac": "no identity initialisation of the convs",
    "no-bias-lr": "batch-norm biases at the common learning rate",
    "no-lookahead": "no lookahead (weight averaging)",
    "no-label-smoothing": "no label smoothing",
    "random-flip": "random flips instead of alternating ones",
    "no-augment": "no flips and no crops",
}


def h_layout() -> RunLayout:
    return RunLayout.of(H_PROFILE)


def layer_profile_path(layout: RunLayout | None = None) -> Path:
    return (layout or h_layout()).root / LAYER_PROFILE


def minutes(run: dict) -> float:
    """Training and final evaluation of one seed, in minutes (what the targets count)."""
    return (run["train_seconds"] + run.get("evaluation_seconds", 0.0)) / 60


def target_verdict(seeds: list[dict], accuracy: float, limits: dict[str, float]) -> dict:
    """Whether H's seeds meet a target: mean test accuracy with and without test-time augmentation
    against `accuracy` (None under MIN_SEEDS seeds), and the slowest seed's minutes against the limit of
    the CPU kind they ran on (None where the seeds ran on a CPU kind without a limit, or on several)."""
    units = {run["environment"].get("cpu_bf16_unit") for run in seeds}
    unit = units.pop() if len(units) == 1 else None
    limit = limits.get(unit) if unit else None
    slowest = max(minutes(run) for run in seeds)
    enough = len(seeds) >= MIN_SEEDS
    mean = lambda key: summarize([run["final"][key] for run in seeds if key in run["final"]])[0]  # noqa: E731
    return dict(
        accuracy=accuracy, limit=limit, unit=BF16_UNIT_NAMES.get(unit, unit), slowest=slowest, enough_seeds=enough,
        plain_met=mean("test_acc") >= accuracy if enough else None,
        tta_met=mean("test_acc_tta") >= accuracy if enough else None,
        time_met=slowest <= limit if limit is not None else None,
    )


def ablation_rows(h_runs: dict[str, list[dict]]) -> list[dict]:
    """Each ablation's single run against H's seeds: its test accuracy (with test-time augmentation),
    the difference from H's mean, and whether it falls below, within or above H's seed-to-seed spread
    (analysis.single_run_verdict), with its minutes."""
    seeds = h_runs["H"]
    reference = [run["final"]["test_acc_tta"] for run in seeds]
    mean = summarize(reference)[0]
    rows = []
    for name in H_ABLATIONS:
        runs = h_runs.get(f"H-{name}")
        if not runs:
            continue
        run = runs[0]
        tta = run["final"]["test_acc_tta"] if "test_acc_tta" in run["final"] else None
        rows.append(dict(
            name=f"H-{name}", words=ABLATION_WORDS[name], test=run["final"]["test_acc"], tta=tta,
            difference=None if tta is None else tta - mean, minutes=minutes(run), seed=run["config"]["seed"],
            verdict=single_run_verdict(reference, tta),
        ))
    return rows


def layer_rows(profile: dict) -> dict:
    """The per-layer profile, its convolutions one row each and the rest grouped by kind of layer."""
    total = profile["step_seconds"]
    convs, grouped = [], {}
    for name, row in profile["layers"].items():
        seconds = row["forward"] + row["backward"]
        if row["kind"] == "Conv2d":
            convs.append(dict(name=name, forward=row["forward"], backward=row["backward"], share=seconds / total,
                              gflop=row["flops"] / 1e9, gflops=row["flops"] / seconds / 1e9 if seconds else None))
        else:
            kind = grouped.setdefault(row["kind"], dict(name=row["kind"], seconds=0.0, count=0))
            kind["seconds"] += seconds
            kind["count"] += 1
    others = sorted(grouped.values(), key=lambda k: -k["seconds"])
    for kind in others:
        kind["share"] = kind["seconds"] / total
    flops = sum(row["flops"] for row in profile["layers"].values())
    peak = profile["peaks"]["bf16"]
    large = [c for c in convs if c["share"] > LARGE_SHARE]
    return dict(convs=convs, others=[k for k in others if k["share"] >= 0.005], other_share=profile["other_seconds"] / total,
                conv_share=sum(c["share"] for c in convs), step_seconds=total, gflops=flops / total / 1e9,
                at_peak=bool(large) and all(c["gflops"] >= AT_PEAK * peak for c in large),
                above_peak=any(c["gflops"] and c["gflops"] > peak for c in convs))


def frontier_groups(h_runs: dict[str, list[dict]], runs: dict[str, list[dict]]) -> list[dict]:
    """The frontier figure's markers: H's seeds with and without test-time augmentation, its ablations,
    and every run of the report's own profile (the ladder, GAP-fast) at its final test accuracy."""
    point = lambda seeds, key: dict(minutes=[r["train_seconds"] / 60 for r in seeds],  # noqa: E731
                                    accuracy=[r["final"][key] for r in seeds])
    groups = [dict(label="H, test-time augmentation", marker="*", **point(h_runs["H"], "test_acc_tta")),
              dict(label="H", marker="P", **point(h_runs["H"], "test_acc"))]
    ablations = [seeds[0] for name, seeds in h_runs.items() if name != "H" and "test_acc_tta" in seeds[0]["final"]]
    if ablations:
        groups.append(dict(label="H's ablations (with TTA)", marker="x", **point(ablations, "test_acc_tta")))
    groups += [dict(label=name, **point(seeds, "test_acc")) for name, seeds in runs.items() if name not in h_runs]
    return groups


def h_context(runs: dict[str, list[dict]], figures: Path, h_runs: dict[str, list[dict]] | None = None,
              layer_profile: dict | None = None) -> dict | None:
    """What the template's section on H reads, beside the report's own `runs`; None when the archive
    holds no finished run of H. Writes the frontier figure."""
    if h_runs is None:
        h_runs = collect_runs(h_layout().root) if h_layout().root.exists() else {}
    if layer_profile is None and layer_profile_path().exists():
        layer_profile = read_json(layer_profile_path())
    seeds = h_runs.get("H")
    if not seeds:
        return None
    first = seeds[0]
    tta = [run["final"]["test_acc_tta"] for run in seeds if "test_acc_tta" in run["final"]]
    return dict(
        seeds=seeds, config=first["config"], epochs=first["history"]["epoch"][-1], sizes=first["data"]["sizes"],
        layers=first["layers"], parameters=first["parameters"], cpus=sorted({run["environment"]["cpu"] for run in seeds}),
        commits=sorted({run["environment"].get("git_commit", "unknown") for runs in h_runs.values() for run in runs}),
        test=[run["final"]["test_acc"] for run in seeds], flip=[run["final"]["test_acc_flip"] for run in seeds],
        tta=tta, minutes=[minutes(run) for run in seeds], train_minutes=[run["train_seconds"] / 60 for run in seeds],
        interval=prediction_interval(tta) if len(tta) >= MIN_SEEDS else None,
        target=target_verdict(seeds, TARGET_ACC, TARGET_MINUTES),
        milestone=target_verdict(seeds, MILESTONE_ACC, MILESTONE_MINUTES),
        ablations=ablation_rows(h_runs), ablations_planned=len(H_ABLATIONS),
        layer_profile=layer_rows(layer_profile) if layer_profile else None, layer_profile_raw=layer_profile,
        frontier=draw.frontier(frontier_groups(h_runs, runs), figures),
        frontier_cpus=sorted({r["environment"]["cpu"] for seeds in [*h_runs.values(), *runs.values()] for r in seeds}),
    )
