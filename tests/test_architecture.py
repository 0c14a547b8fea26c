"""The package's layers, as folders: every import points down (or within its layer), the report
imports no training code, no module grows past 400 lines, and adding a model is a registry entry."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

import convladder
from convladder.core import registry, versions
from convladder.core.registry import ModelEntry
from convladder.plan import profiles

PACKAGE = Path(convladder.__file__).resolve().parent
# Lowest first: a module may import its own layer and the ones before it, never one after it.
LAYERS = ("tools", "results", "core", "plan", "analysis", "experiments", "report", "app")
# What the report may load of the layers below analysis: the recorded configuration, the registry, the
# declared versions and H's design in numbers; none of them imports torch or trains.
REPORT_MAY_LOAD = {"convladder.core.config", "convladder.core.registry", "convladder.core.versions",
                   "convladder.core.h_design"}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(("convladder", *parts)).removesuffix(".__init__")] = path
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else LAYERS.index("app")


def imports(path: Path) -> set[str]:
    """Every convladder module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("convladder.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("convladder"):
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules() else node.module
                      for alias in node.names}
    return found


def test_every_module_lives_in_a_layer_folder_except_the_entry_points():
    top = {name for name, path in modules().items() if name.count(".") == 1 and path.name != "__init__.py"}
    assert top == {"convladder.cli", "convladder.pipeline", "convladder.workers", "convladder.cluster",
                   "convladder.cluster_files"}
    assert {name.split(".")[1] for name in modules() if name.count(".") == 2} <= set(LAYERS)


def test_imports_point_only_down_the_layers():
    upward = [f"{name} ({LAYERS[layer(name)]}) imports {target} ({LAYERS[layer(target)]})"
              for name, path in modules().items() for target in imports(path) if layer(target) > layer(name)]
    assert not upward, "\n".join(upward)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from convladder.report.build import build_report\n")
    assert layer("convladder.core.training") < max(layer(target) for target in imports(bad))


def test_no_module_is_longer_than_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long


def test_the_report_imports_no_training_code_and_no_experiment():
    report = [name for name in modules() if name.startswith("convladder.report.")]
    code = f"import sys, {', '.join(report)}; print(__import__('json').dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    below = {name for name in loaded if name.startswith(("convladder.core.", "convladder.experiments."))}
    assert below <= REPORT_MAY_LOAD, below - REPORT_MAY_LOAD


# --- adding a model: a registry entry, a builder, a version for its family, a profile's epochs ---

def toy_model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


@pytest.fixture
def model_i(monkeypatch):
    registry.register(ModelEntry("I", builder=f"{__name__}:toy_model", family="I", any_size=True))
    monkeypatch.setitem(versions.CODE_VERSIONS, "I", "toy-1")
    toy = profiles.Profile(name="toy", train_size=64, val_size=16, test_size=16, epochs={"A": 1, "I": 2},
                           continuation_epochs=0, fast_gap_epochs=0, batch_size=16, extras=False,
                           description="a toy profile")
    monkeypatch.setitem(profiles.PROFILES, "toy", toy)
    yield toy
    registry.unregister("I")


def test_a_registered_model_gets_its_runs_planned_and_trained(model_i, tiny_cifar, tmp_path):
    from convladder.core.models import create_model
    from convladder.core.runs import train_run

    runs = {run.name: run for run in profiles.ladder("toy")}
    assert list(runs) == ["A", "I"] and runs["I"].epochs == 2
    config = runs["I"].config("toy")
    assert (config.model, config.epochs, config.batch_size, config.train_size) == ("I", 2, 16, 64)
    assert isinstance(create_model("I"), nn.Sequential) and versions.code_version("I") == "toy-1"
    results = train_run(config, tmp_path / "I" / "seed0", data_dir=tiny_cifar, name="I")
    assert results["code_version"] == "toy-1" and len(results["history"]["val_acc"]) == 2
    assert results["config"]["model"] == "I"


def test_a_model_without_a_declared_version_is_refused_with_what_to_do(model_i, monkeypatch):
    monkeypatch.delitem(versions.CODE_VERSIONS, "I")
    with pytest.raises(ValueError, match="no declared code version"):
        versions.code_version("I")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ModelEntry("I", builder=f"{__name__}:toy_model"))
