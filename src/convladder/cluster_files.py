"""The two ends of a cluster run's files (cluster.py): what a task does on its node (node_main: train a chain in a
temporary folder, ship each epoch's checkpoint, answer with the files), and what the driver does with the answer
(write_back into its run layout, keep_checkpoints after a Ctrl-C). Imported only by cluster.py and Ray's workers."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import threading
from dataclasses import replace
from pathlib import Path, PurePosixPath

from convladder.results.layout import CHECKPOINT_FILE, RESULTS_FILE, RunLayout
from convladder.tools.files import LinkError, atomic_write_bytes

# What the driver and a node exchange (a chain's entries, the files and answers): bumped when that changes, so that a
# node with another checkout of convladder is refused in one line (2: each step names its own notebook, per seed)
PROTOCOL = 2
WATCH_SECONDS = 0.25  # how often a node looks for a new checkpoint (one per epoch; an epoch takes seconds or more)


class ClusterError(RuntimeError):
    """A cluster run cannot start or go on for a reason the user can mend; the message says how, in one line."""


# --- on the node ---------------------------------------------------------------------------------------------------

def node_data(wanted: dict) -> str:
    """The node's CIFAR-10 folder holding the very files the driver trains on (the same checksum): the driver's
    folder when that path holds CIFAR-10's batch files on the node (nothing is downloaded or extracted there: on a
    node it may be anyone's folder), else the node's own (CONVLADDER_DATA, or data/cifar10 downloaded with its md5
    checked); ClusterError when the node's files differ from the driver's."""
    from convladder.core.data import BATCHES_DIR, DataError, load_cifar10

    tried = []
    for candidate, download in [(wanted["data_dir"], False), (None, True)]:
        if candidate is not None and not (Path(candidate) / BATCHES_DIR).is_dir():
            continue  # nothing is extracted or downloaded there either
        try:
            data = load_cifar10(candidate, download=download)
        except DataError:
            if download:
                raise
            continue
        if data.checksum == wanted["checksum"]:
            return str(data.root)
        tried.append(str(data.root))
    raise ClusterError(f"node {_node()}: CIFAR-10 in {' and '.join(tried)} has other files than the driver's (checksum "
                       f"{wanted['checksum'][:12]}...): give every node the official archive (CONVLADDER_DATA)")


def task_folder(key: str) -> tuple[Path, int]:
    """A task's own empty folder on this node (<tmp>/convladder-tasks/<key>) and the open file whose lock (released by
    the system when the worker dies) says it is in use. Leftovers of tasks that died (a cancelled or killed worker
    cannot clean up) are removed first: each folder whose lock nobody holds."""
    import fcntl

    parent = Path(tempfile.gettempdir()) / "convladder-tasks"
    parent.mkdir(mode=0o700, exist_ok=True)
    if parent.is_symlink() or parent.stat().st_uid != os.getuid():
        raise ClusterError(f"node {_node()}: {parent} is not a folder of this user's; remove it and run again")
    sweep_leftovers(parent)
    while True:
        fd = os.open(parent / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a sweeper may have removed the file between our open and our lock: then lock a new one
            if os.stat(parent / f"{key}.lock").st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    work = parent / key
    shutil.rmtree(work, ignore_errors=True)  # an earlier attempt of this very task on this node
    work.mkdir()
    return work, fd


def sweep_leftovers(parent: Path) -> list[Path]:
    """Remove the task folders under `parent` whose task is gone (nobody holds its lock); returns them."""
    import fcntl

    removed = []
    for lock in parent.glob("*.lock"):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its task runs
            os.close(fd)
            continue
        shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
        lock.unlink(missing_ok=True)
        os.close(fd)
        removed.append(lock.with_suffix(""))
    return removed


def _node() -> str:
    import ray

    return ray.util.get_node_ip_address()


class CheckpointWatcher(threading.Thread):
    """Ships each checkpoint the training writes (`relatives`, under the layout's root) to the driver's Tracker, with a
    progress line; training itself is unchanged. A checkpoint is written atomically, so a read gets a whole one."""

    def __init__(self, root: Path, relatives: dict[str, str], tracker, key: str):
        super().__init__(daemon=True)
        self.root, self.relatives, self.tracker, self.key = root, relatives, tracker, key
        self.stopped = threading.Event()
        self.seen = {rel: self._signature(rel) for rel in relatives}  # the files shipped to us: the driver has them

    def _signature(self, rel: str):
        try:
            found = (self.root / rel).stat()
        except FileNotFoundError:
            return None
        return found.st_mtime_ns, found.st_size

    def run(self) -> None:
        while not self.stopped.wait(WATCH_SECONDS):
            self.scan()

    def scan(self) -> None:
        import ray
        import torch

        for rel, label in self.relatives.items():
            signature = self._signature(rel)
            if signature is None or signature == self.seen[rel]:
                continue
            content = (self.root / rel).read_bytes()
            if self._signature(rel) != signature:  # replaced while read: the next look ships the newer one
                continue
            state = torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
            history, epochs = state["history"], len(state["history"]["epoch"])
            line = (f"{label}: epoch {epochs}/{state['config']['epochs']} (val_acc {history['val_acc'][-1]:.3f}) "
                    f"on {_node()}")
            ray.get(self.tracker.keep.remote(self.key, rel, epochs, content, line))
            self.seen[rel] = signature

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.join()
        self.scan()  # the last epoch's checkpoint, written after the thread's last look, is shipped too


def _watched(chain: list[dict]) -> dict[str, str]:
    """The checkpoints a chain's training writes, by path under the layout, with a label for progress lines: each
    seed's, and the one a retrain of a stale seed writes beside it (its staging folder)."""
    found = {}
    for entry in chain:
        name = entry["parameters"]["name"]
        for seed in entry["parameters"]["seeds"]:
            label = f"{entry['label']}, seed {seed}"
            found[f"{name}/seed{seed}/{CHECKPOINT_FILE}"] = label
            found[f"{name}/.seed{seed}.retrain/{CHECKPOINT_FILE}"] = f"{label} (retrain)"
    return found


def node_main(chain: list[dict], shipped: dict[str, bytes], wanted: dict, threads: int, tracker, key: str) -> dict:
    """One chain's task on a node: the training steps, in a temporary folder holding the shipped files and, on a
    retry, the latest checkpoints the Tracker kept; answers with the chain's files (by path under the layout), the
    seconds of each step and the failure of a notebook (not raised: a user error is not retried)."""
    import ray

    from convladder.core.versions import CODE_VERSIONS
    from convladder.pipeline import Step, StepFailed, execute

    work, lock = task_folder(key)
    try:
        if wanted.get("protocol") != PROTOCOL:
            raise ClusterError(f"node {_node()} has convladder of another cluster protocol ({PROTOCOL}, the driver "
                               f"{wanted.get('protocol')}): install the driver's checkout on every node")
        if dict(CODE_VERSIONS) != wanted["code_versions"]:
            raise ClusterError(f"node {_node()} has convladder code of other versions ({dict(CODE_VERSIONS)}, the "
                               f"driver {wanted['code_versions']}): install the driver's checkout on every node")
        data_dir = node_data(wanted)
        layout = RunLayout(work / "runs")
        latest = ray.get(tracker.latest.remote(key))
        for rel, content in {**shipped, **{rel: content for rel, (_, content) in latest.items()}}.items():
            (layout.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (layout.root / rel).write_bytes(content)
        resumed = "".join(f", resuming {rel} from shipped epoch {epochs}" for rel, (epochs, _) in sorted(latest.items()))
        seconds, failed = {}, ""
        with CheckpointWatcher(layout.root, _watched(chain), tracker, key):
            for entry in chain:
                name = entry["parameters"]["name"]
                output = layout.run(name) / entry["notebook"]
                step = Step("10_train", output, {**entry["parameters"], "run_dir": str(layout.root),
                            "data_dir": data_dir, "threads": threads}, entry["label"])
                tracker.say.remote(f"started: {step.label} on {_node()} (worker pid {os.getpid()}){resumed}")
                try:
                    seconds[step.label] = execute(step, layout, html=False, log=output.with_suffix(".log"))
                except StepFailed as err:
                    failed = str(err)
                    break
        files = chain_files(layout, chain)
        return {"files": files, "seconds": seconds, "failed": failed, "root": str(layout.root), "node": _node(),
                "bytes": sum(map(len, files.values()))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        (work.parent / f"{key}.lock").unlink(missing_ok=True)
        os.close(lock)


def chain_files(layout: RunLayout, chain: list[dict]) -> dict[str, bytes]:
    """What a chain made, by path under the layout: each run's executed notebook and log, and every regular file of
    the seed folders it trained (not the lock files and temporaries beside them, not links)."""
    files = {}
    for folder in chain_folders(layout, [entry["parameters"] for entry in chain]):
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                files[path.relative_to(layout.root).as_posix()] = path.read_bytes()
    return files


def chain_folders(layout: RunLayout, parameters: list[dict]) -> list[Path]:
    """The folders a chain's steps (their parameters) write into: each run's folder and its seeds' folders."""
    return [folder for p in parameters for folder in [layout.run(p["name"]), *(layout.seed(p["name"], s) for s in p["seeds"])]]


# --- on the driver -------------------------------------------------------------------------------------------------

def inside(root: Path, relative: str) -> Path:
    """`root / relative` for a path a node sent: relative, without `..`, and through no symbolic link; LinkError or
    ValueError otherwise."""
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise ValueError(f"a node sent a file named {relative!r}, which does not stay in the run folder; nothing written")
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise LinkError(f"{path} is a symbolic link; convladder does not write through links: remove it and run "
                            f"the same command again")
    return path


def write_back(files: dict[str, bytes], layout: RunLayout, folders: list[Path]) -> list[Path]:
    """Write a chain's files into the run layout, each atomically: checkpoints first, results last (results name the
    checkpoint's digest), as a local retrain installs them. Only files directly in the chain's own `folders`
    (chain_folders) are taken: a node cannot write a report or another run's files (ValueError, nothing written). A
    seed file there that convladder does not recognise as its own is moved aside, not replaced; a link in the way is
    refused (LinkError)."""
    from convladder.core.runs import foreign_files, move_aside

    targets = {rel: inside(layout.root, rel) for rel in files}  # every name checked before anything is written
    allowed = {folder.relative_to(layout.root).as_posix() for folder in folders}
    strays = sorted(rel for rel in files if PurePosixPath(rel).parent.as_posix() not in allowed)
    if strays:
        raise ValueError(f"a node sent files outside its runs' folders ({', '.join(strays[:3])}); nothing written: "
                         f"install the driver's checkout on every node")
    rank = {CHECKPOINT_FILE: 0, RESULTS_FILE: 2}
    written = []
    for rel in sorted(files, key=lambda r: (rank.get(PurePosixPath(r).name, 1), r)):
        target = targets[rel]
        why = foreign_files(target.parent).get(target)
        if why:
            move_aside(target, why)
        atomic_write_bytes(files[rel], target)
        written.append(target)
    return written


def keep_checkpoints(latest: dict[str, tuple[int, bytes]], chain, layout: RunLayout, checksum: str | None) -> list[str]:
    """Write shipped checkpoints into the run layout where training would have written them and can continue them
    (the folder holds no run, or the same run with fewer epochs); returns the paths written. A folder holding a
    finished or stale run is left as it is."""
    from convladder.core.config import TrainConfig
    from convladder.core.runs import run_state

    configs = {step.parameters["name"]: TrainConfig.from_dict(step.parameters["planned"]["config"]) for step in chain}
    kept = []
    for rel, (epochs, content) in sorted(latest.items()):
        name, folder = PurePosixPath(rel).parts[0], PurePosixPath(rel).parts[1]
        seed = int(re.search(r"seed(\d+)", folder).group(1))
        target = inside(layout.root, rel)
        state = run_state(target.parent, replace(configs[name], seed=seed), checksum) if checksum else None
        if state is not None and (state.kind == "new" or (state.kind == "resumable" and epochs > state.epochs_done)):
            atomic_write_bytes(content, target)
            kept.append(f"{rel} (epoch {epochs})")
    return kept
