"""The study profile's failing rungs continued to more epochs (convladder.experiments.longer_training), on tiny data."""

import pytest

from convladder.experiments import longer_training
from convladder.analysis.statistics import holm
from convladder.results.layout import RESULTS_FILE
from convladder.core.runs import train_run


def test_holm_adjusts_in_step_down_order_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_a_seed_is_continued_from_its_archived_run_and_summarised(tiny_cifar, tmp_path, monkeypatch, capsys):
    source, out = tmp_path / "study", tmp_path / "study-150"
    archived = {}
    for model in ("C", "D"):
        for seed in range(3):
            results = train_run(longer_training.continued_config(model, seed, 2), source / model / f"seed{seed}",
                                data_dir=tiny_cifar, name=model, progress=False)
            archived[model, seed] = results["history"]["val_acc"]
    args = ["--models", "C", "D", "--seeds", "0", "--epochs", "3", "--source-dir", str(source), "--out-dir", str(out),
            "--data-dir", str(tiny_cifar), "--threads", "1"]
    assert longer_training.main(args) == 0
    assert (out / "C" / "seed0" / RESULTS_FILE).exists() and not (source / "C" / "seed0" / "checkpoint.pt.unrecognised").exists()
    seeds = longer_training.archived_seeds(out)
    assert [s["epochs"] for s in seeds["C"]] == [3] and seeds["C"][0]["curve"][:2] == archived["C", 0]
    assert longer_training.main(args) == 0 and "finished, kept" in capsys.readouterr().out
    monkeypatch.setattr(longer_training, "BUDGETS", (2, 3))
    from convladder.results.records import collect_runs

    verdicts = longer_training.budget_verdicts(longer_training.archived_seeds(out), collect_runs(source))
    assert [(v["low"], v["high"], v["budget"]) for v in verdicts] == [("C", "D", 2)]  # epoch 3: one seed each only
    assert verdicts[0]["comparison"].n_low == 3 and verdicts[0]["comparison"].n_high == 3
    text = longer_training.summary(out, source)
    assert "C -> D at epoch 2" in text and "Holm" in text
