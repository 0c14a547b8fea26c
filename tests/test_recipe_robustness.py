"""Recipe robustness (issue 24, part 4): the ladder under Adam at the study profile's comparison epochs, and each
question's verdict under both recipes."""

from dataclasses import replace

import pytest

from convladder.analysis.recipe_robustness import EPOCHS, robustness_rows
from convladder.analysis.statistics import LADDER_STEPS, holm
from convladder.experiments import recipe_robustness
from convladder.plan.profiles import plan_config
from convladder.results.layout import RESULTS_FILE


@pytest.mark.parametrize("model", list(EPOCHS))
def test_a_run_is_the_study_profiles_with_the_quick_profiles_recipe(model):
    config, recipe = recipe_robustness.robustness_plan(model, 2)
    quick, _ = plan_config("quick", model, seed=2, epochs=EPOCHS[model])
    assert recipe == {"name": "ladder", "changes": {}}
    assert replace(config, profile="quick") == quick  # the quick profile's recipe and the full split
    assert (config.optimizer, config.batch_size, config.study_softmax, config.train_size) == ("adam", 128, False, None)
    assert config.profile == "study-adam"


def test_each_question_is_answered_after_the_epoch_the_study_profile_answers_it_at():
    from convladder.plan.profiles import STUDY_EPOCHS

    for step in LADDER_STEPS:
        assert min(EPOCHS[step.low], EPOCHS[step.high]) == min(STUDY_EPOCHS[step.low], STUDY_EPOCHS[step.high])
    assert EPOCHS["GAP"] == STUDY_EPOCHS["G"] == 30  # G against GAP is read after G's 30 epochs: GAP needs no more
    assert recipe_robustness.planned_runs(("C", "D"), (0, 1)) == [("C", 0), ("D", 0), ("C", 1), ("D", 1)]


def _runs(values: dict[str, list[float]], epochs: int = 4) -> dict[str, list[dict]]:
    """Hand-made finished runs: each seed's validation accuracy is `value` after every epoch."""
    runs = {}
    for model, seeds in values.items():
        runs[model] = [{"name": model, "config": {"model": model, "seed": s, "epochs": epochs},
                        "final": {"val_acc": v},
                        "history": {"epoch": list(range(1, epochs + 1)), "val_acc": [v] * epochs}}
                       for s, v in enumerate(seeds)]
    return runs


def test_a_question_answered_differently_by_the_two_recipes_is_a_flip():
    sgd = _runs({"D": [0.40, 0.41, 0.42], "E": [0.10, 0.11, 0.10], "F": [0.70, 0.71, 0.72]})
    adam = _runs({"D": [0.50, 0.51, 0.52], "E": [0.60, 0.61, 0.62], "F": [0.70, 0.71, 0.72]})
    rows = {(r.low, r.high): r for r in robustness_rows(sgd, adam)}
    depth, norm, relu = rows["D", "E"], rows["E", "F"], rows["C", "D"]
    assert depth.sgd.comparison.verdict == "lower" and depth.adam.comparison.verdict == "higher" and depth.flips
    assert norm.sgd.comparison.verdict == norm.adam.comparison.verdict == "higher" and norm.flips is False
    assert relu.sgd is None and relu.adam is None and relu.flips is None  # no C: no answer, no flip
    # Holm within each recipe's family: two answered questions under SGD, not the four of both recipes
    p_sgd = [depth.sgd.comparison.p_value, norm.sgd.comparison.p_value]
    assert [depth.sgd_holm, norm.sgd_holm] == pytest.approx(holm(p_sgd))
    assert depth.sgd_holm != pytest.approx(holm(p_sgd + [depth.adam.comparison.p_value, norm.adam.comparison.p_value])[0])
    assert len(rows) == len(LADDER_STEPS)


def test_training_continues_and_the_summary_sets_both_recipes_side_by_side(tiny_cifar, tmp_path, monkeypatch, capsys):
    epochs = dict(EPOCHS, C=1, D=1)
    monkeypatch.setattr(recipe_robustness, "EPOCHS", epochs)
    monkeypatch.setattr("convladder.analysis.recipe_robustness.EPOCHS", epochs)
    out, ladder = tmp_path / "study-adam", tmp_path / "study"
    ladder.mkdir()
    args = ["--models", "C", "D", "--seeds", "0", "1", "2", "--out-dir", str(out), "--ladder-dir", str(ladder),
            "--data-dir", str(tiny_cifar), "--threads", "1"]
    assert recipe_robustness.main(args) == 0
    assert all((out / m / f"seed{s}" / RESULTS_FILE).exists() for m in ("C", "D") for s in range(3))
    assert recipe_robustness.main(args) == 0 and capsys.readouterr().out.count("finished, kept") == 6
    assert recipe_robustness.main(["--summary", "--out-dir", str(out), "--ladder-dir", str(ladder)]) == 0
    text = capsys.readouterr().out
    relu = text[text.index("C -> D"):text.index("D -> E")]
    assert "3 vs 3 seeds at epoch 1" in relu.split("Adam, logits:")[1]
    assert "not yet" in relu.split("Adam, logits:")[0]  # no SGD runs in this ladder folder
    assert "C: 0: 1/1, 1: 1/1, 2: 1/1" not in text and "0: 1/1, 1: 1/1, 2: 1/1" in text


def test_the_report_reads_the_adam_ladder_and_names_the_answers_that_flip(tmp_path):
    import json

    from convladder.report.analyses import recipe_robustness_context

    assert recipe_robustness_context({}, tmp_path / "none") is None
    out = tmp_path / "study-adam"
    for model, values in {"D": [0.50, 0.51, 0.52], "E": [0.60, 0.61, 0.62]}.items():
        for seed, (run, v) in enumerate(zip(_runs({model: values})[model], values)):
            history = dict(run["history"], epoch_seconds=[1.0] * 4, train_acc=[v] * 4, train_loss=[1.0] * 4,
                           val_loss=[1.0] * 4)
            results = dict(run, history=history, data={"checksum": "x"},
                           config=dict(run["config"], model=model, optimizer="adam"),
                           final={"val_acc": v, "test_acc": v, "train_acc": v})
            (out / model / f"seed{seed}").mkdir(parents=True)
            (out / model / f"seed{seed}" / RESULTS_FILE).write_text(json.dumps(results))
    sgd = _runs({"D": [0.40, 0.41, 0.42], "E": [0.10, 0.11, 0.10]})
    context = recipe_robustness_context(sgd, out)
    assert context["seeds"] == {"D": 3, "E": 3}
    assert [(r.low, r.high) for r in context["answered"]] == [("D", "E")]
    assert [(r.low, r.high) for r in context["flips"]] == [("D", "E")]


def test_the_section_names_the_flip_and_groups_the_answers_both_recipes_agree_on():
    from convladder.report.latex import environment
    from convladder.results.layout import report_template

    sgd = _runs({"C": [0.10, 0.11, 0.10], "D": [0.40, 0.41, 0.42], "E": [0.10, 0.11, 0.10], "F": [0.70, 0.71, 0.72]})
    adam = _runs({"C": [0.30, 0.31, 0.32], "D": [0.50, 0.51, 0.52], "E": [0.50, 0.52, 0.51], "F": [0.60, 0.61, 0.62]})
    rows = robustness_rows(sgd, adam)
    context = dict(rows=rows, epochs=EPOCHS, seeds={m: 3 for m in sgd}, vals={},
                   answered=[r for r in rows if r.answered], flips=[r for r in rows if r.flips])
    template = environment(report_template().parent).get_template("sections/recipe_robustness.tex.j2")
    text = " ".join(template.render(robustness=context, min_seeds=3).split())
    assert "The recipe changes the answer to 1 of the 3 questions answered under both: E against D is lower under SGD" \
           " and inconclusive under Adam." in text
    assert "The other 2 agree: D against C and F against E higher under both." in text
    assert "(batch normalisation: +0.607 under SGD, +0.100 under Adam)" in text
    assert "so far" not in text and "$n<3$" not in text  # every model has 3 seeds: no caveat left over
    adam["D"] = adam["D"][:2]
    rows = robustness_rows(sgd, adam)
    context.update(rows=rows, seeds={**context["seeds"], "D": 2}, answered=[r for r in rows if r.answered],
                   flips=[r for r in rows if r.flips])
    text = " ".join(template.render(robustness=context, min_seeds=3).split())
    assert "seeds so far: C 3, D 2" in text and "$n<3$: a side has fewer than 3 seeds" in text
