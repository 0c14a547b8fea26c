import math
import os

import pytest
import torch

from convladder.core.config import LOOKAHEAD_DECAY, LOOKAHEAD_EVERY, LOOKAHEAD_POW, LOOKAHEAD_START, TRIANGLE, TrainConfig
from convladder.plan.profiles import config_from_parameters, get_profile, ladder
from convladder.core.data import get_splits, load_cifar10
from convladder.core.models import create_model
from convladder.results.layout import seed_dir
from convladder.results.records import collect_runs, load_results
from convladder.core.runs import RunLocked, run_lock, train_run
from convladder.results.schema import SCHEMA_VERSION
from convladder.core.training import (
    CHECKPOINT, Trainer, TrainingDiverged, make_optimizer, make_scheduler, parameter_groups, piecewise_linear,
)


@pytest.fixture
def splits(tiny_cifar):
    return get_splits(load_cifar10(tiny_cifar, download=False, images_per_file=20))


def make_trainer(splits, run_dir=None, model="D", **overrides):
    overrides = {"epochs": 3, "batch_size": 16, **overrides}
    config = TrainConfig(model=model, **overrides)
    torch.manual_seed(config.seed)
    return Trainer(create_model(model), splits["train"], splits["val"], config, run_dir=run_dir)


def test_training_lowers_the_loss_on_a_tiny_set(splits):
    trainer = make_trainer(splits, epochs=4, lr=3e-3)
    before = trainer.evaluate(splits["train"])["loss"]
    history = trainer.fit(progress=False)
    assert trainer.evaluate(splits["train"])["loss"] < before
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["epoch"] == [1, 2, 3, 4]
    assert all(s > 0 for s in history["epoch_seconds"])
    assert set(history) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds"}


def test_train_step_and_val_step(splits):
    trainer = make_trainer(splits)
    x, y = splits["train"].images[:16], splits["train"].labels[:16]
    loss, correct = trainer.train_step(x, y)
    assert loss > 0 and 0 <= correct <= 16 and trainer.model.training
    weights = [p.clone() for p in trainer.model.parameters()]
    trainer.val_step(x, y)
    assert not trainer.model.training
    assert all(torch.equal(a, b) for a, b in zip(weights, trainer.model.parameters()))


def test_a_seed_sets_the_same_weights_and_batches_in_either_precision(tiny_cifar, tmp_path, monkeypatch):
    """The study paper pairs fp32 and bfloat16 runs by seed (analysis.compare_paired): through train_run, the seed
    alone must set the initial weights (the predictions before training) and every batch's images, whatever the
    precision."""
    seen = {True: [], False: []}
    step = Trainer.train_step

    def recording(self, x, y):
        seen[self.config.amp].append((x.clone(), y.clone()))
        return step(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", recording)
    before = {amp: train_run(TrainConfig(model="A", epochs=2, batch_size=16, amp=amp), tmp_path / f"amp-{amp}",
                             data_dir=tiny_cifar, progress=False)["proba_before"] for amp in (True, False)}
    assert before[True] == before[False]
    assert len(seen[True]) == len(seen[False]) > 4
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(seen[True], seen[False]))
    assert not torch.equal(seen[True][0][0], seen[True][len(seen[True]) // 2][0])  # epochs see other orders


FAST_RECIPE = dict(optimizer="sgd", lr=0.05, schedule="onecycle", label_smoothing=0.1, augment=True, weight_decay=5e-4)


@pytest.mark.parametrize(
    "model, recipe",
    [("D", {}), ("G", {}), ("GAP", FAST_RECIPE), ("GAP", {**FAST_RECIPE, "progressive": 0.75}),
     ("GAP", {**FAST_RECIPE, "schedule": "triangle", "lookahead": True})],
)
def test_continuing_a_run_equals_an_uninterrupted_run(splits, tmp_path, model, recipe):
    straight = make_trainer(splits, tmp_path / "straight", model=model, epochs=4, **recipe)
    straight.fit(progress=False)
    first = make_trainer(splits, tmp_path / "resumed", model=model, epochs=4, **recipe)
    first.fit(2, progress=False)
    torch.manual_seed(12345)  # a fresh process would not share the RNG state; the checkpoint must restore it
    resumed = make_trainer(splits, tmp_path / "resumed", model=model, epochs=4, **recipe)
    assert resumed.epochs_done == 2
    resumed.fit(progress=False)
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert resumed.history[key] == straight.history[key]
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_the_checkpoint(splits, tmp_path):
    trainer = make_trainer(splits, tmp_path, epochs=2)
    trainer.fit(1, progress=False)
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    with torch.no_grad():
        trainer.model[-1].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="epoch 2, batch 1"):
        trainer.fit(progress=False)
    kept = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert len(kept["history"]["epoch"]) == 1
    assert torch.equal(kept["model"]["3.weight"], saved["model"]["3.weight"])


def test_checkpoint_of_another_model_is_refused(splits, tmp_path):
    make_trainer(splits, tmp_path, model="D", epochs=1).fit(progress=False)
    with pytest.raises(ValueError, match="model D, not C"):
        make_trainer(splits, tmp_path, model="C")


def test_train_run_writes_results_and_continues_gap(tiny_cifar, tmp_path):
    config = TrainConfig(model="GAP", epochs=1, batch_size=32)
    first = train_run(config, tmp_path / "GAP", data_dir=tiny_cifar, progress=False)
    assert first["name"] == "GAP" and first["parameters"] == 461_150
    assert {k for k, v in first["final"].items() if v is not None} == {"train_acc", "train_acc_eval", "train_loss", "val_acc",
                                                                        "val_loss", "test_acc", "test_loss"}
    assert first["schema_version"] == SCHEMA_VERSION and first["final"]["test_acc_tta"] is None  # only H measures it
    assert len(first["proba_before"]) == 10 and abs(sum(first["proba_after"]) - 1) < 1e-5
    assert first["data"]["sizes"] == {"train": 84, "val": 16, "test": 20}
    assert first["environment"]["device"] == "cpu" and first["data"]["checksum"]
    more = TrainConfig(model="GAP", epochs=3, batch_size=32)
    second = train_run(more, tmp_path / "GAP+", data_dir=tiny_cifar, name="GAP+", resume_from=tmp_path / "GAP",
                       progress=False)
    assert second["history"]["epoch"] == [1, 2, 3]
    assert second["history"]["val_acc"][0] == first["history"]["val_acc"][0]
    assert second["proba_before"] == first["proba_before"]
    assert load_results(tmp_path / "GAP")["history"]["epoch"] == [1]  # the first run is left as it was
    assert set(collect_runs(tmp_path)) == {"GAP", "GAP+"}
    # a run folder of seeds: each seed continues the same seed of the other run
    train_run(TrainConfig(model="GAP", epochs=1, batch_size=32, seed=1), seed_dir(tmp_path / "S", 1),
              data_dir=tiny_cifar, name="S", progress=False)
    cont = train_run(TrainConfig(model="GAP", epochs=2, batch_size=32, seed=1), seed_dir(tmp_path / "S+", 1),
                     data_dir=tiny_cifar, name="S+", resume_from=tmp_path / "S", progress=False)
    assert cont["history"]["epoch"] == [1, 2] and cont["continued_from"].endswith("seed1")
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        train_run(more, tmp_path / "other", data_dir=tiny_cifar, resume_from=tmp_path / "missing", progress=False)


def test_config_validation_happens_before_training():
    with pytest.raises(ValueError, match="unknown model"):
        TrainConfig(model="Z", epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(model="A", epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(model="A", epochs=1, batch_size=-4)
    with pytest.raises(ValueError, match="learning rate"):
        TrainConfig(model="A", epochs=1, lr=0)
    with pytest.raises(ValueError, match="train_size"):
        TrainConfig(model="A", epochs=1, train_size=0)
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")


def test_profiles_and_ladder():
    plan = ladder("quick")
    assert [r.name for r in plan] == ["A", "B", "C", "D", "E", "F", "G", "GAP", "GAP+", "A-softmax", "D-softmax",
                                      "G-fp32", "GAP-fast"]  # no H in quick until its recipe is tuned
    assert [r.name for r in ladder("smoke")][-6:-4] == ["H", "H95"]  # CI trains H and H-95 for one step each
    runs = {r.name: r for r in plan}
    assert runs["GAP+"].continues == "GAP" and runs["GAP+"].epochs == 2 * get_profile("quick").epochs["GAP"]
    assert runs["A"].seeds == runs["GAP+"].seeds == (0, 1, 2) and runs["GAP-fast"].seeds == (0,)
    assert runs["A-softmax"].config("quick").study_softmax and not runs["A"].config("quick").study_softmax
    assert runs["A-softmax"].epochs == runs["A"].epochs and runs["G-fp32"].config("quick").amp is False
    assert runs["B"].config("quick", seed=1).seed == 1
    fast = runs["GAP-fast"].config("quick")
    assert (fast.model, fast.optimizer, fast.schedule, fast.augment) == ("GAP", "sgd", "onecycle", True)
    study = runs["GAP"].config("quick")
    assert (study.optimizer, study.lr, study.augment, study.schedule) == ("adam", 0.001, False, "constant")
    assert [r.name for r in ladder("smoke", ["A", "B"])] == ["A", "B", "A-softmax"]
    assert all(r.seeds == (0,) for r in ladder("smoke"))
    full = {r.name: r.epochs for r in ladder("full")}
    assert (full["A"], full["B"], full["C"], full["GAP"], full["GAP+"]) == (150, 150, 16, 120, 240)
    config = config_from_parameters("smoke", "G", epochs=None, lr=0.01)
    assert config.epochs == get_profile("smoke").epochs["G"] and config.lr == 0.01
    with pytest.raises(ValueError, match="unknown model 'X'"):
        ladder("smoke", ["X"])


def test_run_lock_refuses_a_second_holder_and_is_free_after(tmp_path):
    run_dir = tmp_path / "A" / "seed0"
    with run_lock(run_dir):
        with pytest.raises(RunLocked, match=f"in use by process {os.getpid()}"):
            with run_lock(run_dir):
                pass
    with run_lock(run_dir):  # released: taken again
        pass


def test_one_cycle_runs_cannot_be_extended(splits, tmp_path):
    make_trainer(splits, tmp_path, model="A", epochs=1, **FAST_RECIPE).fit(progress=False)
    with pytest.raises(ValueError, match="cannot be extended"):
        make_trainer(splits, tmp_path, model="A", epochs=3, **FAST_RECIPE)


def test_lookahead_pulls_the_model_toward_a_slow_copy_every_few_steps(splits):
    trainer = make_trainer(splits, model="GAP", epochs=4, **FAST_RECIPE, lookahead=True)
    total = trainer.config.epochs * trainer.steps_per_epoch
    first = LOOKAHEAD_EVERY * math.ceil(LOOKAHEAD_START * total / LOOKAHEAD_EVERY)
    trainer.lookahead_step(first - LOOKAHEAD_EVERY)  # before the start: nothing
    assert trainer.slow is None
    trainer.lookahead_step(first)  # the first: the slow copy starts as the model
    name, weight = next(iter(trainer.model.named_parameters()))
    start = weight.detach().clone()
    assert torch.equal(trainer.slow[name], start)
    with torch.no_grad():
        weight.add_(1.0)  # as if the optimizer had moved it
    trainer.lookahead_step(first + 1)  # not a multiple of LOOKAHEAD_EVERY: nothing
    assert torch.equal(weight, start + 1)
    step = first + LOOKAHEAD_EVERY
    rho = LOOKAHEAD_DECAY**LOOKAHEAD_EVERY * (step / total) ** LOOKAHEAD_POW
    trainer.lookahead_step(step)
    assert 0 < rho < 1
    assert torch.allclose(weight, start + (1 - rho)) and torch.equal(trainer.slow[name], weight)


def test_a_lookahead_run_ends_each_epoch_on_its_slow_copy_and_cannot_be_extended(splits, tmp_path):
    trainer = make_trainer(splits, tmp_path, model="GAP", epochs=4, **FAST_RECIPE, lookahead=True)
    trainer.fit(progress=False)
    assert trainer.slow is not None
    for name, value in trainer.model.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(value, trainer.slow[name])
    with pytest.raises(ValueError, match="lookahead over 4 epochs"):
        make_trainer(splits, tmp_path, model="GAP", epochs=6, **FAST_RECIPE, lookahead=True)


def test_drop_last_trains_on_whole_batches_only(splits):
    n = len(splits["train"])
    kept = make_trainer(splits, batch_size=16, drop_last=True, epochs=1)
    seen = []
    kept.on_step = lambda loss: seen.append(loss)
    kept.fit(progress=False)
    assert kept.steps_per_epoch == n // 16 == len(seen) and n % 16  # the tiny split leaves a remainder
    every = make_trainer(splits, batch_size=16, epochs=1)
    assert every.steps_per_epoch == n // 16 + 1
    alone = make_trainer(splits, batch_size=n + 1, drop_last=True)  # fewer images than a batch: that one batch
    assert alone.steps_per_epoch == 1


def test_the_triangle_schedule_rises_to_each_groups_peak_then_falls():
    assert [piecewise_linear(x, TRIANGLE) for x in (-1, 0, 0.23, 1, 2)] == pytest.approx([0.2, 0.2, 1.0, 0.07, 0.07])
    assert piecewise_linear(0.115, TRIANGLE) == pytest.approx(0.6)
    config = TrainConfig(model="H", epochs=2, optimizer="sgd", lr=0.5, schedule="triangle")
    model = create_model("H")
    optimizer = make_optimizer(config, parameter_groups(model, config))
    scheduler = make_scheduler(config, optimizer, steps_per_epoch=50)
    seen = []
    for _ in range(100):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    peaks = [max(lrs) for lrs in zip(*seen)]
    assert peaks[0] == pytest.approx(0.5) and peaks[1] > peaks[0]  # H's batch-norm biases peak higher
    assert seen[0][0] == pytest.approx(0.1) and seen[23][0] == pytest.approx(0.5)
    assert seen[99][0] == pytest.approx(0.5 * (0.07 + 0.93 * 1 / 77))


def test_fast_recipe_settings_are_validated():
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(model="A", epochs=1, schedule="cosine")
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(model="A", epochs=1, label_smoothing=1.5)
    with pytest.raises(ValueError, match="crop_pad"):
        TrainConfig(model="A", epochs=1, crop_pad=-1)


def test_progressive_resizing_grows_the_images_then_trains_at_full_size(splits):
    trainer = make_trainer(splits, model="GAP", epochs=10, progressive=0.4)
    assert [trainer.input_side(e) for e in range(10)] == [16, 20, 24, 28] + [None] * 6
    seen = []
    trainer.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[-1]) if module.training else None)
    history = trainer.fit(epochs=5, progress=False)
    steps = len(seen) // 5
    assert seen[::steps] == [16, 20, 24, 28, 32] and len(history["epoch"]) == 5
    seen.clear()
    trainer.evaluate(splits["val"])
    assert seen == []  # evaluation is not resized (the hook records training-mode calls only)


def test_alternating_flip_mirrors_each_image_in_every_other_epoch(splits):
    trainer = make_trainer(splits, model="A", epochs=3, augment=True, alternating_flip=True)
    everyone = torch.arange(len(splits["train"]))
    masks = [trainer.flip_mask(everyone, epoch) for epoch in range(4)]
    assert torch.equal(masks[0], ~masks[1]) and torch.equal(masks[0], masks[2]) and torch.equal(masks[1], masks[3])
    assert 0 < int(masks[0].sum()) < len(everyone)
    assert make_trainer(splits, model="A", epochs=3, augment=True).flip_mask(everyone, 0) is None
    with pytest.raises(ValueError, match="needs augment"):
        TrainConfig(model="A", epochs=1, alternating_flip=True)


def test_progressive_resizing_needs_a_model_that_takes_any_size():
    with pytest.raises(ValueError, match="fixed-size classifier"):
        TrainConfig(model="G", epochs=4, progressive=0.5)
    with pytest.raises(ValueError, match="progressive"):
        TrainConfig(model="GAP", epochs=4, progressive=1.0)
