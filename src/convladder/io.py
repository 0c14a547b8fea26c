"""Crash-safe file writing: write to a temporary file beside the target, then rename.

A reader never sees a half-written checkpoint, history or results file, even when the
process is killed mid-write.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj, path: Path) -> None:
    _atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_json(data, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def atomic_write_text(text: str, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(text.encode()))


def read_json(path: Path):
    return json.loads(Path(path).read_text())
