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
# # The report
# Collects every run's `results.json`, writes the LaTeX tables and figures, and compiles the PDF into the
# profile's run folder (`runs/<profile>/report/report.pdf`).

# %% tags=["parameters"]
from typing import Optional

profile: str = "smoke"  # smoke, quick or full
data_dir: Optional[str] = None  # unused: the report reads the runs' records alone (the pipeline passes every notebook it)
run_dir: Optional[str] = None  # the profile's run folder; None: runs/<profile>

# %%
from convladder.results.layout import RunLayout
from convladder.report.build import build_report

pdf = build_report(RunLayout.of(profile, run_dir))
print(f"report written to {pdf}")
