"""The diagnoses under the ladder's own recipe (convladder.experiments.ladder_diagnosis), on tiny data."""

from convladder.experiments import ladder_diagnosis
from convladder.results.layout import RESULTS_FILE
from convladder.core.runs import train_run


def test_variants_and_gradients_train_resume_and_are_summarised(tiny_cifar, tmp_path, monkeypatch, capsys):
    out, study = tmp_path / "diagnosis", tmp_path / "study"
    for seed in range(3):  # the baseline: the study profile's E
        train_run(ladder_diagnosis.variant_config("E", seed, 2, True), study / "E" / f"seed{seed}", data_dir=tiny_cifar,
                  name="E", progress=False)
    monkeypatch.setattr(ladder_diagnosis, "RECORD_EVERY", 2)
    args = ["--seeds", "0", "--epochs", "2", "--out-dir", str(out), "--data-dir", str(tiny_cifar), "--threads", "1"]
    assert ladder_diagnosis.main(args) == 0
    found = ladder_diagnosis.archived(out)
    assert sorted(found) == sorted([*ladder_diagnosis.E_VARIANTS, *ladder_diagnosis.GRADIENT_RUNS])
    he = found["E-he"][0]
    assert he["variant"] == {"model": "E", "study_softmax": True, "init": "he"} and he["config"]["optimizer"] == "sgd"
    gradients = found["C-gradients"][0]
    steps = gradients["record"]["step"]
    assert steps[0] == 1 and all(b - a == 2 for a, b in zip(steps[1:], steps[2:]))
    for layer in gradients["layers"]:
        assert len(gradients["record"][f"update:{layer}"]) == len(steps)
        assert all(u > 0 for u in gradients["record"][f"update:{layer}"])
    capsys.readouterr()
    assert ladder_diagnosis.main(args) == 0  # everything finished: kept
    assert capsys.readouterr().out.count("finished, kept") == 5
    text = ladder_diagnosis.summary(out, study)
    assert "E -> E-logits" in text and "C-gradients seed 0" in text
    assert (out / "E-logits" / "seed0" / RESULTS_FILE).exists()

    # what the study report reads of the archive: every variant against the 3 seeds of E, and C's and D's ratios
    from convladder.report.analyses import ladder_diagnosis_context
    from convladder.results.records import collect_runs

    monkeypatch.setattr("convladder.analysis.ladder_diagnosis.EPOCHS", 2)
    context = ladder_diagnosis_context(collect_runs(study), out)
    assert [v["name"] for v in context["variants"]] == list(ladder_diagnosis.E_VARIANTS)
    assert all(v["c"].n_low == 3 and v["c"].n_high == 1 and v["c"].verdict == "inconclusive" for v in context["variants"])
    assert len(context["baseline"]) == 3 and sorted(context["ratios"]) == ["C", "D"]
    assert all(s["grad_ratio"] > 0 and s["update_ratio"] > 0 for seeds in context["ratios"].values() for s in seeds)
    assert context["c_vs_d"].verdict == "inconclusive"  # one seed each
