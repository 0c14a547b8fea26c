"""Crash-safe file writing and safe reading of the files a run leaves.

Writes go to a temporary file beside the target, then a rename: a reader never sees a
half-written checkpoint, history or results file, even when the process is killed or the
disk fills up mid-write (the previous file is kept). Checkpoints are read with
`weights_only=True`, so a file holding code is refused, never run.
"""

from __future__ import annotations

import errno
import glob
import io
import json
import os
import pickle
import re
import stat
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


# An atomic write's temporary file: `.<name>.<8 random characters>.tmp`, as tempfile.mkstemp names it; a
# user's own `.results.json.before-edit.tmp` does not match, so cleaning up never takes it.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def is_own_temporary(path: str | os.PathLike, name: str) -> bool:
    """Whether `path`'s name is that of an atomic write's temporary file for a file called `name`."""
    match = _TEMPORARY.fullmatch(Path(path).name)
    return match is not None and match["name"] == name


def remove_own_temporaries(folder: str | os.PathLike, names) -> list[Path]:
    """Remove what an interrupted atomic write of any of `names` left in `folder` (not in a linked folder, not a
    user's file of a similar name); the paths removed."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = [tmp for name in set(names) for tmp in folder.glob(f".{glob.escape(name)}.*.tmp")
             if is_own_temporary(tmp, name) and tmp.is_file() and not tmp.is_symlink()]
    for tmp in found:
        tmp.unlink(missing_ok=True)
    return found


def _mode_for(path: Path) -> int:
    """The permissions a rewrite of `path` gets: those of the file it replaces (a user's 0600 stays 0600), else
    the default for a new file (0666 less the umask; mkstemp's 0600 would hide results from the user's group)."""
    try:
        info = os.lstat(path)
    except OSError:
        return 0o666 & ~UMASK
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else 0o666 & ~UMASK


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _mode_for(path))
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
    """torch.save, atomically. Serialised in memory first (a checkpoint is at most tens of MB): torch's zip
    writer reports a short write as an opaque RuntimeError ("unexpected pos"), a plain write as ENOSPC."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(path, lambda fh: fh.write(buffer.getbuffer()))


def atomic_write_json(data, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def atomic_write_text(text: str, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(text.encode()))


def atomic_write_bytes(data: bytes, path: Path) -> None:
    _atomic_write(path, lambda fh: fh.write(data))


# The largest JSON file convladder reads (its own are at most a few hundred KB; a 60,000-epoch history
# would be a few MB): a bigger file, or one that is no regular file (/dev/zero), is refused unread.
JSON_LIMIT = 64 * 2**20


class DamagedFile(ValueError):
    """A file convladder reads is damaged, truncated, too large or not a file; the message names it."""


def read_json(path: str | os.PathLike, limit: int = JSON_LIMIT):
    """The JSON value in `path`; DamagedFile, naming the file, for anything but a regular file of at most
    `limit` bytes holding valid JSON nested less deeply than Python's recursion allows. FileNotFoundError
    (an OSError) when it does not exist."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DamagedFile(f"{path} is not a regular file; delete it (or the link) and run again")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise DamagedFile(f"{path} is larger than {limit // 2**20} MB, more than convladder writes; it is not ours "
                          f"or is damaged: move it away and run again")
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise DamagedFile(f"{path} is nested too deeply to be a file convladder wrote: move it away and run again") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFile(f"{path} is damaged or truncated ({first_line(err)}): move it away (or delete it) and run "
                          f"the same command again, which writes it anew where it can") from None


# --- writing only where we mean to: no write goes through a symbolic link -------------------

class LinkError(OSError):
    """A folder convladder writes into holds a symbolic link that leaves it."""


def links_leaving(root: str | os.PathLike, limit: int = 5) -> list[tuple[Path, str]]:
    """Up to `limit` symbolic links under `root` (files or folders, not followed) whose target lies outside
    `root` or does not exist: (link, target). A cloned repository or a shared folder can carry such a
    link, and a write through it would change a file elsewhere."""
    root = Path(root)
    if not root.is_dir():
        return []
    inside = root.resolve()
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink():
                try:
                    target = path.resolve()
                    leaves = not target.exists() or not target.is_relative_to(inside)
                except (RuntimeError, OSError):  # a loop of links
                    leaves = True
                if leaves:
                    found.append((path, os.readlink(path)))
                    if len(found) >= limit:
                        return found
    return found


def refuse_links_leaving(root: str | os.PathLike) -> None:
    """LinkError, naming the links, when `root` holds symbolic links that leave it (`links_leaving`)."""
    found = links_leaving(root)
    if found:
        listed = ", ".join(f"{link} -> {target}" for link, target in found)
        raise LinkError(f"{root} holds symbolic links that point outside it ({listed}); convladder does not write "
                        f"through links: remove them (or copy their files in their place) and run the same command again")


def refuse_linked_folders(root: str | os.PathLike, *paths: str | os.PathLike) -> None:
    """LinkError when a folder on the way from `root` down to any of `paths` (each under `root`; the last part
    included) is a symbolic link: a write there would land wherever the link points."""
    root = Path(root)
    for path in paths:
        folder = root
        for part in Path(path).relative_to(root).parts:
            folder = folder / part
            if folder.is_symlink():
                raise LinkError(f"{folder} is a symbolic link; convladder does not write through links: replace it "
                                f"with a folder (or remove it) and run the same command again")


def claim(path: str | os.PathLike) -> Path:
    """Make `path` safe to open for writing: a symbolic link there is removed (never its target), so that the
    write makes a file of its own. For writers that open the name themselves (papermill, a log, matplotlib)."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
    return path


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy the regular file `source` to `target` atomically: a link at `target` is replaced, never written
    through; a link or anything but a regular file at `source` is refused (LinkError), so a copy never takes a
    file from elsewhere."""
    source = Path(source)
    if source.is_symlink() or not source.is_file():
        raise LinkError(f"{source} is {'a symbolic link' if source.is_symlink() else 'not a regular file'}; convladder "
                        f"copies only its own files: remove it and run the same command again")
    atomic_write_bytes(source.read_bytes(), Path(target))


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


def recorded_path(path: str | os.PathLike) -> str:
    """A path as results record it: under the user's home as `~/...`, so that a committed archive does not carry the
    home folder's name (often the user's); elsewhere as it is."""
    path = Path(path)
    try:
        home = Path.home()
        if home == Path(home.anchor):  # a home at the root (HOME=/) would make every path "under the home"
            return str(path)
        return str(Path("~") / path.relative_to(home))
    except (ValueError, RuntimeError, KeyError):  # not under the home, or no home known
        return str(path)


def first_line(err: BaseException, default: str = "") -> str:
    """The first line of an exception's message (at most 200 characters), for one-line errors."""
    text = str(err).strip().splitlines()
    return text[0][:200] if text else default
