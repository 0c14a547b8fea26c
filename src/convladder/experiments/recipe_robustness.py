"""Recipe robustness (issue 24, part 4): does each of the study's six answers depend on the recipe? The ladder
trained with the quick profile's recipe (`ladder`: Adam, batch 128, logits into the cross-entropy, lr 0.001,
bfloat16 autocast) for the epochs at which the study profile (`study-recovered`: SGD momentum 0.9, batch 32,
softmax output) answers each question: A and B 150, C, D and E 16, F, G and GAP 30 (G against GAP is
compared after G's 30 epochs, so GAP needs no more). Full 42,000 / 8,000 split, 3 seeds, each seed a run of
`train_run` into `results/study-adam/<model>/seed<k>`; the summary puts each question's verdict under
both recipes side by side.

    python -m convladder.experiments.recipe_robustness --threads 1
    python -m convladder.experiments.recipe_robustness --summary

A finished seed is kept, an unfinished one continues from its checkpoint, and a seed another copy of the
command is training is skipped, so two copies (one with `--reverse`) train side by side.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from convladder.analysis.recipe_robustness import ARCHIVE, EPOCHS, progress, robustness_rows
from convladder.experiments.args import experiment_parser, train_or_keep, training_setup
from convladder.plan.recipes import LADDER
from convladder.results.layout import RESULTS_FILE, results_archive, seed_dir

PROFILE = "study"  # the study profile's ladder, with the quick profile's recipe
SEEDS = (0, 1, 2)
# cheap models first, so that a seed of each of the 16- and 30-epoch questions is there early
ORDER = ("C", "D", "E", "F", "G", "GAP", "A", "B")


def robustness_plan(model: str, seed: int):
    """The study profile's run of `model` with the `ladder` recipe and EPOCHS[model], and the recipe it records."""
    from convladder.plan.profiles import plan_config

    config, recipe = plan_config(PROFILE, model, recipe=LADDER, epochs=EPOCHS[model], seed=seed)
    return replace(config, profile=ARCHIVE), recipe


def planned_runs(models=ORDER, seeds=SEEDS) -> list[tuple[str, int]]:
    """Seed by seed, so that every question has a first seed under the new recipe before any has a second."""
    return [(model, seed) for seed in seeds for model in models]


def _verdict(verdict, p_holm) -> str:
    if verdict is None:
        return "not yet (a model of the pair has no finished seed)"
    c = verdict.comparison
    interval = f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if c.ci_low is not None else "no interval"
    p = "none" if c.p_value is None else f"{c.p_value:.2g} (Holm {p_holm:.2g})"
    at = f"epoch {verdict.at_epoch}" if verdict.at_epoch else "own last epochs"
    return (f"{c.difference:+.3f} {interval}, p {p}, {c.n_low} vs {c.n_high} seeds at {at}: {c.verdict}"
            + (f" ({c.reason})" if c.reason else ""))


def summary(out_dir=None, ladder_dir=None) -> str:
    """The archive's seeds so far, then each question's verdict under the recovered recipe and under Adam."""
    from convladder.results.records import collect_runs

    out_dir = Path(out_dir) if out_dir else results_archive(ARCHIVE)
    lines = ["model  seeds (epochs done; * unfinished)"]
    for model, seeds in progress(out_dir).items():
        lines.append(f"{model:5}  " + ", ".join(f"{s}: {n}/{EPOCHS[model]}{'' if done else '*'}" for s, n, done in seeds))
    sgd = collect_runs(Path(ladder_dir) if ladder_dir else results_archive(PROFILE))
    rows = robustness_rows(sgd, collect_runs(out_dir))
    lines.append("validation accuracy, high minus low, Welch 95% interval; Holm over each recipe's questions")
    for row in rows:
        flip = {None: "", True: "  <- the answer differs", False: ""}[row.flips]
        lines.append(f"{row.low} -> {row.high} {row.question}{flip}\n"
                     f"    SGD momentum, softmax: {_verdict(row.sgd, row.sgd_holm)}\n"
                     f"    Adam, logits:          {_verdict(row.adam, row.adam_holm)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__spec__.name if __spec__ else __name__, __doc__, ARCHIVE, SEEDS, ladder=PROFILE,
                               reverse=True)
    parser.add_argument("--models", nargs="+", default=list(ORDER), choices=list(ORDER))
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out_dir, args.ladder_dir))
        return 0

    out_dir, checksum = training_setup(args, ARCHIVE)
    runs = planned_runs(args.models, args.seeds)
    for model, seed in reversed(runs) if args.reverse else runs:
        folder = seed_dir(out_dir / model, seed)
        config, recipe = robustness_plan(model, seed)
        results = train_or_keep(folder, config, recipe, checksum, args.data_dir, model, f"{model} seed {seed}")
        if results is None:
            continue
        print(f"{model} seed {seed}: validation {results['final']['val_acc']:.3f} after {config.epochs} epochs "
              f"({results['train_seconds'] / 60:.1f} training min) -> {folder / RESULTS_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
