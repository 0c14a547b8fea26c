"""A training process killed with SIGKILL mid-epoch resumes to the same result as an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from convladder.core.config import TrainConfig
from convladder.core.runs import StaleRun, code_version, is_current, train_run
from convladder.core.training import CHECKPOINT

pytestmark = pytest.mark.slow

DRIVER = """
import sys
import convladder.core.data
convladder.core.data.IMAGES_PER_FILE = 20  # the tiny synthetic copy
from convladder.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _train_cmd(data, run_dir, epochs):
    return [sys.executable, "-c", DRIVER, "train", "G", "--profile", "smoke", "--epochs", str(epochs),
            "--batch-size", "4", "--train-size", "80", "--val-size", "16", "--test-size", "20", "--data-dir", str(data),
            "--seed-dir", str(run_dir)]


def _epochs_in(run_dir):
    try:
        return len(torch.load(run_dir / CHECKPOINT, weights_only=True)["history"]["epoch"])
    except Exception:
        return 0


def test_sigkill_mid_epoch_then_rerun_equals_uninterrupted(tiny_cifar, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    epochs = 6
    subprocess.run(_train_cmd(tiny_cifar, tmp_path / "straight", epochs), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_cifar, killed, epochs), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _epochs_in(killed) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.15)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _epochs_in(killed)
    assert 2 <= done < epochs, f"the kill should land mid-run (after {done} epochs)"
    assert not (killed / "results.json").exists()

    subprocess.run(_train_cmd(tiny_cifar, killed, epochs), check=True, env=env, capture_output=True)
    straight = json.loads((tmp_path / "straight" / "results.json").read_text())
    resumed = json.loads((killed / "results.json").read_text())
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert resumed["history"][key] == straight["history"][key], key
    assert resumed["final"]["test_acc"] == straight["final"]["test_acc"]
    assert resumed["proba_before"] == straight["proba_before"]
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)["model"]
    b = torch.load(killed / CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_is_current_until_config_or_data_change(tiny_cifar, tmp_path):
    config = TrainConfig(model="A", epochs=1, batch_size=32)
    results = train_run(config, tmp_path / "A", data_dir=tiny_cifar, progress=False)
    checksum = results["data"]["checksum"]
    assert results["code_version"] == code_version()
    assert is_current(tmp_path / "A", config, checksum)
    assert not is_current(tmp_path / "A", TrainConfig(model="A", epochs=2, batch_size=32), checksum)
    assert not is_current(tmp_path / "A", TrainConfig(model="A", epochs=1, batch_size=32, lr=0.01), checksum)
    assert not is_current(tmp_path / "A", config, "another-checksum")
    assert not is_current(tmp_path / "missing", config, checksum)
    (tmp_path / "A" / CHECKPOINT).unlink()
    assert not is_current(tmp_path / "A", config, checksum)


def test_a_run_written_before_a_setting_existed_reads_as_trained_with_its_default(tiny_cifar, tmp_path):
    from convladder.core.runs import file_digest

    config = TrainConfig(model="A", epochs=1, batch_size=32)
    results = train_run(config, tmp_path / "A", data_dir=tiny_cifar, progress=False)
    checkpoint, results_file = tmp_path / "A" / CHECKPOINT, tmp_path / "A" / "results.json"
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["init_scale"]  # as written before TrainConfig had init_scale
    torch.save(state, checkpoint)
    del results["config"]["init_scale"]
    results["checkpoint_sha256"] = file_digest(checkpoint)
    results_file.write_text(json.dumps(results))
    checksum = results["data"]["checksum"]
    assert is_current(tmp_path / "A", config, checksum)
    assert not is_current(tmp_path / "A", TrainConfig(model="A", epochs=1, batch_size=32, init_scale=0.5), checksum)


def test_init_scale_scales_the_initial_weights_and_not_the_biases(tiny_cifar, tmp_path):
    plain = train_run(TrainConfig(model="A", epochs=1, batch_size=32), tmp_path / "plain", data_dir=tiny_cifar,
                      progress=False)
    half = train_run(TrainConfig(model="A", epochs=1, batch_size=32, init_scale=0.5), tmp_path / "half",
                     data_dir=tiny_cifar, progress=False)
    assert half["config"]["init_scale"] == 0.5
    assert half["proba_before"] != plain["proba_before"]  # the seeded initial model differs

    from convladder.core.models import create_model, scale_initial_weights

    torch.manual_seed(0)
    a = create_model("B")
    torch.manual_seed(0)
    b = scale_initial_weights(create_model("B"), 0.5)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(q, p * 0.5 if name.endswith("weight") else p), name


def test_continuing_with_other_settings_is_refused(tiny_cifar, tmp_path):
    train_run(TrainConfig(model="A", epochs=1, batch_size=32), tmp_path / "A", data_dir=tiny_cifar, progress=False)
    with pytest.raises(ValueError, match="lr: 0.001 there, 0.01 now"):
        train_run(TrainConfig(model="A", epochs=2, batch_size=32, lr=0.01), tmp_path / "A", data_dir=tiny_cifar,
                  progress=False)


def test_a_second_process_training_into_the_same_folder_is_refused(tiny_cifar, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    run_dir = tmp_path / "shared"
    first = subprocess.Popen(_train_cmd(tiny_cifar, run_dir, 40), env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while _epochs_in(run_dir) < 1 and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "the first run should still be training"
        second = subprocess.run(_train_cmd(tiny_cifar, run_dir, 40), env=env, capture_output=True, text=True)
        assert second.returncode == 2
        assert f"in use by process {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()
    # the first run's checkpoint is intact and a later run continues from it
    assert _epochs_in(run_dir) >= 1
    torch.load(run_dir / CHECKPOINT, weights_only=True)


def test_a_checkpoint_holding_code_is_refused(tiny_cifar, tmp_path):
    config = TrainConfig(model="A", epochs=1, batch_size=32)
    train_run(config, tmp_path / "A", data_dir=tiny_cifar, progress=False)
    state = torch.load(tmp_path / "A" / CHECKPOINT, weights_only=True)
    state["payload"] = _Payload()
    torch.save(state, tmp_path / "A" / CHECKPOINT)
    with pytest.raises(StaleRun, match="holds more than weights"):
        train_run(TrainConfig(model="A", epochs=2, batch_size=32), tmp_path / "A", data_dir=tiny_cifar, progress=False)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_code_change_makes_a_finished_run_stale(tiny_cifar, tmp_path, monkeypatch):
    config = TrainConfig(model="A", epochs=1, batch_size=32)
    checksum = train_run(config, tmp_path / "A", data_dir=tiny_cifar, progress=False)["data"]["checksum"]
    assert is_current(tmp_path / "A", config, checksum)
    monkeypatch.setattr("convladder.core.runs.code_version", lambda model=None: "edited-code")
    assert not is_current(tmp_path / "A", config, checksum)
