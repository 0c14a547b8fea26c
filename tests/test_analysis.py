"""Seeds and spread, the error analysis, the diagnosis experiments and the size curve, on tiny data."""

import json

import matplotlib
import pytest
import torch

from convladder.core.augment import shift
from convladder.core.config import TrainConfig
from convladder.core.data import get_splits, load_cifar10
from convladder.experiments.diagnosis import E_VARIANTS, GRADIENT_MODELS, diagnose, init_weights, logit_std
from convladder.experiments.error_analysis import confident_mistakes, confusion, error_analysis, predict_split
from convladder.results.records import seed_folders
from convladder.core.models import create_model
from convladder.experiments.other_sizes import other_sizes_study
from convladder.report.plots import plot_history
from convladder.report.latex import fmt_ms
from convladder.report.ladder import within_interval
from convladder.results.layout import seed_dir
from convladder.results.records import collect_runs, resolve_run_folder, summarize
from convladder.core.runs import train_run
from convladder.core.training import Trainer

matplotlib.use("Agg")


@pytest.fixture
def seeded_runs(tiny_cifar, tmp_path):
    """Two seeds of GAP and one of G, trained for one epoch on the tiny set."""
    for name, model, seeds in (("GAP+", "GAP", (0, 1)), ("G", "G", (0,))):
        for seed in seeds:
            train_run(TrainConfig(model=model, epochs=1, batch_size=32, seed=seed), seed_dir(tmp_path / "runs" / name, seed),
                      data_dir=tiny_cifar, name=name, progress=False)
    return tmp_path / "runs"


def test_summarize_gives_mean_and_sample_standard_deviation():
    assert summarize([0.5]) == (0.5, 0.0)
    mean, std = summarize([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)
    with pytest.raises(ValueError):
        summarize([])


def test_collect_runs_groups_seeds_in_order_and_resolves_a_run_folder(seeded_runs):
    runs = collect_runs(seeded_runs)
    assert set(runs) == {"GAP+", "G"}
    assert [r["config"]["seed"] for r in runs["GAP+"]] == [0, 1]
    assert resolve_run_folder(seeded_runs / "GAP+") == seed_dir(seeded_runs / "GAP+", 0)
    assert seed_folders(seeded_runs / "GAP+") == [seed_dir(seeded_runs / "GAP+", s) for s in (0, 1)]
    with pytest.raises(FileNotFoundError, match="train it first"):
        resolve_run_folder(seeded_runs / "missing")


def test_seeds_differ_and_the_history_plot_takes_several(seeded_runs):
    first, second = collect_runs(seeded_runs)["GAP+"]
    assert first["proba_before"] != second["proba_before"]  # other initial weights
    fig = plot_history([first["history"], second["history"]], title="two seeds")
    assert len(fig.axes) == 3


def test_confusion_and_per_class_accuracy_agree_with_a_hand_count():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3, 4, 9])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0, 2, 3, 5, 9])
    proba = torch.nn.functional.one_hot(predicted, 10).float() * 0.9 + 0.01
    result = confusion(proba, labels)
    hand = [[0] * 10 for _ in range(10)]
    for t, p in zip(labels.tolist(), predicted.tolist()):
        hand[t][p] += 1
    assert result["confusion"] == hand
    assert result["acc"] == pytest.approx(7 / 10)
    assert result["per_class"][:5] == pytest.approx([0.5, 1.0, 2 / 3, 1.0, 0.0])


def test_confident_mistakes_are_wrong_and_sorted_by_confidence():
    labels = torch.tensor([0, 1, 2, 3])
    proba = torch.tensor([[0.1, 0.9] + [0.0] * 8, [0.0, 1.0] + [0.0] * 8,
                          [0.6, 0.4] + [0.0] * 8, [0.0] * 3 + [1.0] + [0.0] * 6])
    mistakes = confident_mistakes(proba, labels, count=5)
    assert [m["index"] for m in mistakes] == [0, 2]
    assert mistakes[0]["predicted"] == 1 and mistakes[0]["confidence"] == pytest.approx(0.9)
    assert mistakes[1]["p_true"] == pytest.approx(0.0)


def test_error_analysis_covers_every_seed(seeded_runs, tiny_cifar):
    errors = error_analysis(seeded_runs, ("G", "GAP+"), data_dir=tiny_cifar, images=12, mistakes=3)
    assert errors["test_images"] == 12
    assert [s["seed"] for s in errors["runs"]["GAP+"]["seeds"]] == [0, 1]
    first = errors["runs"]["GAP+"]["seeds"][0]
    assert sum(map(sum, first["confusion"])) == 12 and len(first["mistakes"]) <= 3
    assert "mistakes" not in errors["runs"]["GAP+"]["seeds"][1]
    images = torch.load(seeded_runs / "errors" / "mistakes.pt")  # the report shows them without the dataset
    assert set(images) == {"G", "GAP+"} and len(images["GAP+"]) == len(first["mistakes"])
    assert images["GAP+"].dtype == torch.uint8 and images["GAP+"].shape[1:] == (3, 32, 32)
    assert json.loads((seeded_runs / "errors" / "errors.json").read_text())["class_names"][0] == "airplane"


def test_size_curve_has_every_size_for_every_seed(seeded_runs, tiny_cifar, tmp_path):
    study = other_sizes_study(seeded_runs / "GAP+", data_dir=tiny_cifar, examples=2, out_dir=tmp_path / "sizes",
                              curve_images=10, curve_sizes=((16, 16), (64, 64), (32, 16)))
    assert study["sizes"] == ["32x32", "32x20", "32x18", "16x16", "64x64", "32x16"]
    assert [c["seed"] for c in study["curve"]] == [0, 1]
    assert all(0 <= c["accuracy"][s] <= 1 for c in study["curve"] for s in study["sizes"])
    assert len(study["images"]) == 3  # the cat photo and two test images
    with pytest.raises(ValueError, match="need a GAP run"):
        other_sizes_study(seeded_runs / "G", data_dir=tiny_cifar, out_dir=tmp_path / "no")


def test_predict_split_resizes_before_predicting():
    model = create_model("GAP").eval()
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    assert predict_split(model, images, size=(20, 16)).shape == (5, 10)
    assert torch.allclose(predict_split(model, images, batch_size=2).sum(1), torch.ones(5))


def test_test_time_augmentation_averages_an_image_its_mirror_and_shifted_views(tiny_cifar):
    splits = get_splits(load_cifar10(tiny_cifar))
    torch.manual_seed(0)
    trainer = Trainer(create_model("GAP"), splits["train"], splits["val"],
                      TrainConfig(model="GAP", epochs=1, amp=False))
    acc = trainer.evaluate_tta(splits["test"])
    model = trainer.model.eval()
    x = splits["test"].images.float() / 255
    with torch.no_grad():
        proba = model(x).softmax(1) + model(x.flip(3)).softmax(1)
    assert acc == pytest.approx(float((proba.argmax(1) == splits["test"].labels).float().mean()))
    # with shifted views too: the probabilities of every view of every image, summed
    images = splits["test"].images
    views = [shift(images, 0, 0), shift(images, 1, 0), shift(images, 0, -1)]
    with torch.no_grad():
        proba = sum(model(v.float() / 255).softmax(1) + model(v.float().flip(3) / 255).softmax(1) for v in views)
    expected = float((proba.argmax(1) == splits["test"].labels).float().mean())
    assert trainer.evaluate_tta(splits["test"], ((0, 0), (1, 0), (0, -1))) == pytest.approx(expected)


def test_diagnosis_records_variants_and_gradient_norms_and_is_reused(tiny_cifar, tmp_path):
    result = diagnose(tmp_path / "diag", data_dir=tiny_cifar, epochs=2, seeds=(0,), batch_size=16)
    assert [v["label"] for v in result["variants"]] == [v.label for v in E_VARIANTS]
    steps = result["steps_per_epoch"]
    assert steps == -(-result["train_images"] // 16)
    for variant in result["variants"]:
        seed = variant["seeds"][0]
        assert len(seed["val_acc"]) == 2 and len(seed["step_loss"]) == 2 * steps
        assert seed["learned"] == (seed["final_val_acc"] > result["learned_threshold"])
    assert set(result["gradients"]) == set(GRADIENT_MODELS)
    c = result["gradients"]["C"][0]
    assert c["layers"][0] == "0.0" and c["layers"][-1] == "3"  # first convolution ... the linear layer
    assert all(len(c["norms"][layer]) == 2 * steps and min(c["norms"][layer]) >= 0 for layer in c["layers"])
    assert sum(result["one_class_accuracy"]) == pytest.approx(1.0)
    stamp = (tmp_path / "diag" / "diagnosis.json").stat().st_mtime_ns
    assert diagnose(tmp_path / "diag", data_dir=tiny_cifar, epochs=2, seeds=(0,), batch_size=16) == result
    assert (tmp_path / "diag" / "diagnosis.json").stat().st_mtime_ns == stamp  # read back, not retrained


def test_he_initialisation_makes_e_logits_larger(tiny_cifar):
    images = get_splits(load_cifar10(tiny_cifar))["val"].images
    torch.manual_seed(0)
    default = logit_std(create_model("E"), images)
    torch.manual_seed(0)
    he = logit_std(init_weights(create_model("E"), "he"), images)
    assert he > 5 * default
    with pytest.raises(ValueError, match="unknown init"):
        init_weights(create_model("E"), "xavier")


def test_spread_helpers():
    assert fmt_ms([0.5]) == "0.500"
    assert "\\pm" in fmt_ms([0.5, 0.7])
    assert fmt_ms([0.968, 0.9683, 0.9681]).endswith("$\\pm{<}\\,$0.001}")  # seeds that differ never read as +-0.000
    assert fmt_ms([0.1, 0.1, 0.1]).endswith("$\\pm$0.000}")
    assert within_interval([0.80, 0.82, 0.81], 0.83) == "yes"
    assert within_interval([0.80, 0.801, 0.802], 0.83) == "no"
    assert within_interval([0.8, 0.82], 0.81) == "--" and within_interval([0.8, 0.9, 0.85], None) == "--"
