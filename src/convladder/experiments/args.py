"""The command-line flags every archived experiment (longer_training, ladder_diagnosis) shares."""

from __future__ import annotations

import argparse


def experiment_parser(module: str, doc: str | None, archive: str, seeds) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, with the flags every archived experiment shares."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser, archive, seeds)
    return parser


def add_common_arguments(parser: argparse.ArgumentParser, archive: str, seeds) -> None:
    """--seeds, --out-dir (default results/<archive>), --threads, --data-dir and --summary."""
    parser.add_argument("--seeds", nargs="+", type=int, default=list(seeds))
    parser.add_argument("--out-dir", default=None, help=f"default: results/{archive} of the repository")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch's threads (default: every core)")
    parser.add_argument("--data-dir")
    parser.add_argument("--summary", action="store_true", help="print what the archive holds so far, train nothing")


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
