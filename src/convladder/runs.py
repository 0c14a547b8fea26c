"""One training run from config to `results.json`: data, model, Trainer, test accuracy.

Used by the `10_train` notebook and the CLI alike. Running it again on the same run
folder continues from the last finished epoch; a lock file keeps two processes from
training into one folder at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from convladder.config import TTA_SHIFTS, TrainConfig
from convladder.data import load_cifar10, get_splits
from convladder.models import count_parameters, create_model, predict_proba
from convladder.io import read_json
from convladder.results import RESULTS, environment, seed_dir, write_results
from convladder.training import CHECKPOINT, Trainer

LOCK = ".lock"
PROBE_INDEX = 0  # the test image whose probability vector is shown before and after training


# The modules whose source decides a training result: a change to any of them makes a
# finished run stale for `run_all`; a change to the report or the plots does not.
TRAINING_SOURCES = ("augment.py", "blocks.py", "config.py", "data.py", "models.py", "runs.py", "training.py")


def code_version() -> str:
    """A digest of the training code's source."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for name in TRAINING_SOURCES:
        digest.update(name.encode() + (package / name).read_bytes())
    return digest.hexdigest()[:16]


def is_current(run_dir: str | os.PathLike, config: TrainConfig, data_checksum: str) -> bool:
    """True when `run_dir` holds a finished run of exactly this config, code and data."""
    path = Path(run_dir) / RESULTS
    if not path.exists():
        return False
    try:
        results = read_json(path)
        return (
            results["config"] == config.to_dict()
            and results.get("code_version") == code_version()
            and results["data"]["checksum"] == data_checksum
            and (Path(run_dir) / CHECKPOINT).exists()
        )
    except (ValueError, KeyError):
        return False


def clear_run(run_dir: str | os.PathLike) -> None:
    """Remove a run's checkpoint and results so that it trains from scratch."""
    for name in (CHECKPOINT, RESULTS):
        (Path(run_dir) / name).unlink(missing_ok=True)


class RunLocked(RuntimeError):
    """Another process is training into the same run folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_lock(run_dir: Path):
    """Hold `run_dir/.lock` for the duration; a lock left by a dead process is taken over."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid) and pid != os.getpid():
                raise RunLocked(
                    f"{run_dir} is in use by process {pid} (lock file {lock}). Wait for it to finish, "
                    f"or choose another run folder; if no such process is running, delete the lock file."
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise RunLocked(f"could not take the lock {lock}; delete it if no run is using {run_dir}")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def train_run(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    name: str | None = None,
    resume_from: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Train (or continue) one run and write its `results.json`; returns the results.

    `resume_from` names another run folder whose checkpoint this run starts from, as the
    study continued GAP from 120 to 240 epochs (a folder of seeds gives the same seed's).
    """
    run_dir = Path(run_dir)
    if resume_from is not None and not (Path(resume_from) / CHECKPOINT).exists():
        if (seed_dir(resume_from, config.seed) / CHECKPOINT).exists():
            resume_from = seed_dir(resume_from, config.seed)
    with run_lock(run_dir):
        if resume_from is not None and not (run_dir / CHECKPOINT).exists():
            source = Path(resume_from) / CHECKPOINT
            if not source.exists():
                raise FileNotFoundError(f"cannot continue from {resume_from}: it has no {CHECKPOINT}; train it first")
            shutil.copyfile(source, run_dir / CHECKPOINT)

        wall_start = time.perf_counter()
        dataset = load_cifar10(data_dir)
        splits = get_splits(dataset, config.train_size, config.val_size, config.test_size, config.split_seed)

        torch.manual_seed(config.seed)
        model = create_model(config.model, study_softmax=config.study_softmax)
        probe = splits["test"].images[PROBE_INDEX : PROBE_INDEX + 1].float() / 255
        # The seeded initial weights, before any checkpoint is loaded: the same on every call.
        proba_before = predict_proba(model, probe)[0].tolist()
        trainer = Trainer(model, splits["train"], splits["val"], config, run_dir=run_dir, device=device)

        history = trainer.fit(config.epochs, progress=progress)
        final = {
            "train_acc": history["train_acc"][-1],
            "train_loss": history["train_loss"][-1],
            "val_acc": history["val_acc"][-1],
            "val_loss": history["val_loss"][-1],
        }
        test = trainer.evaluate(splits["test"])
        final.update(test_acc=test["acc"], test_loss=test["loss"])
        if config.augment:  # trained with flips and crops: also the accuracy with test-time augmentation
            final["test_acc_flip"] = trainer.evaluate_tta(splits["test"])
            final["test_acc_tta"] = trainer.evaluate_tta(splits["test"], TTA_SHIFTS)

        results = {
            "name": name or config.model,
            "config": config.to_dict(),
            "environment": environment(trainer.device),
            "data": {
                "checksum": dataset.checksum,
                "root": str(dataset.root),
                "class_names": list(dataset.class_names),
                "sizes": {k: len(v) for k, v in splits.items()},
            },
            "parameters": count_parameters(trainer.model),
            "history": history,
            "final": final,
            "probe_index": PROBE_INDEX,
            "probe_label": int(splits["test"].labels[PROBE_INDEX]),
            "proba_before": proba_before,
            "proba_after": predict_proba(trainer.model, probe)[0].tolist(),
            "continued_from": str(resume_from) if resume_from is not None else None,
            "code_version": code_version(),
            # training seconds over all epochs, also those of an earlier call this run continues
            "train_seconds": sum(history["epoch_seconds"]),
            "wall_seconds": time.perf_counter() - wall_start,  # this call alone
        }
        write_results(results, run_dir)
        return results
