"""Named recipes (issue 26, step 3): every planned run records the recipe it trains with, the record is
enough to rebuild its config, a run trained before records existed reads as the closest named recipe,
and the report tells the ladder's runs from the others by what they recorded."""

from __future__ import annotations

import json

import pytest

from convladder.core.config import TrainConfig
from convladder.plan.profiles import PROFILES, ladder, plan_config, profile_recipe
from convladder.plan.recipes import GAP_FAST, LADDER, RECIPES, STUDY_RECOVERED, closest, get_recipe, record, recorded_recipe
from convladder.report.ladder import is_ladder_recipe, recipes_context


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_planned_run_records_a_recipe_that_rebuilds_its_config(profile):
    for run in ladder(profile):
        config, recorded = run.plan(profile, run.seeds[-1])
        assert recorded["name"] in RECIPES
        rebuilt = plan_config(profile, run.model, recipe=recorded["name"], epochs=run.epochs, seed=run.seeds[-1],
                              **recorded["changes"])[0]
        assert rebuilt == config, run.name


def test_the_ladders_runs_record_their_profiles_recipe_and_the_others_what_they_change():
    study = {run.name: run.plan("study")[1] for run in ladder("study")}
    assert set(map(json.dumps, study.values())) == {json.dumps({"name": STUDY_RECOVERED, "changes": {}})}
    quick = {run.name: run.plan("quick")[1] for run in ladder("quick")}
    assert quick["A"] == {"name": LADDER, "changes": {}}
    assert quick["A-softmax"] == {"name": LADDER, "changes": {"study_softmax": True}}
    assert quick["G-fp32"] == {"name": LADDER, "changes": {"amp": False}}
    assert quick["GAP-fast"] == {"name": GAP_FAST, "changes": {}}
    assert {run.name: run.plan("h")[1]["changes"] for run in ladder("h")}["H-no-whitening"] == {"without": "whitening"}
    # a profile's own batch size is a change of the named recipe, and still that profile's ladder recipe
    assert profile_recipe("smoke", "A") == {"name": LADDER, "changes": {"batch_size": 64}}
    assert profile_recipe("study", "H") == {"name": "h", "changes": {}}  # a model with its own recipe keeps it


def test_a_recipe_name_must_exist():
    with pytest.raises(ValueError, match="unknown recipe 'sgd'; choose one of ladder, study-recovered"):
        plan_config("quick", "A", recipe="sgd")


def test_momentum_counts_only_for_sgd():
    adam = TrainConfig(model="A", epochs=1, momentum=0.5).to_dict()
    assert record(adam, LADDER) == {"name": LADDER, "changes": {}}
    assert record({**adam, "optimizer": "sgd"}, LADDER)["changes"] == {"optimizer": "sgd", "momentum": 0.5, "nesterov": True}


def _results(config: dict, **extra) -> dict:
    return {"name": config["model"], "config": config, **extra}


def test_a_run_without_a_recorded_recipe_reads_as_the_closest_named_one():
    study = plan_config("study", "D", epochs=16)[0].to_dict()
    assert recorded_recipe(_results(study)) == {"name": STUDY_RECOVERED, "changes": {}}
    fast = TrainConfig(model="GAP", epochs=3, **{**get_recipe(GAP_FAST).settings, "lr": 0.1}).to_dict()
    assert closest(fast) == {"name": GAP_FAST, "changes": {"lr": 0.1}}
    # what a run recorded is read as it is, even where another recipe would be closer
    kept = {"name": LADDER, "changes": {"optimizer": "sgd", "momentum": 0.9, "nesterov": False, "batch_size": 32,
                                        "study_softmax": True}}
    assert recorded_recipe(_results(study, recipe=kept)) == kept
    # a record out of shape (an unknown name) is not trusted: the config decides
    assert recorded_recipe(_results(study, recipe={"name": "mine", "changes": {}}))["name"] == STUDY_RECOVERED


def test_the_report_groups_runs_by_their_recorded_recipe_and_knows_the_ladders():
    def run(name, profile, recipe=None, **changes):
        config, recorded = plan_config(profile, name.split("-")[0], recipe=recipe, epochs=2, **changes)
        return [_results(config.to_dict(), recipe=recorded) | {"name": name}]

    runs = {"A": run("A", "quick"), "B": run("B", "quick"), "A-softmax": run("A-softmax", "quick", study_softmax=True),
            "GAP-fast": run("GAP-fast", "quick", recipe=GAP_FAST)}
    assert [is_ladder_recipe(seeds[0]) for seeds in runs.values()] == [True, True, False, False]
    groups = recipes_context(runs)
    assert [(g["name"], g["changes"], g["runs"], g["ladder"]) for g in groups] == [
        (LADDER, {}, ["A", "B"], True), (LADDER, {"study_softmax": True}, ["A-softmax"], False),
        (GAP_FAST, {}, ["GAP-fast"], False)]
    # the study profile's runs are its ladder by what they recorded, also when the record is migrated
    study = plan_config("study", "A", epochs=2)[0].to_dict()
    assert is_ladder_recipe(_results(study)) and is_ladder_recipe(_results(study, recipe=profile_recipe("study", "A")))


def test_the_pipeline_hands_the_training_notebook_the_planned_config(tiny_cifar, tmp_path):
    from convladder.pipeline import plan
    from convladder.results.layout import RunLayout

    steps = [s for s in plan("quick", RunLayout(tmp_path), str(tiny_cifar)) if s.notebook == "10_train"]
    by_name = {s.parameters["name"]: s.parameters["planned"] for s in steps}
    runs = {run.name: run for run in ladder("quick")}
    assert set(by_name) == set(runs)
    for name, planned in by_name.items():
        config, recorded = runs[name].plan("quick")
        assert TrainConfig.from_dict(planned["config"]) == config and planned["recipe"] == recorded
        json.dumps(planned)  # papermill passes it as a literal: plain data only


def test_a_profile_can_give_a_model_another_recipe_than_its_own():
    from convladder.plan.profiles import H_B512_PROFILE, H_E16_PROFILE, model_recipe, plan_config
    from convladder.plan.recipes import H, H_B512

    assert model_recipe(H_E16_PROFILE, "H") == H and model_recipe(H_B512_PROFILE, "H") == H_B512
    config, recorded = plan_config(H_B512_PROFILE, "H")
    base, _ = plan_config(H_E16_PROFILE, "H")
    assert recorded == {"name": H_B512, "changes": {}}
    assert (config.batch_size, config.lr, config.epochs) == (512, 0.75, base.epochs)
    assert config.lr / config.batch_size == base.lr / base.batch_size  # the same rate per example
    assert config.weight_decay == base.weight_decay and config.train_split == base.train_split
