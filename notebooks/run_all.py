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
# # Regenerate the whole report
# Runs the data notebook, trains every run of the ladder for each of the profile's seeds (one executed copy of
# `10_train` per run, in its run folder), runs the other-sizes, errors and diagnosis notebooks and builds the
# PDF: `convladder.pipeline.run_pipeline`, which `convladder all` runs too.

# %% tags=["parameters"]
from typing import Optional

profile: str = "quick"  # smoke, quick or full
data_dir: Optional[str] = None  # folder holding cifar-10-batches-py/; None: $CONVLADDER_DATA, else data/cifar10
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>
models: Optional[list] = None  # None: the whole ladder; or a list such as ["A", "GAP"]
force: bool = False  # True: train every run again, even those that are finished and current
export: bool = False  # True: also copy the PDF to report/<profile>.pdf and the figures to figures/<profile>/

# %%
from convladder.pipeline import run_pipeline

result = run_pipeline(profile, data_dir=data_dir, run_dir=run_dir, models=models, force=force, export=export)
