"""Are the recorded numbers those of the weights? Each finished seed's test accuracy measured again from
its checkpoint, as training measured it (its config's test split, autocast and batch), against what its
results.json records. Nothing else ties an edited results.json to the run: the checkpoint's digest in
results.json (runs.file_digest) catches swapped weights, this catches edited numbers.

    convladder verify --profile study            # every seed of results/study
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from convladder.results.layout import CHECKPOINT_FILE, RESULTS_FILE

# Measured again on another CPU, bfloat16 autocast may round a few borderline images the other way: the
# independent re-evaluation of the study archive (fp32, own layers) agreed within 0.0015.
TOLERANCE = 0.002


@dataclass(frozen=True)
class Check:
    folder: Path
    recorded: float
    measured: float | None  # None: the checkpoint could not be used (`problem` says why)
    problem: str = ""

    @property
    def holds(self) -> bool:
        return self.measured is not None and abs(self.measured - self.recorded) <= TOLERANCE


def check_seed(folder: Path, data_dir=None, dataset=None) -> Check:
    """Measure one seed folder's test accuracy again from its checkpoint."""
    from convladder.core.config import TrainConfig
    from convladder.core.data import get_splits, load_cifar10
    from convladder.tools.files import CheckpointError
    from convladder.core.predict import load_trained_model
    from convladder.results.records import load_results
    from convladder.core.training import Trainer

    results = load_results(folder)
    recorded = results["final"]["test_acc"]
    if not (folder / CHECKPOINT_FILE).exists():
        return Check(folder, recorded, None, "no checkpoint kept")
    try:
        model, _ = load_trained_model(folder)
    except (CheckpointError, OSError, ValueError) as err:
        return Check(folder, recorded, None, str(err).splitlines()[0])
    config = TrainConfig.from_dict(results["config"])
    dataset = dataset or load_cifar10(data_dir)
    if dataset.checksum != results["data"]["checksum"]:
        return Check(folder, recorded, None, "trained on other data than this (its checksum differs)")
    test = get_splits(dataset, config.train_size, config.val_size, config.test_size, config.split_seed)["test"]
    trainer = Trainer(model, test, test, config, device="cpu")
    return Check(folder, recorded, trainer.evaluate(test)["acc"])


def verify_runs(run_dir: str | os.PathLike, data_dir=None, progress: bool = True) -> list[Check]:
    """Every finished seed under `run_dir` (`<run>/seed<k>/results.json`), measured again."""
    from convladder.core.data import load_cifar10
    from convladder.results.records import DamagedResults

    dataset = load_cifar10(data_dir)
    checks = []
    folders = sorted(path.parent for path in Path(run_dir).glob(f"*/seed*/{RESULTS_FILE}"))
    for number, folder in enumerate(folders, start=1):
        start = time.perf_counter()
        try:
            check = check_seed(folder, dataset=dataset)
        except DamagedResults as err:
            check = Check(folder, float("nan"), None, str(err))
        checks.append(check)
        if progress:
            measured = "--" if check.measured is None else f"{check.measured:.4f}"
            flag = "" if check.holds else "  <- " + (check.problem or "DIFFERS")
            print(f"[{number}/{len(folders)}] {folder.relative_to(run_dir)}: recorded {check.recorded:.4f}, measured "
                  f"{measured} ({time.perf_counter() - start:.1f} s){flag}", flush=True)
    return checks
