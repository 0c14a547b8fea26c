"""CIFAR-10: find or download it, read the official python format safely, split and subset it.

The root folder holds `cifar-10-batches-py/` (the official "python version") or the
archive `cifar-10-python.tar.gz`. The root comes from `--data-dir`, else the
`CONVLADDER_DATA` environment variable, else `data/cifar10`. The batch files are decoded on
every load (well under a second); nothing is written beside them or anywhere else, so a shared,
read-only folder works unchanged.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convladder.core.config import TRAIN_SIZE, VAL_SIZE


DATA_ENV = "CONVLADDER_DATA"
DEFAULT_ROOT = Path("data/cifar10")
BATCHES_DIR = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
IMAGES_PER_FILE = 10_000
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataError(RuntimeError):
    """The data is missing or not valid CIFAR-10; the message says what to do."""


def resolve_root(data_dir: str | os.PathLike | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return DEFAULT_ROOT


# --- finding or downloading -------------------------------------------------------------

def ensure_dataset(root: Path, download: bool = True) -> Path:
    """Return the folder holding the batch files, extracting or downloading them if needed."""
    batches = root / BATCHES_DIR
    if batches.is_dir():
        return batches
    archive = root / ARCHIVE
    if not archive.exists() and download:
        _download(root)
    if archive.exists():
        _extract(archive, root)
        return batches
    raise DataError(
        f"CIFAR-10 not found: looked for {batches} and {archive}.\n"
        f"Provide it in one of these ways:\n"
        f"  - pass --data-dir (or set {DATA_ENV}) to a folder holding {BATCHES_DIR}/ or {ARCHIVE};\n"
        f"  - download {URL} into {root} (md5 {ARCHIVE_MD5});\n"
        f"  - run again with network access and the download happens by itself."
    )


def _download(root: Path) -> None:
    from torchvision.datasets.utils import download_url

    created = [folder for folder in (root, *root.parents) if not folder.exists()]
    try:
        download_url(URL, str(root), filename=ARCHIVE, md5=ARCHIVE_MD5)
    except Exception as err:  # offline, proxy, checksum: all end in the same advice
        partial = root / ARCHIVE
        if partial.exists():
            partial.unlink()
        for folder in created:  # innermost first: a folder made only for the download goes again
            try:
                folder.rmdir()
            except OSError:
                break
        print(f"Download of CIFAR-10 failed ({type(err).__name__}: {err}).")


def _extract(archive: Path, root: Path) -> None:
    from torchvision.datasets.utils import check_md5

    if not check_md5(str(archive), ARCHIVE_MD5):
        raise DataError(
            f"{archive} does not have the official md5 {ARCHIVE_MD5}: it is damaged or not "
            f"CIFAR-10. Delete it and download it again from {URL}."
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(root, filter="data")
    except OSError as err:
        raise DataError(f"could not extract {archive} into {root} ({err}); extract it yourself, or copy the "
                        f"archive to a writable folder and point --data-dir there") from None


# --- reading the python format safely ---------------------------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """Only what the CIFAR-10 batch files need: numpy array reconstruction and plain builtins."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "bytes"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of the CIFAR-10 format")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = _CifarUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path} is missing: the CIFAR-10 folder is incomplete; copy or download it again") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(f"{path} is not a readable CIFAR-10 batch ({err}); the file is damaged or truncated") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, expected the CIFAR-10 dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,), checked."""
    batch = _unpickle(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise DataError(f"{path} has no {key!r} entry (keys: {sorted(batch)}); it is not a CIFAR-10 batch")
    data = np.asarray(batch["data"])
    raw_labels = np.asarray(batch["labels"])
    if raw_labels.ndim != 1 or raw_labels.dtype.kind not in "iu":
        raise DataError(f"{path}: 'labels' must be a list of integers, found {raw_labels.dtype} {raw_labels.shape}")
    labels = raw_labels.astype(np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path}: labels outside 0-9 (min {labels.min()}, max {labels.max()})")
    return data.reshape(-1, 3, 32, 32), labels


def read_class_names(batches: Path) -> tuple[str, ...]:
    meta = _unpickle(batches / META_FILE)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10 or not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{batches / META_FILE}: 'label_names' must be a list of 10 strings, found {names!r:.100}")
    names = tuple(n.decode(errors="replace") if isinstance(n, bytes) else n for n in names)
    if len(set(names)) != 10 or not all(n.strip() for n in names):
        raise DataError(f"{batches / META_FILE}: 'label_names' must be 10 different, non-empty names, found {names!r:.100}")
    return names


# --- the decoded dataset --------------------------------------------------

@dataclass
class Split:
    """Images as one uint8 tensor (N, 3, H, W) and integer labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def float_images(self) -> torch.Tensor:
        """Pixels scaled to [0, 1], as the study's ToTensor did."""
        return self.images.float().div_(255)

    def one_hot(self) -> torch.Tensor:
        """One-hot label vectors, as the study built them with `scatter`."""
        return one_hot(self.labels)

    def subset(self, size: int | None, seed: int = 0) -> "Split":
        """A random subset of `size` images (the whole split for None)."""
        if size is None or size == len(self):
            return self
        if size > len(self):
            raise ValueError(f"subset of {size} images asked from a split of only {len(self)}")
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:size]
        return Split(self.images[idx], self.labels[idx])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=10).tolist()


def one_hot(labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    return torch.zeros(len(labels), num_classes).scatter_(1, labels.view(-1, 1), 1.0)


@dataclass
class Cifar10:
    train: Split  # all 50,000 training images
    test: Split
    class_names: tuple[str, ...]
    checksum: str  # sha256 over the source batch files
    root: Path


def _source_files(batches: Path) -> list[Path]:
    return [batches / name for name in (*TRAIN_FILES, *TEST_FILES, META_FILE)]


def _check_complete(files: list[Path]) -> None:
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise DataError(
            f"{files[0].parent} is missing {', '.join(missing)}; a complete CIFAR-10 folder has "
            f"{', '.join(TRAIN_FILES + TEST_FILES)} and {META_FILE}. Copy or download it again."
        )


def _read_split(batches: Path, names: list[str], images_per_file: int) -> Split:
    parts = [read_batch(batches / name) for name in names]
    for name, (data, _) in zip(names, parts):
        if len(data) != images_per_file:
            raise DataError(f"{batches / name}: {len(data)} images, expected {images_per_file}")
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return Split(images, labels)


def file_checksum(files: list[Path]) -> str:
    total = hashlib.sha256()
    for f in files:
        total.update(f.name.encode())
        total.update(hashlib.sha256(f.read_bytes()).digest())
    return total.hexdigest()


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    images_per_file: int | None = None,
) -> Cifar10:
    """Load all of CIFAR-10 as uint8 tensors, decoded from the batch files every time (no cache: decoding
    the six files takes well under a second, no longer than reading and checking a cache of them did, and
    a cache could claim other data than the files it names).

    `images_per_file` defaults to 10,000 (`IMAGES_PER_FILE`), as in the real data; tests use
    less for tiny synthetic copies.
    """
    images_per_file = images_per_file or IMAGES_PER_FILE
    root = resolve_root(data_dir)
    batches = ensure_dataset(root, download=download)
    files = _source_files(batches)
    _check_complete(files)
    checksum = file_checksum(files)
    train = _read_split(batches, TRAIN_FILES, images_per_file)
    test = _read_split(batches, TEST_FILES, images_per_file)
    class_names = read_class_names(batches)
    return Cifar10(train, test, class_names, checksum, root)


def train_val_split(n: int = TRAIN_SIZE + VAL_SIZE, val_size: int = VAL_SIZE, seed: int = 42):
    """Deterministic index split of the training images into (train, validation)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n - val_size], perm[n - val_size :]


def get_splits(
    dataset: Cifar10,
    train_size: int | None = None,
    val_size: int | None = None,
    test_size: int | None = None,
    split_seed: int = 42,
) -> dict[str, Split]:
    """The study's 42,000 / 8,000 train/validation split plus the test set, optionally subset."""
    n = len(dataset.train)
    val_n = VAL_SIZE if n == TRAIN_SIZE + VAL_SIZE else max(1, n * VAL_SIZE // (TRAIN_SIZE + VAL_SIZE))
    train_idx, val_idx = train_val_split(n, val_n, split_seed)
    full = {
        "train": Split(dataset.train.images[train_idx], dataset.train.labels[train_idx]),
        "val": Split(dataset.train.images[val_idx], dataset.train.labels[val_idx]),
        "test": dataset.test,
    }
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    return {name: split.subset(sizes[name], seed=split_seed) for name, split in full.items()}


def data_facts(dataset: Cifar10, splits: dict[str, Split]) -> dict:
    """What the data notebook records and the report's data section reads: checksum, class names,
    class counts, split sizes, and the per-channel mean and standard deviation of the training
    pixels in [0, 1] (facts only: the models are fed pixels divided by 255, not normalised)."""
    pixels = dataset.train.images.float().div(255)
    full = get_splits(dataset)
    return {
        "checksum": dataset.checksum,
        "class_names": list(dataset.class_names),
        "all_train": len(dataset.train), "all_test": len(dataset.test),
        "train_counts": dataset.train.class_counts(), "test_counts": dataset.test.class_counts(),
        "split_sizes": {name: len(split) for name, split in splits.items()},
        "full_split_sizes": {name: len(split) for name, split in full.items()},
        "train_mean": pixels.mean(dim=(0, 2, 3)).tolist(),
        "train_std": pixels.std(dim=(0, 2, 3)).tolist(),
    }
