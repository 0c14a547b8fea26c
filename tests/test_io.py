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
