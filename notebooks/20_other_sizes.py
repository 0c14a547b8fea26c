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
# # GAP on images that are not 32x32
# Global average pooling makes the last linear layer independent of the image size. As in the study: a cat
# photo (Chelsea, from scikit-image's sample data, CC0) resized to 32x20 (width x height), and CIFAR test images
# resized to 32x20 and 32x18. Beyond the study: test accuracy as a function of input size and aspect ratio, for
# every seed of GAP+ (trained on 32x32 only) and of GAP-fast (its first epochs on 16- to 28-pixel images).

# %% tags=["parameters"]
from typing import Optional

profile: str = "smoke"  # smoke, quick or full
data_dir: Optional[str] = None  # folder holding cifar-10-batches-py/; None: $CONVLADDER_DATA, else data/cifar10
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>
gap_runs: list = ["GAP+", "GAP-fast"]  # the GAP runs whose weights are used (all seeds of each for the curve)
examples: int = 4  # test images shown at the study's odd sizes
curve_images: Optional[int] = None  # test images per point of the size curve; None: the profile's

# %%
import matplotlib.pyplot as plt
from convladder.plan.profiles import get_profile
from convladder.experiments.other_sizes import other_sizes_study
from convladder.results.layout import RunLayout
from convladder.report.plots import plot_proba, plot_size_curve

layout = RunLayout.of(profile, run_dir)
images = curve_images if curve_images is not None else get_profile(profile).analysis_images
studies = {
    name: other_sizes_study(layout.run(name), data_dir=data_dir, examples=examples,
                            out_dir=layout.other_sizes_results(name).parent, curve_images=images)
    for name in gap_runs
}

# %%
for name, study in studies.items():
    for item in study["images"]:
        top = max(range(10), key=lambda i: item["proba"][i])
        print(f"{name}, {item['title']}: predicted {study['class_names'][top]} ({item['proba'][top]:.1%}), "
              f"true {item['true']}")
        plot_proba({item["title"]: item["proba"]}, study["class_names"], title=name)
        plt.show()
plot_size_curve(studies)
plt.show()
