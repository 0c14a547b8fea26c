"""The final runs of H's family (H's at its milestone, H-95's) judged against their goals, for H's note: each archive's
seeds with their per-seed lists, the goal's verdict (analysis.h_targets), and the same runs trained again on the other
CPU kind the goals name (plan.profiles.OTHER_CPU_ARCHIVES)."""

from __future__ import annotations

from pathlib import Path

from convladder.analysis.h_targets import (every_seed_measured, goal, interval_holds, judged_key, minutes,
                                          target_verdict)
from convladder.analysis.statistics import mean_interval, measured
from convladder.plan.profiles import OTHER_CPU_ARCHIVES, get_profile, plan_config
from convladder.results.layout import RunLayout, project_root, results_archive
from convladder.results.records import collect_runs, summarize
from convladder.results.schema import final_epoch
from convladder.tools.hardware import cpu_names


def final_layout(profile: str) -> RunLayout:
    """The final runs of a profile of H's family: H-95's (results/h95-e16, results/h95) or H's at its milestone
    (results/h-e16, results/h-b512)."""
    return RunLayout.of(profile)


def shown_path(root: Path) -> str:
    """An archive's folder as the report names it: relative to the project where it lies inside it."""
    return str(root.relative_to(project_root()) if root.is_relative_to(project_root()) else root)


def seed_lists(seeds: list[dict]) -> dict:
    """Per-seed lists of a model's final runs, in the runs' order: test accuracy plain, with the mirror image and with
    TTA (each only where measured, and whether every seed measured it), minutes as the targets count them and of
    training, the cores other processes kept busy beside each (None: not recorded); with the CPUs and thread counts
    they ran on."""
    values = lambda key: measured(seeds, key) or []  # noqa: E731
    keys = dict(test="test_acc", flip="test_acc_flip", tta="test_acc_tta")
    return dict(**{name: values(key) for name, key in keys.items()},
                # whether every seed measured each (analysis.h_targets.every_seed_measured): where a mean exists
                complete={name: every_seed_measured(seeds, key) for name, key in keys.items()},
                minutes=[minutes(r) for r in seeds], train_minutes=[r["train_seconds"] / 60 for r in seeds],
                beside=[r.get("beside_cores") for r in seeds], cpus=cpu_names(r["environment"] for r in seeds),
                threads=sorted({r["environment"].get("torch_threads") for r in seeds} - {None}))


def final_runs(model: str, profile: str, code_version: str | None = None, goal_name: str = "target",
               root: Path | None = None) -> dict:
    """One profile's final runs of `model` (H, H95; any seeds finished so far, from its final_layout, or from `root`)
    against its goal `goal_name` (judged_runs), with the archive's folder and its unreadable run folders; a seed trained
    with another profile is left out and named with them (an archive under `root` is not the profile's own folder)."""
    root = root or final_layout(profile).root
    damaged: list[str] = []
    found = sorted(collect_runs(root, damaged).get(model, []) if root.exists() else [], key=lambda r: r["config"]["seed"])
    seeds, other = [], []
    for r in found:
        (seeds if r["config"].get("profile", profile) == profile else other).append(r)
    damaged += [f"{model}/seed{r['config']['seed']} (trained with profile {r['config']['profile']}, not {profile})"
                for r in other]
    return dict(**judged_runs(seeds, model, profile, code_version, goal_name), archive=shown_path(root), damaged=damaged)


def judged_runs(seeds: list[dict], model: str, profile: str, code_version: str | None = None,
                goal_name: str = "target") -> dict:
    """A profile's final seeds of `model` against its goal `goal_name` (analysis.h_targets.GOALS): the seeds with their
    lists (seed_lists), commits, whether any is stale against `code_version`, and the minutes their epochs and final
    evaluations took."""
    accuracy, limits, tta = goal(model, goal_name)
    epoch_minutes = [s / 60 for r in seeds for s in r["history"]["epoch_seconds"]]
    evaluation = [r["evaluation_seconds"] / 60 for r in seeds if r["evaluation_seconds"] is not None]
    # what minutes() counts beyond training and evaluation (the call's data loading and whitening, where longer)
    overhead = [minutes(r) - (r["train_seconds"] + (r["evaluation_seconds"] or 0.0)) / 60 for r in seeds]
    return dict(
        profile=profile, seeds=seeds,
        epochs=final_epoch(seeds[0]) if seeds else get_profile(profile).epochs[model], **seed_lists(seeds),
        commits=sorted({r["environment"].get("git_commit", "unknown") for r in seeds}),
        stale=bool(code_version) and any(r.get("code_version") != code_version for r in seeds),
        epoch_minutes=[min(epoch_minutes), max(epoch_minutes)] if epoch_minutes else None,
        evaluation_minutes=max(evaluation) if evaluation else None, overhead_minutes=max(overhead, default=0.0),
        config=seeds[0]["config"] if seeds else plan_config(profile, model)[0].to_dict(),
        target=target_verdict(seeds, accuracy, limits, tta) if seeds else dict(verdict="undecided", accuracy=accuracy,
                                                                                 limits=limits, tta=tta),
    )


def projected(runs: dict, epochs: int) -> list[float]:
    """Minutes a seed of `epochs` epochs takes at the fastest and slowest epoch (and evaluation) of `runs` (judged_runs)."""
    fastest_evaluation = min((r["evaluation_seconds"] / 60 for r in runs["seeds"] if r["evaluation_seconds"] is not None),
                             default=0.0)
    return [epochs * epoch + evaluation + runs["overhead_minutes"]
            for epoch, evaluation in zip(runs["epoch_minutes"], (fastest_evaluation, runs["evaluation_minutes"] or 0.0))]


def other_cpu_layouts(profile: str) -> list[RunLayout]:
    """The archives of `profile`'s final runs trained again on the other CPU kind (OTHER_CPU_ARCHIVES)."""
    return [RunLayout(results_archive(name)) for name in OTHER_CPU_ARCHIVES.get(profile, ())]


def other_cpu_runs(model: str, profile: str, code_version: str | None = None, goal_name: str = "target") -> list[dict]:
    """`profile`'s final runs of `model` trained again on the other CPU kind (other_cpu_layouts), each archive with
    seeds judged by `goal_name` as final_runs judges the profile's own: by the limit of the CPU its seeds ran on."""
    found = (final_runs(model, profile, code_version, goal_name, layout.root) for layout in other_cpu_layouts(profile))
    return [runs for runs in found if runs["seeds"]]


def pooled(runs: dict, others: list[dict]) -> dict | None:
    """`runs`' seeds trained again on the other CPU kind (`others`, other_cpu_runs) are the same seeds: the same initial
    weights and batch order, only the CPU's arithmetic differs. So each seed's runs on both are averaged first, and the
    mean over the seeds (those with a run on every CPU) is judged as `runs`' goal counts accuracy: the seeds, the CPUs'
    runs per seed, the mean, its difference from the goal, its 95% interval over the seeds and whether that contains
    the goal's accuracy; None without seeds on both or where a run did not measure it."""
    v = runs["target"]
    key = judged_key(v["tta"])
    by_seed: dict[int, list[dict]] = {}
    for run in runs["seeds"] + [r for other in others for r in other["seeds"]]:
        by_seed.setdefault(run["config"]["seed"], []).append(run)
    both = {seed: group for seed, group in sorted(by_seed.items()) if len(group) == 1 + len(others)}
    if not runs["seeds"] or not others or not both or not all(every_seed_measured(g, key) for g in both.values()):
        return None
    means = [summarize(measured(group, key))[0] for group in both.values()]
    mean, interval = summarize(means)[0], mean_interval(means)
    return dict(seeds=sorted(both), runs_per_seed=1 + len(others), mean=mean, difference=mean - v["accuracy"],
                interval=interval, straddles=interval_holds(interval, v["accuracy"]))
