"""The results schema: its version, the one migration of older files, and every archived run read through it."""

from __future__ import annotations

import copy
import json
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from convladder.core.config import TrainConfig
from convladder.results.records import DamagedResults, collect_runs, read_results, write_results
from convladder.results.schema import ADDED_SETTINGS, OPTIONAL_FACTS, SCHEMA_VERSION, final_epoch, migrate

ARCHIVE = Path(__file__).resolve().parents[1] / "results"


def version_1() -> dict:
    """A results file as the first runs wrote it: no schema_version, none of the later facts or settings."""
    config = {k: v for k, v in TrainConfig(model="A", epochs=2).to_dict().items() if k not in ADDED_SETTINGS}
    return {
        "name": "A", "config": config, "code_version": "e43904d5b66cd162",
        "environment": {"cpu": "some CPU", "torch_threads": 1, "cpu_count": 2, "git_commit": "abc"},
        "data": {"checksum": "0" * 64, "sizes": {"train": 10, "val": 5, "test": 5}},
        "history": {"epoch": [1, 2], "epoch_seconds": [1.0, 1.5], "train_acc": [0.1, 0.2], "train_loss": [2.3, 2.2],
                    "val_acc": [0.1, 0.3], "val_loss": [2.3, 2.1]},
        "final": {"train_acc": 0.2, "val_acc": 0.3, "test_acc": 0.25, "test_loss": 2.1},
        "train_seconds": 2.5,
    }


def test_a_version_1_file_gains_every_later_fact_as_not_measured_and_every_later_setting_at_its_old_behaviour():
    old = version_1()
    kept = copy.deepcopy(old)
    new = migrate(old)
    assert old == kept  # the caller's dict (and so the file) is not touched
    assert new["schema_version"] == SCHEMA_VERSION == 2
    assert all(new[part][key] is None if part else new[key] is None
               for part, keys in OPTIONAL_FACTS.items() for key in keys)
    assert {k: new["config"][k] for k in ADDED_SETTINGS} == ADDED_SETTINGS
    assert new["history"] == old["history"] and new["final"]["test_acc"] == 0.25 and final_epoch(new) == 2
    # the migrated config is the one training completes an older config to (TrainConfig.completed), field by field
    assert new["config"] == TrainConfig.completed(old["config"])


def test_each_added_setting_is_the_default_that_gives_what_training_did_before_it():
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    assert {k: defaults[k] for k in ADDED_SETTINGS} == ADDED_SETTINGS


def test_a_migrated_file_keeps_what_it_recorded():
    old = version_1()
    old["config"]["init_scale"] = 0.5
    old["final"]["test_acc_tta"] = 0.3
    new = migrate(old)
    assert new["config"]["init_scale"] == 0.5 and new["final"]["test_acc_tta"] == 0.3
    assert migrate(new) == new  # a current file migrates to itself


def test_written_results_carry_the_version_and_every_fact(tmp_path):
    results = version_1()
    with pytest.raises(ValueError, match="config lacks drop_last"):  # a version-1 config is never written as version 2
        write_results(results, tmp_path)
    assert not (tmp_path / "results.json").exists()
    results["config"] = TrainConfig(model="A", epochs=2).to_dict()
    write_results(results, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["final"]["test_acc_tta"] is None
    assert on_disk == results  # the caller holds what the file holds
    assert read_results(tmp_path / "results.json") == on_disk


def test_a_file_of_a_newer_schema_is_refused_with_what_to_do_and_other_runs_still_count(tmp_path, capsys):
    for name, version in (("A", 1), ("B", SCHEMA_VERSION + 1)):
        folder = tmp_path / name / "seed0"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({**version_1(), "name": name, "schema_version": version}))
    with pytest.raises(DamagedResults, match="newer than this convladder's.*update convladder"):
        read_results(tmp_path / "B" / "seed0" / "results.json")
    damaged: list[str] = []
    assert list(collect_runs(tmp_path, damaged)) == ["A"] and damaged == ["B/seed0"]
    assert "update convladder" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["2", 0, True, None])
def test_a_schema_version_that_is_no_version_is_damage(tmp_path, version):
    (tmp_path / "results.json").write_text(json.dumps({**version_1(), "schema_version": version}))
    with pytest.raises(DamagedResults, match="schema_version"):
        read_results(tmp_path / "results.json")


@pytest.mark.skipif(not (ARCHIVE / "study" / "A").exists(), reason="the archive (results/) is absent")
def test_every_archived_run_reads_at_the_current_version_with_its_config_as_training_completes_it():
    paths = sorted(p for p in ARCHIVE.glob("**/results.json") if "data" in json.loads(p.read_text()))
    assert len(paths) > 50
    for path in paths:
        raw = json.loads(path.read_text())
        results = read_results(path)
        assert results["schema_version"] == SCHEMA_VERSION, path
        assert results["config"] == TrainConfig.completed(raw["config"]), path
        assert results["history"] == raw["history"] and results["final"]["val_acc"] == raw["final"]["val_acc"], path


def test_training_refuses_to_replace_a_newer_convladders_run_and_changes_nothing(tiny_cifar, tmp_path):
    from convladder.core.runs import train_run
    from convladder.results.records import NewerResults

    config = TrainConfig(model="A", epochs=1, batch_size=32)
    train_run(config, tmp_path / "A", data_dir=tiny_cifar, progress=False)
    path = tmp_path / "A" / "results.json"
    newer = {**json.loads(path.read_text()), "schema_version": SCHEMA_VERSION + 1}
    path.write_text(json.dumps(newer))
    before = sorted(p.name for p in (tmp_path / "A").iterdir())
    for restart in (False, True):
        with pytest.raises(NewerResults, match="update convladder"):
            train_run(config, tmp_path / "A", data_dir=tiny_cifar, progress=False, restart=restart)
    assert json.loads(path.read_text()) == newer and sorted(p.name for p in (tmp_path / "A").iterdir()) == before
