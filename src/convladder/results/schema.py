"""The schema of a run's `results.json`, its version, and the one migration of older files.

Every reader gets results through records.read_results, which checks a file against this schema
(`results_problem`) and migrates it to the current version (`migrate`), so that no reader needs a
default for a key an older file lacks. The types below say what each key holds.

Versions:
  1  every file written before the schema had a number (none recorded). Keys were added over time
     without one, so a version-1 file may lack: the optional facts of `OPTIONAL_FACTS` (measured or
     recorded only by later code), and the settings of `ADDED_SETTINGS` in its config.
  2  `schema_version` recorded; every key of `OPTIONAL_FACTS` present (None: not measured) and every
     setting of `ADDED_SETTINGS` in the config.

To change the schema: bump SCHEMA_VERSION, add the step from the last version to `migrate`, and
describe the version above. A file of a later version than this code knows is refused (it was written
by a newer convladder) rather than read wrongly.
"""

from __future__ import annotations

import copy
from typing import Any, NotRequired, TypedDict

SCHEMA_VERSION = 2


class History(TypedDict):
    """One value per finished epoch, in epoch order."""

    epoch: list[int]
    epoch_seconds: list[float]
    train_acc: list[float]  # mean over the epoch's batches, in training mode
    train_loss: list[float]
    val_acc: list[float]  # evaluation mode, after the epoch
    val_loss: list[float]


class Final(TypedDict):
    """Accuracies and losses after the last epoch; None where the run's code did not measure it."""

    train_acc: float
    val_acc: float
    test_acc: float
    test_loss: float
    train_loss: float | None
    val_loss: float | None
    train_acc_eval: float | None  # the training split in evaluation mode
    test_acc_tta: float | None  # test-time augmentation (model H)
    test_acc_flip: float | None


class Environment(TypedDict, total=False):
    """Where the run trained, as far as the code that wrote the file recorded it (records.environment)."""

    cpu: str
    cpu_count: int | None
    cpu_bf16_unit: str | None  # None: not recorded (version 1) or no bfloat16 unit
    device: str
    git_commit: str
    platform: str
    python: str
    torch: str
    torch_threads: int | None
    gpu: str  # the GPU's name, where the run trained on one


class RunResults(TypedDict):
    """A run's results.json (one seed of one run), as every reader receives it."""

    schema_version: int
    name: str  # the run's name: "A", ..., "GAP+", "H-no-whitening"
    config: dict[str, Any]  # core.config.TrainConfig.to_dict() of the run
    code_version: str  # core.versions.code_version of the run's model family
    environment: Environment
    data: dict[str, Any]  # the CIFAR-10 files' checksum, split sizes
    history: History
    final: Final
    train_seconds: float  # training only, validation after each epoch excluded
    evaluation_seconds: float | None
    wall_seconds: float | None  # the training call's own wall time
    beside_cores: float | None  # cores other processes kept busy during that call, on average (tools.load)
    continued_from: str | None  # the run folder this run continued (GAP+: GAP's), or None
    layers: list[dict] | None  # each layer's type and shape, as trained
    checkpoint_sha256: str | None
    parameters: NotRequired[int]
    proba_before: NotRequired[list]
    proba_after: NotRequired[list]
    probe_index: NotRequired[int]
    probe_label: NotRequired[str]
    recipe: NotRequired[dict]  # the named recipe and what the run changed on it (plan.recipes.record)
    run_dir: NotRequired[str]  # added by records.load_results: the folder it was read from


# What every results file holds, with the type of each; a file without them is damaged.
REQUIRED_KEYS = ("name", "config", "history", "final", "data")
HISTORY_CURVES = ("epoch", "train_acc", "train_loss", "val_acc", "val_loss")
FINAL_NUMBERS = ("train_acc", "val_acc", "test_acc")

# Facts that later code measures or records, None where a file lacks them (version 1: all of them; beside_cores:
# files written before 2026-12-05).
OPTIONAL_FACTS = {
    "": ("evaluation_seconds", "wall_seconds", "continued_from", "layers", "checkpoint_sha256", "beside_cores"),
    "environment": ("cpu_bf16_unit",),
    "final": ("train_loss", "val_loss", "train_acc_eval", "test_acc_tta", "test_acc_flip"),
}
# Version 1 -> 2: settings added to the config after the first runs, each with the value that gives
# what training did before the setting existed (tests/test_results_schema.py: TrainConfig's defaults).
ADDED_SETTINGS = {"drop_last": False, "lookahead": False, "train_split": "train", "without": "", "init_scale": 1.0}


class NewerSchema(ValueError):
    """A results file of a schema version this code does not know."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def results_problem(results) -> str | None:
    """What makes `results` no run's results (the first thing found), or None: the schema every reader
    relies on (types included), so that a damaged but valid JSON file is caught in one place."""
    if not isinstance(results, dict):
        return "not a JSON object"
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if not isinstance(results["name"], str) or not results["name"]:
        return "name is not a run name"
    config = results["config"]
    if not isinstance(config, dict) or not isinstance(config.get("seed"), int) or not isinstance(config.get("model"), str) \
            or not isinstance(config.get("epochs"), int):
        return "config lacks a model, epochs or seed"
    history = results["history"]
    if not isinstance(history, dict) or any(not isinstance(history.get(k), list) for k in HISTORY_CURVES):
        return f"history lacks one of {', '.join(HISTORY_CURVES)}"
    lengths = {len(history[k]) for k in HISTORY_CURVES}
    if len(lengths) != 1 or not lengths.pop() or not all(_is_number(v) for k in HISTORY_CURVES for v in history[k]):
        return "its history's curves are empty, of different lengths or not numbers"
    final = results["final"]
    if not isinstance(final, dict) or not all(_is_number(final.get(k)) for k in FINAL_NUMBERS):
        return f"final lacks a number for one of {', '.join(FINAL_NUMBERS)}"
    data = results["data"]
    if not isinstance(data, dict) or not isinstance(data.get("checksum"), str):
        return "data lacks the checksum"
    if not isinstance(results.get("code_version", ""), str) or not isinstance(results.get("environment", {}), dict):
        return "code_version or environment has the wrong type"
    version = results.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return "schema_version is not a version number"
    return None


def migrate(results: dict) -> RunResults:
    """`results` (checked by results_problem) at SCHEMA_VERSION, as a new dict; the file is not touched.
    NewerSchema for a file of a later version."""
    version = results.get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise NewerSchema(f"schema version {version}, newer than this convladder's {SCHEMA_VERSION}: update convladder "
                          f"to read it")
    migrated = copy.deepcopy(results)
    if version == 1:
        migrated.setdefault("code_version", "")
        migrated.setdefault("environment", {})
        migrated["config"] = {**ADDED_SETTINGS, **migrated["config"]}
    return with_every_fact(migrated)


def write_problem(results: dict) -> str | None:
    """What keeps `results` from being written at SCHEMA_VERSION (a bug of the writer, not the user's), or None:
    what every file holds (results_problem), and a config with every setting a version-1 file may lack."""
    missing = sorted(ADDED_SETTINGS.keys() - results["config"].keys()) if isinstance(results, dict) and \
        isinstance(results.get("config"), dict) else []
    return results_problem(results) or (f"its config lacks {', '.join(missing)}" if missing else None)


def with_every_fact(results: dict) -> RunResults:
    """`results` at SCHEMA_VERSION with every optional fact present (None where not measured): what
    records.write_results writes, so that a file of this version holds every key its readers index."""
    for part, keys in OPTIONAL_FACTS.items():
        holder = results[part] if part else results
        for key in keys:
            holder.setdefault(key, None)
    results["schema_version"] = SCHEMA_VERSION
    return results


def final_epoch(results: RunResults) -> int:
    """The last epoch a run finished (the epochs it trained, a continued run's earlier ones included)."""
    return results["history"]["epoch"][-1]
