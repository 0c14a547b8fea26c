"""The recipe probes (issue 24, part 3): each planned run is the study profile's run with the probe's
changes alone, and records them against the recovered recipe."""

from dataclasses import replace

import pytest

from convladder.analysis.statistics import compare
from convladder.experiments.recipe_probes import ARCHIVE, PROBES, planned_runs, probe_plan
from convladder.plan.profiles import plan_config


@pytest.mark.parametrize("probe", list(PROBES))
def test_a_probe_changes_only_what_it_names(probe):
    spec = PROBES[probe]
    for model, seeds in spec.runs:
        for seed in seeds:
            config, recipe = probe_plan(probe, model, seed)
            study, _ = plan_config("study", model, seed=seed, epochs=spec.epochs)
            assert recipe == {"name": "study-recovered", "changes": spec.changes}
            assert replace(config, profile="study") == replace(study, **spec.changes)
            assert config.profile == ARCHIVE


def test_fp32_has_three_seeds_of_a_and_runs_first():
    runs = planned_runs()
    assert runs[:4] == [("fp32", "A", 0), ("fp32", "A", 1), ("fp32", "A", 2), ("fp32", "B", 0)]
    assert planned_runs(["b16"]) == [("b16", "A", 0), ("b16", "B", 0)]
    assert runs[4:10] == [("init0.5", m, s) for m in ("A", "B") for s in (0, 1, 2)]  # the closest probe, 3 seeds each


def _write_run(folder, model, seed, curve, **config):
    """A hand-made finished run of the study profile's recipe with `config`'s changes, validation `curve`."""
    import json

    from convladder.plan.profiles import plan_config
    from convladder.results.layout import RESULTS_FILE

    base = plan_config("study", model, seed=seed, epochs=len(curve), **config)[0].to_dict()
    history = {"epoch": list(range(1, len(curve) + 1)), "val_acc": curve, "epoch_seconds": [1.0] * len(curve)}
    for key in ("train_acc", "train_loss", "val_loss"):
        history[key] = [0.5] * len(curve)
    results = {"name": model, "config": base, "history": history, "data": {"checksum": "x"},
               "final": {"train_acc": 0.5, "val_acc": curve[-1], "test_acc": curve[-1]}}
    folder.mkdir(parents=True)
    (folder / RESULTS_FILE).write_text(json.dumps(results))
    return results


def test_the_report_sets_each_probe_beside_its_unchanged_run_and_finds_the_one_closest_to_the_study(tmp_path, monkeypatch):
    """recipe_probes_context on a hand-made archive of 4-epoch runs: fp32 against bfloat16 over A's 3 seeds, and of
    B's two probes the one whose take-off lies nearer the study's (monkeypatched to epoch 3)."""
    from convladder.report.analyses import recipe_probes_context

    monkeypatch.setattr("convladder.analysis.recipe_probes.EPOCHS", 4)
    monkeypatch.setattr("convladder.plan.study.STUDY_CURVES", {"A": {"take_off": 4, "val_acc": 0.2},
                                                               "B": {"take_off": 3, "val_acc": 0.3}})
    out = tmp_path / "recipe-probes"
    ladder = {"A": [], "B": []}
    # fp32 ends 0.004, 0.005, 0.006 above each seed's bfloat16 run: a difference the seeds' spread (0.01) hides from
    # Welch's test and the pairing by seed shows
    for seed, curve in enumerate([[0.1, 0.2, 0.3, 0.40], [0.1, 0.2, 0.3, 0.41], [0.1, 0.2, 0.3, 0.42]]):
        ladder["A"].append(_write_run(tmp_path / "study" / "A" / f"seed{seed}", "A", seed, curve))
        _write_run(out / "A-fp32" / f"seed{seed}", "A", seed, [0.1, 0.1, 0.2, curve[-1] + 0.004 + seed / 1000], amp=False)
    ladder["B"].append(_write_run(tmp_path / "study" / "B" / "seed0", "B", 0, [0.2, 0.3, 0.4, 0.5]))
    _write_run(out / "B-b16" / "seed0", "B", 0, [0.1, 0.2, 0.1, 0.2], batch_size=16)  # take-off 4 (first above: 2)
    _write_run(out / "B-init0.5" / "seed0", "B", 0, [0.1, 0.1, 0.3, 0.35], init_scale=0.5)  # take-off 3
    context = recipe_probes_context(ladder, out)
    rows = {(r["model"], tuple(r["changes"].items()), r["seed"]): r for r in context["rows"]}
    assert rows["A", (("amp", False),), 0]["take_off"] == 3 and rows["A", (("amp", False),), 0]["unchanged_take_off"] == 2
    assert rows["B", (("batch_size", 16),), 0]["unchanged_val"] == 0.5
    (precision,) = context["precision"]
    assert precision["model"] == "A" and precision["seeds"] == [0, 1, 2] and precision["take_offs_fp32"] == [3, 3, 3]
    assert precision["c"].difference == pytest.approx(0.005)
    assert precision["c"].paired and precision["c"].verdict == "higher"
    assert compare(precision["bf16"], precision["fp32"]).verdict == "inconclusive"  # unpaired, the seeds' spread hides it
    # a pair that differs in more than the precision (another code version) is not paired: Welch's test instead
    from convladder.analysis.recipe_probes import archived_probes, precision_comparisons

    probes = archived_probes(out, ladder)
    (paired,) = precision_comparisons(probes, ladder)
    assert paired["c"].paired
    probes = [{**p, "code_version": "1"} for p in probes]
    for changed in ({"code_version": "2"}, {"config": {**ladder["A"][1]["config"], "lr": 0.01}}):
        other = {**ladder, "A": [ladder["A"][0], {**ladder["A"][1], **changed}, ladder["A"][2]]}
        (welch,) = precision_comparisons(probes, other)
        assert not welch["c"].paired and welch["c"].verdict == "inconclusive"
        assert welch["c"].difference == pytest.approx(0.005)
    monkeypatch.setattr("convladder.plan.study.STUDY_CURVES", {"A": {"take_off": 4, "val_acc": 0.2},
                                                               "B": {"take_off": 4, "val_acc": 0.3}})
    closest = recipe_probes_context(ladder, out)["closest"]
    assert closest["changes"] == {"batch_size": 16} and closest["first_above"] == 2  # the sustained take-off counts
    assert context["closest"]["changes"] == {"init_scale": 0.5} and context["closest_a"] == []
