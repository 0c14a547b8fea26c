"""The report's numbers and verdicts, as pure functions of the runs' recorded results.

One rule decides every "better than": Welch's t-test (scipy.stats.ttest_ind, equal_var=False) on
the per-seed values of two runs, with the 95% confidence interval of the difference of their
means. A difference is called only when that interval excludes zero and each run has at least
`MIN_SEEDS` seeds; otherwise the verdict is "inconclusive", and the reason says why. Where the two
sides are the same seeds of one model changed in nothing the seed sets (the same initial weights,
batch order and augmentation), the t-test is on the per-seed differences instead (`compare_paired`,
scipy.stats.ttest_rel), under the same rule. The study's
questions are answered from pairs of models that differ in one ingredient (`LADDER_STEPS`),
compared after the same epoch (`ladder_verdicts`); a question without such a pair says so.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass

from scipy import stats

from convladder.core.config import TrainConfig
from convladder.results.records import summarize
from convladder.results.schema import final_epoch

MIN_SEEDS = 3  # fewer seeds than this on either side: no verdict is drawn
CONFIDENCE = 0.95
TAKE_OFF_ACC = 0.15  # a run has left chance level (0.1) once its validation accuracy stays above this (take_off_epoch)
# The take-off's threshold in its sensitivity check: just above chance, as a rise the study's "started improving" may
# describe; the study paper gives each seed's take-off at both thresholds
TAKE_OFF_LOW_ACC = 0.11
CLASSES = 10  # CIFAR-10: chance level is 1 / CLASSES on its balanced splits


@dataclass(frozen=True)
class Comparison:
    """`high` against `low`: difference of means with its 95% interval (Welch's, or with `paired` the paired t
    interval of compare_paired), and the verdict: "higher", "lower" or "inconclusive" (`reason` says why when
    inconclusive)."""

    low_mean: float
    high_mean: float
    difference: float  # high - low
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_low: int
    n_high: int
    verdict: str
    reason: str = ""
    paired: bool = False  # a t-test on the per-seed differences (compare_paired), not Welch's

    @property
    def enough_seeds(self) -> bool:
        """Both sides have the MIN_SEEDS seeds a verdict needs (with fewer, "inconclusive" is the rule's, not the data's)."""
        return min(self.n_low, self.n_high) >= MIN_SEEDS


def mean_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The t-interval of the mean; None below two values."""
    if len(values) < 2:
        return None
    mean, sd = summarize(values)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def compare(low: list[float], high: list[float], confidence: float = CONFIDENCE) -> Comparison:
    """The one rule for "better than" (see the module's docstring)."""
    (ml, sl), (mh, sh) = summarize(low), summarize(high)
    n_low, n_high = len(low), len(high)
    base = dict(low_mean=ml, high_mean=mh, difference=mh - ml, n_low=n_low, n_high=n_high)
    if n_low < 2 or n_high < 2:
        return Comparison(**base, ci_low=None, ci_high=None, p_value=None, verdict="inconclusive",
                          reason=f"fewer than {MIN_SEEDS} seeds")
    if sl == sh == 0:  # every seed gave the same number on both sides: no spread to judge a difference by
        reason = (f"fewer than {MIN_SEEDS} seeds" if min(n_low, n_high) < MIN_SEEDS
                  else "no spread across seeds to judge the difference by")
        return Comparison(**base, ci_low=mh - ml, ci_high=mh - ml, p_value=None, verdict="inconclusive", reason=reason)
    with warnings.catch_warnings():  # one side's seeds all alike (a run at chance): its variance is 0, as it should be
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        welch = stats.ttest_ind(high, low, equal_var=False)
    return _called(base, welch, confidence)


def compare_paired(low: list[float], high: list[float], confidence: float = CONFIDENCE) -> Comparison:
    """The rule of `compare` on paired values: `low[i]` and `high[i]` are the same seed, the two runs differing in
    nothing the seed sets, so the seed's share of the spread cancels in their difference. A t-test on the
    differences (scipy.stats.ttest_rel) with its interval; a verdict needs MIN_SEEDS pairs."""
    if len(low) != len(high):
        raise ValueError(f"paired values need as many on each side, not {len(low)} and {len(high)}")
    base = dict(low_mean=summarize(low)[0], high_mean=summarize(high)[0], n_low=len(low), n_high=len(high),
                paired=True)
    base["difference"] = base["high_mean"] - base["low_mean"]
    differences = [h - lo for lo, h in zip(low, high)]
    if len(differences) < 2:
        return Comparison(**base, ci_low=None, ci_high=None, p_value=None, verdict="inconclusive",
                          reason=f"fewer than {MIN_SEEDS} seeds")
    if max(differences) - min(differences) < 1e-12:  # every pair differs by the same amount: no spread to judge by
        reason = (f"fewer than {MIN_SEEDS} seeds" if len(differences) < MIN_SEEDS
                  else "no spread across seeds to judge the difference by")
        return Comparison(**base, ci_low=differences[0], ci_high=differences[0], p_value=None, verdict="inconclusive",
                          reason=reason)
    return _called(base, stats.ttest_rel(high, low), confidence)


def _called(base: dict, test, confidence: float) -> Comparison:
    """The verdict of a t-test's result (scipy's, with its confidence interval) by the rule of the module."""
    interval = test.confidence_interval(confidence)
    ci, p = (float(interval.low), float(interval.high)), float(test.pvalue)
    if min(base["n_low"], base["n_high"]) < MIN_SEEDS:
        verdict, reason = "inconclusive", f"fewer than {MIN_SEEDS} seeds"
    elif ci[0] > 0:
        verdict, reason = "higher", ""
    elif ci[1] < 0:
        verdict, reason = "lower", ""
    else:
        verdict, reason = "inconclusive", f"the {confidence:.0%} interval of the difference includes 0"
    return Comparison(**base, ci_low=ci[0], ci_high=ci[1], p_value=p, verdict=verdict, reason=reason)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values for a family of tests (family-wise error at the level
    the adjusted values are compared with); None stays None and is not counted in the family.
    scipy has Benjamini-Hochberg (false discovery rate) but not Holm."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted


def holm_family(comparisons: list[Comparison | None]) -> list[float | None]:
    """Holm-adjusted p-values over the comparisons that can give a verdict (at least MIN_SEEDS seeds a side, a
    p-value); None for the others, which are not counted in the family: a comparison that calls nothing by the rule
    must not make the others' correction stricter."""
    return holm([c.p_value if c is not None and c.enough_seeds else None for c in comparisons])


def prediction_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Where one more run (one more seed) would fall with this confidence: mean +- t * s * sqrt(1 + 1/n)."""
    if len(values) < 2:
        return None
    mean, sd = summarize(values)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sd * math.sqrt(1 + 1 / len(values))
    return mean - half, mean + half


def study_accuracy_interval(values: list[float], val_images: int, confidence: float = CONFIDENCE,
                            split_quantile: str = "normal") -> tuple[float, float] | None:
    """Where the study's single run's validation accuracy would fall were it one more of our seeds: the prediction
    interval of one more seed, widened by what our seeds do not vary and the study's number carries: each validation
    split is its own random sample of images (binomial variance p(1-p)/N for the study's split and for ours, all of
    our seeds sharing one), and the study rounded to two decimals. The seeds' spread is estimated, so its term takes
    the t quantile; the split noise's variance is known, so its term takes the normal quantile (split_quantile
    "normal", the report's rule: 95.5-97.6% coverage in a simulation of 3 seeds over split-to-seed noise ratios of
    0.25 to 4). split_quantile "t" applies the t quantile to both, a wider interval (over 99.9% at ratios of 1 or
    more) that shows which verdicts rest on the construction. None below MIN_SEEDS seeds."""
    from convladder.plan.study import STUDY_ROUNDING, STUDY_VAL_IMAGES

    if len(values) < MIN_SEEDS:
        return None
    mean, sd = summarize(values)
    split_variance = mean * (1 - mean) * (1 / val_images + 1 / STUDY_VAL_IMAGES)
    t = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1))
    split = {"t": t, "normal": float(stats.norm.ppf(0.5 + confidence / 2))}[split_quantile]
    half = math.sqrt(t ** 2 * sd ** 2 * (1 + 1 / len(values)) + split ** 2 * split_variance) + STUDY_ROUNDING
    return mean - half, mean + half


def below_chance(accuracy: float, images: int, rounding: float = 0.0, confidence: float = CONFIDENCE) -> bool:
    """Whether an accuracy measured on `images` images of a random split of CIFAR-10 (rounded to `rounding`) lies
    below what a model that learned nothing scores: such a model's predictions do not depend on the image, so its
    accuracy is a mix of the split's class shares, 1/CLASSES up to the split's binomial noise; a number under the
    lower end of the two-sided `confidence` interval (one-sided: 97.5% at 95%), less the rounding, needs a model that
    avoids the right class, one that learned something, so it cannot be compared with runs as a failure to learn
    (the study's E: 0.01 reported for a model it says "does not learn at all")."""
    chance = 1 / CLASSES
    margin = float(stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(chance * (1 - chance) / images)
    return accuracy < chance - margin - rounding


def study_below_chance(accuracy: float) -> bool:
    """below_chance for one of the study's numbers (its validation split's size, its two-decimal rounding): the rule that
    keeps such a number out of every comparison with our runs (the summary table's n/c, the ladder figure's bars)."""
    from convladder.plan.study import STUDY_ROUNDING, STUDY_VAL_IMAGES

    return below_chance(accuracy, STUDY_VAL_IMAGES, STUDY_ROUNDING)


RISE_EPOCHS = 5  # "still rising": the training accuracy's change over a run's last RISE_EPOCHS epochs


def late_rise(history: dict, key: str = "train_acc", epochs: int = RISE_EPOCHS) -> float | None:
    """How much `key` changed over the run's last `epochs` epochs (after its last epoch against after the epoch
    `epochs` before it); None for a run of no more epochs than that."""
    values = history[key]
    return values[-1] - values[-1 - epochs] if len(values) > epochs else None


def single_run_verdict(values: list[float], single: float | None) -> str | None:
    """One run (one draw, not a mean) against the seeds of another: "lower" or "higher" where it falls
    outside the 95% prediction interval of one more of those seeds, else "within"; None when there is
    no single run or fewer than MIN_SEEDS seeds."""
    if single is None or len(values) < MIN_SEEDS:
        return None
    low, high = prediction_interval(values)
    return "lower" if single < low else "higher" if single > high else "within"


def study_within(values: list[float], reference: float | None) -> bool | None:
    """Whether the study's single run lies in the 95% prediction interval of one more of our seeds;
    None when there is no reference or fewer than MIN_SEEDS seeds (single_run_verdict)."""
    verdict = single_run_verdict(values, reference)
    return None if verdict is None else verdict == "within"


def take_off_epoch(val_acc: list[float], threshold: float = TAKE_OFF_ACC) -> int | None:
    """The epoch (1-based) from which the validation accuracy stays above `threshold` to the end of the curve,
    so that one noisy epoch above it cannot set the take-off (the study profile's B seed 1 reached 0.163 at
    epoch 58, fell back to 0.1498 and stayed above from epoch 60); None if the last epoch is not above it."""
    epoch = None
    for i in range(len(val_acc) - 1, -1, -1):
        if val_acc[i] <= threshold:
            break
        epoch = i + 1
    return epoch


def first_above(val_acc: list[float], threshold: float = TAKE_OFF_ACC) -> int | None:
    """The first epoch (1-based) whose validation accuracy exceeds `threshold`, whether or not it stays there (the
    take-off as the report defined it before take_off_epoch; the report gives both where they differ)."""
    return next((epoch for epoch, acc in enumerate(val_acc, start=1) if acc > threshold), None)


def at_chance(curves: dict[str, list[float]]) -> list[str]:
    """The curves (name -> accuracies, e.g. a model's mean over seeds) that never rise above TAKE_OFF_ACC: drawn beside
    each other they lie on one another near chance (0.1)."""
    return [name for name, values in curves.items() if values and max(values) < TAKE_OFF_ACC]


def take_off_shifts(curves: dict[str, list[float]], threshold: float = TAKE_OFF_ACC) -> list[dict]:
    """How much take-offs rest on their definition: each curve (by label) whose first epoch above `threshold`
    (first_above) is not its take-off (take_off_epoch), as {label, first, take_off}; take_off None: the run fell
    back below the threshold by its last epoch."""
    shifts = []
    for label, curve in curves.items():
        first, take_off = first_above(curve, threshold), take_off_epoch(curve, threshold)
        if first != take_off:
            shifts.append(dict(label=label, first=first, take_off=take_off))
    return shifts


def gradient_ratio(norms: dict[str, list[float]], layers: list[str], steps: int) -> float:
    """How much of the last layer's gradient reaches the first: the median gradient norm of the
    first weight layer over the first `steps` steps, divided by the last layer's."""
    return statistics.median(norms[layers[0]][:steps]) / statistics.median(norms[layers[-1]][:steps])


# --- the study's questions, from pairs of models that differ in one ingredient ------------

@dataclass(frozen=True)
class LadderStep:
    question: str  # what the study concluded, as a question
    low: str  # the model without the ingredient
    high: str  # the model with it
    changes: str  # what differs between them (only this)


LADDER_STEPS = (
    LadderStep("Does a wider minimal model learn better?", "A", "B", "the filters per convolution, 5 against 20"),
    LadderStep("Does ReLU instead of sigmoid let the model learn?", "C", "D", "the activation, sigmoid against ReLU"),
    LadderStep("Does more depth help?", "D", "E", "depth: E adds two conv blocks of 80 and 160 channels, and with "
               "their two max-pools its linear layer reads 640 features instead of D's 2,560"),
    LadderStep("Does batch norm let the deeper model fit?", "E", "F", "batch norm in every block"),
    LadderStep("Does dropout help the model generalise?", "F", "G", "dropout of 0.1 to 0.4 after the blocks"),
    LadderStep("Does global average pooling do as well as flatten + linear?", "G", "GAP",
               "the head: the last block's 2x2 max-pool and flattening (640 features) against a global "
               "average pool (160 features), before the same dropout and linear layer"),
)


@dataclass(frozen=True)
class StepVerdict:
    step: LadderStep
    epochs_low: int
    epochs_high: int
    at_epoch: int | None  # the epoch both models are compared after; None: each after its own last epoch
    low_values: list[float]  # each seed's validation accuracy after at_epoch (or its last)
    high_values: list[float]
    comparison: Comparison  # high against low

    @property
    def same_epochs(self) -> bool:
        return self.epochs_low == self.epochs_high


def final_values(seeds: list[dict], key: str) -> list[float]:
    return [r["final"][key] for r in seeds]


def measured(seeds: list[dict], key: str) -> list[float] | None:
    """The final values of `key` of the seeds that measured it (a fact a results.json of schema 1 lacks is None), or
    None where none did."""
    return [r["final"][key] for r in seeds if r["final"][key] is not None] or None


def last_epoch(seeds: list[dict]) -> int:
    """The last epoch every seed of a run reached (seeds of one run normally share it)."""
    return min(final_epoch(r) for r in seeds)


def val_acc_after(seeds: list[dict], epoch: int) -> list[float] | None:
    """Each seed's validation accuracy after `epoch`: its final one where `epoch` is its last, else
    read from its history, which is what a run of `epoch` epochs would have ended with as long as the
    run's plan does not depend on its length. None when a seed that trained longer has such a plan
    (TrainConfig.fixed_length: a schedule, progressive resizing or lookahead)."""
    values = []
    for r in seeds:
        epochs = r["history"]["epoch"]
        if epochs[-1] == epoch:
            values.append(r["final"]["val_acc"])
        elif TrainConfig.from_dict(r["config"]).fixed_length:
            return None
        else:
            values.append(r["history"]["val_acc"][epochs.index(epoch)])
    return values


def ladder_verdicts(runs: dict[str, list[dict]]) -> list[StepVerdict]:
    """A verdict for every ladder step whose two runs are present, on validation accuracy at equal
    epochs: where one model trained longer, after the last epoch every seed of both reached
    (val_acc_after), so that the pair differs in its one ingredient and not in its budget; each seed
    after its own last epoch only when a longer run's history cannot stand for a shorter run."""
    verdicts = []
    for step in LADDER_STEPS:
        if step.low not in runs or step.high not in runs:
            continue
        low, high = runs[step.low], runs[step.high]
        at = min(last_epoch(low), last_epoch(high))
        low_values, high_values = val_acc_after(low, at), val_acc_after(high, at)
        if low_values is None or high_values is None:
            at, low_values, high_values = None, final_values(low, "val_acc"), final_values(high, "val_acc")
        verdicts.append(StepVerdict(step, last_epoch(low), last_epoch(high), at, low_values, high_values,
                                    compare(low_values, high_values)))
    return verdicts


def generalisation_gaps(seeds: list[dict]) -> list[float] | None:
    """Train minus validation accuracy per seed, both measured in evaluation mode (dropout off); None
    for results that recorded only the training-mode train accuracy."""
    if not all(r["final"]["train_acc_eval"] is not None for r in seeds):
        return None
    return [r["final"]["train_acc_eval"] - r["final"]["val_acc"] for r in seeds]


def dropout_verdict(runs: dict[str, list[dict]]) -> Comparison | None:
    """G's generalisation gap against F's ("lower" means dropout narrowed it); None when not measurable."""
    if not {"F", "G"} <= runs.keys():
        return None
    gap_f, gap_g = generalisation_gaps(runs["F"]), generalisation_gaps(runs["G"])
    if gap_f is None or gap_g is None:
        return None
    return compare(gap_f, gap_g)


# --- accuracy against training time ---------------------------------------------------------

def minutes_curve(history: dict) -> tuple[list[float], list[float]]:
    """(cumulative training minutes at the end of each epoch, validation accuracy after it)."""
    minutes, total = [], 0.0
    for seconds in history["epoch_seconds"]:
        total += seconds
        minutes.append(total / 60)
    return minutes, list(history["val_acc"])


def accuracy_at_minutes(history: dict, minutes: float) -> float | None:
    """Validation accuracy after the last epoch that finished within `minutes` of training; None
    if none did. Compares runs at equal training time rather than at their own budgets."""
    done = [acc for spent, acc in zip(*minutes_curve(history)) if spent <= minutes]
    return done[-1] if done else None
