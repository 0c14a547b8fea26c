"""Reliability, round three: a retrain replaces only convladder's own files, no write goes through a symbolic
link that leaves the run folder, damaged but valid JSON is one warning naming the file, and results are tied
to their folder and their checkpoint."""

import json
import os
from pathlib import Path

import pytest
import torch

from convladder.cli import main
from convladder.core.config import TrainConfig
from convladder.tools.files import DamagedFile, LinkError, claim, links_leaving, read_json
from convladder.results.layout import RESULTS_FILE as RESULTS
from convladder.results.records import DamagedResults, collect_runs, read_results
from convladder.core.runs import file_digest, is_current, run_state, train_run
from convladder.core.training import CHECKPOINT


def _train(tiny_cifar, run_dir, epochs=1, **kwargs):
    return train_run(TrainConfig(model="A", epochs=epochs, batch_size=32), run_dir, data_dir=tiny_cifar,
                     progress=False, **kwargs)


def _cli_train(tiny_cifar, seed_dir, *extra):
    return main(["train", "A", "--profile", "smoke", "--batch-size", "32", "--train-size", "80", "--val-size", "16",
                 "--test-size", "20", "--data-dir", str(tiny_cifar), "--seed-dir", str(seed_dir), *extra])


# --- 1. a retrain replaces only what convladder wrote -------------------------------------------

def test_a_restart_keeps_the_users_files_in_the_seed_folder(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir)
    (run_dir / "notes.txt").write_text("my notes")
    (run_dir / "plots").mkdir()
    (run_dir / "plots" / "loss.png").write_bytes(b"png")
    before = file_digest(run_dir / CHECKPOINT)
    _train(tiny_cifar, run_dir, epochs=2, restart=True)
    assert (run_dir / "notes.txt").read_text() == "my notes" and (run_dir / "plots" / "loss.png").read_bytes() == b"png"
    assert file_digest(run_dir / CHECKPOINT) != before and len(read_results(run_dir / RESULTS)["history"]["epoch"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".A")) == [".A.lock"]  # no staging left


def test_a_users_folder_passed_as_seed_dir_is_never_deleted(tiny_cifar, tmp_path, capsys):
    folder = tmp_path / "thesis"
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    (folder / "sub" / "data.csv").write_text("1,2\n")
    (folder / RESULTS).write_text(json.dumps({"my": "results"}))
    assert _cli_train(tiny_cifar, folder) == 2  # refused: not a run it can continue ...
    assert "--restart" in capsys.readouterr().err
    assert _cli_train(tiny_cifar, folder, "--restart") == 0  # ... and the advice is safe to follow
    assert (folder / "thesis.tex").exists() and (folder / "sub" / "data.csv").read_text() == "1,2\n"
    assert json.loads((folder / f"{RESULTS}.unrecognised").read_text()) == {"my": "results"}  # moved aside
    assert read_results(folder / RESULTS)["name"] == "A"


def test_a_damaged_checkpoint_is_moved_aside_not_deleted(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir)
    (run_dir / CHECKPOINT).write_bytes(b"not a checkpoint")
    assert run_state(run_dir, TrainConfig(model="A", epochs=1, batch_size=32), "x").kind == "stale"
    _train(tiny_cifar, run_dir, retrain_stale=True)
    assert (run_dir / f"{CHECKPOINT}.unrecognised").read_bytes() == b"not a checkpoint"


def test_a_seed_folder_that_is_a_link_is_refused_and_left_as_it_is(tiny_cifar, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    (tmp_path / "runs").mkdir()
    link = tmp_path / "runs" / "seed0"
    link.symlink_to(elsewhere)
    assert _cli_train(tiny_cifar, link, "--restart") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
    assert not list((tmp_path / "runs").glob(".seed0.*"))


# --- 2. no write through a link that leaves the run folder ----------------------------------------

def test_links_leaving_a_folder_are_found_and_links_inside_are_not(tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "outside.txt"
    (root / "A").mkdir(parents=True)
    outside.write_text("secret")
    (root / "A" / "inside.txt").write_text("x")
    (root / "A" / "ok").symlink_to(root / "A" / "inside.txt")
    (root / "A" / "train.log").symlink_to(outside)
    (root / "html").symlink_to(tmp_path)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    found = {link.name for link, _ in links_leaving(root)}
    assert found == {"train.log", "html", "dangling"}


def test_claim_removes_the_link_never_its_target(tmp_path):
    target = tmp_path / "thesis.tex"
    target.write_text("precious")
    (tmp_path / "report.pdf").symlink_to(target)
    with open(claim(tmp_path / "report.pdf"), "w") as fh:
        fh.write("pdf")
    assert target.read_text() == "precious" and (tmp_path / "report.pdf").read_text() == "pdf"


@pytest.mark.parametrize("command, link", [("report", "report/report.pdf"), ("all", "A/train.log")])
def test_report_and_all_refuse_a_run_folder_with_a_link_that_leaves_it(tmp_path, capsys, command, link):
    root = tmp_path / "runs"
    (root / link).parent.mkdir(parents=True)
    precious = tmp_path / "thesis.tex"
    precious.write_text("precious")
    (root / link).symlink_to(precious)
    data = ["--data-dir", str(tmp_path / "none")] if command == "all" else []
    assert main([command, "--profile", "smoke", "--run-dir", str(root), *data]) == 2
    err = capsys.readouterr().err
    assert "symbolic links that point outside it" in err and link in err
    assert precious.read_text() == "precious"


def test_the_run_lock_never_truncates_what_a_planted_link_points_to(tiny_cifar, tmp_path):
    precious = tmp_path / "thesis.tex"
    precious.write_text("precious")
    (tmp_path / ".A.lock").symlink_to(precious)
    _train(tiny_cifar, tmp_path / "A")
    assert precious.read_text() == "precious"


# --- 5. damaged but valid JSON ---------------------------------------------------------------------

def _finished(tiny_cifar, root, name="A", seed=0):
    run_dir = root / name / f"seed{seed}"
    results = train_run(TrainConfig(model="A", epochs=1, batch_size=32, seed=seed), run_dir, data_dir=tiny_cifar,
                        name=name, progress=False)
    return run_dir, results


@pytest.mark.parametrize("damage", ["deep", "final-oops", "final-null", "history-empty", "not-an-object", "dev-zero",
                                    "too-large"])
def test_a_damaged_results_file_is_one_warning_naming_it_and_other_runs_still_count(tiny_cifar, tmp_path, capsys, damage):
    root = tmp_path / "runs"
    good, _ = _finished(tiny_cifar, root, "A")
    bad, results = _finished(tiny_cifar, root, "B")
    path = bad / RESULTS
    if damage == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "final-oops":
        path.write_text(json.dumps({**results, "final": "oops"}))
    elif damage == "final-null":
        path.write_text(json.dumps({**results, "final": None}))
    elif damage == "history-empty":
        path.write_text(json.dumps({**results, "history": {}}))
    elif damage == "not-an-object":
        path.write_text("[1, 2]")
    elif damage == "dev-zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as fh:
            fh.truncate(65 * 2**20)
    with pytest.raises(DamagedResults, match=str(path)):
        read_results(path)
    damaged: list[str] = []
    runs = collect_runs(root, damaged)
    assert list(runs) == ["A"] and damaged == ["B/seed0"]
    assert str(path) in capsys.readouterr().err
    assert run_state(bad, TrainConfig(model="A", epochs=1, batch_size=32), results["data"]["checksum"]).kind != "current"


def test_a_truncated_analysis_file_is_named(tmp_path):
    path = tmp_path / "diagnosis.json"
    path.write_text('{"settings": {"a": 1')
    with pytest.raises(DamagedFile, match=str(path)):
        read_json(path)


# --- 6. results tied to their folder and their checkpoint ------------------------------------------

def test_a_results_file_copied_into_another_runs_folder_does_not_count_there(tiny_cifar, tmp_path, capsys):
    root = tmp_path / "runs"
    run_dir, _ = _finished(tiny_cifar, root, "A")
    (root / "B" / "seed1").mkdir(parents=True)
    (root / "B" / "seed1" / RESULTS).write_bytes((run_dir / RESULTS).read_bytes())
    damaged: list[str] = []
    assert list(collect_runs(root, damaged)) == ["A"] and damaged == ["B/seed1"]
    assert "records run A seed 0" in capsys.readouterr().err


def test_results_that_name_other_weights_are_not_current_and_are_measured_again(tiny_cifar, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _train(tiny_cifar, first)
    config = TrainConfig(model="A", epochs=1, batch_size=32)
    checksum = read_results(first / RESULTS)["data"]["checksum"]
    assert read_results(first / RESULTS)["checkpoint_sha256"] == file_digest(first / CHECKPOINT)
    assert is_current(first, config, checksum)
    train_run(TrainConfig(model="A", epochs=1, batch_size=32, lr=0.01), second, data_dir=tiny_cifar, progress=False)
    state = torch.load(second / CHECKPOINT, weights_only=True)
    state["config"], state["provenance"] = torch.load(first / CHECKPOINT, weights_only=True)["config"], \
        torch.load(first / CHECKPOINT, weights_only=True)["provenance"]
    torch.save(state, first / CHECKPOINT)  # other weights under the same settings
    assert run_state(first, config, checksum).kind == "resumable"
    remeasured = _train(tiny_cifar, first)
    assert remeasured["checkpoint_sha256"] == file_digest(first / CHECKPOINT) and is_current(first, config, checksum)


def test_an_archived_run_without_a_recorded_digest_stays_current(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    results = _train(tiny_cifar, run_dir)
    del results["checkpoint_sha256"]
    (run_dir / RESULTS).write_text(json.dumps(results))
    assert is_current(run_dir, TrainConfig(model="A", epochs=1, batch_size=32), results["data"]["checksum"])


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_link_in_place_of_a_seed_file_that_leaves_the_folder_is_refused(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir)
    precious = tmp_path / "thesis.tex"
    precious.write_text("precious")
    (run_dir / RESULTS).unlink()
    (run_dir / RESULTS).symlink_to(precious)
    with pytest.raises(LinkError):
        _train(tiny_cifar, run_dir, restart=True)
    assert precious.read_text() == "precious"


# --- 7. a real full disk -----------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MB tmpfs, nearly filled (root only; skipped where mounting is not allowed)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and the right to mount)")
    try:
        with open(mount / "filler", "wb") as fh:
            try:
                fh.write(b"\0" * (2 * 2**20 - 8 * 1024))
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_real_full_disk_is_one_line_that_names_the_file(tiny_cifar, small_tmpfs, capsys):
    assert _cli_train(tiny_cifar, small_tmpfs / "A") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "enforce fail" not in err
    assert f"convladder: error: disk full while writing {small_tmpfs / 'A' / CHECKPOINT}" in err


def test_a_png_text_chunk_bomb_is_refused_naming_the_file(tmp_path):
    import struct
    import zlib

    from convladder.core.predict import load_image

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    bomb = b"Comment\0\0" + zlib.compress(b"\0" * (64 * 2**20), 9)  # zTXt: 64 MB of text in 64 KB
    path = tmp_path / "text-bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"zTXt", bomb)
                     + chunk(b"IDAT", zlib.compress(b"\0" * (8 * 25))) + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match=str(path)):
        load_image(path)


def test_a_mixed_up_checkpoint_is_one_line_in_train(tiny_cifar, tmp_path, capsys):
    a, g = tmp_path / "A", tmp_path / "G"
    _cli_train(tiny_cifar, a)
    assert main(["train", "G", "--profile", "smoke", "--batch-size", "32", "--train-size", "80", "--val-size", "16",
                 "--test-size", "20", "--data-dir", str(tiny_cifar), "--seed-dir", str(g)]) == 0
    state = torch.load(g / CHECKPOINT, weights_only=True)
    state["model"] = torch.load(a / CHECKPOINT, weights_only=True)["model"]  # G's config, A's weights
    torch.save(state, g / CHECKPOINT)
    capsys.readouterr()
    assert main(["train", "G", "--profile", "smoke", "--batch-size", "32", "--train-size", "80", "--val-size", "16",
                 "--test-size", "20", "--data-dir", str(tiny_cifar), "--seed-dir", str(g), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "do not fit model G's layers" in err
    assert main(["predict", str(g), str(Path(__file__).parent.parent / "src/convladder/assets/chelsea.png")]) == 2
    assert "do not fit model G's layers" in capsys.readouterr().err


def test_two_reports_of_one_folder_take_turns(tmp_path):
    """The report lock: a second build waits for the first instead of writing LaTeX's files beside it."""
    from filelock import FileLock

    from convladder.results.layout import RunLayout
    from convladder.report.build import build_report

    layout = RunLayout(tmp_path / "runs")
    layout.root.mkdir()
    holder = FileLock(layout.root / ".report.lock")
    holder.acquire()
    import threading

    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_try(build_report, layout)))
    thread.start()
    thread.join(timeout=2)
    assert thread.is_alive()  # waiting for the holder
    holder.release()
    thread.join(timeout=30)
    assert outcome and "no finished runs" in outcome[0]  # then it built (and found nothing to report)


def _try(function, *args):
    try:
        function(*args)
        return "ok"
    except Exception as err:  # noqa: BLE001
        return str(err)


def test_verify_measures_each_seed_again_and_names_edited_numbers(tiny_cifar, tmp_path, capsys):
    root = tmp_path / "runs"
    for name in ("A", "B"):
        train_run(TrainConfig(model=name, epochs=1, batch_size=32), root / name / "seed0", data_dir=tiny_cifar,
                  name=name, progress=False)
    args = ["verify", "--profile", "smoke", "--run-dir", str(root), "--data-dir", str(tiny_cifar)]
    assert main(args) == 0 and "2 of 2 seeds measure what they record" in capsys.readouterr().out
    path = root / "A" / "seed0" / RESULTS
    results = json.loads(path.read_text())
    results["final"]["test_acc"] = 0.7777
    path.write_text(json.dumps(results))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 seed(s) record another test accuracy" in err and str(root / "A" / "seed0") in err


def test_a_missing_home_is_not_created(tiny_cifar, tmp_path, monkeypatch, capsys):
    home = tmp_path / "no-such-home"
    monkeypatch.setenv("HOME", str(home))
    for name in ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                 "TEXMFVAR", "TEXMFCONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert _cli_train(tiny_cifar, tmp_path / "A") == 0
    assert "HOME" in capsys.readouterr().err and not home.exists()
    assert not os.environ.get("MPLCONFIGDIR", "").startswith(str(home))


def test_a_loop_of_links_counts_as_leaving_not_as_a_traceback(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert [link.name for link, _ in links_leaving(tmp_path)] == ["loop"]


def test_a_results_file_edited_out_of_shape_is_moved_aside_when_the_run_continues(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    _train(tiny_cifar, run_dir)
    (run_dir / RESULTS).write_text('{"my": "edit"}')
    _train(tiny_cifar, run_dir, epochs=2)  # resumable: continued, and its results written anew
    assert json.loads((run_dir / f"{RESULTS}.unrecognised").read_text()) == {"my": "edit"}
    assert len(read_results(run_dir / RESULTS)["history"]["epoch"]) == 2


def test_a_retrain_not_yet_installed_is_not_current_and_is_installed_next_time(tiny_cifar, tmp_path):
    from convladder.results.layout import staging_dir

    run_dir = tmp_path / "A"
    results = _train(tiny_cifar, run_dir)
    config = TrainConfig(model="A", epochs=1, batch_size=32)
    staging = staging_dir(run_dir)
    _train(tiny_cifar, staging, epochs=1)  # a finished retrain whose install a crash interrupted ...
    (staging / RESULTS).write_text(json.dumps({**read_results(staging / RESULTS), "wall_seconds": 123.0}))
    os.replace(staging / CHECKPOINT, run_dir / CHECKPOINT)  # ... after its first rename
    assert run_state(run_dir, config, results["data"]["checksum"]).kind == "resumable"
    _train(tiny_cifar, run_dir)
    assert not staging.exists() and read_results(run_dir / RESULTS)["checkpoint_sha256"] == file_digest(run_dir / CHECKPOINT)


def test_odd_run_names_make_figure_names_latex_takes():
    from convladder.report.figures import file_stem
    from convladder.report.latex import graphic

    for name in ("GAP+", "GAP fast", "lr=0.1,b", "Ä", "x{y}"):
        assert str(graphic(file_stem(name) + ".pdf")).endswith(".pdf")
    assert file_stem("GAP+") == "GAPplus" and file_stem("GAP fast") == "GAP-20fast"


def test_replace_on_latex_keeps_it_latex():
    from convladder.report.latex import environment

    template = environment(Path(".")).from_string(r'\VAR{names|join(", ")|replace("Sig_moid", "sigmoid")}')
    assert template.render(names=["Sig_moid", "ReLU_x"]) == r"sigmoid, ReLU\_x"


def test_the_signal_mask_is_what_it_was_after_side_by_side_training(tmp_path, monkeypatch):
    import signal

    from convladder import pipeline, workers
    from convladder.results.layout import RunLayout

    monkeypatch.setattr(workers, "_execute_chain", _quick_chain)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    steps = [pipeline.Step("10_train", tmp_path / n / "train.ipynb",
                           {"name": n, "planned": {"config": {"model": n, "epochs": 1}}, "seeds": [0]},
                           f"train {n}") for n in ("A", "B", "C")]
    assert workers.execute_side_by_side(steps, RunLayout(tmp_path), workers=2) == {f"train {n}": 1.0 for n in "ABC"}
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def _quick_chain(chain, layout, html, threads):
    import signal

    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, [])  # lifted in the worker
    return {chain[0].label: 1.0}
