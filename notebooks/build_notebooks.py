"""Writes the project's notebooks (without outputs) from the cell sources below.

The .ipynb files are committed; edit this file and run `python notebooks/build_notebooks.py`
to change them, so that a diff of a notebook is a diff of plain Python here.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, (kind, source) in enumerate(cells):
        if kind == "md":
            cell = new_markdown_cell(source.strip())
        else:
            cell = new_code_cell(source.strip())
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell.id = f"cell-{i}"  # stable ids keep the committed notebooks' diffs small
        nb.cells.append(cell)
    return nb


NOTEBOOKS = {
    "00_data": [
        ("md", "# CIFAR-10: the data\nDataset facts, class balance and a grid of random training samples (the study's Figure 1)."),
        ("parameters", 'profile = "smoke"\ndata_dir = None  # None: $CONVLADDER_DATA, else data/cifar10\nrun_dir = None  # None: runs/<profile>\nseed = 0'),
        ("code", """
from pathlib import Path
import matplotlib.pyplot as plt
import torch
from convladder.config import get_profile
from convladder.data import get_splits, load_cifar10
from convladder.io import atomic_write_json
from convladder.paths import default_run_dir
from convladder.plots import plot_samples

prof = get_profile(profile)
run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
dataset = load_cifar10(data_dir)
splits = get_splits(dataset, prof.train_size, prof.val_size, prof.test_size)
print(f"root: {dataset.root}\\nsha256 of the batch files: {dataset.checksum}")
"""),
        ("code", """
facts = {
    "checksum": dataset.checksum,
    "class_names": list(dataset.class_names),
    "all_train": len(dataset.train), "all_test": len(dataset.test),
    "train_counts": dataset.train.class_counts(), "test_counts": dataset.test.class_counts(),
    "split_sizes": {name: len(split) for name, split in splits.items()},
    "train_mean": dataset.train.images.float().div(255).mean(dim=(0, 2, 3)).tolist(),
    "train_std": dataset.train.images.float().div(255).std(dim=(0, 2, 3)).tolist(),
}
atomic_write_json(facts, run_dir / "data.json")
for key, value in facts.items():
    print(f"{key}: {value}")
"""),
        ("code", """
pick = torch.randperm(len(splits["train"]), generator=torch.Generator().manual_seed(seed))[:32]
fig = plot_samples(splits["train"].images[pick], splits["train"].labels[pick], dataset.class_names)
plt.show()
"""),
    ],
    "10_train": [
        ("md", "# Train one model of the ladder\nTrains (or continues) one run for each seed, each in its own folder `<run_dir>/seed<k>`, then shows the history (the band spans the seeds), accuracies and probability vectors. Values left as `None` come from the profile."),
        ("parameters", """
model = "A"
name = None  # run name; None: the model's name ("GAP+" names the continued GAP)
profile = "smoke"
epochs = None  # total epochs; None: the profile's
lr = 0.001
batch_size = None
train_size = None  # None: the profile's (the whole split for quick and full)
val_size = None
test_size = None
seeds = [0]  # one training per seed
study_softmax = False  # True: the study's softmax-then-cross-entropy
recipe = None  # other training settings, e.g. {"optimizer": "sgd", "augment": True}; None: the study's
data_dir = None
run_dir = None  # None: runs/<profile>/<name>; seed k trains in <run_dir>/seed<k>
resume_from = None  # another run's folder to continue from, seed by seed
restart = False  # True: train every seed again from epoch 0 (the old run stays until the new one has finished)
retrain_stale = False  # True: a seed that cannot be continued (other code, data or settings) trains again from epoch 0
"""),
        ("code", """
from pathlib import Path
import matplotlib.pyplot as plt
from convladder.config import config_from_parameters
from convladder.paths import default_run_dir
from convladder.plots import plot_history, plot_proba
from convladder.results import collect_runs, seed_dir, summarize
from convladder.runs import train_run

settings = dict(epochs=epochs, lr=lr, batch_size=batch_size, train_size=train_size, val_size=val_size,
                test_size=test_size, study_softmax=study_softmax)
configs = {seed: config_from_parameters(profile, model, **{**settings, **(recipe or {}), "seed": seed}) for seed in seeds}
run_name = name or model
run_dir = Path(run_dir) if run_dir else default_run_dir(profile) / run_name
configs[seeds[0]] if seeds else "no seeds to train"
"""),
        ("code", """
for seed, config in configs.items():
    train_run(config, seed_dir(run_dir, seed), data_dir=data_dir, name=run_name, resume_from=resume_from,
              restart=restart, retrain_stale=retrain_stale)
"""),
        ("code", """
runs = collect_runs(run_dir.parent).get(run_name, [])  # every finished seed, also those trained before
plot_history([r["history"] for r in runs], title=f"model {run_name} ({len(runs)} seed(s))")
plt.show()
for r in runs:
    final = r["final"]
    print(f"seed {r['config']['seed']}: train {final['train_acc']:.3f}  validation {final['val_acc']:.3f}  "
          f"test {final['test_acc']:.3f}  ({r['train_seconds']:.0f} s)")
for key in ("train_acc", "val_acc", "test_acc"):
    mean, std = summarize([r["final"][key] for r in runs])
    print(f"{key}: {mean:.3f} +- {std:.3f} over {len(runs)} seed(s)")
"""),
        ("code", """
first = runs[0]
classes = first["data"]["class_names"]
plot_proba({"before training": first["proba_before"], "after training": first["proba_after"]}, classes,
           title=f"seed {first['config']['seed']}, test image {first['probe_index']} ({classes[first['probe_label']]})")
plt.show()
"""),
    ],
    "20_other_sizes": [
        ("md", "# GAP on images that are not 32x32\nGlobal average pooling makes the last linear layer independent of the image size. As in the study: a cat photo (scikit-image's `chelsea`) resized to 32x20 (width x height), and CIFAR test images resized to 32x20 and 32x18. Beyond the study: test accuracy as a function of input size and aspect ratio, for every seed."),
        ("parameters", 'profile = "smoke"\ndata_dir = None\nrun_dir = None  # None: runs/<profile>\ngap_run = "GAP+"  # the run whose weights are used (all its seeds for the curve)\nexamples = 4\ncurve_images = None  # None: the profile\'s'),
        ("code", """
from pathlib import Path
import matplotlib.pyplot as plt
from convladder.config import get_profile
from convladder.other_sizes import other_sizes_study
from convladder.paths import default_run_dir
from convladder.plots import plot_proba, plot_size_curve

run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
images = curve_images if curve_images is not None else get_profile(profile).analysis_images
study = other_sizes_study(run_dir / gap_run, data_dir=data_dir, examples=examples, out_dir=run_dir / "other_sizes",
                          curve_images=images)
"""),
        ("code", """
for item in study["images"]:
    top = max(range(10), key=lambda i: item["proba"][i])
    print(f"{item['title']}: predicted {study['class_names'][top]} ({item['proba'][top]:.1%}), true {item['true']}")
    plot_proba({item["title"]: item["proba"]}, study["class_names"])
    plt.show()
plot_size_curve(study)
plt.show()
"""),
    ],
    "30_errors": [
        ("md", "# Where G and GAP go wrong\nConfusion matrices and per-class accuracy on the test set for every seed (torchmetrics), and the most confident mistakes of the first seed."),
        ("parameters", 'profile = "smoke"\ndata_dir = None\nrun_dir = None  # None: runs/<profile>\nrun_names = ["G", "GAP+"]\nimages = None  # test images to use; None: the profile\'s'),
        ("code", """
from pathlib import Path
import matplotlib.pyplot as plt
from convladder.config import get_profile
from convladder.errors import error_analysis
from convladder.paths import default_run_dir
from convladder.plots import plot_confusion, plot_per_class

run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
count = images if images is not None else get_profile(profile).analysis_images
errors = error_analysis(run_dir, tuple(run_names), data_dir=data_dir, images=count, out_dir=run_dir / "errors")
"""),
        ("code", """
for name, run in errors["runs"].items():
    plot_confusion(run["seeds"], errors["class_names"], title=f"{name}: test confusion, summed over {len(run['seeds'])} seed(s)")
    plt.show()
plot_per_class(errors)
plt.show()
"""),
    ],
    "40_diagnosis": [
        ("md", "# Diagnosing the study's anomalies\nModel E's failure (E and F under the study's softmax + cross-entropy, another initialisation, a larger learning rate) and the gradient norms per layer of C (sigmoid) and D (ReLU) in their first epochs."),
        ("parameters", 'profile = "smoke"\ndata_dir = None\nrun_dir = None  # None: runs/<profile>\ntrain_size = None  # None: the profile\'s\nepochs = None\nseeds = None  # None: range(the profile\'s extra_seeds)'),
        ("code", """
from pathlib import Path
import matplotlib.pyplot as plt
from convladder.config import get_profile
from convladder.diagnosis import diagnose
from convladder.paths import default_run_dir
from convladder.plots import plot_gradient_norms, plot_variants

prof = get_profile(profile)
run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
diagnosis = diagnose(
    run_dir / "diagnosis", data_dir=data_dir,
    train_size=train_size if train_size is not None else prof.diagnosis_train_size,
    epochs=epochs if epochs is not None else prof.diagnosis_epochs,
    seeds=tuple(seeds) if seeds is not None else tuple(range(prof.extra_seeds)),
    batch_size=prof.batch_size, val_size=prof.val_size,
)
"""),
        ("code", """
plot_variants(diagnosis)
plt.show()
for v in diagnosis["variants"]:
    finals = [s["final_val_acc"] for s in v["seeds"]]
    print(f"{v['label']}: final validation accuracy {finals}, logit std at init {v['seeds'][0]['logit_std_at_init']:.4f}")
plot_gradient_norms(diagnosis)
plt.show()
"""),
    ],
    "90_report": [
        ("md", "# The report\nCollects every run's `results.json`, writes the LaTeX tables and figures, and compiles the PDF."),
        ("parameters", 'profile = "smoke"\ndata_dir = None\nrun_dir = None  # None: runs/<profile>\nreport_root = None  # None: the run folder; "." writes report/ and figures/ of the repository'),
        ("code", """
from pathlib import Path
from convladder.paths import default_run_dir
from convladder.report import build_report

run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
pdf = build_report(run_dir, Path(report_root) if report_root else run_dir, data_dir=data_dir)
print(f"report written to {pdf}")
"""),
    ],
    "run_all": [
        ("md", "# Regenerate the whole report\n`papermill notebooks/run_all.ipynb out.ipynb -p profile quick` runs the data notebook, trains every run of the ladder for each of the profile's seeds (one executed copy of `10_train` per run, in its run folder), runs the other-sizes, errors and diagnosis notebooks and builds the PDF."),
        ("parameters", 'profile = "quick"\ndata_dir = None\nrun_dir = None  # None: runs/<profile>\nreport_root = None  # None: the run folder; "." writes report/ and figures/ of the repository\nmodels = None  # None: all; or a list such as ["A", "GAP"]\nforce = False  # True: retrain every run, even those that are finished and current'),
        ("code", """
import time
from pathlib import Path
import papermill as pm
from convladder.config import ladder
from convladder.data import load_cifar10
from convladder.paths import default_run_dir, notebooks_dir
from convladder.results import seed_dir
from convladder.runs import is_current

plan = ladder(profile, models)  # checks profile and model names before any work
run_dir = (Path(run_dir) if run_dir else default_run_dir(profile)).resolve()
report_root = str(Path(report_root).resolve()) if report_root else None
data_dir = str(Path(data_dir).resolve()) if data_dir else None
common = {"profile": profile, "data_dir": data_dir}
nb = notebooks_dir()
timings = {}

def execute(notebook, output, **parameters):
    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(nb / f"{notebook}.ipynb"), str(output), parameters={**common, **parameters}, progress_bar=False)
    timings[output.stem if notebook != "10_train" else output.parent.name] = time.perf_counter() - start
    print(f"{notebook} -> {output} ({timings[list(timings)[-1]]:.0f} s)", flush=True)

execute("00_data", run_dir / "00_data.ipynb", run_dir=str(run_dir))
"""),
        ("code", """
# A finished run whose config, training code and data are unchanged is reused; an interrupted
# one continues from its last finished epoch; one trained by other code, on other data or with
# other settings (or with a damaged checkpoint) trains again from epoch 0 beside the old one.
checksum = load_cifar10(data_dir).checksum
for run in plan:
    folder = run_dir / run.name
    todo = [seed for seed in run.seeds if force or not is_current(seed_dir(folder, seed), run.config(profile, seed), checksum)]
    if not todo:
        print(f"{run.name}: seeds {list(run.seeds)} finished and current in {folder}, reused", flush=True)
        continue
    execute("10_train", folder / "train.ipynb", model=run.model, name=run.name, epochs=run.epochs, recipe=run.recipe,
            seeds=todo, run_dir=str(folder), resume_from=str(run_dir / run.continues) if run.continues else None,
            restart=force, retrain_stale=True)
"""),
        ("code", """
names = {run.name for run in plan}
if "GAP+" in names:
    execute("20_other_sizes", run_dir / "20_other_sizes.ipynb", run_dir=str(run_dir), gap_run="GAP+")
if {"G", "GAP+"} & names:
    execute("30_errors", run_dir / "30_errors.ipynb", run_dir=str(run_dir), run_names=sorted({"G", "GAP+"} & names))
if models is None:  # the diagnosis trains its own variants of C, D, E and F
    execute("40_diagnosis", run_dir / "40_diagnosis.ipynb", run_dir=str(run_dir))
execute("90_report", run_dir / "90_report.ipynb", run_dir=str(run_dir), report_root=report_root)
print({k: round(v) for k, v in timings.items()}, f"total {sum(timings.values()):.0f} s")
"""),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(notebook(cells), HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
