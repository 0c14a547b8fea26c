"""Checks on the real CIFAR-10, run when CONVLADDER_DATA points at it."""

import os

import pytest
import torch

from convladder.core.data import CLASS_NAMES, get_splits, load_cifar10

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not os.environ.get("CONVLADDER_DATA"), reason="CONVLADDER_DATA is not set"),
]


@pytest.fixture(scope="module")
def dataset():
    return load_cifar10(download=False)


def test_sizes_and_class_balance(dataset):
    assert dataset.train.images.shape == (50_000, 3, 32, 32)
    assert dataset.test.images.shape == (10_000, 3, 32, 32)
    assert dataset.train.class_counts() == [5_000] * 10
    assert dataset.test.class_counts() == [1_000] * 10
    assert dataset.class_names == CLASS_NAMES


def test_value_range_and_published_channel_means(dataset):
    x = dataset.train.float_images()
    assert x.min() == 0.0 and x.max() == 1.0
    mean = x.mean(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor([0.49139968, 0.48215841, 0.44653091]), atol=1e-5)


def test_the_studys_split(dataset):
    splits = get_splits(dataset)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [42_000, 8_000, 10_000]
