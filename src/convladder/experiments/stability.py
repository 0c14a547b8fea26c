"""Why GAP-fast's validation accuracy jumps from epoch to epoch: one GAP-fast run, and after
every epoch its validation accuracy measured three ways:

- as trained (the weights and the batch-norm running statistics the run has);
- with the batch-norm statistics estimated again, as a plain mean over `RECALIBRATION_IMAGES`
  full-size training images, from the same weights (isolates stale running statistics);
- with an exponential moving average of the weights and statistics (isolates the step-to-step
  noise of the weights at a high learning rate).

`python -m convladder.experiments.stability --data-dir DIR` writes `results/gap-fast-stability/stability.json`
(archived: the report reads it).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from tqdm import tqdm

from convladder.core.data import get_splits, load_cifar10
from convladder.tools.files import atomic_write_json
from convladder.core.models import create_model
from convladder.analysis.stability import stability_dir
from convladder.results.layout import STABILITY_FILE
from convladder.plan.profiles import PROFILES
from convladder.plan.recipes import GAP_FAST, get_recipe
from convladder.core.config import TrainConfig
from convladder.core.versions import code_version
from convladder.core.training import Trainer

RECALIBRATION_IMAGES = 5_000
EMA_DECAY = 0.99  # per step: the average spans about 100 steps (0.6 of an epoch at batch 256)

@torch.no_grad()
def recalibrated(trainer: Trainer, images: torch.Tensor, batch_size: int = 500) -> nn.Module:
    """A copy of the trainer's model whose batch-norm statistics are the plain mean over `images`
    (full size, no augmentation) under the current weights (torch.optim.swa_utils.update_bn)."""
    model = copy.deepcopy(trainer.model)
    side, trainer.train_side = trainer.train_side, None
    try:
        with trainer._autocast():
            update_bn((trainer._inputs(images[start : start + batch_size].to(trainer.device))
                       for start in range(0, len(images), batch_size)), model)
    finally:
        trainer.train_side = side
    return model


def moving_average(model: nn.Module, decay: float = EMA_DECAY) -> AveragedModel:
    """An exponential moving average of `model`'s weights and batch-norm statistics, starting from its weights
    now: each `update_parameters(model)` moves it toward the model's weights by 1 - decay."""
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    average.update_parameters(model)  # the first update copies: the average starts at the weights now
    return average


def evaluate_with(trainer: Trainer, model: nn.Module) -> float:
    saved = trainer.model, trainer.forward
    trainer.model = trainer.forward = model
    try:
        return trainer.evaluate(trainer.val_data)["acc"]
    finally:
        trainer.model, trainer.forward = saved


def stability_run(data_dir=None, epochs: int | None = None, seed: int = 0, device: str = "auto") -> dict:
    epochs = epochs or PROFILES["quick"].fast_gap_epochs
    dataset = load_cifar10(data_dir)
    splits = get_splits(dataset)
    config = TrainConfig(model="GAP", epochs=epochs, seed=seed, **get_recipe(GAP_FAST).settings)
    torch.manual_seed(seed)
    trainer = Trainer(create_model("GAP"), splits["train"], splits["val"], config, device=device)
    ema = moving_average(trainer.model)
    trainer.on_step = lambda _loss: ema.update_parameters(trainer.model)
    generator = torch.Generator().manual_seed(seed)
    calibration = splits["train"].images[torch.randperm(len(splits["train"]), generator=generator)[:RECALIBRATION_IMAGES]]
    rows = []
    for epoch in tqdm(range(epochs), desc="GAP-fast stability"):
        start = time.perf_counter()
        side = trainer.input_side(epoch) or 32
        lr = trainer.optimizer.param_groups[0]["lr"]
        _, train_acc = trainer.train_epoch(epoch, progress=False)
        rows.append({
            "epoch": epoch + 1, "side": side, "lr_at_start": lr, "train_acc": train_acc,
            "val_acc": trainer.evaluate(trainer.val_data)["acc"],
            "val_acc_recalibrated": evaluate_with(trainer, recalibrated(trainer, calibration)),
            "val_acc_ema": evaluate_with(trainer, ema.module),
            "seconds": time.perf_counter() - start,
        })
        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()))
    return {"config": config.to_dict(), "code_version": code_version(config.model), "data_checksum": dataset.checksum,
            "recalibration_images": RECALIBRATION_IMAGES, "ema_decay": EMA_DECAY, "epochs": rows}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default: the quick profile's GAP-fast epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    result = stability_run(args.data_dir, args.epochs, args.seed, args.device)
    out = stability_dir() / f"seed{args.seed}" / STABILITY_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(result, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
