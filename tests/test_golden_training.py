"""The golden test of the declared training-code version (versions.py): each model family trains a
few steps on fixed synthetic data, and the weights must match the fingerprints recorded beside the
family's version in tests/golden/training.json. A change to what training computes fails here until
the family's version is bumped and the fingerprints recorded again:

    CONVLADDER_RECORD_GOLDEN=1 python -m pytest tests/test_golden_training.py

which records only the families whose version differs from the recorded one.

The fingerprint of a case is, per floating-point tensor of the model's state, the sum of absolute
values of the initial weights and of the change training made, and the signed sum of that change,
beside the losses of every epoch. Training runs in fp32 on one thread, so that the numbers hardly
depend on the CPU (another CPU's kernels may sum in another order);
one case trains with bfloat16 autocast. Measured on an AMD EPYC Zen 4 (2026-12-03): two threads instead
of one move the fingerprints by at most 2.4e-4 of their scale (F, G), which the tolerance of 1e-3 covers
(GAP-fast: 3e-3 of its losses, at a tolerance of 2e-2);
default momentum 0.8 instead of 0.9 moves them by 8%, and fp32 instead of bfloat16 autocast by 0.8%
(the bf16 case's tolerance is 2e-3). See test_a_changed_default_momentum_fails_the_golden_test and
test_bfloat16_autocast_is_told_apart_from_fp32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from convladder.core import runs
from convladder.core.config import TrainConfig
from convladder.plan.profiles import config_from_parameters
from convladder.plan.recipes import GAP_FAST, get_recipe
from convladder.core.versions import CODE_VERSIONS, LADDER, model_family

GOLDEN = Path(__file__).parent / "golden" / "training.json"
RECORD = os.environ.get("CONVLADDER_RECORD_GOLDEN") == "1"
SIZES = dict(train_size=None, val_size=None, test_size=None)

# case -> (config settings, relative tolerance). fp32 unless the case says amp.
CASES = {
    **{f"{model}-study": (dict(profile="study", model=model, epochs=2, amp=False), 1e-3)
       for model in ("A", "B", "C", "D", "E", "F", "G", "GAP")},
    "A-study-bf16": (dict(profile="study", model="A", epochs=2, amp=True), 2e-3),
    "A-quick": (dict(profile="quick", model="A", epochs=2, amp=False), 1e-3),  # Adam, logits
    "A-sgd-defaults": (dict(profile="custom", model="A", epochs=2, optimizer="sgd", amp=False), 1e-3),
    # the fast recipe at a hundredth of its learning rate, and a looser tolerance: its few steps on 84 images
    # are chaotic (two threads instead of one move the losses by 90% at lr 0.2, 0.3% at lr 0.002)
    "GAP-fast": (dict(profile="quick", model="GAP", epochs=8, amp=False, **{**get_recipe(GAP_FAST).settings, "lr": 0.002}), 2e-2),
    "H": (dict(profile="h", model="H", epochs=2, amp=False), 1e-3),
    "H-no-whitening": (dict(profile="h", model="H", epochs=1, amp=False, without="whitening"), 1e-3),
}


def case_config(settings: dict) -> TrainConfig:
    settings = dict(settings)
    profile, model = settings.pop("profile"), settings.pop("model")
    if profile == "custom":
        return TrainConfig(model=model, **settings)
    return config_from_parameters(profile, model, **settings)


def fingerprint(config: TrainConfig, data_dir: Path, run_dir: Path, monkeypatch) -> dict:
    """Train `config` with runs.train_run (the whole path of a real run) and sum up what it did."""
    initial = {}

    class RecordingTrainer(runs.Trainer):
        def __init__(self, model, *args, **kwargs):
            initial.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(runs, "Trainer", RecordingTrainer)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = runs.train_run(config, run_dir, data_dir=data_dir, progress=False)
    finally:
        torch.set_num_threads(threads)
    final = torch.load(run_dir / "checkpoint.pt", weights_only=False)["model"]
    tensors = {}
    for key, before in initial.items():
        if not before.is_floating_point():
            continue
        change = final[key].double() - before.double()
        tensors[key] = [before.double().abs().sum().item(), change.abs().sum().item(), change.sum().item()]
    history = results["history"]
    return {"tensors": tensors, "train_loss": history["train_loss"], "val_loss": history["val_loss"],
            "test_loss": results["final"]["test_loss"]}


def differences(got: dict, want: dict, rtol: float) -> list[str]:
    """What differs beyond `rtol` (relative to the largest value of its kind, so that a sum near zero
    is not held to a relative tolerance of its own)."""
    found = []
    if set(got["tensors"]) != set(want["tensors"]):
        return [f"other tensors: {sorted(set(got['tensors']) ^ set(want['tensors']))}"]
    for column, kind in enumerate(("initial |w|", "|change|", "change")):
        scale = max(abs(v[column]) for v in want["tensors"].values()) or 1.0
        if column == 2:  # signed sums: compared against the size of the change
            scale = max(abs(v[1]) for v in want["tensors"].values()) or 1.0
        for key, values in want["tensors"].items():
            if abs(got["tensors"][key][column] - values[column]) > rtol * scale:
                found.append(f"{key} {kind}: {got['tensors'][key][column]:.9g} now, {values[column]:.9g} recorded")
    for key in ("train_loss", "val_loss"):
        if len(got[key]) != len(want[key]) or any(abs(a - b) > rtol * max(abs(b), 1e-3)
                                                  for a, b in zip(got[key], want[key])):
            found.append(f"{key}: {got[key]} now, {want[key]} recorded")
    if abs(got["test_loss"] - want["test_loss"]) > rtol * max(abs(want["test_loss"]), 1e-3):
        found.append(f"test_loss: {got['test_loss']} now, {want['test_loss']} recorded")
    return found


def family_cases(family: str) -> list[str]:
    """The family's cases this CPU can run as recorded (bfloat16 autocast needs a bf16 unit; without one,
    training ignores `amp`)."""
    from convladder.core.training import autocast_dtype

    bf16 = autocast_dtype(torch.device("cpu")) is not None
    return [name for name, (settings, _) in CASES.items()
            if model_family(settings["model"]) == family and (bf16 or not settings["amp"])]


@pytest.fixture
def golden_data(tmp_path, monkeypatch):
    from conftest import write_cifar

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("convladder.core.data.IMAGES_PER_FILE", 20)
    return write_cifar(tmp_path / "cifar", seed=7)


@pytest.mark.parametrize("family", sorted(CODE_VERSIONS))
def test_training_matches_the_fingerprints_of_its_declared_version(family, golden_data, tmp_path, monkeypatch):
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    entry = recorded.get(family, {})
    got = {name: fingerprint(case_config(CASES[name][0]), golden_data, tmp_path / name, monkeypatch)
           for name in family_cases(family)}
    if RECORD and entry.get("version") != CODE_VERSIONS[family]:
        recorded[family] = {"version": CODE_VERSIONS[family], "cases": got}
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        return
    assert entry, f"no fingerprints recorded for family {family}: run CONVLADDER_RECORD_GOLDEN=1 pytest {__file__}"
    assert entry["version"] == CODE_VERSIONS[family], (
        f"family {family} is declared {CODE_VERSIONS[family]} but its fingerprints were recorded for "
        f"{entry['version']}: record them again (CONVLADDER_RECORD_GOLDEN=1 pytest {__file__})")
    problems = {name: differences(got[name], entry["cases"][name], CASES[name][1]) for name in got
                if name in entry["cases"]}
    problems.update({name: ["no fingerprint recorded"] for name in got if name not in entry["cases"]})
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, (
        f"training of family {family} computes something else than version {CODE_VERSIONS[family]} recorded "
        f"({'; '.join(f'{n}: {f[0]} ({len(f)} differences)' for n, f in problems.items())}). If the change is "
        f"meant, bump CODE_VERSIONS[{family!r}] in src/convladder/core/versions.py (its runs become stale) and record "
        f"again: CONVLADDER_RECORD_GOLDEN=1 pytest {__file__}")


def test_a_changed_default_momentum_fails_the_golden_test(golden_data, tmp_path, monkeypatch):
    """The guard works: the default momentum changed (0.9 -> 0.8) without a bump changes the fingerprint of the
    case that trains with TrainConfig's defaults beyond its tolerance."""
    name = "A-sgd-defaults"
    entry = json.loads(GOLDEN.read_text())[LADDER]
    settings, rtol = CASES[name]
    assert not differences(fingerprint(case_config(settings), golden_data, tmp_path / "same", monkeypatch),
                           entry["cases"][name], rtol)
    changed = case_config(settings)
    changed.momentum = 0.8
    found = differences(fingerprint(changed, golden_data, tmp_path / "changed", monkeypatch), entry["cases"][name], rtol)
    assert any("|change|" in line for line in found)


def test_bfloat16_autocast_is_told_apart_from_fp32(golden_data, tmp_path, monkeypatch):
    """The bf16 case's looser tolerance still tells autocast from plain fp32 (a run that silently lost its
    autocast would fail the golden test)."""
    from convladder.core.training import autocast_dtype

    if autocast_dtype(torch.device("cpu")) is None:
        pytest.skip("this CPU has no bfloat16 unit: autocast is off whatever the config says")
    entry = json.loads(GOLDEN.read_text())[LADDER]
    settings, rtol = CASES["A-study-bf16"]
    fp32 = fingerprint(case_config({**settings, "amp": False}), golden_data, tmp_path / "fp32", monkeypatch)
    assert differences(fp32, entry["cases"]["A-study-bf16"], rtol)
