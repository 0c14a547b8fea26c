import subprocess
import pytest
import torch

from convladder.tools.files import _atomic_write, atomic_torch_save, atomic_write_json, read_json


def test_a_write_that_dies_midway_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json({"epoch": 1}, path)

    def dies_midway(fh):
        fh.write(b'{"epoch": 2, "hist')
        raise KeyboardInterrupt  # as if the process were stopped half-way through writing

    with pytest.raises(KeyboardInterrupt):
        _atomic_write(path, dies_midway)
    assert read_json(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temp file left behind


def test_checkpoint_write_that_fails_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic_torch_save({"w": torch.ones(3)}, path)

    def partial_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", partial_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_torch_save({"w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_a_checkout_whose_only_changes_are_exported_reports_still_names_its_commit_clean(tmp_path):
    from convladder.results.records import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    for name in ("src/code.py", "report/study.pdf", "report/report.tex.j2", "figures/study/a.pdf"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("one")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    where = tmp_path / "src"  # asked from a subfolder, as the package asks
    clean = git_commit(where)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "report/study.pdf").write_text("exported again")
    (tmp_path / "figures/study/a.pdf").write_text("exported again")
    assert git_commit(where) == clean
    (tmp_path / "report/report.tex.j2").write_text("a source changed")
    assert git_commit(where) == clean + "-dirty"
    git("checkout", "--", "report/report.tex.j2")
    (tmp_path / "src/code.py").write_text("changed")
    assert git_commit(where) == clean + "-dirty"
