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
# # Diagnosing the study's anomalies
# Model E's failure (E and F under the study's softmax + cross-entropy, another initialisation, a larger
# learning rate) and the gradient norms per layer of C (sigmoid) and D (ReLU) in their first epochs.

# %% tags=["parameters"]
from typing import Optional

profile: str = "smoke"  # smoke, quick or full
data_dir: Optional[str] = None  # folder holding cifar-10-batches-py/; None: $CONVLADDER_DATA, else data/cifar10
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>
train_size: Optional[int] = None  # training images per variant; None: the profile's
epochs: Optional[int] = None  # epochs per variant; None: the profile's
seeds: Optional[list] = None  # None: range(the profile's extra_seeds)

# %%
import matplotlib.pyplot as plt
from convladder.plan.profiles import get_profile
from convladder.experiments.diagnosis import diagnose
from convladder.results.layout import RunLayout
from convladder.report.plots import plot_gradient_norms, plot_variants

prof = get_profile(profile)
layout = RunLayout.of(profile, run_dir)
diagnosis = diagnose(
    layout.diagnosis_dir, data_dir=data_dir,
    train_size=train_size if train_size is not None else prof.diagnosis_train_size,
    epochs=epochs if epochs is not None else prof.diagnosis_epochs,
    seeds=tuple(seeds) if seeds is not None else tuple(range(prof.extra_seeds)),
    batch_size=prof.batch_size, val_size=prof.val_size,
)

# %%
plot_variants(diagnosis)
plt.show()
for v in diagnosis["variants"]:
    finals = [s["final_val_acc"] for s in v["seeds"]]
    print(f"{v['label']}: final validation accuracy {finals}, logit std at init {v['seeds'][0]['logit_std_at_init']:.4f}")
plot_gradient_norms(diagnosis)
plt.show()
