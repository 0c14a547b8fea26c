"""Fixtures: tiny CIFAR-10 copies written in the official python format."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from convladder.core.data import BATCHES_DIR, CLASS_NAMES, META_FILE, TEST_FILES, TRAIN_FILES

REAL_DATA = os.environ.get("CONVLADDER_DATA")


def write_cifar(root: Path, images_per_file: int = 20, bytes_keys: bool = True, seed: int = 0) -> Path:
    """Write a learnable fake CIFAR-10 (each class has its own mean colour) in the official layout.

    `bytes_keys` mimics the original Python 2 pickles (keys load as bytes); otherwise keys
    are str, as in the copy under ../shared/cifar10.
    """
    rng = np.random.default_rng(seed)
    batches = root / BATCHES_DIR
    batches.mkdir(parents=True, exist_ok=True)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    colours = rng.integers(0, 256, size=(10, 3))
    for name in TRAIN_FILES + TEST_FILES:
        labels = np.arange(images_per_file) % 10
        rng.shuffle(labels)
        noise = rng.integers(-40, 41, size=(images_per_file, 3, 1024))
        data = np.clip(colours[labels][:, :, None] + noise, 0, 255).astype(np.uint8).reshape(images_per_file, 3072)
        batch = {key("data"): data, key("labels"): labels.tolist(), key("batch_label"): name,
                 key("filenames"): [f"{name}_{i}.png" for i in range(images_per_file)]}
        with open(batches / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    with open(batches / META_FILE, "wb") as fh:
        pickle.dump({key("label_names"): list(CLASS_NAMES), key("num_vis"): 3072}, fh, protocol=2)
    return root


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch) -> Path:
    """A 20-images-per-file CIFAR-10 in a temp folder, accepted as complete by the loader;
    the cache goes to the temp folder too."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("convladder.core.data.IMAGES_PER_FILE", 20)
    return write_cifar(tmp_path / "cifar")


@pytest.fixture(scope="session")
def full_size_cifar(tmp_path_factory) -> Path:
    """A data root with 50,000 / 10,000 images: the real data when CONVLADDER_DATA is set,
    else a synthetic copy of the same size (for notebook and CLI tests on the smoke profile)."""
    if REAL_DATA:
        return Path(REAL_DATA)
    return write_cifar(tmp_path_factory.mktemp("cifar_full"), images_per_file=10_000)


# The suite runs on as many pytest-xdist workers as the machine has cores (`make test`: -n auto, a module's tests on
# one worker). The longest modules start first, so that no long module is left for the end while the other
# workers idle; the order within a module is kept. Measured per module with `pytest --durations=0` (summed over
# setup, call and teardown; 2026-12-06, Intel Xeon, 2 workers: 265, 168, 116, 106, 86, 30, 25 and 18 s, the rest
# under 10 s each).
LONGEST_FIRST = ("test_notebooks.py", "test_cluster.py", "test_report.py", "test_benchmark.py", "test_pipeline.py",
                 "test_study_claims.py", "test_reliability.py", "test_crash_safety.py")


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each module keeps its own order


def pytest_configure(config):
    """On pytest-xdist workers, each worker's PyTorch (and the notebook kernels and subprocesses it starts) uses its
    share of the cores, not all of them: two workers each running two threads on two cores spend their time
    waiting for each other. The training code's own thread settings (`--workers`, notebooks' `threads`) still apply."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        from convladder.tools.hardware import usable_cores

        threads = max(1, usable_cores() // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
