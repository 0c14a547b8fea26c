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
# # CIFAR-10: the data
# Dataset facts, class balance and a grid of random training samples (the study's Figure 1).

# %% tags=["parameters"]
from typing import Optional

profile: str = "smoke"  # how much work: smoke, quick or full (config.PROFILES)
data_dir: Optional[str] = None  # folder holding cifar-10-batches-py/; None: $CONVLADDER_DATA, else data/cifar10
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>
seed: int = 0  # which random samples are shown

# %%
import matplotlib.pyplot as plt
import torch
from convladder.plan.profiles import get_profile
from convladder.core.data import data_facts, get_splits, load_cifar10
from convladder.tools.files import atomic_write_json
from convladder.results.layout import RunLayout
from convladder.report.plots import plot_samples, save

prof = get_profile(profile)
layout = RunLayout.of(profile, run_dir)
dataset = load_cifar10(data_dir)
splits = get_splits(dataset, prof.train_size, prof.val_size, prof.test_size)
print(f"root: {dataset.root}\nsha256 of the batch files: {dataset.checksum}")

# %%
facts = data_facts(dataset, splits)
atomic_write_json(facts, layout.data_facts)
for key, value in facts.items():
    print(f"{key}: {value}")

# %%
pick = torch.randperm(len(splits["train"]), generator=torch.Generator().manual_seed(seed))[:32]
fig = plot_samples(splits["train"].images[pick], splits["train"].labels[pick], dataset.class_names)
save(fig, layout.figures_dir / "samples.png", close=False)  # the report's Figure 1 of the study
plt.show()
