"""The `convladder` command: prepare data, train one model, build the report, predict an image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from convladder.config import FAST_GAP_RECIPE, OPTIMIZERS, PROFILES, SCHEDULES, config_from_parameters
from convladder.data import DATA_ENV, DataError, load_cifar10
from convladder.models import MODEL_NAMES
from convladder.paths import default_run_dir
from convladder.results import seed_dir
from convladder.io import WriteError
from convladder.runs import RunLocked, check_run_name
from convladder.training import TrainingDiverged, choose_device


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help=f"folder holding cifar-10-batches-py/ (default: ${DATA_ENV}, else data/cifar10)")


def cmd_data(args) -> int:
    dataset = load_cifar10(args.data_dir)
    print(f"CIFAR-10 at {dataset.root}: {len(dataset.train):,} train / {len(dataset.test):,} test images")
    print(f"train images per class: {dataset.train.class_counts()}")
    print(f"sha256 of the batch files: {dataset.checksum}")
    return 0


def cmd_train(args) -> int:
    from convladder.runs import train_run

    given = dict(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
        train_size=args.train_size, val_size=args.val_size, test_size=args.test_size,
        study_softmax=args.study_softmax or None, amp=False if args.no_amp else None,
        optimizer=args.optimizer, momentum=args.momentum, nesterov=args.nesterov, schedule=args.schedule, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, augment=args.augment or None, crop_pad=args.crop_pad,
        alternating_flip=args.alternating_flip or None,
        progressive=args.progressive,
    )
    # options given on the command line override the fast recipe's
    parameters = {**(FAST_GAP_RECIPE if args.fast_recipe else {}), **{k: v for k, v in given.items() if v is not None}}
    config = config_from_parameters(args.profile, args.model, **parameters)
    name = check_run_name(args.name or args.model)
    choose_device(args.device)  # an unknown or missing device is refused before the data is read
    run_dir = Path(args.run_dir) if args.run_dir else seed_dir(default_run_dir(args.profile) / name, config.seed)
    results = train_run(config, run_dir, data_dir=args.data_dir, name=name, resume_from=args.resume_from,
                        device=args.device, restart=args.restart)
    final = results["final"]
    print(f"{name}: train {final['train_acc']:.3f}  val {final['val_acc']:.3f}  test {final['test_acc']:.3f}  "
          f"({results['train_seconds']:.0f} s) -> {run_dir / 'results.json'}")
    return 0


class CommandError(RuntimeError):
    """A failure the user can mend; its message says how."""


def cmd_report(args) -> int:
    from convladder.report import ReportError, build_report  # matplotlib and LaTeX only where needed

    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(args.profile)
    try:
        pdf = build_report(run_dir, Path(args.report_root) if args.report_root else run_dir, data_dir=args.data_dir)
    except ReportError as err:
        raise CommandError(str(err)) from None
    print(f"report written to {pdf}")
    return 0


def cmd_predict(args) -> int:
    from convladder.predict import predict_file

    result = predict_file(args.run, args.image)
    ranked = sorted(result["proba"].items(), key=lambda kv: -kv[1])
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['file']} (fed as {result['size'][1]}x{result['size'][0]} pixels):")
        for name, p in ranked[: args.top]:
            print(f"  {name:<11} {p:7.2%}")
    return 0


def _top_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 10, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convladder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="find (or download) CIFAR-10 and print its facts")
    _data_args(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train (or continue) one model")
    p.add_argument("model", choices=MODEL_NAMES)
    p.add_argument("--profile", default="quick", choices=list(PROFILES))
    p.add_argument("--name", help="run name (default: the model's name)")
    p.add_argument("--epochs", type=int, help="total epochs (default: the profile's)")
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--train-size", type=int)
    p.add_argument("--val-size", type=int)
    p.add_argument("--test-size", type=int)
    p.add_argument("--study-softmax", action="store_true", help="softmax in the model, then cross-entropy (the study's setup)")
    p.add_argument("--no-amp", action="store_true", help="train in plain fp32, without bfloat16 autocast")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float, help="SGD momentum (default 0.9; 0: plain SGD)")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="SGD: Nesterov momentum (default on)")
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--augment", action="store_true", help="random crop and horizontal flip")
    p.add_argument("--crop-pad", type=int, help="pixels the random crop moves each way (default 4)")
    p.add_argument("--alternating-flip", action="store_true",
                   help="mirror every image in every other epoch instead of at random (with --augment)")
    p.add_argument("--progressive", type=float,
                   help="fraction of the epochs trained on smaller images first (GAP only): sides 16 to 28, then 32")
    p.add_argument("--fast-recipe", action="store_true", help="the GAP-fast recipe (not the study's): " + ", ".join(
        f"{k}={v}" for k, v in FAST_GAP_RECIPE.items()))
    p.add_argument("--run-dir", help="run folder (default: runs/<profile>/<name>/seed<seed>)")
    p.add_argument("--resume-from", help="another run folder to continue from")
    p.add_argument("--restart", action="store_true",
                   help="train again from epoch 0; the old run is kept until the new one has finished")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    _data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="build the PDF from the runs of a run folder")
    p.add_argument("--profile", default="quick", choices=list(PROFILES))
    p.add_argument("--run-dir", help="folder of runs (default: runs/<profile>)")
    p.add_argument("--report-root", help="where report/ and figures/ are written (default: the run folder)")
    _data_args(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("predict", help="class probabilities for an image file")
    p.add_argument("run", help="a finished run folder, e.g. runs/quick/GAP+")
    p.add_argument("image")
    p.add_argument("--top", type=_top_count, default=5, help="how many classes to list, 1 to 10 (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, RunLocked, TrainingDiverged, CommandError, ValueError, FileNotFoundError, WriteError) as err:
        print(f"convladder: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convladder: interrupted; finished epochs are kept in the run folder's checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
