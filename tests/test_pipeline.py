"""The command line generated from TrainConfig, the one run-folder layout, the pipeline's export."""

import dataclasses
import json
import os
import multiprocessing
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convladder.results import layout as paths
from convladder.cli import config_flags, field_help, main
from convladder.core.config import TrainConfig
from convladder.results.layout import EXPORTED_LIST, RunLayout, project_root, results_archive
from convladder.pipeline import export_report
from convladder.tools.hardware import usable_cores


def test_every_config_field_is_a_flag_with_help():
    flags = dict(config_flags())
    helps = field_help()
    for field in dataclasses.fields(TrainConfig):
        assert helps.get(field.name), f"TrainConfig.{field.name} needs a comment"
        if field.name not in ("model", "profile"):
            assert field.name in flags and flags[field.name]["help"], field.name


@pytest.mark.parametrize("command", ["data", "train", "all", "report", "verify", "predict"])
def test_every_command_prints_its_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    assert "usage: convladder " + command in capsys.readouterr().out


def test_boolean_fields_have_on_and_off_flags(tiny_cifar, tmp_path):
    seed_folder = tmp_path / "A"
    assert main(["train", "A", "--profile", "smoke", "--epochs", "1", "--no-amp", "--no-channels-last", "--augment",
                 "--train-size", "40", "--val-size", "8", "--test-size", "10", "--data-dir", str(tiny_cifar),
                 "--seed-dir", str(seed_folder)]) == 0
    import json

    config = json.loads((seed_folder / "results.json").read_text())["config"]
    assert config["amp"] is False and config["channels_last"] is False and config["augment"] is True
    assert config["crop_pad"] == TrainConfig(model="A", epochs=1).crop_pad  # not given: the default


def test_the_layout_names_every_file_of_a_profile(tmp_path):
    layout = RunLayout.of("quick", tmp_path)
    assert layout.seed("GAP+", 2) == tmp_path / "GAP+" / "seed2"
    assert layout.results("A", 0) == tmp_path / "A" / "seed0" / "results.json"
    assert layout.checkpoint("A", 0).name == "checkpoint.pt"
    assert layout.train_notebook("G") == tmp_path / "G" / "train.ipynb"
    assert layout.pdf == tmp_path / "report" / "report.pdf" and layout.html_dir == tmp_path / "html"
    assert {layout.errors_results.parent, layout.diagnosis_results.parent, layout.other_sizes_results("GAP+").parent} == {
        tmp_path / "errors", tmp_path / "diagnosis", tmp_path / "other_sizes" / "GAP+"}
    assert layout.mistake_images.parent == tmp_path / "errors"
    assert RunLayout.of("smoke").root == paths.project_root() / "runs" / "smoke"
    # the study profile's runs take hours: they live in the committed results archive
    assert RunLayout.of("study").root == paths.project_root() / "results" / "study"


def test_exporting_one_profile_leaves_another_profiles_pdf(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "quick.pdf").write_bytes(b"the quick report")
    (tmp_path / "figures" / "quick").mkdir(parents=True)
    (tmp_path / "figures" / "quick" / "ladder.pdf").write_bytes(b"quick figure")
    layout = RunLayout(tmp_path / "runs" / "smoke")
    layout.report_dir.mkdir(parents=True)
    layout.pdf.write_bytes(b"the smoke report")
    layout.figures_dir.mkdir()
    (layout.figures_dir / "ladder.pdf").write_bytes(b"smoke figure")
    (layout.figures_dir / "samples.png").write_bytes(b"smoke samples")
    (layout.figures_dir / "history_old.pdf").write_bytes(b"left by an earlier build")
    (layout.report_dir / "report.tex").write_text("\\includegraphics[width=\\textwidth]{ladder.pdf}\n"
                                                  "\\includegraphics{samples}\n\\includegraphics{missing.pdf}\n")
    assert export_report("smoke", layout) == tmp_path / "report" / "smoke.pdf"
    assert (tmp_path / "report" / "smoke.pdf").read_bytes() == b"the smoke report"
    assert (tmp_path / "report" / "quick.pdf").read_bytes() == b"the quick report"
    assert (tmp_path / "figures" / "quick" / "ladder.pdf").read_bytes() == b"quick figure"
    assert (tmp_path / "figures" / "smoke" / "ladder.pdf").read_bytes() == b"smoke figure"
    # only what the PDF includes: not a figure an earlier build left in the folder
    assert sorted(f.name for f in (tmp_path / "figures" / "smoke").iterdir()) == [EXPORTED_LIST, "ladder.pdf", "samples.png"]


def test_the_code_version_is_declared_per_family_and_is_what_the_archive_recorded():
    """The declared versions began as the digests the archived runs recorded (versions.py), so they stay current."""
    from convladder.core.versions import CODE_VERSIONS, code_version

    study = json.loads((paths.results_archive("study") / "A" / "seed0" / "results.json").read_text())
    h = json.loads((paths.results_archive("h") / "H" / "seed0" / "results.json").read_text())
    assert study["code_version"] == code_version("A") == code_version() == CODE_VERSIONS["ladder"]
    assert h["code_version"] == code_version("H") == CODE_VERSIONS["H"] != code_version("GAP")


@pytest.mark.slow
def test_convladder_all_runs_a_profile_and_ends_with_the_pdf(full_size_cifar, tmp_path, capfd):
    runs = tmp_path / "runs-{x}-{profile}"  # braces papermill must not fill in
    assert main(["all", "--profile", "smoke", "--models", "A", "--no-html", "--run-dir", str(runs),
                 "--data-dir", str(full_size_cifar)]) in (0, 2)  # 2: no LaTeX here
    out = capfd.readouterr()  # the kernels' own output too
    for noise in ("running over TCP without encryption", "IProgress not found", "KeyboardInterrupt caught"):
        assert noise not in out.out + out.err, noise
    assert "epoch 1" in out.err and "val_acc=" in out.err  # the training's progress bar, streamed
    assert "[1/4] data facts" in out.out and "train A (1 epoch, seed 0)" in out.out
    assert (runs / "A" / "seed0" / "results.json").exists()
    if "latexmk / pdflatex not found" not in out.err:
        assert f"report: {runs / 'report' / 'report.pdf'} (total" in out.out


def _training_step(tmp_path, model: str, name: str, epochs: int, seeds, resume_from=None):
    from convladder.pipeline import Step

    planned = {"config": {"model": model, "epochs": epochs}}
    return Step("10_train", tmp_path / name / "train.ipynb", {"name": name, "planned": planned,
                "seeds": list(seeds), "resume_from": resume_from}, f"train {name}")


def test_training_chains_keep_a_continuation_after_its_source_and_start_the_largest(tmp_path):
    from convladder.workers import training_chains

    steps = [_training_step(tmp_path, "A", "A", 150, [0, 1, 2]), _training_step(tmp_path, "G", "G", 30, [0]),
             _training_step(tmp_path, "GAP", "GAP", 120, [0, 1, 2]),
             _training_step(tmp_path, "GAP", "GAP+", 240, [0], resume_from="GAP")]
    chains = training_chains(steps)
    assert [[s.parameters["name"] for s in chain] for chain in chains] == [["GAP", "GAP+"], ["G"], ["A"]]
    # GAP's seed 0 already trained (an archived profile part-way): GAP+ need not wait for seeds 1 and 2
    steps[2] = _training_step(tmp_path, "GAP", "GAP", 120, [1, 2])
    chains = training_chains(steps)
    assert [[s.parameters["name"] for s in chain] for chain in chains] == [["GAP"], ["GAP+"], ["G"], ["A"]]


def test_side_by_side_each_seed_trains_as_a_step_of_its_own_and_a_continuation_follows_its_seed(tiny_cifar, tmp_path):
    """With --workers or --cluster (plan's per_seed) the quick profile's 3 seeds of a run are 3 steps, each with its own
    notebook, log and HTML copy, so that more workers (or nodes) train them at the same time; GAP+'s seed k still
    follows GAP's seed k in one chain."""
    from convladder.pipeline import _html_name, plan
    from convladder.workers import training_chains

    layout = RunLayout(tmp_path / "runs")
    steps = [s for s in plan("quick", layout, str(tiny_cifar), models=["A", "GAP"], per_seed=True)
             if s.notebook == "10_train" and s.parameters["name"] in ("A", "GAP", "GAP+")]  # not the runs beyond
    by_name = {}
    for step in steps:
        by_name.setdefault(step.parameters["name"], []).append(step)
    assert {name: [s.parameters["seeds"] for s in steps] for name, steps in by_name.items()} == {
        "A": [[0], [1], [2]], "GAP": [[0], [1], [2]], "GAP+": [[0], [1], [2]]}
    a1 = by_name["A"][1]
    assert a1.output == layout.train_notebook("A", 1) == layout.run("A") / "train-seed1.ipynb"
    assert a1.label == f"train A ({a1.parameters['planned']['config']['epochs']} epochs, seed 1)"
    assert _html_name(a1, layout) == "10_train_A_seed1.html"
    assert _html_name(by_name["GAP+"][0], layout) == "10_train_GAP+_seed0.html"
    assert len({s.output for s in steps}) == len(steps)  # no two steps write the same notebook
    chains = [[(s.parameters["name"], s.parameters["seeds"][0]) for s in chain] for chain in training_chains(steps)]
    assert all([("GAP", k), ("GAP+", k)] in chains for k in range(3)) and len(chains) == 6
    together = [s for s in plan("quick", layout, str(tiny_cifar), models=["A"]) if s.parameters.get("name") == "A"]
    assert [s.parameters["seeds"] for s in together] == [[0, 1, 2]] and together[0].output == layout.train_notebook("A")


@pytest.mark.skipif(shutil.which("git") is None or not (project_root() / ".git").exists(), reason="not a git checkout")
def test_what_the_pipeline_writes_beside_an_archives_runs_stays_out_of_git():
    """An archived profile's seed folders are committed; the executed notebooks and logs of its training steps (one
    per run, or one per seed side by side) are not."""
    layout = RunLayout(results_archive("study"))
    written = [layout.train_notebook("A"), layout.train_notebook("GAP+", 2)]
    written += [path.with_suffix(".log") for path in written]
    relative = [str(path.relative_to(project_root())) for path in written]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *relative], cwd=project_root(), capture_output=True,
                             text=True).stdout.split()
    assert ignored == relative
    kept = str(layout.results("A", 0).relative_to(project_root()))
    assert subprocess.run(["git", "check-ignore", "--no-index", "-q", kept], cwd=project_root()).returncode == 1


def test_workers_must_be_a_whole_number_of_at_least_one(capsys):
    with pytest.raises(SystemExit):
        main(["all", "--workers", "0"])
    assert "must be a whole number of at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_training_side_by_side_runs_each_chain_in_its_own_process(full_size_cifar, tmp_path, capfd):
    """Per-seed steps, as convladder all --workers 2 plans them: two seeds of A train at the same time, each with its
    own notebook, log and HTML copy, beside GAP -> GAP+ in one chain."""
    from convladder.pipeline import plan
    from convladder.workers import execute_side_by_side

    layout = RunLayout(tmp_path / "runs")
    steps = [s for s in plan("smoke", layout, str(full_size_cifar), models=["A", "GAP"], per_seed=True)
             if s.notebook == "10_train" and s.parameters["name"] in ("A", "GAP", "GAP+")]  # not the runs beyond
    a = steps[0]  # the smoke profile trains one seed: a second of A, as a 3-seed profile plans it
    steps.insert(1, dataclasses.replace(a, output=layout.train_notebook("A", 1), parameters={**a.parameters, "seeds": [1]},
                                        label=a.label.replace("seed 0", "seed 1")))
    assert [(s.parameters["name"], s.parameters["seeds"]) for s in steps] == [("A", [0]), ("A", [1]), ("GAP", [0]),
                                                                               ("GAP+", [0])]
    seconds = execute_side_by_side(steps, layout, workers=2, html=True)
    assert set(seconds) == {s.label for s in steps}
    out = capfd.readouterr().out
    assert "4 training steps in 3 chains, 2 at a time with" in out and out.count("started: ") == 4
    for name, seed in (("A", 0), ("A", 1), ("GAP", 0), ("GAP+", 0)):
        results = json.loads((layout.seed(name, seed) / "results.json").read_text())
        assert results["environment"]["torch_threads"] == max(1, usable_cores() // 2)
        assert results["config"]["seed"] == seed
        assert "epoch " in layout.train_notebook(name, seed).with_suffix(".log").read_text()  # its progress, in its log
        notebook = json.loads(layout.train_notebook(name, seed).read_text())
        assert notebook["metadata"]["papermill"]["parameters"]["seeds"] == [seed]
        assert (layout.html_dir / f"10_train_{name}_seed{seed}.html").stat().st_size > 1000
    assert not layout.train_notebook("A").exists()
    assert json.loads((layout.seed("GAP+", 0) / "results.json").read_text())["continued_from"].endswith("GAP/seed0")


def interrupt_the_parent(chain, layout, html, threads):
    """A worker's chain: the first to start sends Ctrl-C's signal to itself (ignored: the parent handles
    Ctrl-C) and to the parent, as a terminal does to both; every chain then trains for a minute."""
    import signal
    import time

    try:
        (layout.root / "pressed").open("x").close()  # only the first chain gets to create it
    except FileExistsError:
        pass
    else:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getppid(), signal.SIGINT)
    time.sleep(60)
    return {}


def shrug_off_ctrl_c(chain, layout, html, threads):
    """A worker's chain that gets Ctrl-C's signal and finishes all the same."""
    import signal
    import time

    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)
    return {chain[0].label: 1.0}


def die(chain, layout, html, threads):
    """A worker's chain whose process is killed (as the kernel's out-of-memory killer would)."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def die_if_a(chain, layout, html, threads):
    """Chain A's worker is killed; the others finish."""
    import signal

    if chain[0].label == "train A":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(1)
    (layout.root / f"finished-{chain[0].label}").touch()
    return {chain[0].label: 1.0}


def chains_of(names, tmp_path):
    from convladder.pipeline import Step

    return [Step("10_train", tmp_path / name / "train.ipynb",
                 {"name": name, "planned": {"config": {"model": name, "epochs": 1}}, "seeds": [0]},
                 f"train {name}") for name in names]


@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_raises_keyboard_interrupt(tmp_path, monkeypatch):
    import multiprocessing
    import signal
    import time

    from convladder import workers

    monkeypatch.setattr(workers, "_execute_chain", interrupt_the_parent)
    # Ctrl-C raises KeyboardInterrupt here even when pytest was started in the background (`pytest &`), where the
    # shell has this process ignore SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            workers.execute_side_by_side(chains_of(["A", "B", "C"], tmp_path), RunLayout(tmp_path), workers=2)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - start < 30  # not the minute the workers would sleep, nor the third chain
    assert multiprocessing.active_children() == []


@pytest.mark.slow
def test_a_worker_leaves_ctrl_c_to_the_parent(tmp_path, monkeypatch):
    from convladder import workers

    monkeypatch.setattr(workers, "_execute_chain", shrug_off_ctrl_c)
    seconds = workers.execute_side_by_side(chains_of(["A", "B"], tmp_path), RunLayout(tmp_path), workers=2)
    assert seconds == {"train A": 1.0, "train B": 1.0}


@pytest.mark.slow
def test_a_killed_worker_is_one_message_that_names_the_runs_not_finished(tmp_path, monkeypatch):
    from convladder import workers

    monkeypatch.setattr(workers, "_execute_chain", die)
    with pytest.raises(workers.StepFailed, match=r"a training worker process died \(killed, or out of memory\?\) before it "
                                                 r"finished train [AB].*; its finished epochs and runs are kept") as raised:
        workers.execute_side_by_side(chains_of(["A", "B"], tmp_path), RunLayout(tmp_path), workers=2)
    assert "train A" in str(raised.value) and "train B" in str(raised.value)


@pytest.mark.slow
def test_a_killed_worker_stops_no_other_chain(tmp_path, monkeypatch):
    from convladder import workers

    monkeypatch.setattr(workers, "_execute_chain", die_if_a)
    with pytest.raises(workers.StepFailed) as raised:
        workers.execute_side_by_side(chains_of(["A", "B", "C"], tmp_path), RunLayout(tmp_path), workers=2)
    assert "train A" in str(raised.value) and "train B" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.glob("finished-*")) == ["finished-train B", "finished-train C"]
    assert multiprocessing.active_children() == []


PARENT_SCRIPT = """
import os, sys, time
from pathlib import Path
from convladder import pipeline, workers
from convladder.results.layout import RunLayout


def sleep_long(chain, layout, html, threads):
    (layout.root / f"pid-{chain[0].label}").write_text(str(os.getpid()))
    time.sleep(120)
    return {}


if __name__ == "__main__":
    root = Path(sys.argv[1])
    steps = [pipeline.Step("10_train", root / n / "train.ipynb",
                           {"name": n, "planned": {"config": {"model": n, "epochs": 1}}, "seeds": [0]},
                           f"train {n}") for n in ("A", "B", "C")]
    workers._execute_chain = sleep_long
    workers.execute_side_by_side(steps, RunLayout(root), workers=2)
"""


def _alive(pid: int) -> bool:
    """A process that runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_when_their_parent_is_terminated_or_killed(tmp_path, signum):
    import subprocess
    import time

    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("pid-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.read_text()) for p in tmp_path.glob("pid-*")]
        assert len(workers) == 2
        parent.send_signal(signum)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
        time.sleep(1)
        assert len(list(tmp_path.glob("pid-*"))) == 2  # the third chain never started
        if signum == signal.SIGTERM:  # handled as Ctrl-C: raised as KeyboardInterrupt once the workers are ended
            assert parent.stderr.read().rstrip().endswith("Terminated")
    finally:
        parent.kill()
        parent.wait()
