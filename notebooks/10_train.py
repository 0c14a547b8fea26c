# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Train one model of the ladder
# Trains (or continues) one run for each seed, each in its own folder `<run_dir>/<name>/seed<k>`, then shows
# the history (the band spans the seeds), accuracies and probability vectors. Values left as `None` come from
# the profile.

# %% tags=["parameters"]
from typing import Optional

model: str = "A"  # the model to train (a registered model: A to G, GAP, H)
name: Optional[str] = None  # run name; None: the model's name ("GAP+" names the continued GAP)
profile: str = "smoke"  # smoke, quick, study, h or full: data sizes, default epochs and recipe
epochs: Optional[int] = None  # total epochs; None: the profile's
seeds: list = [0]  # one training per seed, each in <run>/seed<k>
recipe: Optional[str] = None  # a named recipe (plan/recipes.py: ladder, study-recovered, gap-fast, h); None: the profile's
changes: Optional[dict] = None  # TrainConfig settings on top of the recipe, e.g. {"lr": 0.05}
planned: Optional[dict] = None  # from `convladder all`: {"config": TrainConfig dict, "recipe": record}; overrides the above
data_dir: Optional[str] = None  # folder holding cifar-10-batches-py/; None: $CONVLADDER_DATA, else data/cifar10
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>
resume_from: Optional[str] = None  # name of another run of the profile to continue from, seed by seed (GAP+ from GAP)
restart: bool = False  # True: every seed trains again from epoch 0 (the old run stays until the new one has finished)
retrain_stale: bool = False  # True: a seed that cannot be continued (other code, data or settings) trains again
threads: Optional[int] = None  # PyTorch's threads for these runs; None: its default (every core)

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import torch
from convladder.core.config import TrainConfig
from convladder.core.runs import train_run
from convladder.plan.profiles import plan_config
from convladder.report.plots import plot_history, plot_proba
from convladder.results.layout import RunLayout
from convladder.results.records import collect_runs, summarize

if threads:
    torch.set_num_threads(threads)
layout = RunLayout.of(profile, run_dir)
if planned:
    config, recorded = TrainConfig.from_dict(planned["config"]), planned["recipe"]
else:
    config, recorded = plan_config(profile, model, recipe=recipe, epochs=epochs, **(changes or {}))
run_name = name or config.model
configs = {seed: replace(config, seed=seed) for seed in seeds}
configs[seeds[0]] if seeds else "no seeds to train"

# %%
for seed, config in configs.items():
    train_run(config, layout.seed(run_name, seed), data_dir=data_dir, name=run_name,
              resume_from=layout.run(resume_from) if resume_from else None, restart=restart, retrain_stale=retrain_stale,
              recipe=recorded)

# %%
# the seeds of this step (all of the run's, or one where seeds train side by side), finished now or before
runs = [r for r in collect_runs(layout.root).get(run_name, []) if r["config"]["seed"] in configs]
plot_history([r["history"] for r in runs], title=f"model {run_name}, {len(runs)} seed{'s' if len(runs) > 1 else ''}")
plt.show()
for r in runs:
    final = r["final"]
    print(f"seed {r['config']['seed']}: train {final['train_acc']:.3f}  validation {final['val_acc']:.3f}  "
          f"test {final['test_acc']:.3f}  ({r['train_seconds']:.0f} s)")
for key in ("train_acc", "val_acc", "test_acc"):
    mean, std = summarize([r["final"][key] for r in runs])
    print(f"{key}: {mean:.3f} +- {std:.3f} over {len(runs)} seeds")

# %%
first = runs[0]
classes = first["data"]["class_names"]
plot_proba({"before training": first["proba_before"], "after training": first["proba_after"]}, classes,
           title=f"seed {first['config']['seed']}, test image {first['probe_index']} ({classes[first['probe_label']]})")
plt.show()
