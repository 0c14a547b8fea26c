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
# # Where G and GAP go wrong
# Confusion matrices and per-class accuracy on the test set for every seed (torchmetrics), and the most
# confident mistakes of the first seed.

# %% tags=["parameters"]
from typing import Optional

profile: str = "smoke"  # smoke, quick or full
data_dir: Optional[str] = None  # folder holding cifar-10-batches-py/; None: $CONVLADDER_DATA, else data/cifar10
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>
run_names: list = ["G", "GAP+"]  # the runs analysed
images: Optional[int] = None  # test images to use; None: every test image the runs were evaluated on

# %%
import matplotlib.pyplot as plt
from convladder.experiments.error_analysis import error_analysis
from convladder.results.layout import RunLayout
from convladder.report.error_plots import plot_confusion, plot_per_class

layout = RunLayout.of(profile, run_dir)
errors = error_analysis(layout.root, tuple(run_names), data_dir=data_dir, images=images, out_dir=layout.errors_dir)

# %%
for name, run in errors["runs"].items():
    seeds = len(run["seeds"])
    plot_confusion(run["seeds"], errors["class_names"],
                   title=f"{name}: test confusion, summed over {seeds} seed{'s' if seeds > 1 else ''}")
    plt.show()
plot_per_class(errors)
plt.show()
