"""Do the ladder's failing rungs ever learn? The study profile's C, D and E (16 epochs, 3 seeds in
`results/study`) continued with the same recipe to 150 epochs, each seed into
`results/study-150/<model>/seed<k>`.

Under the recovered recipe (SGD momentum 0.9, batch 32, lr 0.001, softmax output) model A needs
113-131 epochs to leave chance and B 51-58, so a 16-epoch verdict on C, D and E says little about
whether they fail. Continuing a seed with its constant learning rate is what a longer run of it would
have been (as GAP+ continues GAP): epochs 1-16 of each continued run are the archived run's own.

    python -m convladder.experiments.longer_training --models C D E --seeds 0 1 2 --threads 1

A finished seed is kept; an unfinished one continues from its last finished epoch, so the same
command continues where it stopped. A seed that another process is training is skipped, so two
copies of the command with the models in different orders train side by side (`--threads 1` each).
"""

from __future__ import annotations

import sys
from pathlib import Path

from convladder.analysis.longer_training import ARCHIVE, BUDGETS, MODELS, archived_seeds, budget_verdicts
from convladder.analysis.statistics import take_off_epoch
from convladder.experiments.args import experiment_parser, train_or_keep, training_setup
from convladder.plan.profiles import STUDY_EPOCHS
from convladder.results.layout import RESULTS_FILE, results_archive, seed_dir

PROFILE = "study"
EPOCHS = 150
SEEDS = (0, 1, 2)


def continued_plan(model: str, seed: int, epochs: int = EPOCHS):
    """The study profile's config of `model`, seed `seed`, with `epochs` in place of its own, and the recipe
    it records (plan_config)."""
    from convladder.plan.profiles import plan_config

    return plan_config(PROFILE, model, epochs=epochs, seed=seed)


def continued_config(model: str, seed: int, epochs: int = EPOCHS):
    """continued_plan's config alone."""
    return continued_plan(model, seed, epochs)[0]


def summary(out_dir=None, ladder_dir=None) -> str:
    """The archive so far as text: each seed's take-off and accuracies, then the verdicts at each budget."""
    from convladder.analysis.statistics import holm_family
    from convladder.results.records import collect_runs

    continued = archived_seeds(out_dir)
    lines = ["model seed  epochs  take-off  " + "  ".join(f"val@{b:<3}" for b in BUDGETS) + "  minutes"]
    for model, seeds in continued.items():
        for s in seeds:
            accs = "  ".join(f"{s['at'][b]:.3f} " if b in s["at"] else "  --  " for b in BUDGETS)
            lines.append(f"{model:5} {s['seed']:4}  {s['epochs']:3}{'' if s['finished'] else '*'}    "
                         f"{str(s['take_off'] or 'none'):8}  {accs}  {s['minutes']:.1f}")
    lines.append("(* unfinished: its checkpoint so far)")
    ladder = collect_runs(Path(ladder_dir) if ladder_dir else results_archive(PROFILE))
    verdicts = budget_verdicts(continued, ladder)
    adjusted = holm_family([v["comparison"] for v in verdicts])
    lines.append(f"Welch, 95% interval of the difference; Holm's adjustment over these {len(verdicts)} comparisons")
    for v, p_holm in zip(verdicts, adjusted):
        c = v["comparison"]
        interval = f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if c.ci_low is not None else "no interval"
        p = "none" if c.p_value is None else f"{c.p_value:.2g} (Holm {p_holm:.2g})"
        lines.append(f"{v['low']} -> {v['high']} at epoch {v['budget']}: {c.difference:+.3f} {interval}, p {p}, "
                     f"{c.n_low} vs {c.n_high} seeds: {c.verdict}{' (' + c.reason + ')' if c.reason else ''}")
    return "\n".join(lines)


def order(models, seeds) -> list[tuple[str, int]]:
    """Seed by seed, so that every model has a first seed before any has a second."""
    return [(model, seed) for seed in seeds for model in models]


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__spec__.name if __spec__ else __name__, __doc__, ARCHIVE, SEEDS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=sorted(STUDY_EPOCHS))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--source-dir", default=None, help="the archived runs continued (default: results/study)")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out_dir, args.source_dir))
        return 0

    out_dir, checksum = training_setup(args, ARCHIVE)
    source = Path(args.source_dir) if args.source_dir else results_archive(PROFILE)
    for model, seed in order(args.models, args.seeds):
        folder = seed_dir(out_dir / model, seed)
        config, recipe = continued_plan(model, seed, args.epochs)
        results = train_or_keep(folder, config, recipe, checksum, args.data_dir, model, f"{model} seed {seed}",
                                resume_from=source / model)
        if results is None:
            continue
        val = results["history"]["val_acc"]
        print(f"{model} seed {seed}: take-off epoch {take_off_epoch(val)}, validation "
              + ", ".join(f"{val[b - 1]:.3f} at {b}" for b in BUDGETS if b <= len(val))
              + f" ({results['train_seconds'] / 60:.1f} training min) -> {folder / RESULTS_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
