"""Reliability, round four (a read-only audit's findings, each reproduced before it was mended): an export
removes only the figures an export wrote, no write goes through a link in a folder on its way, an analysis file
cannot name a file elsewhere to be copied into the report, a cleanup takes only our own temporaries, a set-aside
checkpoint is never replaced, a rewrite keeps the file's permissions."""

import json
import os

import pytest
import torch

from convladder.core.data import load_cifar10
from convladder.core.runs import move_aside, train_run
from convladder.core.config import TrainConfig
from convladder.core.training import CHECKPOINT
from convladder.pipeline import export_report
from convladder.results import layout as paths
from convladder.results.layout import EXPORTED_LIST, RESULTS_FILE, RunLayout
from convladder.tools.files import DamagedFile, LinkError, atomic_write_text, copy_file, is_own_temporary


def _built(tmp_path, figures: dict[str, bytes]) -> RunLayout:
    """A profile's build: its PDF and the figures its LaTeX includes."""
    layout = RunLayout(tmp_path / "runs" / "quick")
    layout.figures_dir.mkdir(parents=True)
    layout.report_dir.mkdir(parents=True, exist_ok=True)
    layout.pdf.write_bytes(b"the report")
    for name, content in figures.items():
        (layout.figures_dir / name).write_bytes(content)
    (layout.report_dir / "report.tex").write_text("".join(f"\\includegraphics{{{name}}}\n" for name in figures))
    return layout


def test_an_export_keeps_the_users_files_and_removes_only_figures_an_export_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path / "repo")
    exported = tmp_path / "repo" / "figures" / "quick"
    export_report("quick", _built(tmp_path / "first", {"ladder.pdf": b"1", "old.pdf": b"2"}))
    assert (exported / EXPORTED_LIST).read_text().split() == ["ladder.pdf", "old.pdf"]
    (exported / "my_notes.txt").write_text("mine")
    (exported / ".ladder.pdf.x8k2_0qa.tmp").write_text("an export killed while writing")
    (tmp_path / "repo" / "report" / ".quick.pdf.abcd1234.tmp").write_text("an export killed while writing")
    (tmp_path / "repo" / "report" / ".quick.pdf.mine.tmp").write_text("mine")
    export_report("quick", _built(tmp_path / "second", {"ladder.pdf": b"3"}))
    assert sorted(p.name for p in exported.iterdir()) == sorted([EXPORTED_LIST, "ladder.pdf", "my_notes.txt"])
    assert sorted(p.name for p in (tmp_path / "repo" / "report").iterdir()) == [".quick.pdf.mine.tmp", "quick.pdf"]
    assert (exported / "ladder.pdf").read_bytes() == b"3" and (exported / "my_notes.txt").read_text() == "mine"
    assert "my_notes.txt" in capsys.readouterr().out  # named as left there, in one line


def test_an_export_without_the_list_removes_nothing_it_cannot_show_an_export_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path / "repo")
    exported = tmp_path / "repo" / "figures" / "quick"
    exported.mkdir(parents=True)
    for name in ("ladder.pdf", "history_A.pdf", "hand_drawn.svg"):
        (exported / name).write_bytes(b"earlier")
    layout = _built(tmp_path, {"ladder.pdf": b"new"})
    (layout.figures_dir / "history_A.pdf").write_bytes(b"built, no longer included")  # a user's file may share its name
    export_report("quick", layout)
    assert sorted(p.name for p in exported.iterdir()) == sorted([EXPORTED_LIST, "ladder.pdf", "history_A.pdf",
                                                                 "hand_drawn.svg"])
    assert (exported / "ladder.pdf").read_bytes() == b"new" and (exported / "history_A.pdf").read_bytes() == b"earlier"
    assert "history_A.pdf" in capsys.readouterr().out  # named as left in place


@pytest.mark.parametrize("linked", ["figures", "figures/quick", "report"])
def test_an_export_through_a_linked_folder_is_refused_and_writes_nothing(tmp_path, monkeypatch, linked):
    repo = tmp_path / "repo"
    monkeypatch.setattr(paths, "project_root", lambda: repo)
    elsewhere = tmp_path / "user_paper"
    (elsewhere / "quick").mkdir(parents=True)
    (elsewhere / "quick" / "hand_drawn.svg").write_text("mine")
    (repo / linked).parent.mkdir(parents=True, exist_ok=True)
    (repo / linked).symlink_to(elsewhere)
    with pytest.raises(LinkError, match="symbolic link"):
        export_report("quick", _built(tmp_path, {"ladder.pdf": b"1"}))
    assert sorted(p.name for p in elsewhere.rglob("*")) == ["hand_drawn.svg", "quick"]
    assert not (repo / "report" / "quick.pdf").exists()


def test_other_sizes_images_replace_a_link_instead_of_writing_through_it(tmp_path):
    from convladder.experiments.other_sizes import _save_png

    precious = tmp_path / "checkpoint.pt"
    precious.write_bytes(b"weights")
    (tmp_path / "test0_32x20.png").symlink_to(precious)
    _save_png(torch.rand(3, 20, 32), tmp_path / "test0_32x20.png")
    assert precious.read_bytes() == b"weights"
    assert not (tmp_path / "test0_32x20.png").is_symlink()
    assert (tmp_path / "test0_32x20.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("named", ["/etc/hostname", "../../secret.png", "sub/x.png", ".hidden.png", "notes.txt"])
def test_an_other_sizes_file_naming_a_file_elsewhere_copies_nothing(tmp_path, named):
    from convladder.report.analyses import other_sizes_context

    layout = RunLayout(tmp_path / "run")
    results = layout.other_sizes_results("GAP+")
    results.parent.mkdir(parents=True)
    study = {"class_names": ["cat", "dog"], "sizes": ["32x32"], "curve_images": 2,
             "curve": [{"seed": 0, "accuracy": {"32x32": 0.5}}],
             "images": [{"title": "t", "file": named, "true": "cat", "proba": [0.6, 0.4]}]}
    results.write_text(json.dumps(study))
    figures = tmp_path / "figures"
    figures.mkdir()
    with pytest.raises(DamagedFile, match="not a file name of its own"):
        other_sizes_context(layout, figures)
    assert [p.name for p in figures.iterdir()] == ["size_curve.pdf"]


def test_a_copy_refuses_a_linked_source(tmp_path):
    (tmp_path / "secret").write_text("private")
    (tmp_path / "image.png").symlink_to(tmp_path / "secret")
    with pytest.raises(LinkError):
        copy_file(tmp_path / "image.png", tmp_path / "copy.png")
    assert not (tmp_path / "copy.png").exists()


def test_only_our_own_temporaries_are_cleaned_up(tiny_cifar, tmp_path):
    run_dir = tmp_path / "A"
    run_dir.mkdir()
    mine = [run_dir / f".{RESULTS_FILE}.before-edit.tmp", run_dir / f".{CHECKPOINT}.good-epoch-90.tmp"]
    ours = run_dir / f".{RESULTS_FILE}.k2x_9q0a.tmp"  # as tempfile.mkstemp names an atomic write's file
    for path in [*mine, ours]:
        path.write_text("x")
    assert [is_own_temporary(p, p.name.split(".tmp")[0][1:].rsplit(".", 1)[0]) for p in [*mine, ours]] == [
        False, False, True]
    train_run(TrainConfig(model="A", epochs=1, batch_size=32), run_dir, data_dir=tiny_cifar, progress=False)
    assert all(path.read_text() == "x" for path in mine) and not ours.exists()


def test_a_cleanup_never_reaches_into_a_linked_staging_folder(tiny_cifar, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    theirs = elsewhere / f".{CHECKPOINT}.abcd1234.tmp"  # even a name like ours, behind a link, is not ours
    theirs.write_text("theirs")
    run_dir = tmp_path / "A"
    run_dir.mkdir()
    (tmp_path / ".A.retrain").symlink_to(elsewhere)
    config = TrainConfig(model="A", epochs=1, batch_size=32)
    train_run(config, run_dir, data_dir=tiny_cifar, progress=False)  # a new run: the staging folder is not used
    assert theirs.read_text() == "theirs"
    with pytest.raises(LinkError):  # a retrain would train there: refused
        train_run(config, run_dir, data_dir=tiny_cifar, progress=False, restart=True)
    assert theirs.read_text() == "theirs"


def test_a_checkpoint_set_aside_twice_keeps_both(tmp_path, capsys):
    folder = tmp_path / "seed0"
    folder.mkdir()
    for content in (b"first", b"second"):
        (folder / CHECKPOINT).write_bytes(content)
        move_aside(folder / CHECKPOINT, "training from epoch 0", "stale")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {f"{CHECKPOINT}.stale": b"first",
                                                                  f"{CHECKPOINT}.stale.1": b"second"}
    assert f"{CHECKPOINT}.stale.1" in capsys.readouterr().out


def test_the_ladder_diagnosis_sets_aside_each_stale_checkpoint(tiny_cifar, tmp_path):
    from convladder.experiments.ladder_diagnosis import train_variant

    dataset = load_cifar10(tiny_cifar)
    folder = tmp_path / "E-logits" / "seed0"
    folder.mkdir(parents=True)
    for earlier in ("one", "two"):
        torch.save({"model": {}, "provenance": {"experiment_version": earlier}}, folder / CHECKPOINT)
        train_variant("E-logits", 0, dataset, tmp_path, epochs=1, progress=False)
    kept = sorted(p.name for p in folder.iterdir() if ".stale" in p.name)
    assert kept == [f"{CHECKPOINT}.stale", f"{CHECKPOINT}.stale.1"]
    assert {torch.load(folder / name)["provenance"]["experiment_version"] for name in kept} == {"one", "two"}


def test_a_rewrite_keeps_the_files_permissions(tmp_path):
    path = tmp_path / RESULTS_FILE
    path.write_text("{}")
    os.chmod(path, 0o600)
    atomic_write_text("{}", path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    atomic_write_text("{}", tmp_path / "new.json")
    assert os.stat(tmp_path / "new.json").st_mode & 0o777 == 0o666 & ~paths_umask()


def paths_umask() -> int:
    from convladder.tools.files import UMASK

    return UMASK


def test_a_node_never_downloads_into_the_drivers_data_path_when_it_holds_no_cifar(tiny_cifar, tmp_path, monkeypatch):
    from convladder.cluster_files import node_data

    monkeypatch.setenv("CONVLADDER_DATA", str(tiny_cifar))
    monkeypatch.setattr("convladder.core.data._download", lambda root: pytest.fail(f"downloaded into {root}"))
    someone_elses = tmp_path / "projects"  # the driver's data path names another folder on this node
    someone_elses.mkdir()
    (someone_elses / "thesis.tex").write_text("mine")
    wanted = {"data_dir": str(someone_elses), "checksum": load_cifar10(tiny_cifar).checksum}
    assert node_data(wanted) == str(tiny_cifar)  # the node's own copy, the same files
    assert [p.name for p in someone_elses.iterdir()] == ["thesis.tex"]
    assert node_data({**wanted, "data_dir": str(tiny_cifar)}) == str(tiny_cifar)  # where it holds CIFAR-10: used


def test_results_record_a_data_folder_under_the_home_without_the_homes_name(tiny_cifar, tmp_path, monkeypatch):
    from convladder.tools.files import recorded_path

    monkeypatch.setenv("HOME", str(tmp_path))
    results = train_run(TrainConfig(model="A", epochs=1, batch_size=32), tmp_path / "A", data_dir=tiny_cifar,
                        progress=False)
    assert results["data"]["root"] == "~/cifar" and str(tmp_path) not in json.dumps(results)
    assert recorded_path("/srv/data/cifar10") == "/srv/data/cifar10"


def test_results_record_a_path_as_it_is_when_the_home_is_the_root(monkeypatch):
    from convladder.tools.files import recorded_path

    monkeypatch.setenv("HOME", "/")
    assert recorded_path("/data/cifar10") == "/data/cifar10"


def test_a_refused_write_back_fails_that_chain_once_and_the_driver_goes_on(tmp_path, monkeypatch):
    """A node's answer naming a file outside its runs: the chain fails in one line, the task is done with (it was
    waited for again and again before), and the other chains' files are written."""
    import sys
    import types

    from convladder.cluster import _collect
    from convladder.pipeline import Step

    layout = RunLayout(tmp_path / "runs")
    chain = lambda name: [Step("10_train", layout.run(name) / "train.ipynb", {"name": name, "seeds": [0]}, f"train {name}")]  # noqa: E731
    answers = {"bad": {"files": {"../x": b"x"}}, "good": {"files": {"B/seed0/results.json": b"{}"}, "bytes": 2, "node": "n",
                                                         "seconds": {"train B": 1.0}, "failed": "", "root": "/r"}}
    waits = []
    fake = types.SimpleNamespace(
        wait=lambda refs, **kw: (waits.append(list(refs)) or (refs[:1], refs[1:])) if len(waits) < 10 else pytest.fail(
            "the driver keeps waiting for a task it is done with"),
        get=lambda x, **kw: [] if not isinstance(x, str) else answers[x],
        exceptions=types.SimpleNamespace(RayTaskError=type("RayTaskError", (Exception,), {}),
                                         RayError=type("RayError", (Exception,), {})))
    monkeypatch.setitem(sys.modules, "ray", fake)
    tracker = types.SimpleNamespace(drain=types.SimpleNamespace(remote=lambda: "drain"))
    fake.get = lambda x, **kw: [] if x == "drain" else answers[x]
    pending = {"bad": ("k1", chain("A")), "good": ("k2", chain("B"))}
    seconds, failed = _collect(pending, tracker, layout, False, lambda line: None, "sum")
    assert not pending and len(waits) == 2 and seconds == {"train B": 1.0}
    assert len(failed) == 1 and failed[0].startswith("train A: ") and "does not stay in the run folder" in failed[0]
    assert (layout.seed("B", 0) / "results.json").read_bytes() == b"{}"
