"""The recipe probes (issue 24, part 3): each planned run is the study profile's run with the probe's
changes alone, and records them against the recovered recipe."""

from dataclasses import replace

import pytest

from convladder.experiments.recipe_probes import ARCHIVE, PROBES, planned_runs, probe_plan
from convladder.plan.profiles import plan_config


@pytest.mark.parametrize("probe", list(PROBES))
def test_a_probe_changes_only_what_it_names(probe):
    spec = PROBES[probe]
    for model, seeds in spec.runs:
        for seed in seeds:
            config, recipe = probe_plan(probe, model, seed)
            study, _ = plan_config("study", model, seed=seed, epochs=spec.epochs)
            assert recipe == {"name": "study-recovered", "changes": spec.changes}
            assert replace(config, profile="study") == replace(study, **spec.changes)
            assert config.profile == ARCHIVE


def test_fp32_has_three_seeds_of_a_and_runs_first():
    runs = planned_runs()
    assert runs[:4] == [("fp32", "A", 0), ("fp32", "A", 1), ("fp32", "A", 2), ("fp32", "B", 0)]
    assert planned_runs(["b16"]) == [("b16", "A", 0), ("b16", "B", 0)]
