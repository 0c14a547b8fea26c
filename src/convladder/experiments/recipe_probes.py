"""The recovered recipe, firmed up (issue 24, part 3): one change at a time to the study profile's recipe
(`study-recovered`: SGD momentum 0.9, batch 32, lr 0.001, softmax output, bfloat16 autocast) on models A
and B, each seed a run of `train_run` into `results/recipe-probes/<model>-<probe>/seed<k>`.

The recipe was chosen on A's seed 0 from single-seed candidates (results/recipe-search), so that run
is in-sample; the probes ask which of its unstated settings matter:

- `fp32`: plain float32 instead of bfloat16 autocast (the study almost certainly trained in float32);
  3 seeds of A and 1 of B, compared with the study profile's bfloat16 runs of the same seeds;
- `b64-300`, `b128-300`: batch 64 and 128 for 300 epochs (fewer steps an epoch, so a take-off may lie
  beyond 150);
- `lr0.0005`, `lr0.002`: half and double the learning rate;
- `b16`: batch 16 (twice the steps an epoch), A and B;
- `init0.5`: every weight layer's initial weights halved (TrainConfig.init_scale), A and B, 3 seeds each (its
  first seed of B came closest to the study's take-off, so it gets the seeds of the closest probe).

The last two ask what delays the study's B to about epoch 110 (ours leaves chance at 51-60) while A stays
near 140.

    python -m convladder.experiments.recipe_probes --threads 1            # every probe, continuing where it stopped
    python -m convladder.experiments.recipe_probes --only fp32 --threads 1
    python -m convladder.experiments.recipe_probes --summary

A finished seed is kept, an unfinished one continues from its checkpoint, and a seed another copy of the
command is training is skipped, so two copies (one with `--reverse`) train side by side.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from convladder.analysis.recipe_probes import ARCHIVE, EPOCHS, archived_probes, precision_comparisons
from convladder.analysis.statistics import TAKE_OFF_ACC, take_off_epoch
from convladder.experiments.args import experiment_parser, train_or_keep, training_setup
from convladder.plan.recipes import STUDY_RECOVERED
from convladder.results.layout import RESULTS_FILE, results_archive, seed_dir

PROFILE = "study"  # the probes change the study profile's runs of A and B


@dataclass(frozen=True)
class Probe:
    changes: dict  # TrainConfig settings changed from the study profile's recipe
    runs: tuple[tuple[str, tuple[int, ...]], ...]  # (model, seeds)
    question: str
    epochs: int = EPOCHS


# In the order they train. init0.5 has 3 seeds of A and B: its first seed of B came closest to the study's take-off
# (115 against about 110; the recipe unchanged: 51), so it gets the seeds the issue asks of the closest probe.
PROBES = {
    "fp32": Probe({"amp": False}, (("A", (0, 1, 2)), ("B", (0,))),
                  "does bfloat16 autocast move the take-off?"),
    "init0.5": Probe({"init_scale": 0.5}, (("A", (0, 1, 2)), ("B", (0, 1, 2))),
                     "half the initial weights: does B's take-off move toward 110?"),
    "b16": Probe({"batch_size": 16}, (("A", (0,)), ("B", (0,))), "batch 16: does B's take-off move toward 110?"),
    "lr0.0005": Probe({"lr": 5e-4}, (("A", (0,)),), "half the learning rate"),
    "lr0.002": Probe({"lr": 2e-3}, (("A", (0,)),), "double the learning rate"),
    "b64-300": Probe({"batch_size": 64}, (("A", (0,)),), "batch 64: does A take off, counted in steps?", 300),
    "b128-300": Probe({"batch_size": 128}, (("A", (0,)),), "batch 128: does A take off, counted in steps?", 300),
}


def probe_name(model: str, probe: str) -> str:
    return f"{model}-{probe}"


def probe_plan(probe: str, model: str, seed: int):
    """The study profile's config of `model` with the probe's changes, and the recipe it records."""
    from convladder.plan.profiles import plan_config

    spec = PROBES[probe]
    config, recipe = plan_config(PROFILE, model, recipe=STUDY_RECOVERED, epochs=spec.epochs, seed=seed,
                                 **spec.changes)
    return replace(config, profile=ARCHIVE), recipe


def planned_runs(only=None) -> list[tuple[str, str, int]]:
    """Every (probe, model, seed) to train, in the order of PROBES (fp32 first: the one probe with 3 seeds)."""
    return [(probe, model, seed) for probe, spec in PROBES.items() if not only or probe in only
            for model, seeds in spec.runs for seed in seeds]


def summary(out_dir=None, ladder_dir=None) -> str:
    """Each probe seed's take-off and validation accuracy beside the study profile's run of the same model and
    seed (the recipe unchanged), and fp32 against bfloat16 over the seeds both have (paired by seed, 95% interval)."""
    from convladder.plan.study import STUDY_CURVES
    from convladder.results.records import collect_runs

    ladder = collect_runs(Path(ladder_dir) if ladder_dir else results_archive(PROFILE))
    lines = [f"the study: A takes off about epoch {STUDY_CURVES['A']['take_off']} (validation "
             f"{STUDY_CURVES['A']['val_acc']} at 150), B about {STUDY_CURVES['B']['take_off']} "
             f"({STUDY_CURVES['B']['val_acc']}); take-off: the first epoch from which validation stays above "
             f"{TAKE_OFF_ACC:g} (first above it, where that differs, in brackets)",
             "probe      model seed  epochs  take-off  val@150  val@end  | recipe unchanged: take-off  val@150  minutes"]
    probes = archived_probes(out_dir, ladder)
    for p in probes:
        unchanged = (f"{str(p['unchanged_take_off'] or 'none'):8}  {p['unchanged_val']:.3f}" if p["unchanged_val"] is not None
                     else "  --")
        val_150 = f"{p['val_150']:.3f}" if p["val_150"] is not None else "  -- "
        take_off = str(p["take_off"] or "none") + (f" ({p['first_above']})" if p["first_above"] != p["take_off"] else "")
        lines.append(f"{p['probe']:10} {p['model']:5} {p['seed']:4}  {p['epochs']:3}/{p['planned']:<3}"
                     f"{'' if p['finished'] else '*'} {take_off:8}  {val_150}    "
                     f"{p['val_acc']:.3f}  |                    {unchanged}  {p['minutes']:.1f}")
    lines.append("(* unfinished: its checkpoint so far)")
    for row in precision_comparisons(probes, ladder):
        c = row["c"]
        interval = f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if c.ci_low is not None else "no interval"
        p = "none" if c.p_value is None else f"{c.p_value:.2g}"
        lines.append(f"{row['model']} bfloat16 -> fp32, validation at {EPOCHS}: {c.difference:+.3f} {interval}, p {p}, "
                     f"seeds {', '.join(map(str, row['seeds']))}: {c.verdict}{' (' + c.reason + ')' if c.reason else ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__spec__.name if __spec__ else __name__, __doc__, ARCHIVE, (), ladder=PROFILE, reverse=True)
    parser.add_argument("--only", nargs="+", choices=list(PROBES), help="default: every probe")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out_dir, args.ladder_dir))
        return 0

    out_dir, checksum = training_setup(args, ARCHIVE)
    runs = planned_runs(args.only)
    if args.seeds:  # --seeds narrows the probes' own seeds
        runs = [r for r in runs if r[2] in args.seeds]
    for probe, model, seed in reversed(runs) if args.reverse else runs:
        name = probe_name(model, probe)
        folder = seed_dir(out_dir / name, seed)
        config, recipe = probe_plan(probe, model, seed)
        results = train_or_keep(folder, config, recipe, checksum, args.data_dir, name, f"{name} seed {seed}")
        if results is None:
            continue
        val = results["history"]["val_acc"]
        print(f"{name} seed {seed}: take-off epoch {take_off_epoch(val)}, validation {val[-1]:.3f} after {len(val)} "
              f"epochs ({results['train_seconds'] / 60:.1f} training min) -> {folder / RESULTS_FILE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
