"""The `convladder` command: prepare data, train one model, run a whole profile, build the report,
predict an image."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import MISSING, fields
from pathlib import Path

from convladder.core.config import OPTIMIZERS, SCHEDULES, TrainConfig
from convladder.plan.profiles import PROFILES, plan_config
from convladder.plan.recipes import GAP_FAST, RECIPES
from convladder.core.data import DATA_ENV, DataError, load_cifar10
from convladder.core.registry import model_names
from convladder.results.layout import RESULTS_FILE, RunLayout
from convladder.core.runs import RunLocked, check_run_name
from convladder.core.training import TrainingDiverged, choose_device


class CommandError(RuntimeError):
    """A failure the user can mend; its message says how."""


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help=f"folder holding cifar-10-batches-py/ (default: ${DATA_ENV}, else data/cifar10)")


def _profile_args(parser: argparse.ArgumentParser, default: str = "quick") -> None:
    parser.add_argument("--profile", default=default, choices=list(PROFILES), help=f"default: {default}")
    parser.add_argument("--run-dir", help="the profile's run folder (default: runs/<profile>)")


def cmd_data(args) -> int:
    dataset = load_cifar10(args.data_dir)
    print(f"CIFAR-10 at {dataset.root}: {len(dataset.train):,} train / {len(dataset.test):,} test images")
    print(f"train images per class: {dataset.train.class_counts()}")
    print(f"sha256 of the batch files: {dataset.checksum}")
    return 0


def cmd_train(args) -> int:
    from convladder.core.runs import train_run

    given = {name: getattr(args, name) for name, _ in config_flags()}
    # options given on the command line change the recipe's settings (and are recorded as its changes)
    config, recipe = plan_config(args.profile, args.model, recipe=GAP_FAST if args.fast_recipe else args.recipe, **given)
    name = check_run_name(args.name or args.model)
    choose_device(args.device)  # an unknown or missing device is refused before the data is read
    layout = RunLayout.of(args.profile, args.run_dir)
    seed_folder = Path(args.seed_dir) if args.seed_dir else layout.seed(name, config.seed)
    resume_from = layout.run(args.resume_from) if args.resume_from and "/" not in args.resume_from else args.resume_from
    results = train_run(config, seed_folder, data_dir=args.data_dir, name=name, resume_from=resume_from,
                        device=args.device, restart=args.restart, recipe=recipe)
    final = results["final"]
    print(f"{name}: train {final['train_acc']:.3f}  val {final['val_acc']:.3f}  test {final['test_acc']:.3f}  "
          f"({results['train_seconds']:.0f} s) -> {seed_folder / RESULTS_FILE}")
    return 0


def cmd_all(args) -> int:
    from convladder.cluster_files import ClusterError  # no Ray in it: Ray is imported only with --cluster
    from convladder.pipeline import StepFailed, run_pipeline

    try:
        run_pipeline(args.profile, data_dir=args.data_dir, run_dir=args.run_dir, models=args.models, force=args.force,
                     export=args.export, html=not args.no_html, retrain_stale=args.retrain_stale,
                     workers=args.workers, cluster=args.cluster)
    except (StepFailed, ClusterError) as err:
        raise CommandError(str(err)) from None
    return 0


def cmd_report(args) -> int:
    from convladder.report.build import ReportError, build_report  # matplotlib and LaTeX only where needed

    layout = RunLayout.of(args.profile, args.run_dir)
    try:
        if args.draft and args.export:
            raise CommandError("a draft is not exported: build it without --export, or export without --draft")
        pdf = build_report(layout, draft=args.draft, paper=args.paper)
    except ReportError as err:
        raise CommandError(str(err)) from None
    if args.export:
        from convladder.pipeline import export_report

        pdf = export_report(args.profile, layout)
    print(f"report written to {pdf}")
    return 0


def cmd_predict(args) -> int:
    from convladder.core.predict import predict_file

    result = predict_file(args.run, args.image)
    ranked = sorted(result["proba"].items(), key=lambda kv: -kv[1])
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['file']} (fed as {result['size'][1]}x{result['size'][0]} pixels):")
        for name, p in ranked[: args.top]:
            print(f"  {name:<11} {p:7.2%}")
    return 0


def cmd_verify(args) -> int:
    from convladder.experiments.verify import TOLERANCE, verify_runs

    layout = RunLayout.of(args.profile, args.run_dir)
    checks = verify_runs(layout.root, data_dir=args.data_dir)
    if not checks:
        raise CommandError(f"no finished runs (<run>/seed<k>/{RESULTS_FILE}) under {layout.root}: train some first")
    differ = [c for c in checks if c.measured is not None and not c.holds]
    unchecked = [c for c in checks if c.measured is None]
    print(f"{len(checks) - len(differ) - len(unchecked)} of {len(checks)} seeds measure what they record (within "
          f"{TOLERANCE}); {len(unchecked)} could not be measured")
    if differ:
        raise CommandError(f"{len(differ)} seed(s) record another test accuracy than their checkpoint gives: "
                           f"{', '.join(str(c.folder) for c in differ)}; train them again (convladder all "
                           f"--profile {args.profile} --retrain-stale) or restore their results.json")
    return 0


# --- the command line's training flags, generated from TrainConfig -------------------------

FIELD_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES}
NOT_FLAGS = ("model", "profile")  # the positional model and --profile, which also picks the defaults


def field_help(cls=None) -> dict[str, str]:
    """Each TrainConfig field's comment in the source (simple-parsing reads it): the one on its line, else the
    comment lines just above it."""
    from simple_parsing.docstring import get_attribute_docstring

    cls = cls or TrainConfig
    helps = {}
    for f in fields(cls):
        doc = get_attribute_docstring(cls, f.name)
        helps[f.name] = " ".join((doc.comment_inline or doc.comment_above or doc.docstring_below or "").split())
    return helps


def config_flags() -> list[tuple[str, dict]]:
    """(flag, argparse keywords) for every settable TrainConfig field; every default is None,
    so that a flag not given leaves the profile's value."""
    helps = field_help()
    flags = []
    for f in fields(TrainConfig):
        if f.name in NOT_FLAGS:
            continue
        kind = str(f.type)
        default = f.default if f.default is not MISSING else None
        help_text = helps.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        if kind == "bool":
            keywords = dict(action=argparse.BooleanOptionalAction, help=f"{help_text} (default: {'on' if default else 'off'})")
        else:
            keywords = dict(type=int if kind.startswith("int") else float if kind.startswith("float") else str,
                            help=help_text + ("" if default is None else f" (default: {default})"))
            if f.name in FIELD_CHOICES:
                keywords["choices"] = FIELD_CHOICES[f.name]
        flags.append((f.name, {"default": None, **keywords}))
    return flags


def _whole_number(low: int, high: int | None = None):
    """An argparse type: a whole number from `low` (to `high`), refused with a message that says so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convladder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="find (or download) CIFAR-10 and print its facts")
    _data_args(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train (or continue) one model",
                       description="Train (or continue) one run. Every TrainConfig setting is a flag; a flag not "
                                   "given takes the profile's value, else the default shown.")
    p.add_argument("model", choices=model_names())
    _profile_args(p)
    p.add_argument("--name", help="run name (default: the model's name)")
    for name, keywords in config_flags():
        p.add_argument("--" + name.replace("_", "-"), dest=name, **keywords)
    p.add_argument("--recipe", choices=list(RECIPES), help="a named recipe (plan/recipes.py); default: the one the "
                   "model trains with in the profile. " + "; ".join(f"{r.name}: {r.description}" for r in RECIPES.values()))
    p.add_argument("--fast-recipe", action="store_true", help=f"the same as --recipe {GAP_FAST}")
    p.add_argument("--seed-dir", help="train into this folder (default: <run-dir>/<name>/seed<seed>)")
    p.add_argument("--resume-from", help="another run to continue from: a run name of the profile or a folder")
    p.add_argument("--restart", action="store_true",
                   help="train again from epoch 0; the old run is kept until the new one has finished")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    _data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("all", help="run a whole profile: every run (reusing current ones), the analyses, the PDF")
    _profile_args(p)
    p.add_argument("--models", nargs="+", choices=model_names(), help="only these models (default: the whole ladder)")
    p.add_argument("--force", action="store_true", help="train every run again, even those that are current")
    p.add_argument("--retrain-stale", action="store_true",
                   help="archived profiles (study): train stale runs again from epoch 0 (hours) instead of reporting them")
    p.add_argument("--export", action="store_true",
                   help="also copy the PDF to report/<profile>.pdf and the figures to figures/<profile>/")
    p.add_argument("--no-html", action="store_true", help="skip the HTML copies of the executed notebooks")
    p.add_argument("--workers", type=_whole_number(1), default=1,
                   help="train this many runs side by side, the cores shared among them (default 1; the study "
                        "profile on a 2-core CPU: 2)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="train the runs on a Ray cluster instead: auto (the cluster in RAY_ADDRESS), <head>:6379 or "
                        "ray://<head>:10001; needs pip install -e '.[cluster]' (README: Running on a Ray cluster)")
    _data_args(p)
    p.set_defaults(func=cmd_all)

    p = sub.add_parser("report", help="build the PDF from a profile's finished runs")
    _profile_args(p)
    p.add_argument("--export", action="store_true", help="also copy it to report/<profile>.pdf and figures/<profile>/")
    p.add_argument("--draft", action="store_true",
                   help="mark an authored sentence whose claim the runs no longer support instead of stopping (not exported)")
    p.add_argument("--paper", action="store_true",
                   help="the long-form paper instead of the run report for a profile other than study (its prose is "
                        "written for the study profile's runs)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("verify", help="measure each finished seed's test accuracy again from its checkpoint")
    _profile_args(p)
    _data_args(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("predict", help="class probabilities for an image file")
    p.add_argument("run", help="a finished run folder, e.g. runs/quick/GAP+")
    p.add_argument("image")
    p.add_argument("--top", type=_whole_number(1, 10), default=5, help="how many classes to list, 1 to 10 (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or `kill`'s stop), handled as Ctrl-C: finished work is kept, nothing goes on."""


def _terminate(signum, frame):
    raise Terminated()


# Where matplotlib, IPython, Jupyter and TeX Live keep their settings and caches unless told otherwise: under HOME.
HOME_SETTINGS = ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "TEXMFVAR",
                 "TEXMFCONFIG")


def _without_home(stack) -> None:
    """When HOME names a folder that does not exist, the libraries below would create it (and their caches in
    it): they get a temporary folder instead, removed when the command ends, with a one-line note."""
    import tempfile

    home = os.environ.get("HOME")
    if not home or os.path.isdir(home):
        return
    scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="convladder-settings-"))
    for name in HOME_SETTINGS:
        if name not in os.environ:
            os.environ[name] = os.path.join(scratch, name.lower())
            stack.callback(os.environ.pop, name, None)
    print(f"note: HOME ({home}) does not exist; it is not created: matplotlib's, Jupyter's and TeX's settings go to a "
          f"temporary folder for this command", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from contextlib import ExitStack

    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    stack = ExitStack()
    try:
        _without_home(stack)
        return args.func(args)
    except (DataError, RunLocked, TrainingDiverged, CommandError, ValueError, OSError) as err:
        # OSError: a missing file, a folder without write permission, a full disk (WriteError) ...
        print(f"convladder: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"convladder: {'stopped (SIGTERM)' if isinstance(err, Terminated) else 'interrupted'}; finished "
              f"epochs are kept in the run folder's checkpoint", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        stack.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
