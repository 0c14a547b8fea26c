"""The study profile (issue 13): the recovered recipe on every rung, runs kept in the results
archive, stale archived runs reported instead of retrained; the recipe search's and the
GAP-fast stability run's summaries."""

from __future__ import annotations

import torch

from convladder.results import layout as paths
from convladder.pipeline import plan
from convladder.results.layout import RunLayout
from convladder.plan.profiles import STUDY_EPOCHS, ladder
from convladder.plan.recipes import STUDY_RECOVERED, get_recipe
from convladder.analysis.recipe_search import archived_candidates, closest_candidate
from convladder.core.runs import RunState
from convladder.analysis.stability import stability_summary

RECOVERED_STUDY_RECIPE = get_recipe(STUDY_RECOVERED).settings


def test_the_study_profile_trains_every_rung_at_the_study_epochs_with_the_recovered_recipe():
    runs = {run.name: run for run in ladder("study")}
    assert set(runs) == {"A", "B", "C", "D", "E", "F", "G", "GAP", "GAP+"}  # no runs beyond the ladder
    for name, run in runs.items():
        config = run.config("study", run.seeds[0])
        assert (config.optimizer, config.momentum, config.nesterov, config.batch_size, config.study_softmax, config.lr) == (
            "sgd", RECOVERED_STUDY_RECIPE["momentum"], False, 32, True, 1e-3)
        if name != "GAP+":
            assert config.epochs == STUDY_EPOCHS[name]
    assert runs["GAP+"].epochs == 240 and runs["GAP+"].continues == "GAP"
    assert all(len(run.seeds) == 3 for name, run in runs.items() if name != "GAP+") and runs["GAP+"].seeds == (0,)
    # the quick profile keeps our ladder's recipe (Adam, logits) and its extra runs
    quick = {run.name: run for run in ladder("quick")}
    assert quick["A"].config("quick").optimizer == "adam" and "GAP-fast" in quick


def test_one_model_trained_alone_gets_its_profiles_recipe(tiny_cifar, tmp_path):
    """`convladder train A --profile study` trains what `convladder all --profile study` would."""
    from convladder.cli import main
    from convladder.plan.profiles import config_from_parameters

    for profile in ("study", "quick", "smoke"):
        for run in ladder(profile):
            if not run.recipe and not run.changes:  # the ladder's own runs; the runs beyond it change settings on top
                assert config_from_parameters(profile, run.model, epochs=run.epochs) == run.config(profile), run.name
    # a model with its own recipe (H) and the GAP-fast recipe do not take the study's softmax or batch size
    assert config_from_parameters("study", "H", epochs=1).batch_size == 1024
    fast = ladder("quick")[-1]
    assert fast.name == "GAP-fast"
    assert config_from_parameters("study", "GAP", recipe=fast.recipe, epochs=1).study_softmax is False
    seed_folder = tmp_path / "A"
    assert main(["train", "A", "--profile", "study", "--epochs", "1", "--train-size", "64", "--val-size", "8",
                 "--test-size", "10", "--data-dir", str(tiny_cifar), "--seed-dir", str(seed_folder)]) == 0
    results = __import__("json").loads((seed_folder / "results.json").read_text())
    assert {k: results["config"][k] for k in RECOVERED_STUDY_RECIPE} == RECOVERED_STUDY_RECIPE
    assert results["recipe"] == {"name": STUDY_RECOVERED, "changes": {}}  # sizes and epochs are not the recipe


def test_a_stale_archived_run_is_reported_not_retrained(tiny_cifar, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path)
    layout = RunLayout.of("study")
    assert layout.root == tmp_path / "results" / "study"
    monkeypatch.setattr("convladder.core.runs.run_state", lambda *a: RunState("stale", "it was trained by other code"))
    steps = plan("study", layout, str(tiny_cifar), models=["A"])
    assert [s.notebook for s in steps if s.notebook == "10_train"] == []
    out = capsys.readouterr().out
    assert "A, seed 0: archived run is stale (it was trained by other code)" in out and "--retrain-stale" in out
    steps = plan("study", layout, str(tiny_cifar), models=["A"], retrain_stale=True)
    assert [s.parameters["seeds"] for s in steps if s.notebook == "10_train"] == [[0, 1, 2]]
    # outside the archive a stale run trains again, as before
    steps = plan("quick", RunLayout(tmp_path / "runs" / "quick"), str(tiny_cifar), models=["A"])
    assert [s.parameters["seeds"] for s in steps if s.output.parent.name == "A"] == [[0, 1, 2]]


def _candidate_folder(root, name, config, val, finished=True):
    folder = root / name / f"seed{config['seed']}"
    folder.mkdir(parents=True)
    history = {"val_acc": val, "epoch_seconds": [1.0] * len(val), "epoch": list(range(1, len(val) + 1)),
               "train_acc": val, "train_loss": [2.3] * len(val), "val_loss": [2.3] * len(val)}
    if finished:  # a complete record: the archive's reader checks the results schema (results.read_seed)
        (folder / "results.json").write_text(__import__("json").dumps(
            {"name": name, "config": config, "history": history, "train_seconds": 60.0, "environment": {"cpu": "test CPU"},
             "final": {"train_acc": val[-1], "val_acc": val[-1], "test_acc": val[-1]}, "data": {"checksum": "test"}}))
    torch.save({"model": {}, "config": config, "history": history}, folder / "checkpoint.pt")


def test_the_closest_recipe_is_the_one_taking_off_nearest_the_study(tmp_path):
    base = dict(model="A", epochs=5, seed=0, batch_size=32, study_softmax=True)
    _candidate_folder(tmp_path, "A-adam", {**base, "optimizer": "adam"}, [0.1, 0.3, 0.4, 0.45, 0.5])
    _candidate_folder(tmp_path, "A-late", {**base, "optimizer": "sgd", "momentum": 0.9}, [0.1, 0.1, 0.1, 0.1, 0.2])
    _candidate_folder(tmp_path, "A-never", {**base, "optimizer": "sgd", "momentum": 0.0}, [0.1] * 5)
    _candidate_folder(tmp_path, "B-part", {**base, "model": "B", "optimizer": "adam"}, [0.1, 0.2], finished=False)
    found = {c["name"]: c for c in archived_candidates(tmp_path)}
    assert found["A-adam"]["take_off"] == 2 and found["A-never"]["take_off"] is None
    assert found["A-late"]["optimizer"] == "SGD, momentum 0.9" and found["A-never"]["optimizer"] == "plain SGD"
    assert found["B-part"]["finished"] is False and found["B-part"]["epochs"] == 2
    assert closest_candidate(list(found.values()), "A")["name"] == "A-late"  # take-off 5 is nearest the study's 140
    assert closest_candidate(list(found.values()), "B") is None  # unfinished candidates do not count
    # the chosen one is the only late one: Adam leaves chance at epoch 2, under half its 5; one more at 3 would not be
    from convladder.analysis.recipe_search import choice_forced

    chosen = found["A-late"]
    assert choice_forced(list(found.values()), "A", chosen) == dict(others=2, stalled=1, early=1, latest=2)
    _candidate_folder(tmp_path, "A-mid", {**base, "optimizer": "sgd", "momentum": 0.5}, [0.1, 0.1, 0.2, 0.2, 0.2])
    assert choice_forced(archived_candidates(tmp_path), "A", chosen) is None


def test_further_seeds_test_the_choice_made_on_the_selection_seed_instead_of_remaking_it(tmp_path):
    from convladder.analysis.recipe_search import candidate_rows, further_seeds

    base = dict(model="A", epochs=5, seed=0, batch_size=32, study_softmax=True, optimizer="sgd")
    _candidate_folder(tmp_path, "A-late", {**base, "momentum": 0.9}, [0.1, 0.2, 0.2, 0.2, 0.2])
    _candidate_folder(tmp_path, "A-never", {**base, "momentum": 0.0}, [0.1] * 5)
    _candidate_folder(tmp_path, "A-never", {**base, "momentum": 0.0, "seed": 2}, [0.1] * 5)
    _candidate_folder(tmp_path, "A-never", {**base, "momentum": 0.0, "seed": 1}, [0.1, 0.1, 0.1, 0.2, 0.2])
    _candidate_folder(tmp_path, "A-late", {**base, "momentum": 0.9, "seed": 1}, [0.1, 0.2], finished=False)
    _candidate_folder(tmp_path, "A-never", {**base, "momentum": 0.0, "seed": 3}, [0.1, 0.2], finished=False)
    _candidate_folder(tmp_path, "B-never", {**base, "model": "B", "momentum": 0.0}, [0.1] * 5)
    _candidate_folder(tmp_path, "B-never", {**base, "model": "B", "momentum": 0.0, "seed": 1}, [0.1, 0.2, 0.2, 0.2, 0.2])
    runs = archived_candidates(tmp_path)
    # seed 1 of A-never leaves chance at epoch 4, nearer the study's 140 than A-late's 2: the choice stays the one
    # made on seed 0, and the further seed is reported as what it is
    assert closest_candidate(runs, "A")["name"] == "A-late" and closest_candidate(runs, "A")["seed"] == 0
    further = further_seeds(runs, "A")
    assert [(r["name"], r["seed"]) for r in further["left"]] == [("A-never", 1)] and further["left"][0]["take_off"] == 4
    # an unfinished further seed (A-never seed 3) says nothing yet; B's candidates are B's
    assert sorted(r["seed"] for r in further["of_stalled"]) == [1, 2] and further["candidates"] == ["A-never"]
    assert [(r["name"], r["seed"]) for r in further_seeds(runs, "B")["left"]] == [("B-never", 1)]
    rows = {r["name"]: r for r in candidate_rows(runs)}
    assert rows["A-never"]["seeds"] == [0, 1, 2, 3]
    assert [r["take_off"] for r in rows["A-never"]["runs"]] == [None, 4, None, 2]
    assert rows["A-late"]["seeds"] == [0, 1] and rows["A-late"]["finished"] is False  # its seed 1 is unfinished


def test_output_pairs_set_each_recipe_with_logits_beside_the_same_with_the_softmax(tmp_path):
    from convladder.analysis.recipe_search import output_pairs, softmax_escapes

    base = dict(model="A", epochs=5, seed=0, batch_size=128, optimizer="sgd", momentum=0.9)
    _candidate_folder(tmp_path, "A-logits", {**base, "study_softmax": False}, [0.1, 0.2, 0.2, 0.2, 0.2])
    for seed in (0, 1, 2):
        _candidate_folder(tmp_path, "A-soft", {**base, "study_softmax": True, "seed": seed}, [0.1] * 5)
    _candidate_folder(tmp_path, "A-soft", {**base, "study_softmax": True, "seed": 3}, [0.1, 0.2], finished=False)
    _candidate_folder(tmp_path, "A-adam", {**base, "optimizer": "adam", "study_softmax": False}, [0.1, 0.2, 0.2, 0.2, 0.2])
    _candidate_folder(tmp_path, "A-adam-soft", {**base, "optimizer": "adam", "study_softmax": True}, [0.2] * 5)
    _candidate_folder(tmp_path, "A-b32", {**base, "batch_size": 32, "study_softmax": True}, [0.1] * 5)  # no logits beside it
    pairs = {(p["optimizer"], p["batch_size"]): p for p in output_pairs(archived_candidates(tmp_path))}
    assert sorted(pairs) == [("Adam", 128), ("SGD, momentum 0.9", 128)]
    sgd = pairs[("SGD, momentum 0.9", 128)]
    assert sgd["stalls"] and sgd["logits"]["take_off"] == 2 and sgd["softmax"]["take_off"] is None
    assert [r["seed"] for r in sgd["softmax"]["runs"]] == [0, 1, 2] and sgd["softmax"]["left"] == 0  # seed 3 unfinished
    assert sgd["logits"]["left"] == 1 and not pairs[("Adam", 128)]["stalls"]
    # the softmax leaves chance under Adam only (A-b32 never does; A-soft's unfinished seed does not count)
    assert softmax_escapes(archived_candidates(tmp_path)) == [dict(optimizer="Adam", batch_size=128)]
    # a second softmax candidate with the same optimizer and batch (another setting differs): no one pair to show
    _candidate_folder(tmp_path, "A-soft-lr", {**base, "study_softmax": True, "lr": 0.01}, [0.1] * 5)
    assert [(p["optimizer"], p["batch_size"]) for p in output_pairs(archived_candidates(tmp_path))] == [("Adam", 128)]


def test_stability_summary_measures_jumps_on_full_size_epochs_only():
    rows = [dict(epoch=1, side=16, val_acc=0.1, val_acc_recalibrated=0.5, val_acc_ema=0.5)]
    for epoch, (plain, recal, ema) in enumerate([(0.8, 0.80, 0.7), (0.4, 0.81, 0.72), (0.8, 0.82, 0.74)], start=2):
        rows.append(dict(epoch=epoch, side=32, val_acc=plain, val_acc_recalibrated=recal, val_acc_ema=ema))
    summary = stability_summary({"epochs": rows})
    assert summary["full_size_from"] == 2
    assert abs(summary["val_acc"]["mean_change"] - 0.4) < 1e-9 and abs(summary["val_acc"]["largest_drop"] - 0.4) < 1e-9
    assert summary["val_acc_recalibrated"]["largest_drop"] == 0.0
    assert summary["steadier"] == {"val_acc_recalibrated": True, "val_acc_ema": True}
    assert summary["val_acc"]["last"] == 0.8
