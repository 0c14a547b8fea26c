"""The training code's declared version: what a run records as `code_version`, and what decides
whether a finished run is still current (runs.run_state).

A version is a constant, bumped by hand when a change alters what training computes, per model
family: the study's ladder (A to G, GAP) and each model built in a module of its own
(the registry's `family` of a model: H's is its own), so that tuning H leaves the ladder's runs current. A pure move,
rename or refactor changes nothing and needs no bump.

The golden test (tests/test_golden_training.py) guards the constants: it trains each family a
few steps on fixed synthetic data and compares the weights with the fingerprints recorded in
tests/golden/training.json beside each family's version. A behaviour change without a bump
fails the suite; after a bump, record the fingerprints again:

    CONVLADDER_RECORD_GOLDEN=1 python -m pytest tests/test_golden_training.py

The first values are the digests of the training code's syntax tree that the archived runs
recorded under the scheme this replaced (the study profile and the recipe search's last runs:
e43904d5b66cd162; model H: 3e8ce49592b6b909), so those runs read as current without rewriting them.
"""

from __future__ import annotations

from convladder.core.registry import LADDER, entries, entry

CODE_VERSIONS = {
    LADDER: "e43904d5b66cd162",
    "H": "3e8ce49592b6b909",
}




def model_family(model: str | None) -> str:
    """The family whose version covers `model`'s runs (the registry's entry; None: the ladder, the
    training code shared by every model)."""
    return LADDER if model is None else entry(model).family


def code_version(model: str | None = None) -> str:
    """The declared version of the code that trains `model` (None: the ladder's)."""
    family = model_family(model)
    if family not in CODE_VERSIONS:
        raise ValueError(f"model {model}'s family {family!r} has no declared code version; add it to "
                         "CODE_VERSIONS in src/convladder/core/versions.py")
    return CODE_VERSIONS[family]


def families() -> set[str]:
    """Every family of a registered model."""
    return {e.family for e in entries()}


# The diagnosis's own experiments (diagnosis.py: E's variants, the gradient norms), recorded after the
# training code's version in diagnosis.json: bump it when a change alters what the diagnosis trains or
# measures, so that an archived diagnosis is run again. Its first value is the digest of diagnosis.py
# that the archived diagnoses recorded under the scheme this replaced.
DIAGNOSIS_VERSION = "0e24102ea0a27a0a"
