"""GAP-fast's stability run (experiments/stability.py) on torch.optim.swa_utils: its moving average is the
exponential average of weights and batch-norm statistics from the weights at the start, and its
recalibrated copy holds the plain mean and variance of the batch-norm inputs over the images given."""

import torch
from torch import nn

from convladder.core.config import TrainConfig
from convladder.core.data import get_splits, load_cifar10
from convladder.core.models import create_model
from convladder.core.training import Trainer
from convladder.experiments.stability import moving_average, recalibrated


def test_the_moving_average_starts_at_the_weights_and_moves_by_one_minus_decay():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = moving_average(model, decay=0.9)
    expected = {k: v.clone() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
    for _ in range(3):
        with torch.no_grad():
            for value in model.state_dict().values():
                if value.dtype.is_floating_point:
                    value.add_(torch.randn_like(value))
        average.update_parameters(model)
        expected = {k: v.lerp(model.state_dict()[k], 0.1) for k, v in expected.items()}
    got = average.module.state_dict()
    assert all(torch.allclose(got[k], v, atol=1e-6) for k, v in expected.items())


def test_recalibration_sets_batch_norm_to_the_plain_mean_over_the_images(tiny_cifar):
    splits = get_splits(load_cifar10(tiny_cifar))
    torch.manual_seed(0)
    trainer = Trainer(create_model("GAP"), splits["train"], splits["val"],
                      TrainConfig(model="GAP", epochs=1, amp=False, channels_last=False))
    images = splits["train"].images[:30]
    model = recalibrated(trainer, images, batch_size=10)
    block = model[0]  # convolution, ReLU, then the first batch norm
    with torch.no_grad():
        inputs = block[1](block[0](trainer._inputs(images)))
    # the plain (cumulative) average over the batches of the batch statistics, no momentum
    batches = inputs.split(10)
    assert torch.allclose(block[2].running_mean, inputs.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(block[2].running_var, sum(b.var((0, 2, 3)) for b in batches) / len(batches), rtol=1e-3)
    assert block[2].momentum == trainer.model[0][2].momentum == 0.1  # restored, and the trainer's model untouched
    assert not torch.allclose(trainer.model[0][2].running_mean, block[2].running_mean)
