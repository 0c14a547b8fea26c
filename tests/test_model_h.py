"""Model H: its whitening layer, identity initialisation, parameter groups, training through the
normal path, and a code version of its own."""


import pytest
import torch
from torch import nn

from convladder.core import model_h
from convladder.core.config import TrainConfig
from convladder.core.data import get_splits, load_cifar10
from convladder.core.models import create_model
from convladder.core.registry import entries, entry, study_model_names
from convladder.results.layout import RunLayout, results_archive
from convladder.pipeline import plan
from convladder.plan.profiles import H_ABLATIONS, H_EPOCHS, config_from_parameters, get_profile, ladder
from convladder.plan.recipes import get_recipe
from convladder.core.runs import code_version, run_state, train_run
from convladder.core.training import Trainer, parameter_groups

H_RECIPE = get_recipe("h").settings


def random_images(n=64, side=32, seed=0) -> torch.Tensor:
    """uint8 images whose neighbouring pixels and channels are correlated, as in photographs."""
    gen = torch.Generator().manual_seed(seed)
    smooth = nn.functional.avg_pool2d(torch.rand(n, 1, side + 3, side + 3, generator=gen), 4, stride=1)
    colour = torch.rand(n, 3, 1, 1, generator=gen)
    noise = 0.1 * torch.rand(n, 3, side, side, generator=gen)
    return ((0.6 * smooth * colour + 0.3 * colour + noise).clamp(0, 1) * 255).to(torch.uint8)


def test_the_whitening_layer_whitens_the_patches():
    images = random_images()
    model = create_model("H")
    model.init_from_data(images)
    x = images.float() / 255
    with torch.no_grad():
        out = model.whiten(x)  # (N, 24, 31, 31): each whitened component, then its negative
    rows = out.permute(0, 2, 3, 1).reshape(-1, 24).double()
    half = rows[:, :12]
    assert torch.allclose(rows[:, 12:], -half, atol=1e-5)
    assert half.mean(0).abs().max() < 1e-4
    covariance = torch.cov(half.T)
    # the identity, shrunk where a component's variance is not large against WHITEN_EPS
    assert (covariance - torch.diag(torch.diagonal(covariance))).abs().max() < 2e-3
    assert torch.diagonal(covariance).max() <= 1 + 1e-3 and torch.diagonal(covariance)[:6].min() > 0.95
    assert not model.whiten.weight.requires_grad and model.whiten.bias.requires_grad


def test_the_whitening_is_deterministic_and_reads_the_first_images(monkeypatch):
    monkeypatch.setattr(model_h, "WHITEN_IMAGES", 80)
    images = random_images(n=80)
    a, b, c = create_model("H"), create_model("H"), create_model("H")
    a.init_from_data(images)
    b.init_from_data(images.clone())
    c.init_from_data(torch.cat([images, random_images(n=8, seed=1)]))  # the images past the first 80 are not read
    assert torch.equal(a.whiten.weight, b.whiten.weight) and torch.equal(a.whiten.weight, c.whiten.weight)
    assert torch.equal(a.whiten.bias, c.whiten.bias)


@pytest.mark.parametrize("side", [32, 24, 9])
def test_h_maps_images_of_any_size_to_10_logits(side):
    model = create_model("H").eval()
    assert model(torch.rand(3, 3, side, side)).shape == (3, 10)


def test_the_convolutions_start_as_identities_where_their_shapes_allow():
    model = create_model("H")
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model.block1.conv2(x), x, atol=1e-6)  # 64 -> 64: the identity
        wider = model.block2.conv1(x)  # 64 -> 256: the first 64 channels pass through
    assert torch.allclose(wider[:, :64], x, atol=1e-6) and not torch.allclose(wider[:, 64:], torch.zeros(1))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(not m.weight.requires_grad and m.bias.requires_grad for m in norms)  # scale fixed at 1


def test_the_batch_norm_biases_learn_faster():
    model = create_model("H")
    config = TrainConfig(model="H", epochs=1, **{**H_RECIPE, "batch_size": 16})
    groups = parameter_groups(model, config)
    biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert {id(p) for p in groups[1]["params"]} == biases and groups[1]["lr"] == config.lr * model_h.BIAS_LR_SCALE
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == trainable  # every trainable parameter, once
    # the schedule peaks each group at its own rate; models without groups keep one group
    trainer = Trainer(model, *_tiny_splits(), config)
    assert [g["initial_lr"] for g in trainer.optimizer.param_groups] == [config.lr, config.lr * model_h.BIAS_LR_SCALE]
    plain = create_model("A")
    assert [id(p) for p in parameter_groups(plain, config)] == [id(p) for p in plain.parameters()]


def test_each_ingredient_can_be_left_out_for_an_ablation():
    images = random_images()
    config = TrainConfig(model="H", epochs=1, **H_RECIPE)
    plain = create_model("H")
    no_whitening = create_model("H", without=("whitening",))
    before = no_whitening.whiten.weight.clone()
    no_whitening.init_from_data(images)
    assert torch.equal(no_whitening.whiten.weight, before) and no_whitening.whiten.weight.requires_grad
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(create_model("H", without=("dirac",)).block1.conv2(x), x, atol=1e-2)
    slow_biases = parameter_groups(create_model("H", without=("bias_lr",)), config)
    assert slow_biases[1]["lr"] == config.lr and slow_biases[1]["weight_decay"] == config.weight_decay
    all_out = create_model("H", without=model_h.INGREDIENTS)
    assert {k: v.shape for k, v in all_out.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    assert TrainConfig(model="H", epochs=1, without="dirac, bias_lr").left_out == ("dirac", "bias_lr")
    with pytest.raises(ValueError, match="model H has no ingredient 'dropout'"):
        TrainConfig(model="H", epochs=1, without="dropout")
    with pytest.raises(ValueError, match="model A has no ingredient 'dirac'.*it has: none"):
        TrainConfig(model="A", epochs=1, without="dirac")


def _tiny_splits():
    from convladder.core.data import Split

    images = random_images(n=32)
    labels = torch.arange(32) % 10
    return Split(images, labels), Split(images[:8], labels[:8])


def _h_config(**overrides) -> TrainConfig:
    settings = dict(epochs=2, batch_size=16, train_size=40, val_size=8, test_size=10, lr=0.05)
    return config_from_parameters("smoke", "H", **{**settings, **overrides})


def test_h_trains_through_train_run_and_a_continued_run_equals_an_uninterrupted_one(tiny_cifar, tmp_path):
    config = _h_config()
    assert config.optimizer == "sgd" and config.label_smoothing == H_RECIPE["label_smoothing"]  # H's own recipe
    results = train_run(config, tmp_path / "H", data_dir=tiny_cifar, progress=False)
    assert results["history"]["epoch"] == [1, 2] and results["code_version"] == code_version("H")
    assert results["final"]["test_acc_tta"] is not None and results["layers"][0]["name"] == "whiten"
    checksum = results["data"]["checksum"]
    assert run_state(tmp_path / "H", config, checksum).kind == "current"

    splits = get_splits(load_cifar10(tiny_cifar, download=False, images_per_file=20), 40, 8, 10)

    def trainer(run_dir):
        torch.manual_seed(config.seed)
        model = create_model("H")
        model.init_from_data(splits["train"].images)
        return Trainer(model, splits["train"], splits["val"], config, run_dir=run_dir)

    first = trainer(tmp_path / "resumed")
    first.fit(1, progress=False)
    torch.manual_seed(12345)
    resumed = trainer(tmp_path / "resumed")
    assert resumed.epochs_done == 1
    resumed.fit(progress=False)
    straight = torch.load(tmp_path / "H" / "checkpoint.pt", weights_only=False)
    assert resumed.history["train_loss"] == straight["history"]["train_loss"]
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, straight["model"][key]), key


def test_h_has_a_code_version_of_its_own(monkeypatch):
    from convladder.core import versions

    assert entry("H").family == "H" and {e.family for e in entries(lambda e: e.study)} == {"ladder"}
    assert entry("H").ingredients == model_h.INGREDIENTS  # the registry's copy is the module's
    assert code_version("A") == code_version() == code_version("GAP") != code_version("H")
    before = {name: code_version(name) for name in ("A", "GAP")}
    monkeypatch.setitem(versions.CODE_VERSIONS, "H", "h-bumped")  # a bump of H's version leaves the ladder's runs current
    assert code_version("H") == "h-bumped" and {name: code_version(name) for name in ("A", "GAP")} == before


def test_h_joins_the_ladder_only_where_a_profile_gives_it_epochs():
    smoke = {run.name: run for run in ladder("smoke")}
    assert smoke["H"].epochs == 1 and smoke["H"].config("smoke").optimizer == "sgd"
    assert "H" not in {run.name for run in ladder("study")}
    assert "H" not in {run.name for run in ladder("quick")}  # the quick report reads H from the h profile's archive
    assert [run.name for run in ladder("full", ["H"])] == ["H", *(f"H-{name}" for name in H_ABLATIONS)]
    assert [run.name for run in ladder("smoke", ["A", "B"])] == ["A", "B", "A-softmax"]
    with pytest.raises(ValueError, match="profile quick has no runs of model H"):
        ladder("quick", ["H"])
    with pytest.raises(ValueError, match="profile study has no runs of model H"):
        ladder("study", ["H"])
    with pytest.raises(ValueError, match="gives model H no epochs"):
        config_from_parameters("study", "H")
    assert config_from_parameters("study", "H", epochs=3).epochs == 3
    assert set(study_model_names()) <= set(get_profile("quick").epochs)


def test_the_h_profile_makes_final_runs_and_one_run_per_ablation(tiny_cifar, tmp_path):
    runs = {run.name: run for run in ladder("h")}
    assert list(runs) == ["H", *(f"H-{name}" for name in H_ABLATIONS)]
    assert runs["H"].seeds == (0, 1, 2) and all(run.seeds == (0,) for name, run in runs.items() if name != "H")
    final = runs["H"].config("h")
    assert final.train_split == "train+val" and final.lookahead and final.without == ""
    assert runs["H-no-dirac"].config("h").without == "dirac" and runs["H-no-dirac"].config("h").train_split == "train+val"
    assert not runs["H-no-lookahead"].config("h").lookahead
    assert {name: run.epochs for name, run in runs.items()} == dict.fromkeys(runs, H_EPOCHS)
    assert RunLayout.of("h").root == results_archive("h")
    steps = plan("h", RunLayout(tmp_path / "h"), str(tiny_cifar))  # trains; no analyses; its report is H's note
    assert [step.notebook for step in steps] == ["00_data"] + ["10_train"] * len(runs) + ["90_report"]


def test_final_runs_can_train_on_every_training_image(tiny_cifar, tmp_path):
    config = _h_config(epochs=1, train_split="train+val")
    results = train_run(config, tmp_path / "H", data_dir=tiny_cifar, progress=False)
    assert results["data"]["sizes"]["train"] == 40 + 8 and results["config"]["train_split"] == "train+val"
    with pytest.raises(ValueError, match="unknown train_split"):
        TrainConfig(model="H", epochs=1, train_split="test")
