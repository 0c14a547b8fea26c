"""The study's six questions under two recipes at equal epochs (issue 24, part 4): the ladder trained with the
quick profile's recipe (Adam, batch 128, logits; results/study-adam, trained by
convladder.experiments.recipe_robustness) for the epochs at which the study profile's recovered recipe (SGD
momentum, batch 32, softmax; results/study) answers each question, and each question's verdict under both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from convladder.analysis.statistics import LADDER_STEPS, StepVerdict, holm_family, ladder_verdicts
from convladder.results.layout import results_archive, seed_dirs

ARCHIVE = "study-adam"
# Each model's epochs: those after which the study profile compares it with its neighbours on the ladder
# (ladder_verdicts: the shorter run of a pair), so GAP needs 30 (G's), not its own 120.
EPOCHS = {"A": 150, "B": 150, "C": 16, "D": 16, "E": 16, "F": 30, "G": 30, "GAP": 30}


@dataclass(frozen=True)
class RobustnessRow:
    """One question: its verdict under each recipe (None where a recipe's runs lack one of the pair), with Holm's
    adjustment over each recipe's family of questions."""

    question: str
    low: str
    high: str
    sgd: StepVerdict | None
    adam: StepVerdict | None
    sgd_holm: float | None
    adam_holm: float | None

    @property
    def answered(self) -> bool:
        """Both recipes answer with at least MIN_SEEDS seeds a side (with fewer, 'inconclusive' is the rule's, not
        the data's, and a difference in verdicts says nothing)."""
        return all(v is not None and v.comparison.enough_seeds for v in (self.sgd, self.adam))

    @property
    def few_seeds(self) -> bool:
        """A recipe has both models of the pair, but fewer than MIN_SEEDS seeds of one: a difference, no verdict."""
        return any(v is not None and not v.comparison.enough_seeds for v in (self.sgd, self.adam))

    @property
    def flips(self) -> bool | None:
        """Whether the two recipes answer differently; None unless both answer (`answered`)."""
        if not self.answered:
            return None
        return self.sgd.comparison.verdict != self.adam.comparison.verdict


def robustness_rows(sgd_runs: dict[str, list[dict]], adam_runs: dict[str, list[dict]]) -> list[RobustnessRow]:
    """Every ladder step with its verdict under each recipe (ladder_verdicts: validation accuracy after the epoch
    both models of a pair reached, Welch), Holm-adjusted within each recipe's verdicts."""
    families = []
    for runs in (sgd_runs, adam_runs):
        verdicts = {(v.step.low, v.step.high): v for v in ladder_verdicts(runs)}
        adjusted = holm_family([v.comparison for v in verdicts.values()])
        families.append((verdicts, dict(zip(verdicts, adjusted))))
    (sgd, sgd_holm), (adam, adam_holm) = families
    return [RobustnessRow(step.question, step.low, step.high, sgd.get(key), adam.get(key), sgd_holm.get(key),
                          adam_holm.get(key))
            for step in LADDER_STEPS for key in [(step.low, step.high)]]


def progress(out_dir: str | Path | None = None) -> dict[str, list[tuple[int, int, bool]]]:
    """Each model's seeds in the archive as (seed, epochs done, finished), unfinished ones from their checkpoint."""
    from convladder.results.records import read_seed

    out_dir = Path(out_dir) if out_dir else results_archive(ARCHIVE)
    found: dict[str, list[tuple[int, int, bool]]] = {}
    for model in EPOCHS:
        for config, history, results in filter(None, map(read_seed, seed_dirs(out_dir / model))):
            found.setdefault(model, []).append((config["seed"], len(history["val_acc"]), results is not None))
    return found
