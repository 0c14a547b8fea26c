"""Which unstated setting reproduces the study's slow start? A grid of training recipes for
models A and B at the study's 150 epochs, each run archived under `results/recipe-search/`.

The study states the learning rate (0.001), the loss (cross-entropy on a softmax output) and
the epochs, not the optimizer or the batch size. Its model A stayed near chance until about
epoch 140 (validation 0.18 after 150), model B until about epoch 110 (0.28 after 150). Each
candidate here is one run of `train_run`; `take_off_epoch` reads when a run leaves chance.

    python -m convladder.experiments.recipe_search --models A --batch-sizes 128        # the optimizer x output grid
    python -m convladder.experiments.recipe_search --models A --batch-sizes 32 64 --only sgd-plain/softmax
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convladder.core.config import TrainConfig
from convladder.plan.profiles import STUDY_EPOCHS
from convladder.results.layout import RESULTS_FILE, seed_dir
from convladder.analysis.recipe_search import default_out_dir
from convladder.analysis.statistics import take_off_epoch
from convladder.plan.study import STUDY_CURVES


OPTIMIZER_CANDIDATES = {
    "adam": dict(optimizer="adam"),
    "sgd-plain": dict(optimizer="sgd", momentum=0.0, nesterov=False),  # torch.optim.SGD's default
    "sgd-momentum": dict(optimizer="sgd", momentum=0.9, nesterov=False),
}
OUTPUT_CANDIDATES = {"softmax": dict(study_softmax=True), "logits": dict(study_softmax=False)}


def candidate_name(optimizer: str, output: str, batch_size: int) -> str:
    return f"{optimizer}-{output}-b{batch_size}"


def candidate_config(model: str, optimizer: str, output: str, batch_size: int, seed: int = 0) -> TrainConfig:
    """The study's setting (lr 0.001, its epochs, no augmentation) with one candidate recipe."""
    return TrainConfig(
        model=model, epochs=STUDY_EPOCHS[model], lr=1e-3, batch_size=batch_size, seed=seed, profile="recipe-search",
        **OPTIMIZER_CANDIDATES[optimizer], **OUTPUT_CANDIDATES[output],
    )


def main(argv: list[str] | None = None) -> int:
    from convladder.core.runs import train_run

    parser = argparse.ArgumentParser(prog="python -m convladder.experiments.recipe_search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["A"], choices=sorted(STUDY_CURVES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128])
    parser.add_argument("--only", nargs="+", help="candidates as optimizer/output, e.g. sgd-plain/softmax")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=None, help="default: results/recipe-search of the repository")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir) if args.out_dir else default_out_dir()
    grid = [(o, p) for o in OPTIMIZER_CANDIDATES for p in OUTPUT_CANDIDATES]
    if args.only:
        grid = [tuple(item.split("/", 1)) for item in args.only]
    for model in args.models:
        for batch_size in args.batch_sizes:
            for optimizer, output in grid:
                name = f"{model}-{candidate_name(optimizer, output, batch_size)}"
                folder = seed_dir(out_dir / name, args.seed)
                if (folder / RESULTS_FILE).exists():
                    print(f"{name}: finished, kept ({folder / RESULTS_FILE})", flush=True)
                    continue
                config = candidate_config(model, optimizer, output, batch_size, args.seed)
                results = train_run(config, folder, data_dir=args.data_dir, name=name, retrain_stale=True)
                val = results["history"]["val_acc"]
                print(f"{name}: take-off epoch {take_off_epoch(val)}, validation {val[-1]:.3f} after {len(val)} "
                      f"epochs ({results['train_seconds'] / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
