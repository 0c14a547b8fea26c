"""The study profile's failing rungs continued to more epochs (convladder.experiments.longer_training), on tiny data."""

import pytest

from convladder.experiments import longer_training
from convladder.analysis.statistics import holm
from convladder.results.layout import RESULTS_FILE
from convladder.core.runs import train_run


def test_holm_adjusts_in_step_down_order_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_a_family_counts_only_the_comparisons_with_enough_seeds_for_a_verdict():
    from convladder.analysis.statistics import compare, holm_family

    three = compare([0.10, 0.11, 0.12], [0.40, 0.41, 0.43])
    two = compare([0.10, 0.12], [0.40, 0.43])  # a p-value, but fewer than 3 seeds a side: no verdict
    assert two.p_value is not None and two.verdict == "inconclusive"
    assert holm_family([three, two, None]) == pytest.approx([three.p_value, None, None])
    assert holm_family([three, three]) == pytest.approx([2 * three.p_value] * 2)


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
    monkeypatch.setattr("convladder.analysis.longer_training.BUDGETS", (2, 3))
    from convladder.results.records import collect_runs

    verdicts = longer_training.budget_verdicts(longer_training.archived_seeds(out), collect_runs(source))
    assert [(v["low"], v["high"], v["budget"]) for v in verdicts] == [("C", "D", 2)]  # epoch 3: one seed each only
    assert verdicts[0]["comparison"].n_low == 3 and verdicts[0]["comparison"].n_high == 3
    text = longer_training.summary(out, source)
    assert "C -> D at epoch 2" in text and "Holm" in text


def test_the_report_reads_the_continued_runs_and_says_where_a_verdict_changes(tmp_path, monkeypatch):
    """longer_context on a hand-made archive: D passes the study's 0.59 at epoch 3 on every seed, E never
    leaves chance, and E against D is decided at epoch 2 but not at epoch 4 (the seeds spread)."""
    import json

    from convladder.report.analyses import longer_context

    def run(model, seed, curve):
        history = {"epoch": list(range(1, len(curve) + 1)), "val_acc": curve, "epoch_seconds": [1.0] * len(curve)}
        return {"name": model, "config": {"model": model, "seed": seed, "epochs": len(curve)}, "history": history}

    d = [[0.3, 0.5, 0.6, 0.61], [0.3, 0.52, 0.62, 0.63], [0.31, 0.51, 0.6, 0.6]]
    e = [[0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.9], [0.1, 0.1, 0.1, 0.1]]
    out = tmp_path / "study-150"
    for model, curves in (("D", d), ("E", e)):
        for seed, curve in enumerate(curves):
            folder = out / model / f"seed{seed}"
            folder.mkdir(parents=True)
            results = run(model, seed, curve)
            results.update(final={"train_acc": 0.5, "val_acc": curve[-1], "test_acc": curve[-1]}, data={"checksum": "x"})
            for key in ("train_acc", "train_loss", "val_loss"):
                results["history"][key] = [0.5] * len(curve)
            (folder / RESULTS_FILE).write_text(json.dumps(results))
    ladder = {m: [run(m, s, c[:2]) for s, c in enumerate(curves)] for m, curves in (("D", d), ("E", e))}
    monkeypatch.setattr("convladder.analysis.longer_training.BUDGETS", (2, 4))
    context = longer_context(ladder, out, figures=tmp_path)
    assert (tmp_path / context["figure"]).stat().st_size > 0
    assert context["d_crossing"] == [3, 3, 3] and context["never"]["E"] == [0, 2] and context["epochs"] == 4
    by_budget = {v["budget"]: v for v in context["verdicts"]}
    assert by_budget[2]["c"].verdict == "lower" and not by_budget[2]["changed"]
    assert by_budget[4]["c"].verdict == "inconclusive" and by_budget[4]["changed"] and by_budget[4]["first_budget"] == 2
