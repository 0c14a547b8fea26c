import pickle
from pathlib import Path
import tarfile

import pytest
import torch

from convladder.core import data
from convladder.core.data import DataError, get_splits, load_cifar10, one_hot, train_val_split

from conftest import write_cifar


def test_loads_official_layout_with_bytes_and_str_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for bytes_keys in (True, False):
        root = write_cifar(tmp_path / f"c{bytes_keys}", images_per_file=20, bytes_keys=bytes_keys)
        ds = load_cifar10(root, download=False, images_per_file=20)
        assert ds.train.images.shape == (100, 3, 32, 32) and ds.train.images.dtype == torch.uint8
        assert ds.test.images.shape == (20, 3, 32, 32)
        assert ds.train.labels.dtype == torch.int64
        assert ds.class_names == data.CLASS_NAMES
        assert ds.train.class_counts() == [10] * 10
        assert len(ds.checksum) == 64


def test_pixel_order_is_rgb_planes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = write_cifar(tmp_path / "c", images_per_file=20)
    with open(root / data.BATCHES_DIR / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    ds = load_cifar10(root, download=False, images_per_file=20)
    # row = 1024 red, 1024 green, 1024 blue, each row-major 32x32
    assert ds.train.images[0, 1, 2, 5] == raw[0, 1024 + 2 * 32 + 5]
    assert ds.train.images[3, 2, 31, 0] == raw[3, 2048 + 31 * 32]


def test_float_images_and_one_hot(tiny_cifar):
    ds = load_cifar10(tiny_cifar, download=False, images_per_file=20)
    x = ds.train.float_images()
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, ds.train.images.float() / 255)
    oh = ds.train.one_hot()
    assert oh.shape == (100, 10) and torch.equal(oh.sum(1), torch.ones(100))
    assert torch.equal(oh.argmax(1), ds.train.labels)
    assert torch.equal(one_hot(torch.tensor([3])), torch.eye(10)[3:4])


def test_split_is_deterministic_disjoint_and_the_study_size():
    train, val = train_val_split(50_000, 8_000, seed=42)
    assert len(train) == 42_000 and len(val) == 8_000
    assert len(set(train.tolist()) | set(val.tolist())) == 50_000
    again = train_val_split(50_000, 8_000, seed=42)
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])
    assert not torch.equal(val, train_val_split(50_000, 8_000, seed=1)[1])


def test_get_splits_and_subsets(tiny_cifar):
    ds = load_cifar10(tiny_cifar, download=False, images_per_file=20)
    splits = get_splits(ds)
    assert len(splits["train"]) + len(splits["val"]) == 100 and len(splits["test"]) == 20
    small = get_splits(ds, train_size=30, val_size=5, test_size=10)
    assert [len(small[k]) for k in ("train", "val", "test")] == [30, 5, 10]
    assert torch.equal(small["train"].images, get_splits(ds, train_size=30)["train"].images)
    with pytest.raises(ValueError, match="subset of 500"):
        get_splits(ds, train_size=500)


def test_a_changed_source_is_read_anew_and_nothing_is_written(tiny_cifar, tmp_path):
    ds = load_cifar10(tiny_cifar, download=False, images_per_file=20)
    assert sorted(p.name for p in tiny_cifar.iterdir()) == [data.BATCHES_DIR]  # nothing written beside the data
    assert not (tmp_path / "cache").exists()  # nor into the user's cache folder
    write_cifar(tiny_cifar, images_per_file=20, seed=7)  # new content, same layout
    changed = load_cifar10(tiny_cifar, download=False, images_per_file=20)
    assert not torch.equal(changed.train.images, ds.train.images)
    assert changed.checksum != ds.checksum


def test_missing_data_says_where_it_looked_and_what_to_do(tmp_path):
    with pytest.raises(DataError) as err:
        load_cifar10(tmp_path / "nowhere", download=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    assert "CONVLADDER_DATA" in message and "--data-dir" in message and data.URL in message


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.resolve_root(None) == data.DEFAULT_ROOT
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.resolve_root(None) == tmp_path
    assert data.resolve_root("elsewhere") == data.Path("elsewhere")


def test_archive_is_checked_and_extracted(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = write_cifar(tmp_path / "src", images_per_file=20)
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / data.ARCHIVE, "w:gz") as tar:
        tar.add(src / data.BATCHES_DIR, arcname=data.BATCHES_DIR)
    with pytest.raises(DataError, match="md5"):
        load_cifar10(root, download=False, images_per_file=20)
    from torchvision.datasets.utils import calculate_md5

    monkeypatch.setattr(data, "ARCHIVE_MD5", calculate_md5(str(root / data.ARCHIVE)))
    ds = load_cifar10(root, download=False, images_per_file=20)
    assert len(ds.train) == 100


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_tampered_pickle_cannot_run_code(tiny_cifar):
    path = tiny_cifar / data.BATCHES_DIR / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _Evil(), "labels": []}))
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar10(tiny_cifar, download=False, images_per_file=20)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b.update(labels=[11] * 20), "labels outside 0-9"),
        (lambda b: b.update(data=b["data"][:5]), "5 images but 20 labels"),
        (lambda b: b.update(data=b["data"][:, :100]), "expected uint8"),
        (lambda b: b.pop("labels"), "no 'labels'"),
    ],
)
def test_invalid_batches_name_the_file_and_the_fault(tiny_cifar, damage, message):
    path = tiny_cifar / data.BATCHES_DIR / "data_batch_3"
    with open(path, "rb") as fh:
        batch = {k.decode(): v for k, v in pickle.load(fh, encoding="bytes").items()}
    damage(batch)
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=message) as err:
        load_cifar10(tiny_cifar, download=False, images_per_file=20)
    assert "data_batch_3" in str(err.value)


def test_truncated_and_missing_files(tiny_cifar):
    path = tiny_cifar / data.BATCHES_DIR / "test_batch"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="test_batch.*(damaged|truncated)"):
        load_cifar10(tiny_cifar, download=False, images_per_file=20)
    path.unlink()
    with pytest.raises(DataError, match="missing test_batch"):
        load_cifar10(tiny_cifar, download=False, images_per_file=20)


def test_wrong_image_count_is_an_error(tiny_cifar):
    with pytest.raises(DataError, match="data_batch_1: 20 images, expected 10000"):
        load_cifar10(tiny_cifar, download=False, images_per_file=10_000)


def _rewrite_batch(path, change):
    with open(path, "rb") as fh:
        batch = {k.decode(): v for k, v in pickle.load(fh, encoding="bytes").items()}
    change(batch)
    path.write_bytes(pickle.dumps(batch))


def test_float_labels_are_refused_not_rounded(tiny_cifar):
    _rewrite_batch(tiny_cifar / data.BATCHES_DIR / "data_batch_2", lambda b: b.update(labels=[3.9] * 20))
    with pytest.raises(DataError, match="data_batch_2: 'labels' must be a list of integers"):
        load_cifar10(tiny_cifar, download=False, images_per_file=20)


@pytest.mark.parametrize("names", [None, "airplane", list(range(10)), ["a"] * 9, [["a"]] * 10])
def test_label_names_must_be_ten_strings(tiny_cifar, names):
    _rewrite_batch(tiny_cifar / data.BATCHES_DIR / data.META_FILE, lambda b: b.update(label_names=names))
    with pytest.raises(DataError, match="'label_names' must be a list of 10 strings"):
        load_cifar10(tiny_cifar, download=False, images_per_file=20)


@pytest.mark.parametrize("names", [["cat"] * 10, [""] + [f"c{i}" for i in range(9)]])
def test_label_names_must_differ_and_say_something(tiny_cifar, names):
    _rewrite_batch(tiny_cifar / data.BATCHES_DIR / data.META_FILE, lambda b: b.update(label_names=names))
    with pytest.raises(DataError, match="must be 10 different, non-empty names"):
        load_cifar10(tiny_cifar, download=False, images_per_file=20)


def test_a_read_only_data_folder_works_unchanged(tiny_cifar):
    batches = tiny_cifar / data.BATCHES_DIR
    before = {p.name: p.stat().st_mtime_ns for p in tiny_cifar.rglob("*")}
    for path in [batches, tiny_cifar]:
        path.chmod(0o555)
    try:
        ds = load_cifar10(tiny_cifar, download=False, images_per_file=20)
    finally:
        for path in [batches, tiny_cifar]:
            path.chmod(0o755)
    assert len(ds.test) == 20
    assert {p.name: p.stat().st_mtime_ns for p in tiny_cifar.rglob("*")} == before


def test_missing_data_folder_is_not_created_when_nothing_is_downloaded(tmp_path, monkeypatch):
    def offline(url, root, filename=None, md5=None):
        Path(root).mkdir(parents=True, exist_ok=True)  # as torchvision's download_url does
        raise OSError("no network")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    missing = tmp_path / "missing" / "cifar"
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        load_cifar10(missing)
    assert not (tmp_path / "missing").exists()
