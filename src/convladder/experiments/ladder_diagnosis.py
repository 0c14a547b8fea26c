"""Why do C and E fail under the ladder's own recipe? The diagnoses of diagnosis.py (Adam, batch 128, 8,000
images, 3 epochs, one seed a variant) cannot say, since E learns under Adam. Here every experiment trains
with the study profile's recipe (SGD momentum 0.9, batch 32, lr 0.001; the recipe study-recovered in plan/recipes.py)
on the full 42,000 / 8,000 split, 3 seeds each, into `results/study-diagnosis/`:

- model E for 16 epochs (the study profile's E) with logits instead of the softmax output (`E-logits`),
  with He (Kaiming) initialisation (`E-he`), and with both (`E-he-logits`); the study profile's own E
  (softmax, PyTorch's initialisation) is the baseline;
- models C and D for their first GRADIENT_EPOCHS epochs (`C-gradients`, `D-gradients`): every weight
  layer's gradient norm and the size of its update (what momentum SGD moves the weights by, and what
  Adam would normalise) every RECORD_EVERY steps.

    python -m convladder.experiments.ladder_diagnosis --threads 1            # everything, continuing where it stopped
    python -m convladder.experiments.ladder_diagnosis --summary              # what the archive holds so far

A finished seed is kept; an unfinished variant of E continues from its checkpoint (each epoch is saved),
and a seed another process is training is skipped, so two copies can run side by side.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from convladder.analysis.ladder_diagnosis import (
    ARCHIVE,
    E_VARIANTS,
    EPOCHS,
    GRADIENT_RUNS,
    GRADIENTS_FILE,
    PROFILE,
    archived,
    gradient_ratios,
    variant_comparisons,
)
from convladder.experiments.args import experiment_parser, set_threads
from convladder.results.layout import CHECKPOINT_FILE, RESULTS_FILE, results_archive, seed_dir

SEEDS = (0, 1, 2)
GRADIENT_EPOCHS = 2
RECORD_EVERY = 10  # steps between two records of the gradient and update norms
# Bump when a change alters what these experiments train or measure; recorded with each seed.
EXPERIMENT_VERSION = 1


def variant_config(model: str, seed: int, epochs: int, study_softmax: bool):
    """The study profile's config of `model` with the given output."""
    from convladder.plan.profiles import config_from_parameters

    return config_from_parameters(PROFILE, model, epochs=epochs, seed=seed, study_softmax=study_softmax)


def _splits(dataset, config):
    from convladder.core.data import get_splits

    return get_splits(dataset, config.train_size, config.val_size, config.test_size, config.split_seed)


def _provenance(dataset, config) -> dict:
    from convladder.core.versions import code_version

    return {"code_version": code_version(config.model), "data_checksum": dataset.checksum,
            "experiment_version": EXPERIMENT_VERSION}


def _finished(path: Path, dataset, model: str) -> bool:
    """Whether `path` holds a finished seed of today's code, data and experiment."""
    from convladder.tools.files import DamagedFile, read_json
    from convladder.core.versions import code_version

    try:
        done = read_json(path)
    except (FileNotFoundError, DamagedFile):
        return False
    wanted = {"code_version": code_version(model), "data_checksum": dataset.checksum,
              "experiment_version": EXPERIMENT_VERSION}
    return isinstance(done, dict) and all(done.get(k) == v for k, v in wanted.items())


def train_variant(name: str, seed: int, dataset, out_dir: Path, epochs: int = EPOCHS, progress: bool = True) -> dict:
    """Train (or continue) one seed of an E variant into `out_dir/<name>/seed<k>`; its results."""
    import torch

    from convladder.experiments.diagnosis import init_weights
    from convladder.tools.files import atomic_write_json, load_checkpoint_file
    from convladder.core.models import create_model
    from convladder.results.records import environment
    from convladder.core.runs import move_aside, run_lock
    from convladder.core.training import Trainer

    model_name, softmax, init = E_VARIANTS[name]
    config = variant_config(model_name, seed, epochs, softmax)
    folder = seed_dir(out_dir / name, seed)
    provenance = _provenance(dataset, config)
    with run_lock(folder):
        folder.mkdir(parents=True, exist_ok=True)
        checkpoint = folder / CHECKPOINT_FILE
        if checkpoint.exists() and load_checkpoint_file(checkpoint).get("provenance") != provenance:
            # to a free name: an earlier stale checkpoint moved aside is kept too
            move_aside(checkpoint, "training from epoch 0", "stale")
        splits = _splits(dataset, config)
        torch.manual_seed(config.seed)
        model = init_weights(create_model(model_name, study_softmax=softmax), init)
        trainer = Trainer(model, splits["train"], splits["val"], config, run_dir=folder, provenance=provenance)
        history = trainer.fit(epochs, progress=progress)
        test = trainer.evaluate(splits["test"])
        results = {
            "name": name, "variant": {"model": model_name, "study_softmax": softmax, "init": init},
            "config": config.to_dict(), **provenance, "environment": environment(trainer.device),
            "history": history, "train_seconds": sum(history["epoch_seconds"]),
            "final": {"train_acc": history["train_acc"][-1], "val_acc": history["val_acc"][-1],
                      "test_acc": test["acc"], "test_loss": test["loss"]},
        }
        atomic_write_json(results, folder / RESULTS_FILE)
        return results


def gradient_run(name: str, seed: int, dataset, out_dir: Path, epochs: int = GRADIENT_EPOCHS,
                 progress: bool = True) -> dict:
    """Train `GRADIENT_RUNS[name]` for `epochs` epochs with the study's recipe and record, every RECORD_EVERY
    steps, each weight layer's gradient norm, update norm (the step's change of its weights) and weight norm."""
    import torch

    from convladder.experiments.diagnosis import weight_layers
    from convladder.tools.files import atomic_write_json
    from convladder.core.models import create_model
    from convladder.results.records import environment
    from convladder.core.training import Trainer

    model_name = GRADIENT_RUNS[name]
    config = variant_config(model_name, seed, epochs, True)
    splits = _splits(dataset, config)
    torch.manual_seed(config.seed)
    trainer = Trainer(create_model(model_name, study_softmax=True), splits["train"], splits["val"], config)
    layers = weight_layers(trainer.model)
    before = {layer: weight.detach().clone() for layer, weight in layers.items()}
    record = {"step": [], "loss": [], **{f"{kind}:{layer}": [] for layer in layers
                                        for kind in ("grad", "update", "weight")}}
    step = 0

    def on_step(loss: float) -> None:
        nonlocal step
        step += 1
        if step % RECORD_EVERY and step != 1:
            before.update({layer: weight.detach().clone() for layer, weight in layers.items()})
            return
        record["step"].append(step)
        record["loss"].append(loss)
        for layer, weight in layers.items():
            record[f"grad:{layer}"].append(float(weight.grad.norm()))
            record[f"update:{layer}"].append(float((weight.detach() - before[layer]).norm()))
            record[f"weight:{layer}"].append(float(weight.detach().norm()))
            before[layer] = weight.detach().clone()

    trainer.on_step = on_step
    start = time.perf_counter()
    history = trainer.fit(epochs, progress=progress)
    results = {"name": name, "model": model_name, "seed": seed, "config": config.to_dict(),
               **_provenance(dataset, config), "environment": environment(trainer.device), "layers": list(layers),
               "record_every": RECORD_EVERY, "steps_per_epoch": trainer.steps_per_epoch, "record": record,
               "history": history, "seconds": time.perf_counter() - start}
    folder = seed_dir(out_dir / name, seed)
    atomic_write_json(results, folder / GRADIENTS_FILE)
    return results


def summary(out_dir=None, ladder_dir=None) -> str:
    """Each E variant's validation accuracy after its epochs against the study profile's E (Welch, 95% interval,
    Holm over the variants), and each gradient run's first-to-last layer ratio of gradient and update norms."""
    from convladder.results.records import collect_runs

    found = archived(out_dir)
    ladder = collect_runs(Path(ladder_dir) if ladder_dir else results_archive(PROFILE))
    baseline = [r["final"]["val_acc"] for r in ladder.get("E", [])]
    lines = [f"E (the study profile's: softmax, PyTorch's init): validation {', '.join(f'{v:.3f}' for v in baseline)}"]
    variants = variant_comparisons(found, baseline)
    for v in variants:
        lines.append(f"{v['name']}: validation {', '.join(f'{x:.3f}' for x in v['val'])} after {EPOCHS} epochs; "
                     f"take-off {', '.join(str(t or 'none') for t in v['take_offs'])}")
    for v in variants:
        c = v["c"]
        if c is None:
            continue
        interval = f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]" if c.ci_low is not None else "no interval"
        p = "none" if c.p_value is None else f"{c.p_value:.2g} (Holm {v['p_holm']:.2g})"
        lines.append(f"E -> {v['name']}: {c.difference:+.3f} {interval}, p {p}, {c.n_low} vs {c.n_high} seeds: "
                     f"{c.verdict}{' (' + c.reason + ')' if c.reason else ''}")
    for name, seeds in gradient_ratios(found).items():
        for r in seeds:
            lines.append(f"{name} seed {r['seed']}: first/last layer, median over epoch 1: gradient norm "
                         f"{r['grad_ratio']:.3g}, update norm {r['update_ratio']:.3g}; validation "
                         f"{', '.join(f'{v:.3f}' for v in r['val_acc'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = experiment_parser(__spec__.name if __spec__ else __name__, __doc__, ARCHIVE, SEEDS, ladder=PROFILE)
    parser.add_argument("--only", nargs="+", choices=[*E_VARIANTS, *GRADIENT_RUNS], help="default: every experiment")
    parser.add_argument("--epochs", type=int, default=None, help=f"default: {EPOCHS} (E), {GRADIENT_EPOCHS} (C, D)")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out_dir, args.ladder_dir))
        return 0

    from convladder.core.data import load_cifar10
    from convladder.core.runs import RunLocked

    set_threads(args.threads)
    out_dir = Path(args.out_dir) if args.out_dir else results_archive(ARCHIVE)
    dataset = load_cifar10(args.data_dir)
    for seed in args.seeds:
        for name in args.only or [*GRADIENT_RUNS, *E_VARIANTS]:
            done = seed_dir(out_dir / name, seed) / (RESULTS_FILE if name in E_VARIANTS else GRADIENTS_FILE)
            if _finished(done, dataset, E_VARIANTS[name][0] if name in E_VARIANTS else GRADIENT_RUNS[name]):
                print(f"{name} seed {seed}: finished, kept ({done})", flush=True)
                continue
            try:
                if name in E_VARIANTS:
                    results = train_variant(name, seed, dataset, out_dir, args.epochs or EPOCHS)
                    print(f"{name} seed {seed}: validation {results['final']['val_acc']:.3f} after "
                          f"{len(results['history']['epoch'])} epochs ({results['train_seconds'] / 60:.1f} min)",
                          flush=True)
                else:
                    results = gradient_run(name, seed, dataset, out_dir, args.epochs or GRADIENT_EPOCHS)
                    print(f"{name} seed {seed}: recorded {len(results['record']['step'])} steps "
                          f"({results['seconds'] / 60:.1f} min)", flush=True)
            except RunLocked as err:
                print(f"{name} seed {seed}: skipped, {err}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
