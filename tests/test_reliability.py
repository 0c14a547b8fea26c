"""What a careless or hostile user can do to a run folder, a checkpoint, an image or the command
line, and what the project promises then: stale runs train again, one lock holder, bounded
prediction, damaged files named in one line, nothing finished lost."""

import json
import multiprocessing
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convladder.core import runs
from convladder.cli import main
from convladder.core.config import TrainConfig
from convladder.tools.files import atomic_write_json
from convladder.core.predict import MAX_ASPECT, load_image
from convladder.results.layout import RESULTS_FILE as RESULTS, seed_dir
from convladder.results.records import collect_runs
from convladder.core.runs import StaleRun, is_current, run_lock, run_state, staging_dir, train_run
from convladder.core.training import CHECKPOINT, Trainer, TrainingDiverged

TINY = dict(batch_size=32)


def _train(tiny_cifar, run_dir, epochs=1, **kwargs):
    return train_run(TrainConfig(model="A", epochs=epochs, **TINY), run_dir, data_dir=tiny_cifar, progress=False,
                     **kwargs)


def _cli_train(tiny_cifar, run_dir, *extra):
    return main(["train", "A", "--profile", "smoke", "--batch-size", "32", "--train-size", "80", "--val-size", "16",
                 "--test-size", "20", "--data-dir", str(tiny_cifar), "--seed-dir", str(run_dir), *extra])


def _one_line_error(capsys) -> str:
    """The one error line of a failed command (progress bars may stand before it), without a traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and "weights_only=False" not in err, err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("convladder: error: "), err
    return errors[0]


# --- 1. stale runs train again; fewer epochs are refused ----------------------------------

def _mark_history(run_dir):
    """Plant a value in the checkpoint's history that only a run that was not retrained keeps."""
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    state["history"]["train_loss"][0] = 123.0
    torch.save(state, run_dir / CHECKPOINT)


def test_a_stale_run_is_trained_again_from_epoch_0_not_restamped(tiny_cifar, tmp_path, monkeypatch):
    run_dir = tmp_path / "A"
    checksum = _train(tiny_cifar, run_dir)["data"]["checksum"]
    _mark_history(run_dir)
    monkeypatch.setattr(runs, "code_version", lambda model=None: "edited-code")
    config = TrainConfig(model="A", epochs=1, **TINY)
    assert run_state(run_dir, config, checksum).kind == "stale"
    with pytest.raises(StaleRun, match="other code .*--restart"):
        _train(tiny_cifar, run_dir)
    results = _train(tiny_cifar, run_dir, retrain_stale=True)
    assert results["history"]["train_loss"][0] != 123.0
    assert torch.load(run_dir / CHECKPOINT, weights_only=True)["history"]["train_loss"][0] != 123.0
    assert results["code_version"] == "edited-code" and is_current(run_dir, config, checksum)
    assert not staging_dir(run_dir).exists()


def test_a_crash_while_retraining_keeps_the_old_run(tiny_cifar, tmp_path, monkeypatch):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir)
    old_results, old_checkpoint = (run_dir / RESULTS).read_bytes(), (run_dir / CHECKPOINT).read_bytes()
    monkeypatch.setattr(runs, "code_version", lambda model=None: "edited-code")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", crash)
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_cifar, run_dir, retrain_stale=True)
    assert (run_dir / RESULTS).read_bytes() == old_results
    assert (run_dir / CHECKPOINT).read_bytes() == old_checkpoint


def test_an_interrupted_swap_is_finished_on_the_next_start(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir)
    _train(tiny_cifar, staging_dir(run_dir), epochs=2)  # a finished retrain ...
    os.replace(run_dir, run_dir.with_name(".A.old"))  # ... and the crash after the old run was moved aside
    results = _train(tiny_cifar, run_dir, epochs=2)
    assert results["history"]["epoch"] == [1, 2] and results["wall_seconds"] < 60
    assert results["beside_cores"] is None or results["beside_cores"] >= 0  # None: no /proc/stat to read
    assert not run_dir.with_name(".A.old").exists() and not staging_dir(run_dir).exists()


def test_fewer_epochs_than_the_checkpoint_holds_are_refused(tiny_cifar, tmp_path, capsys):
    run_dir = tmp_path / "A"
    assert _cli_train(tiny_cifar, run_dir, "--epochs", "3") == 0
    capsys.readouterr()
    assert _cli_train(tiny_cifar, run_dir, "--epochs", "1") == 2
    assert "holds 3 finished epochs, more than the 1 asked for (ask for at least 3)" in _one_line_error(capsys)
    assert json.loads((run_dir / RESULTS).read_text())["config"]["epochs"] == 3
    assert _cli_train(tiny_cifar, run_dir, "--epochs", "1", "--restart") == 0
    assert json.loads((run_dir / RESULTS).read_text())["history"]["epoch"] == [1]


def test_an_interrupted_restart_is_continued_not_wiped(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir, epochs=2)
    _train(tiny_cifar, staging_dir(run_dir), epochs=1)  # a restart that stopped after one of two epochs
    state = torch.load(staging_dir(run_dir) / CHECKPOINT, weights_only=True)
    state["config"]["epochs"] = 2
    state["history"]["train_loss"][0] = 123.0
    torch.save(state, staging_dir(run_dir) / CHECKPOINT)
    (staging_dir(run_dir) / RESULTS).unlink()
    results = _train(tiny_cifar, run_dir, epochs=2, restart=True)
    assert results["history"]["train_loss"][0] == 123.0 and results["history"]["epoch"] == [1, 2]
    assert not staging_dir(run_dir).exists()


def test_continuing_from_an_unfinished_run_is_refused(tiny_cifar, tmp_path):
    source = tmp_path / "GAP"
    _train(tiny_cifar, source)
    (source / RESULTS).unlink()  # interrupted: a checkpoint but no results
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        _train(tiny_cifar, tmp_path / "GAP+", epochs=2, resume_from=source)


def test_progressive_resizing_cannot_be_extended(tiny_cifar, tmp_path):
    config = dict(model="GAP", batch_size=32, progressive=0.5)
    first = train_run(TrainConfig(epochs=2, **config), tmp_path / "G", data_dir=tiny_cifar, progress=False)
    state = run_state(tmp_path / "G", TrainConfig(epochs=4, **config), first["data"]["checksum"])
    assert state.kind == "stale" and "progressive resizing" in state.reason


# --- 2. the lock ---------------------------------------------------------------------------

def _contend(run_dir, marker, barrier, doubles):
    barrier.wait()
    try:
        with run_lock(run_dir):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                doubles.value += 1
                return
            time.sleep(0.05)
            os.close(fd)
            os.unlink(marker)
    except runs.RunLocked:
        pass


def test_eight_processes_never_hold_one_lock_together(tmp_path):
    ctx = multiprocessing.get_context("fork")
    doubles = ctx.Value("i", 0)
    for trial in range(10):
        run_dir, marker = tmp_path / f"run{trial}", tmp_path / f"holder{trial}"
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_contend, args=(run_dir, marker, barrier, doubles)) for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert all(p.exitcode == 0 for p in procs)
    assert doubles.value == 0


def test_the_lock_of_a_killed_process_is_free(tmp_path):
    code = ("import sys, time; from convladder.core.runs import run_lock\n"
            "with run_lock(__import__('pathlib').Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "A")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(runs.RunLocked, match=f"in use by process {proc.pid}"):
        with run_lock(tmp_path / "A"):
            pass
    proc.kill()
    proc.wait()
    with run_lock(tmp_path / "A"):
        pass


# --- 3. prediction is bounded ---------------------------------------------------------------

def _png_header_only(path, width, height):
    """A PNG whose header declares width x height (a decompression bomb, a few bytes on disk)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def gap_run(tmp_path_factory):
    from conftest import write_cifar

    root = tmp_path_factory.mktemp("gap")
    os.environ.setdefault("XDG_CACHE_HOME", str(root / "cache"))
    data = write_cifar(root / "cifar", images_per_file=20)
    import convladder.core.data

    old = convladder.core.data.IMAGES_PER_FILE
    convladder.core.data.IMAGES_PER_FILE = 20
    try:
        assert main(["train", "GAP", "--profile", "smoke", "--epochs", "1", "--train-size", "40", "--val-size", "8",
                     "--test-size", "10", "--data-dir", str(data), "--seed-dir", str(root / "GAP")]) == 0
    finally:
        convladder.core.data.IMAGES_PER_FILE = old
    return root / "GAP"


def test_long_thin_and_bomb_images_are_refused_with_a_reason(tmp_path):
    thin = tmp_path / "thin.png"
    Image.new("RGB", (60000, 1)).save(thin)
    with pytest.raises(ValueError, match=f"sides differ more than {MAX_ASPECT} times"):
        load_image(thin)
    with pytest.raises(ValueError, match="decompression bomb"):
        load_image(_png_header_only(tmp_path / "bomb.png", 100_000, 100_000))
    with pytest.raises(ValueError, match="too large to decode"):
        load_image(_png_header_only(tmp_path / "big.png", 10_000, 10_000))


def test_large_images_are_reduced_while_decoding(tmp_path):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), (200, 30, 30)).save(big, quality=50)
    x = load_image(big)
    assert max(x.shape[1:]) <= 512 and abs(x.shape[2] / x.shape[1] - 4 / 3) < 0.01  # decoded small, aspect kept


MEASURE = """
import sys
import tempfile
from convladder.cli import main

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
base = status("VmRSS:")
rc = main(["predict", sys.argv[1], sys.argv[2]])
print("added_mb", status("VmHWM:") - base)
sys.exit(rc)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc/self/clear_refs")
def test_predict_memory_is_bounded_for_any_image(tmp_path, gap_run):
    """The memory prediction adds to the program's own (torch alone takes about 700 MB here)."""
    rng = np.random.default_rng(0)
    Image.new("L", (10_000, 10_000), 128).save(tmp_path / "huge.png")  # 120 KB on disk
    Image.new("RGB", (60_000, 1)).save(tmp_path / "thin.png")  # 257 bytes
    Image.new("RGBA", (6_300, 6_300), (1, 2, 3, 4)).save(tmp_path / "rgba.png")  # just under the decode limit
    Image.new("P", (6_300, 6_300)).save(tmp_path / "palette.png")
    Image.fromarray(rng.integers(0, 65535, (3000, 3000), dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.new("RGB", (8000, 6000), (200, 30, 30)).save(tmp_path / "photo.jpg")
    Image.new("1", (6_300, 6_300), 1).save(tmp_path / "bilevel.png")  # 40 MP in a few KB
    Image.new("L", (13_000, 13_000), 90).save(tmp_path / "progressive.jpg", progressive=True, quality=10)
    for path in sorted(tmp_path.iterdir()):
        proc = subprocess.run([sys.executable, "-c", MEASURE, str(gap_run), str(path)], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode in (0, 2), proc.stderr
        added = float(proc.stdout.split("added_mb")[-1])
        assert added < 500, (path.name, added)
        if proc.returncode == 2:
            assert path.name in ("huge.png", "thin.png", "progressive.jpg") and len(proc.stderr.strip().splitlines()) == 1


# --- 5. damaged results and checkpoints -----------------------------------------------------

def test_a_damaged_results_file_is_named_and_skipped(tiny_cifar, tmp_path, capsys):
    for name in ("A", "B"):
        train_run(TrainConfig(model=name, epochs=1, **TINY), seed_dir(tmp_path / "runs" / name, 0),
                  data_dir=tiny_cifar, name=name, progress=False)
    path = tmp_path / "runs" / "A" / "seed0" / RESULTS
    path.write_text(path.read_text()[:200])
    damaged = []
    found = collect_runs(tmp_path / "runs", damaged)
    assert list(found) == ["B"] and damaged == [os.path.join("A", "seed0")]
    err = capsys.readouterr().err
    assert str(path) in err and len(err.strip().splitlines()) == 1


def test_a_truncated_checkpoint_is_not_current_and_is_trained_again(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    config = TrainConfig(model="A", epochs=1, **TINY)
    checksum = _train(tiny_cifar, run_dir)["data"]["checksum"]
    (run_dir / CHECKPOINT).write_bytes((run_dir / CHECKPOINT).read_bytes()[:100])
    assert not is_current(run_dir, config, checksum)
    with pytest.raises(StaleRun, match="truncated or damaged"):
        _train(tiny_cifar, run_dir)
    _train(tiny_cifar, run_dir, retrain_stale=True)
    assert is_current(run_dir, config, checksum)


def test_a_damaged_results_file_beside_a_current_checkpoint_is_written_again(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    config = TrainConfig(model="A", epochs=1, **TINY)
    checksum = _train(tiny_cifar, run_dir)["data"]["checksum"]
    (run_dir / RESULTS).write_text("{")
    assert run_state(run_dir, config, checksum).kind == "resumable"
    _train(tiny_cifar, run_dir)
    assert is_current(run_dir, config, checksum)


# --- 6. one line, exit code 2, no traceback -------------------------------------------------

class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_bad_checkpoints_give_one_line(tiny_cifar, tmp_path, capsys, gap_run):
    run_dir = tmp_path / "A"
    assert _cli_train(tiny_cifar, run_dir) == 0
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    torch.save({**state, "payload": _Payload()}, run_dir / CHECKPOINT)
    capsys.readouterr()
    assert main(["predict", str(run_dir), str(_image(tmp_path))]) == 2
    assert "holds more than weights" in _one_line_error(capsys)
    assert _cli_train(tiny_cifar, run_dir, "--epochs", "2") == 2
    assert "--restart" in _one_line_error(capsys)

    (run_dir / CHECKPOINT).write_bytes(b"PK\x03\x04" + b"\0" * 96)  # truncated
    assert main(["predict", str(run_dir), str(_image(tmp_path))]) == 2
    assert "truncated or damaged" in _one_line_error(capsys)

    (run_dir / CHECKPOINT).write_bytes((gap_run / CHECKPOINT).read_bytes())  # another model's weights
    assert main(["predict", str(run_dir), str(_image(tmp_path))]) == 2
    assert "a checkpoint of model GAP, not of model A" in _one_line_error(capsys)


def _image(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(path)
    return path


@pytest.mark.parametrize("device, message", [("foo", "unknown device 'foo'"), ("cuda", "no CUDA GPU")])
def test_bad_devices_give_one_line(tiny_cifar, tmp_path, capsys, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert _cli_train(tiny_cifar, tmp_path / "A", "--device", device) == 2
    assert message in _one_line_error(capsys)


def _full_disk(monkeypatch, tmp_path):
    """Every atomic write from now on goes to /dev/full, as on a full disk."""
    def mkstemp(prefix="", suffix="", dir=None):
        path = os.path.join(dir, f"{prefix}full{suffix}")
        open(path, "wb").close()
        return os.open("/dev/full", os.O_WRONLY), path

    monkeypatch.setattr("convladder.tools.files.tempfile.mkstemp", mkstemp)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_keeps_the_previous_checkpoint_and_results(tiny_cifar, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "A"
    assert _cli_train(tiny_cifar, run_dir) == 0
    before = {name: (run_dir / name).read_bytes() for name in (CHECKPOINT, RESULTS)}
    capsys.readouterr()
    _full_disk(monkeypatch, tmp_path)
    assert _cli_train(tiny_cifar, run_dir, "--epochs", "2") == 2
    err = _one_line_error(capsys)
    assert f"disk full while writing {run_dir / CHECKPOINT}; the previous checkpoint.pt is kept" in err
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert not list(run_dir.glob(".*.tmp"))

    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("convladder.core.data.IMAGES_PER_FILE", 20)
    monkeypatch.setattr(Trainer, "save_checkpoint", lambda self, path: None)  # only the results fail now
    _full_disk(monkeypatch, tmp_path)
    assert _cli_train(tiny_cifar, run_dir, "--epochs", "2") == 2
    assert f"disk full while writing {run_dir / RESULTS}; the previous results.json is kept" in _one_line_error(capsys)
    assert (run_dir / RESULTS).read_bytes() == before[RESULTS]


# --- 7. the smaller ones ----------------------------------------------------------------------

def test_temporary_files_of_a_killed_write_are_removed_on_restart(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    run_dir.mkdir()
    fd, leftover = tempfile.mkstemp(prefix=".checkpoint.pt.", suffix=".tmp", dir=run_dir)  # as an atomic write names it
    os.write(fd, b"half a checkpoint")
    os.close(fd)
    leftover = Path(leftover)
    _train(tiny_cifar, run_dir)
    assert not leftover.exists()


def test_divergence_names_a_checkpoint_only_when_there_is_one(tiny_cifar, tmp_path):
    with pytest.raises(TrainingDiverged, match="No epoch had finished, so there is no checkpoint"):
        train_run(TrainConfig(model="D", epochs=1, batch_size=16, lr=1e12, optimizer="sgd"), tmp_path / "D",
                  data_dir=tiny_cifar, progress=False)
    assert not (tmp_path / "D" / CHECKPOINT).exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "a\\b"])
def test_run_names_with_path_parts_are_refused(tiny_cifar, tmp_path, capsys, name):
    assert main(["train", "A", "--profile", "smoke", "--name", name, "--data-dir", str(tiny_cifar)]) == 2
    assert "must be a plain folder name" in _one_line_error(capsys)
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("top", ["0", "11", "-1", "two"])
def test_top_must_be_1_to_10(tmp_path, top, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", str(tmp_path), "x.png", "--top", top])
    assert exit_.value.code == 2
    assert "must be a whole number from 1 to 10" in capsys.readouterr().err


def test_written_files_get_the_users_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write_json({"a": 1}, tmp_path / "r.json")
    finally:
        os.umask(mask)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
