"""The report's section on model H, the ladder's top rung: its final runs against their targets, its
ablations, where its training time goes, and test accuracy against training minutes beside the
report's other runs.

A profile that trains H itself (smoke, full) shows its own runs; the others (quick, study) read the
h profile's archive (results/h, `convladder all --profile h`), so that they show H without training
it. The per-layer profile is the JSON that `benchmarks/h_design.py --layers` writes beside the runs.
"""

from __future__ import annotations

from pathlib import Path

import convladder.report.figures as draw
from convladder.analysis.h_targets import PLAIN_GOAL, goal, minutes, target_verdict
from convladder.analysis.statistics import MIN_SEEDS, prediction_interval, single_run_verdict
from convladder.core import h_design, registry
from convladder.core.config import LOOKAHEAD_EVERY, LOOKAHEAD_START, TRAIN_SIZE, TTA_SHIFTS, VAL_SIZE
from convladder.plan.profiles import (EARLIER_PROFILES, FINAL_PROFILE, H_ABLATIONS, H_PROFILE,
                                      MILESTONE_PROFILES, get_profile)
from convladder.plan.study import STUDY_RESULTS
from convladder.results.layout import RunLayout, results_archive
from convladder.report.h_final import (final_runs, judged_runs, other_cpu_runs, pooled, projected, seed_lists,
                                      shown_path)
from convladder.results.records import collect_runs, summarize
from convladder.tools.files import read_json
from convladder.tools.hardware import cpu_names
from convladder.tools.load import ALONE_CORES, ran_alone
from convladder.results.schema import final_epoch

H_TUNING = "h-tuning"  # results/h-tuning: runs of H on the 42,000 / 8,000 split that chose its epochs
VALIDATION_FILE = "validation.json"  # beside a tuning run: `benchmarks/h_design.py --validate` (with TTA)
# A convolution taking more than LARGE_SHARE of the step runs "at the peak" from AT_PEAK of the peak on (of
# the nominal peak, or of the fastest convolution's rate where one exceeds it: the real peak is at least that).
LARGE_SHARE, AT_PEAK = 0.05, 0.9
SHOWN_SHARE = 0.005  # kinds of layer taking less of the step are left out of the layer table
# A tuning run's validation accuracy within this of H-95's target says nothing on which side of it the final runs fall:
# it is measured on 8,000 other images after training on fewer, and seeds differ by a few thousandths.
NEAR_TARGET = 0.005


def h_layout() -> RunLayout:
    return RunLayout.of(H_PROFILE)


def tuning_root() -> Path:
    """H's and H-95's tuning runs (results/h-tuning)."""
    return results_archive(H_TUNING)


def ladder_layout() -> RunLayout:
    """The ladder's runs H's note sets its frontier beside: the study profile's archive."""
    return RunLayout.of("study")


def ablation_rows(h_runs: dict[str, list[dict]]) -> list[dict]:
    """Each ablation's single run against H's seeds on plain test accuracy (every run has it; an
    ablation without augmentation has no test-time augmentation): the difference from H's mean, and
    whether it falls below, within or above H's seed-to-seed spread (analysis.single_run_verdict)."""
    reference = [run["final"]["test_acc"] for run in h_runs["H"]]
    mean = summarize(reference)[0]
    rows = []
    for name, (_, words) in H_ABLATIONS.items():
        runs = h_runs.get(f"H-{name}")
        if not runs:
            continue
        run = runs[0]
        rows.append(dict(
            name=f"H-{name}", words=words, test=run["final"]["test_acc"], tta=run["final"]["test_acc_tta"],
            difference=run["final"]["test_acc"] - mean, minutes=minutes(run),
            verdict=single_run_verdict(reference, run["final"]["test_acc"]),
        ))
    return rows


def layer_rows(profile: dict) -> dict:
    """The per-layer profile: its convolutions one row each, the other layers grouped by kind, against
    the peak of the precision the step ran in."""
    total = profile["step_seconds"]
    peak = profile["peaks"]["bf16" if profile["amp"] else "fp32"]
    convs, grouped = [], {}
    for name, row in profile["layers"].items():
        seconds = row["forward"] + row["backward"]
        if row["kind"] == "Conv2d":
            gflops = row["flops"] / seconds / 1e9 if seconds else None
            convs.append(dict(name=name, forward=row["forward"], backward=row["backward"], share=seconds / total,
                              gflop=row["flops"] / 1e9, gflops=gflops, of_peak=gflops / peak if gflops else None))
        else:
            kind = grouped.setdefault(row["kind"], dict(name=row["kind"], seconds=0.0, count=0))
            kind["seconds"] += seconds
            kind["count"] += 1
    kinds = sorted(grouped.values(), key=lambda k: -k["seconds"])
    for kind in kinds:
        kind["share"] = kind["seconds"] / total
    large = [c for c in convs if c["share"] > LARGE_SHARE]
    fastest = max((c["gflops"] for c in convs if c["gflops"]), default=None)
    above_peak = bool(fastest) and fastest > peak
    reference = fastest if above_peak else peak
    for conv in convs:
        conv["of_fastest"] = conv["gflops"] / fastest if conv["gflops"] and fastest else None
    flops = sum(row["flops"] for row in profile["layers"].values())
    return dict(
        convs=convs, others=[k for k in kinds if k["share"] >= SHOWN_SHARE], shown_share=SHOWN_SHARE,
        hidden=len([k for k in kinds if k["share"] < SHOWN_SHARE]), other_share=profile["other_seconds"] / total,
        conv_share=sum(c["share"] for c in convs), step_seconds=total, gflops=flops / total / 1e9, peak=peak,
        precision="bf16" if profile["amp"] else "fp32", large_share=LARGE_SHARE, at_peak_fraction=AT_PEAK,
        at_peak=bool(large) and all(c["gflops"] and c["gflops"] >= AT_PEAK * reference for c in large),
        above_peak=above_peak, fastest=fastest,
        large_of_fastest=[c["of_fastest"] for c in large if c["of_fastest"]],
    )


def tuning_runs(model: str = "H") -> list[dict]:
    """The archived tuning runs of `model` (results/h-tuning holds H's and H-95's), each with its epochs, training
    images and validation accuracy, plain and (where `benchmarks/model_h.py --validate` measured it) with TTA."""
    root = tuning_root()
    rows = []
    for name, seeds in (collect_runs(root) if root.exists() else {}).items():
        for run in (run for run in seeds if run["config"]["model"] == model):
            folder = RunLayout(root).seed(name, run["config"]["seed"])
            validation = read_json(folder / VALIDATION_FILE) if (folder / VALIDATION_FILE).exists() else {}
            rows.append(dict(name=name, epochs=final_epoch(run), train=run["data"]["sizes"]["train"],
                             val_images=run["data"]["sizes"]["val"],
                             val=run["final"]["val_acc"], val_tta=validation.get("val_acc_tta"), config=run["config"],
                             minutes=run["train_seconds"] / 60, cpu=cpu_names([run["environment"]])[0],
                             # the cores other work kept busy beside it, where that was enough to slow it (tools.load)
                             beside=run.get("beside_cores") if ran_alone(run.get("beside_cores")) is False else None))
    return rows


def commit_groups(h_runs: dict[str, list[dict]]) -> list[dict]:
    """Which runs of H each commit trained, in words: "H seeds 1, 2" and the ablations by name."""
    seeds: dict[str, list[int]] = {}
    names: dict[str, list[str]] = {}
    for name, runs in h_runs.items():
        for run in runs:
            commit = run["environment"].get("git_commit", "unknown")
            if name == "H":
                seeds.setdefault(commit, []).append(run["config"]["seed"])
            else:
                names.setdefault(commit, []).append(name)
    groups = []
    for commit in sorted(seeds.keys() | names.keys()):
        numbers = sorted(seeds.get(commit, []))
        words = [f"H seed{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"] if numbers else []
        groups.append(dict(commit=commit, runs=words + names.get(commit, [])))
    return groups


# The frontier's colours of H-95's final runs, the latest first (with TTA, without), then the earlier ones'; of H's
# longer runs (results/h-e16, then results/h-b512)
H95_COLOURS = (("navy", "steelblue"), ("darkorchid", "plum"), ("teal", "mediumaquamarine"))
H_LONGER_COLOURS = (("darkgreen", "yellowgreen"), ("mediumvioletred", "hotpink"))
# Which look at the test set each attempt at H's milestone is (the 13-epoch runs were the first)
LOOKS = ("second", "third", "fourth")
assert len(MILESTONE_PROFILES["H"]) <= min(len(H_LONGER_COLOURS), len(LOOKS)), "a colour and a look for every attempt"


def frontier_groups(h_runs: dict[str, list[dict]], runs: dict[str, list[dict]],
                    h95: list[tuple[str, list[dict]]] = (), longer: list[tuple[str, list[dict]]] = ()) -> list[dict]:
    """The frontier figure's markers, at training minutes (the same measure for every run): H-95's (each of its final
    runs, `h95`: (label, seeds), the latest first), H's longer runs (`longer`: (label, seeds) of each attempt, the
    earliest first) and H's seeds with and
    without test-time augmentation, H's ablations, and every other run of the report; each point with whether it ran
    alone (tools.load.ran_alone of the cores other processes kept busy; None: not recorded)."""
    def point(seeds: list[dict], key: str) -> dict:  # the runs that measured `key` (TTA may not have been)
        seeds = [r for r in seeds if r["final"][key] is not None]
        return dict(minutes=[r["train_seconds"] / 60 for r in seeds], accuracy=[r["final"][key] for r in seeds],
                    alone=[ran_alone(r.get("beside_cores")) for r in seeds])

    groups = [group for (label, seeds), (tta_colour, colour) in zip(h95, H95_COLOURS)
              for group in (dict(label=f"{label}, test-time augmentation", marker="D", color=tta_colour,
                                 **point(seeds, "test_acc_tta")),
                            dict(label=label, marker="d", color=colour, **point(seeds, "test_acc")))]
    longer = [(label, seeds) for label, seeds in longer if seeds]
    for (label, seeds), (tta_colour, colour) in zip(longer, H_LONGER_COLOURS):
        groups += [dict(label=f"{label}, test-time augmentation", marker="*", color=tta_colour,
                        **point(seeds, "test_acc_tta")),
                   dict(label=label, marker="P", color=colour, **point(seeds, "test_acc"))]
    h = f"H ({final_epoch(h_runs['H'][0])} epochs)" if longer else "H"
    groups += [dict(label=f"{h}, test-time augmentation", marker="*", color="black", **point(h_runs["H"], "test_acc_tta")),
               dict(label=h, marker="P", color="dimgrey", **point(h_runs["H"], "test_acc"))]
    ablations = [seeds[0] for name, seeds in h_runs.items() if name != "H"]
    if ablations:
        groups.append(dict(label="H's ablations", marker="X", color="firebrick", **point(ablations, "test_acc"),
                           names=[r["name"].removeprefix("H-") for r in ablations if r["final"]["test_acc"] is not None]))
    # H is always drawn as H's groups; another of its family (H-95) too where its groups are drawn, else as a run
    groups += [dict(label=name, **point(seeds, "test_acc")) for name, seeds in runs.items()
               if seeds[0]["config"]["model"] != "H" and not (h95 and in_h_family(seeds[0]["config"]["model"]))]
    return [group for group in groups if group["minutes"]]  # a group none of whose runs measured its accuracy: none


def in_h_family(model: str) -> bool:
    """Whether `model` is H or one of its variants (H-95): drawn as H's groups, not as one of the report's runs."""
    return model in registry.model_names() and registry.entry(model).family == "H"


def h_runs_for(runs: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], str | None, list[str]]:
    """H's runs for a report of `runs`: its own where the profile trains H, else the h profile's
    archive; with the archive's folder (None for the report's own) and its damaged run folders."""
    own = {name: seeds for name, seeds in runs.items() if seeds[0]["config"]["model"] == "H"}
    if "H" in own:
        return own, None, []
    damaged: list[str] = []
    root = h_layout().root
    archived = collect_runs(root, damaged) if root.exists() else {}
    return archived, shown_path(root), damaged


def h_context(runs: dict[str, list[dict]], figures: Path, code_version: str | None = None,
              profile_file: Path | None = None, with_h95: bool = False) -> dict | None:
    """What the template's section on H reads, beside the report's own `runs`; None when neither they nor the archive
    hold a finished run of H. Writes the frontier figure. `code_version`: today's version of H's training code (older
    runs are stale). `profile_file`: the per-layer profile beside the runs (default: the archive's, where the runs come
    from it). `with_h95`: H-95's runs and H's longer ones too (h95_context, longer_h_context: H's note's only)."""
    h_runs, archive, damaged = h_runs_for(runs)
    seeds = h_runs.get("H")
    if not seeds:
        return None
    h95 = h95_context(code_version) if with_h95 else None
    h95_groups = [(f"H-95 ({a['epochs']} epochs)" if h95["earlier"] else "H-95", a["seeds"])
                  for a in ([h95, *reversed(h95["earlier"])] if h95 else []) if a["seeds"]]
    # H's longer runs beside its 13-epoch ones; not in a note of the longer runs themselves (convladder report --profile
    # h-e16), which would compare them with themselves
    tuning = tuning_runs()
    longer = longer_h_context(seeds, tuning, code_version) if with_h95 and not is_longer(seeds[0]) else None
    longer_groups = [(attempt_label(a, seeds[0]["config"], longer["named_by"]), a["seeds"])
                     for a in (longer["attempts"] if longer else [])]
    family_seeds = [run for _, seeds in h95_groups for run in seeds] + [run for _, runs in longer_groups for run in runs]
    first = seeds[0]
    profile_file = profile_file or (h_layout().layer_profile if archive else None)
    layer_profile = read_json(profile_file) if profile_file and profile_file.exists() else None
    lists = seed_lists(seeds)
    test, tta, flip = lists["test"], lists["tta"], lists["flip"]
    commits = commit_groups(h_runs)
    return dict(
        seeds=seeds, config=first["config"], epochs=final_epoch(first), sizes=first["data"]["sizes"],
        archive=archive, damaged=damaged, parameters=first["parameters"],
        mixed_configs=len({repr(sorted((k, v) for k, v in run["config"].items() if k != "seed")) for run in seeds}) > 1,
        commit_groups=commits, dirty=any(group["commit"].endswith("-dirty") for group in commits),
        # the tuning runs that chose these runs' epochs (those at the longer runs' epochs are theirs: tuned_longer)
        tuning=[t for t in tuning if not tuned_longer(t)],
        seed0=next((dict(test=run["final"]["test_acc"], tta=run["final"]["test_acc_tta"], minutes=minutes(run),
                         difference=run["final"]["test_acc"] - summarize(test)[0])
                    for run in seeds if run["config"]["seed"] == 0), None),
        shift_gain=(summarize(tta)[0] - summarize(flip)[0]
                    if lists["complete"]["tta"] and lists["complete"]["flip"] else None),
        stale=sorted({name for name, group in h_runs.items() for run in group
                      if code_version and run.get("code_version") != code_version}),
        **lists, test_sd=summarize(test)[1],
        interval=prediction_interval(test) if len(test) >= MIN_SEEDS else None,
        target=target_verdict(seeds, *goal("H", "target")),
        milestone=target_verdict(seeds, *goal("H", "milestone")),
        ablations=ablation_rows(h_runs), ablations_planned=len(H_ABLATIONS),
        layer_profile=layer_rows(layer_profile) if layer_profile else None, layer_profile_raw=layer_profile,
        h95=h95, longer=longer, alone_cores=ALONE_CORES,
        frontier=draw.frontier(frontier_groups(h_runs, runs, h95_groups, longer_groups), figures),
        frontier_cpus=cpu_names(r["environment"] for group in [*h_runs.values(), *runs.values(), family_seeds] for r in group),
        design=dict(whiten_images=h_design.WHITEN_IMAGES, patch=h_design.WHITEN_PATCH, widths=list(h_design.WIDTHS),
                    bias_lr_scale=h_design.BIAS_LR_SCALE, head_scale=f"1/{round(1 / h_design.HEAD_SCALE)}",
                    lookahead_start=LOOKAHEAD_START, lookahead_every=LOOKAHEAD_EVERY, tta_views=2 * len(TTA_SHIFTS),
                    tune_train=TRAIN_SIZE, tune_val=VAL_SIZE),
        study_best=dict(name="GAP+", **STUDY_RESULTS["GAP+"]),
    )


def h95_context(code_version: str | None = None) -> dict | None:
    """Model H-95 (issue 28) for H's note: its latest final runs (final_runs of FINAL_PROFILE's, results/h95-e16), the
    earlier ones (EARLIER_PROFILES', results/h95: `earlier`, oldest first, those with seeds) and its tuning runs
    (results/h-tuning); None when none exists. An earlier run's `projected`: the minutes a seed of the latest runs'
    epochs would take at its slowest epoch and evaluation. `code_version`: today's version of H's (and H-95's) code."""
    latest = final_runs("H95", FINAL_PROFILE["H95"], code_version)
    latest["other_cpu"] = other_cpu_runs("H95", FINAL_PROFILE["H95"], code_version)
    latest["pooled"] = pooled(latest, latest["other_cpu"])
    earlier = [runs for runs in (final_runs("H95", p, code_version) for p in EARLIER_PROFILES["H95"]) if runs["seeds"]]
    tuning = tuning_runs("H95")
    if not latest["seeds"] and not earlier and not tuning and not latest["other_cpu"]:
        return None
    for runs in earlier:  # at the slowest epoch, evaluation and overhead the earlier seeds took
        runs["projected"] = projected(runs, latest["epochs"])[1] if runs["epoch_minutes"] else None
        runs["changed"] = changed_settings(runs["config"], latest["config"])
    accuracy = latest["target"]["accuracy"]
    # how near the tuning runs came to the target on validation images (with TTA where measured), either side
    nearest = min((abs((t["val"] if t["val_tta"] is None else t["val_tta"]) - accuracy) for t in tuning), default=None)
    first = (latest["seeds"] or [run for runs in earlier for run in runs["seeds"]] or [None])[0]
    return dict(
        **latest, earlier=earlier, tuning=tuning, widths=list(h_design.WIDTHS_95), tuning_nearest=nearest,
        near=NEAR_TARGET, sizes=first["data"]["sizes"] if first else None,
        parameters=first.get("parameters") if first else None,
    )


def is_longer(run: dict) -> bool:
    """Whether a run of H is one of its final runs at its milestone (results/h-e16, results/h-b512)."""
    return run["config"].get("profile") in MILESTONE_PROFILES["H"]


def attempt_label(attempt: dict, first: dict, named_by: str = "epochs") -> str:
    """An attempt at H's milestone as the frontier names it: its epochs, and its `named_by` setting where not `first`'s."""
    value = attempt["config"].get(named_by)
    differs = named_by != "epochs" and value != first.get(named_by)
    return f"H ({attempt['epochs']} epochs" + (f", {named_by.replace('_', ' ')} {value})" if differs else ")")


def tuned_longer(tuning_run: dict) -> bool:
    """Whether a tuning run of H tried an attempt's epochs at its milestone (then it is the attempts', not the 13-epoch's)."""
    return tuning_run["epochs"] in {get_profile(p).epochs["H"] for p in MILESTONE_PROFILES["H"]}


def longer_h_context(h_seeds: list[dict], h_tuning: list[dict], code_version: str | None = None) -> dict | None:
    """H's attempts at issue 28's goal for H (MILESTONE_PROFILES, judged on it: final_runs) that have seeds or a tuning
    run, for H's note: the latest at the top level, all in `attempts` (earliest first), each with the settings `changed`
    from the runs before it, its `look` at the test set, its `tuning` runs (at its epochs with its settings, seeded or
    planned, but the training split; else the first's) and `projected` minutes where its epochs differ; `base`: H's
    seeds (`h_seeds`) judged on the goal; `same_code`; `named_by`: the setting the attempts differ in. None without any."""
    attempts = [dict(**final_runs("H", p, code_version, PLAIN_GOAL), other_cpu=other_cpu_runs("H", p, code_version, PLAIN_GOAL))
                for p in MILESTONE_PROFILES["H"]]
    for attempt in attempts:
        attempt["pooled"] = pooled(attempt, attempt["other_cpu"])
    tuning = [t for t in h_tuning if tuned_longer(t)]
    for t in tuning:
        t["standard_error"] = (t["val"] * (1 - t["val"]) / t["val_images"]) ** 0.5
    owners = [next((a for a in attempts if not [c for c in changed_settings(t["config"], a["config"])
                                                if c["name"] != "train_split"]), attempts[0]) for t in tuning]
    shown = [a for a in attempts if a["seeds"] or any(owner is a for owner in owners)]
    if not shown:
        return None
    base = judged_runs(h_seeds, "H", H_PROFILE, code_version, PLAIN_GOAL)
    before = base
    for attempt, look in zip(shown, LOOKS):
        attempt.update(changed=changed_settings(before["config"], attempt["config"]), look=look,
                       tuning=[t for t, owner in zip(tuning, owners) if owner is attempt],
                       projected=projected(before, attempt["epochs"])
                       if before["epoch_minutes"] and attempt["epochs"] != before["epochs"] else None)
        before = attempt
    versions = {r.get("code_version") for r in [*base["seeds"], *(r for a in shown for r in a["seeds"])]}
    named_by = shown[1]["changed"][0]["name"] if len(shown) > 1 and shown[1]["changed"] else "epochs"
    return dict(**shown[-1], attempts=shown, base=base, same_code=len(versions) == 1, named_by=named_by)


def changed_settings(before: dict, after: dict) -> list[dict]:
    """The TrainConfig settings (name, before, after) in which two runs' configs differ, seed and profile aside."""
    return [dict(name=key, before=before.get(key), after=after.get(key)) for key in sorted(before.keys() | after.keys())
            if key not in ("seed", "profile") and before.get(key) != after.get(key)]
