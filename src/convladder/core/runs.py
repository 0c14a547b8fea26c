"""One training run from config to `results.json`: data, model, Trainer, test accuracy.

Used by the `10_train` notebook and the CLI alike. Running it again on the same run
folder continues from the last finished epoch; a lock file keeps two processes from
training into one folder at once.
"""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from convladder.core.config import TTA_SHIFTS, TrainConfig, fixed_plan
from convladder.core.data import Split, load_cifar10, get_splits
from convladder.core.models import count_parameters, create_model, layer_records, predict_proba, scale_initial_weights
from convladder.tools import load
from convladder.tools.files import (CheckpointError, LinkError, atomic_write_bytes, atomic_write_text, claim, first_line,
                                    load_checkpoint_file, recorded_path, refuse_links_leaving,
                                    remove_own_temporaries)
from convladder.results.layout import RESULTS_FILE as RESULTS, lock_path, replaced_dir, seed_dir, staging_dir
from convladder.results.records import NewerResults, environment, read_results, write_results
from convladder.core.training import CHECKPOINT, Trainer
from convladder.core.versions import code_version

PROBE_INDEX = 0  # the test image whose probability vector is shown before and after training


class StaleRun(ValueError):
    """A run folder holds a run that cannot be continued with the settings, code or data asked for."""


@dataclass(frozen=True)
class RunState:
    """What a run folder holds for one config: "new" (nothing), "current" (finished with exactly
    this config, code and data), "resumable" (the same settings, code and data, fewer epochs done
    or its results file missing: training continues it) or "stale" (anything else: it must be
    trained again from epoch 0). `reason` says why a run is stale."""

    kind: str
    reason: str = ""
    epochs_done: int = 0


def run_state(run_dir: str | os.PathLike, config: TrainConfig, data_checksum: str) -> RunState:
    """The state of `run_dir` for training `config` on the data with `data_checksum`."""
    run_dir = Path(run_dir)
    checkpoint, results = run_dir / CHECKPOINT, run_dir / RESULTS
    if not checkpoint.exists():
        if results.exists():
            return RunState("stale", f"{results} has no {CHECKPOINT} beside it")
        return RunState("new")
    try:
        state = load_checkpoint_file(checkpoint)
        provenance, saved, done = (state.get("provenance") or {}, TrainConfig.completed(dict(state["config"])),
                                    len(state["history"]["epoch"]))
    except (CheckpointError, KeyError, TypeError) as err:
        return RunState("stale", str(err))
    version = code_version(config.model)
    if provenance.get("code_version") != version:
        return RunState("stale", f"it was trained by other code (version {provenance.get('code_version')}, now "
                                 f"{version})", done)
    if provenance.get("data_checksum") != data_checksum:
        return RunState("stale", "it was trained on other data (the CIFAR-10 files' checksum differs)", done)
    wanted = config.to_dict()
    changed = {k: (v, wanted.get(k)) for k, v in saved.items() if k != "epochs" and wanted.get(k) != v}
    changed.update({k: (None, v) for k, v in wanted.items() if k not in saved})
    if changed:
        listed = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in changed.items())
        return RunState("stale", f"it was trained with other settings ({listed})", done)
    if done > config.epochs:
        return RunState("stale", f"it holds {done} finished epochs, more than the {config.epochs} asked for "
                                 f"(ask for at least {done})", done)
    if config.fixed_length and saved["epochs"] != config.epochs:
        return RunState("stale", f"its {fixed_plan(config)} spans {saved['epochs']} epochs, not {config.epochs}, "
                                 f"and cannot be extended", done)
    try:
        finished = read_results(results)
        if (done == config.epochs
            and TrainConfig.completed(finished["config"]) == wanted
            and finished["code_version"] == version
            and finished["data"]["checksum"] == data_checksum
            # results that name other weights than the checkpoint's (a swapped checkpoint): measured again
            and finished["checkpoint_sha256"] in (None, file_digest(checkpoint))
            # a retrain that finished but was not yet installed (a crash in _install): _tidy installs it
            and not (staging_dir(run_dir) / RESULTS).exists()
        ):
            return RunState("current", epochs_done=done)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or damaged results: continuing the run writes them again
    return RunState("resumable", epochs_done=done)


def file_digest(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_current(run_dir: str | os.PathLike, config: TrainConfig, data_checksum: str) -> bool:
    """True when `run_dir` holds a finished run of exactly this config, code and data, with a
    checkpoint that loads."""
    return run_state(run_dir, config, data_checksum).kind == "current"


# --- the run folder: lock, leftovers of a crash, retraining beside the old run ------------

class RunLocked(RuntimeError):
    """Another process is training into the same run folder."""


@contextmanager
def run_lock(run_dir: Path):
    """Hold the run folder's lock (an OS file lock, released by the system if the process dies)."""
    run_dir = Path(run_dir)
    path = lock_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.with_name(path.name + ".pid")  # for the message only; the lock itself decides
    claim(path)  # the lock opens its file truncating it: never through a planted link
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = f"process {int(owner.read_text())}"
        except (OSError, ValueError):
            holder = "another process"
        raise RunLocked(
            f"{run_dir} is in use by {holder} (lock {path}). Wait for it to finish, or choose another run folder"
        ) from None
    try:
        try:
            atomic_write_text(str(os.getpid()), owner)
        except OSError:  # a full disk: the message will say "another process"
            pass
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


# The files training writes into a seed folder; a retrain replaces these and nothing else (a user's notes
# or plots beside them stay), and only when they are recognisably convladder's.
SEED_FILES = (CHECKPOINT, RESULTS)


def refuse_newer_results(run_dir: Path) -> None:
    """A newer convladder's finished run is neither continued, retrained nor moved aside: NewerResults (damaged or
    missing results are left to the run's own checks)."""
    try:
        if (run_dir / RESULTS).is_file() and not (run_dir / RESULTS).is_symlink():
            read_results(run_dir / RESULTS)
    except NewerResults as err:
        raise NewerResults(f"{first_line(err)}; nothing was changed (or train into another run folder)") from None
    except (OSError, ValueError):
        pass


def foreign_files(run_dir: Path) -> dict[Path, str]:
    """The seed files in `run_dir` that convladder cannot recognise as its own, each with why: a results.json
    that is not a run's results, a checkpoint.pt that does not load as a convladder checkpoint, or a link in
    place of either. A retrain would replace them: it moves them aside instead (`move_aside`)."""
    found = {}
    for name in SEED_FILES:
        path = run_dir / name
        if path.is_symlink():
            found[path] = "a symbolic link"
        elif path.exists():
            try:
                if name == RESULTS:
                    read_results(path)
                elif not {"config", "history"} <= set(load_checkpoint_file(path)):
                    raise CheckpointError("weights without a training state")
            except (OSError, ValueError) as err:
                found[path] = first_line(err)
    return found


# Why a file is moved aside, by the mark its new name gets: what the message says of it, before the detail.
MOVED_ASIDE = {"unrecognised": "is not convladder's", "stale": "was trained by other code, data or experiment"}


def move_aside(path: Path, why: str, mark: str = "unrecognised") -> Path:
    """Rename `path` (a file, or a link: never what it points to) to a free `<name>.<mark>[.k]` beside it, saying so
    with MOVED_ASIDE[mark] and `why`."""
    target, k = path.with_name(f"{path.name}.{mark}"), 1
    while target.exists() or target.is_symlink():
        target, k = path.with_name(f"{path.name}.{mark}.{k}"), k + 1
    os.replace(path, target)
    print(f"{path} {MOVED_ASIDE[mark]} ({why}): moved aside to {target.name}, not deleted", flush=True)
    return target


def _install(staging: Path, run_dir: Path) -> None:
    """Move a finished retrain's seed files from `staging` over those of `run_dir` (the checkpoint first, the
    results last), then remove the emptied staging folder. A crash in between is finished by `_tidy`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for path, why in foreign_files(run_dir).items():  # what appeared there while the retrain trained
        if (staging / path.name).exists():
            move_aside(path, why)
    for name in SEED_FILES:
        if (staging / name).exists():
            os.replace(staging / name, run_dir / name)
    remove_own_temporaries(staging, SEED_FILES)
    try:
        staging.rmdir()
    except OSError:  # something else is in it: not ours to delete
        pass


def _tidy(run_dir: Path) -> None:
    """Finish a retrain's install that a crash interrupted, and drop our half-written temporary files."""
    staging, old = staging_dir(run_dir), replaced_dir(run_dir)
    if old.is_dir() and not old.is_symlink() and not run_dir.exists():  # a swap of an earlier version, interrupted
        os.replace(old, run_dir)
    if (staging / RESULTS).exists() and not staging.is_symlink():
        _install(staging, run_dir)
    remove_own_temporaries(run_dir, SEED_FILES)  # half-written files of our atomic writes (not a user's)
    remove_own_temporaries(staging, SEED_FILES)


def _clear_staging(staging: Path) -> None:
    """Remove an unusable retrain's own files from `staging` (a staging folder holds nothing else of ours)."""
    for name in SEED_FILES:
        if (staging / name).is_file() and not (staging / name).is_symlink():
            (staging / name).unlink()


def check_run_name(name: str) -> str:
    """A run name is one folder name: no path separators, not "." or ".."."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name != name.strip():
        raise ValueError(f"run name {name!r} must be a plain folder name (no '/', '\\', '..' or surrounding spaces)")
    return name


def train_run(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    name: str | None = None,
    resume_from: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    restart: bool = False,
    retrain_stale: bool = False,
    recipe: dict | None = None,
) -> dict:
    """Train (or continue) one run and write its `results.json`; returns the results.

    A run folder holding a run of the same settings, code and data is continued from its last
    finished epoch. One that cannot be continued (see `run_state`) is refused with the reason,
    unless `retrain_stale` (or `restart`, which always starts over) asks to train it again from
    epoch 0: the new run trains beside the old one, which is replaced only once the new run has
    finished, so a crash in between loses nothing (the next call continues the new run).

    `resume_from` names another run folder whose checkpoint this run starts from, as the
    study continued GAP from 120 to 240 epochs (a folder of seeds gives the same seed's).

    `recipe`: the named recipe the plan trained `config` with ({"name", "changes"}: plan/recipes.py),
    recorded as it is; without it the results record none (a reader takes the closest named recipe).
    """
    run_dir = Path(run_dir)
    name = check_run_name(name or config.model)
    if resume_from is not None and not (Path(resume_from) / CHECKPOINT).exists():
        if (seed_dir(resume_from, config.seed) / CHECKPOINT).exists():
            resume_from = seed_dir(resume_from, config.seed)
    if run_dir.is_symlink() or run_dir.parent.is_symlink():
        raise LinkError(f"{run_dir} is (or lies in) a symbolic link; convladder trains only into real folders: "
                        f"train into the folder the link points to, or another (--seed-dir)")
    refuse_links_leaving(run_dir)
    with run_lock(run_dir):
        _tidy(run_dir)
        refuse_newer_results(run_dir)
        wall_start, cpu_start = time.perf_counter(), load.sample()
        dataset = load_cifar10(data_dir)
        state = run_state(run_dir, config, dataset.checksum)
        target = run_dir
        if restart or state.kind == "stale":
            if not (restart or retrain_stale):
                raise StaleRun(
                    f"{run_dir} cannot be continued: {state.reason}. Pass --restart (notebooks: restart=True) to "
                    f"train it again from epoch 0 (the old run is kept until the new one has finished), or "
                    f"choose another run folder"
                )
            staging = staging_dir(run_dir)
            if state.kind != "new" and (staging.is_symlink() or (staging.exists() and not staging.is_dir())):
                raise LinkError(f"{staging}, where a retrain of {run_dir} trains, is not a folder: move it "
                                f"elsewhere and run again; nothing was changed")
            for path, why in foreign_files(run_dir).items():  # a retrain replaces only what it recognises
                move_aside(path, why)
            if state.kind != "new":
                target = staging
                for path, why in foreign_files(target).items():
                    move_aside(path, why)
                # a retrain that a crash interrupted (or finished but did not swap in) is continued
                if run_state(target, config, dataset.checksum).kind == "stale":
                    _clear_staging(target)
                print(f"{run_dir}: {state.reason or 'a restart was asked for'}; training again from epoch 0 in "
                      f"{target}, the old run stays until the new one has finished (then its {' and '.join(SEED_FILES)} "
                      f"are replaced; other files there are kept)", flush=True)
        target.mkdir(parents=True, exist_ok=True)
        if resume_from is not None and not (target / CHECKPOINT).exists():
            source = Path(resume_from) / CHECKPOINT
            if not source.exists() or not (Path(resume_from) / RESULTS).exists():
                raise FileNotFoundError(f"cannot continue from {resume_from}: it is not a finished run (no {RESULTS}); "
                                        f"train it to the end first")
            atomic_write_bytes(source.read_bytes(), target / CHECKPOINT)  # a dangling link there is replaced
            if run_state(target, config, dataset.checksum).kind == "stale":
                (target / CHECKPOINT).unlink()
                raise StaleRun(f"cannot continue from {resume_from}: "
                               f"{run_state(source.parent, config, dataset.checksum).reason}; train it again first")

        results = _train(config, target, dataset, name, resume_from, device, progress)
        results["wall_seconds"] = time.perf_counter() - wall_start  # this call alone
        results["beside_cores"] = load.others_cores(cpu_start, load.sample())  # what else ran meanwhile (tools.load)
        results["checkpoint_sha256"] = file_digest(target / CHECKPOINT)  # ties these numbers to those weights
        if recipe is not None:
            results["recipe"] = recipe
        unrecognised = foreign_files(target).get(target / RESULTS)  # e.g. a results.json edited out of shape
        if unrecognised:
            move_aside(target / RESULTS, unrecognised)
        write_results(results, target)
        if target != run_dir:
            _install(target, run_dir)
        return results


def _train(config: TrainConfig, run_dir: Path, dataset, name: str, resume_from, device: str, progress: bool) -> dict:
    splits = get_splits(dataset, config.train_size, config.val_size, config.test_size, config.split_seed)
    if config.train_split == "train+val":  # final runs: every training image (validation no longer held out)
        splits["train"] = Split(torch.cat([splits["train"].images, splits["val"].images]),
                                torch.cat([splits["train"].labels, splits["val"].labels]))
    torch.manual_seed(config.seed)
    model = create_model(config.model, study_softmax=config.study_softmax, without=config.left_out)
    scale_initial_weights(model, config.init_scale)
    if hasattr(model, "init_from_data"):  # a data-dependent initialisation (model H's whitening layer)
        model.init_from_data(splits["train"].images)
    probe = splits["test"].images[PROBE_INDEX : PROBE_INDEX + 1].float() / 255
    # The seeded initial weights, before any checkpoint is loaded: the same on every call.
    proba_before = predict_proba(model, probe)[0].tolist()
    version = code_version(config.model)
    provenance = {"code_version": version, "data_checksum": dataset.checksum}
    trainer = Trainer(model, splits["train"], splits["val"], config, run_dir=run_dir, device=device,
                      provenance=provenance)

    history = trainer.fit(config.epochs, progress=progress)
    evaluation_start = time.perf_counter()
    final = {
        "train_acc": history["train_acc"][-1],
        "train_loss": history["train_loss"][-1],
        "val_acc": history["val_acc"][-1],
        "val_loss": history["val_loss"][-1],
    }
    test = trainer.evaluate(splits["test"])
    final.update(test_acc=test["acc"], test_loss=test["loss"])
    # train_acc is the mean over the last epoch's batches in training mode (dropout on), as the study
    # measured it; the generalisation gap needs the train split measured as validation is
    final["train_acc_eval"] = trainer.evaluate(splits["train"])["acc"]
    if config.augment:  # trained with flips and crops: also the accuracy with test-time augmentation
        final["test_acc_flip"] = trainer.evaluate_tta(splits["test"])
        final["test_acc_tta"] = trainer.evaluate_tta(splits["test"], TTA_SHIFTS)
    evaluation_seconds = time.perf_counter() - evaluation_start

    return {
        "name": name,
        "config": config.to_dict(),
        "environment": environment(trainer.device),
        "data": {
            "checksum": dataset.checksum,
            "root": recorded_path(dataset.root),
            "class_names": list(dataset.class_names),
            "sizes": {k: len(v) for k, v in splits.items()},
        },
        "parameters": count_parameters(trainer.model),
        "layers": layer_records(trainer.model),
        "history": history,
        "final": final,
        "probe_index": PROBE_INDEX,
        "probe_label": int(splits["test"].labels[PROBE_INDEX]),
        "proba_before": proba_before,
        "proba_after": predict_proba(trainer.model, probe)[0].tolist(),
        "continued_from": str(resume_from) if resume_from is not None else None,
        "code_version": version,
        "train_seconds": sum(history["epoch_seconds"]),  # every epoch's, also an earlier call's that this run continues
        # the final evaluation: test (plain, flipped, test-time augmented) and training-split accuracy
        "evaluation_seconds": evaluation_seconds,
    }
