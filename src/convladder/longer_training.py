"""Do the ladder's failing rungs ever learn? The study profile's C, D and E (16 epochs, 3 seeds in
`results/study`) continued with the same recipe to 150 epochs, each seed into
`results/study-150/<model>/seed<k>`.

Under the recovered recipe (SGD momentum 0.9, batch 32, lr 0.001, softmax output) model A needs
113-131 epochs to leave chance and B 51-58, so a 16-epoch verdict on C, D and E says little about
whether they fail. Continuing a seed with its constant learning rate is what a longer run of it would
have been (as GAP+ continues GAP): epochs 1-16 of each continued run are the archived run's own.

    python -m convladder.longer_training --models C D E --seeds 0 1 2 --threads 1

A finished seed is kept; an unfinished one continues from its last finished epoch, so the same
command continues where it stopped. A seed that another process is training is skipped, so two
copies of the command with the models in different orders train side by side (`--threads 1` each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convladder.analysis import take_off_epoch
from convladder.paths import RESULTS_FILE, results_archive, seed_dir
from convladder.profiles import STUDY_EPOCHS

PROFILE = "study"
EPOCHS = 150
MODELS = ("C", "D", "E")
SEEDS = (0, 1, 2)
ARCHIVE = "study-150"
BUDGETS = (16, 30, 60, 150)  # the epochs at which each seed's accuracy is read


def continued_config(model: str, seed: int, epochs: int = EPOCHS):
    """The study profile's config of `model`, seed `seed`, with `epochs` in place of its own."""
    from convladder.profiles import config_from_parameters

    return config_from_parameters(PROFILE, model, epochs=epochs, seed=seed)


def order(models, seeds) -> list[tuple[str, int]]:
    """Seed by seed, so that every model has a first seed before any has a second."""
    return [(model, seed) for seed in seeds for model in models]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convladder.longer_training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(STUDY_EPOCHS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--source-dir", default=None, help="the archived runs continued (default: results/study)")
    parser.add_argument("--out-dir", default=None, help=f"default: results/{ARCHIVE} of the repository")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch's threads (default: every core)")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)

    import torch

    from convladder.data import load_cifar10
    from convladder.runs import RunLocked, is_current, train_run

    if args.threads:
        torch.set_num_threads(args.threads)
    source = Path(args.source_dir) if args.source_dir else results_archive(PROFILE)
    out_dir = Path(args.out_dir) if args.out_dir else results_archive(ARCHIVE)
    checksum = load_cifar10(args.data_dir).checksum
    for model, seed in order(args.models, args.seeds):
        folder = seed_dir(out_dir / model, seed)
        config = continued_config(model, seed, args.epochs)
        if is_current(folder, config, checksum):
            print(f"{model} seed {seed}: finished, kept ({folder / RESULTS_FILE})", flush=True)
            continue
        try:
            results = train_run(config, folder, data_dir=args.data_dir, name=model, resume_from=source / model)
        except RunLocked as err:  # a second copy of this command, in another order, trains it
            print(f"{model} seed {seed}: skipped, {err}", flush=True)
            continue
        val = results["history"]["val_acc"]
        print(f"{model} seed {seed}: take-off epoch {take_off_epoch(val)}, validation "
              + ", ".join(f"{val[b - 1]:.3f} at {b}" for b in BUDGETS if b <= len(val))
              + f" ({results['train_seconds'] / 60:.1f} training min) -> {folder / RESULTS_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
