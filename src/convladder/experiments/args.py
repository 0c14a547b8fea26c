"""What every archived experiment (longer_training, ladder_diagnosis, recipe_probes) shares: its command-line flags,
and training one seed into the archive or keeping it."""

from __future__ import annotations

import argparse


def experiment_parser(module: str, doc: str | None, archive: str, seeds, ladder: str | None = None,
                      reverse: bool = False) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, with the flags every archived experiment shares; `ladder`: the archive
    of the profile whose runs the experiment compares with (--ladder-dir); `reverse`: --reverse, for a second copy."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, archive, seeds)
    if ladder:
        parser.add_argument("--ladder-dir", default=None, help=f"the {ladder} profile's runs (default: results/{ladder})")
    if reverse:
        parser.add_argument("--reverse", action="store_true", help="the planned runs in reverse order (a second copy)")
    return parser


def add_common_arguments(parser: argparse.ArgumentParser, archive: str, seeds) -> None:
    """--seeds, --out-dir (default results/<archive>), --threads, --data-dir and --summary."""
    parser.add_argument("--seeds", nargs="+", type=int, default=list(seeds))
    parser.add_argument("--out-dir", default=None, help=f"default: results/{archive} of the repository")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch's threads (default: every core)")
    parser.add_argument("--data-dir")
    parser.add_argument("--summary", action="store_true", help="print what the archive holds so far, train nothing")


def training_setup(args, archive: str):
    """What every experiment does before it trains: PyTorch's threads set (--threads), its archive folder (--out-dir,
    default results/<archive>) and the checksum of the data (--data-dir) its runs record."""
    from pathlib import Path

    from convladder.core.data import load_cifar10
    from convladder.results.layout import results_archive

    set_threads(args.threads)
    return Path(args.out_dir) if args.out_dir else results_archive(archive), load_cifar10(args.data_dir).checksum


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def train_or_keep(folder, config, recipe: dict, checksum: str, data_dir, name: str, label: str,
                  resume_from=None) -> dict | None:
    """Train (or continue) one archived seed with train_run into `folder`: None, with a line saying why, when it is
    finished and current (kept) or another process trains it (skipped, so two copies run side by side)."""
    from convladder.core.runs import RunLocked, is_current, train_run
    from convladder.results.layout import RESULTS_FILE

    if is_current(folder, config, checksum):
        print(f"{label}: finished, kept ({folder / RESULTS_FILE})", flush=True)
        return None
    try:
        return train_run(config, folder, data_dir=data_dir, name=name, resume_from=resume_from, recipe=recipe)
    except RunLocked as err:  # a second copy of the command trains it
        print(f"{label}: skipped, {err}", flush=True)
        return None
