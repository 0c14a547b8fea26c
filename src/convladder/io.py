"""Crash-safe file writing and safe reading of the files a run leaves.

Writes go to a temporary file beside the target, then a rename: a reader never sees a
half-written checkpoint, history or results file, even when the process is killed or the
disk fills up mid-write (the previous file is kept). Checkpoints are read with
`weights_only=True`, so a file holding code is refused, never run.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch


class WriteError(OSError):
    """A file could not be written (disk full, no permission); the previous file is kept."""


class CheckpointError(ValueError):
    """A checkpoint file is damaged or holds something other than tensors and plain values."""


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it


def _is_disk_full(err: BaseException) -> bool:
    # torch.save reports a full disk as a RuntimeError from its zip writer ("file write failed")
    return getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "file write failed" in str(err)


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp's 0600 would hide results from the user's group
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        _remove(tmp)
        kept = f"the previous {path.name} is kept" if path.exists() else f"no {path.name} was written"
        if _is_disk_full(err):
            raise WriteError(f"disk full while writing {path}; {kept}. Free some space and run the same command "
                             f"again") from None
        if isinstance(err, RuntimeError):
            raise
        raise WriteError(f"could not write {path} ({err.strerror or err}); {kept}") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def atomic_torch_save(obj, path: Path) -> None:
    _atomic_write(path, lambda fh: torch.save(obj, fh))


def atomic_write_json(data, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def atomic_write_text(text: str, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(text.encode()))


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def load_checkpoint_file(path: str | os.PathLike, map_location="cpu") -> dict:
    """A checkpoint's contents (tensors and plain values only); CheckpointError, with what to do,
    for a truncated or damaged file and for one that holds code."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds more than weights and plain values (possibly code), so it is not loaded; "
            f"delete it and train again, or use a checkpoint written by convladder"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {first_line(err)}); it is truncated or "
            f"damaged: delete it and train again"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path} is not a convladder checkpoint (no model weights in it); delete it and train again")
    return state


def first_line(err: BaseException, default: str = "") -> str:
    """The first line of an exception's message (at most 200 characters), for one-line errors."""
    text = str(err).strip().splitlines()
    return text[0][:200] if text else default
