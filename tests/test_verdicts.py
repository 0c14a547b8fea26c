"""analysis.py: every verdict on small hand-made results."""

import pytest

from convladder.analysis.statistics import (
    LADDER_STEPS, MIN_SEEDS, compare, compare_paired, dropout_verdict, gradient_ratio, ladder_verdicts, mean_interval,
    single_run_verdict, study_within, take_off_epoch, first_above,
)


def _run(name, val, epochs=3, train_eval=None, **config):
    """Hand-made results of one run: one entry per seed, its validation accuracy rising in equal steps to `val`."""
    return [{"name": name, "config": {"model": name, "epochs": epochs, **config},
             "history": {"epoch": list(range(1, epochs + 1)), "val_acc": [v * e / epochs for e in range(1, epochs + 1)]},
             "final": {"val_acc": v, "train_acc_eval": None if train_eval is None else train_eval[i]}}
            for i, v in enumerate(val)]


def test_a_clear_difference_with_three_seeds_each_is_called():
    result = compare([0.50, 0.51, 0.49], [0.60, 0.61, 0.59])
    assert result.verdict == "higher" and result.ci_low > 0 and result.difference == pytest.approx(0.10)
    assert compare([0.60, 0.61, 0.59], [0.50, 0.51, 0.49]).verdict == "lower"


def test_overlapping_seeds_are_inconclusive_and_say_why():
    result = compare([0.50, 0.55, 0.45], [0.52, 0.47, 0.57])
    assert result.verdict == "inconclusive" and result.ci_low < 0 < result.ci_high
    assert "interval of the difference includes 0" in result.reason


@pytest.mark.parametrize("low, high", [([0.1, 0.1], [0.9, 0.9]), ([0.1], [0.9, 0.91, 0.92]), ([0.1, 0.11], [0.9])])
def test_fewer_than_three_seeds_never_give_a_verdict(low, high):
    result = compare(low, high)
    assert result.verdict == "inconclusive" and result.reason == f"fewer than {MIN_SEEDS} seeds"


def test_the_welch_interval_matches_a_textbook_example():
    # means 0.6 and 0.5, sample s.d. 0.01 each, 3 seeds: se = 0.01 * sqrt(2/3), dof = 4, t(0.975, 4) = 2.776
    result = compare([0.49, 0.50, 0.51], [0.59, 0.60, 0.61])
    half = 2.7764 * 0.01 * (2 / 3) ** 0.5
    assert result.ci_low == pytest.approx(0.1 - half, abs=1e-4) and result.ci_high == pytest.approx(0.1 + half, abs=1e-4)


def test_paired_seeds_are_compared_on_their_differences():
    # each seed's second run is 0.02, 0.03, 0.04 above its first: mean 0.03, s.d. 0.01, dof 2, t(0.975, 2) = 4.3027
    low, high = [0.50, 0.60, 0.70], [0.52, 0.63, 0.74]
    result = compare_paired(low, high)
    half = 4.3027 * 0.01 / 3 ** 0.5
    assert result.paired and result.verdict == "higher" and result.difference == pytest.approx(0.03)
    assert result.ci_low == pytest.approx(0.03 - half, abs=1e-4) and result.ci_high == pytest.approx(0.03 + half, abs=1e-4)
    assert compare(low, high).verdict == "inconclusive"  # the seeds' own spread (0.1) hides it from Welch's test
    assert compare_paired(high, low).verdict == "lower"
    assert compare_paired([0.5, 0.6], [0.52, 0.63]).reason == f"fewer than {MIN_SEEDS} seeds"
    same = compare_paired([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])  # every pair 0.1 apart: nothing to judge the spread by
    assert same.verdict == "inconclusive" and same.p_value is None and "no spread" in same.reason
    with pytest.raises(ValueError):
        compare_paired([0.1, 0.2, 0.3], [0.2, 0.3])


def test_the_study_number_is_within_our_interval_only_with_enough_seeds():
    assert study_within([0.80, 0.82, 0.84], 0.83) is True
    assert study_within([0.80, 0.82, 0.84], 0.90) is True  # one draw: the prediction interval is wide
    assert study_within([0.80, 0.82, 0.84], 0.95) is False
    assert study_within([0.80, 0.82], 0.81) is None
    assert study_within([0.80, 0.82, 0.84], None) is None
    low, high = mean_interval([0.80, 0.82, 0.84])
    assert low < 0.82 < high and high - low < 0.2  # the mean's interval is narrower than a new seed's


def test_one_run_against_seeds_is_lower_higher_or_within_their_spread():
    seeds = [0.940, 0.942, 0.944]  # the prediction interval of one more seed: 0.942 +- 0.0099
    assert single_run_verdict(seeds, 0.930) == "lower"
    assert single_run_verdict(seeds, 0.935) == "within"
    assert single_run_verdict(seeds, 0.953) == "higher"
    assert single_run_verdict(seeds[:2], 0.90) is None and single_run_verdict(seeds, None) is None


def test_take_off_epoch():
    assert take_off_epoch([0.1, 0.12, 0.16, 0.3]) == 3
    assert take_off_epoch([0.1, 0.1]) is None
    # one noisy epoch above the threshold does not set it: the run stays above only from epoch 5
    assert take_off_epoch([0.1, 0.16, 0.1, 0.15, 0.2, 0.3]) == 5 and first_above([0.1, 0.16, 0.1, 0.15, 0.2, 0.3]) == 2
    assert take_off_epoch([0.1, 0.3, 0.1]) is None and first_above([0.1, 0.3, 0.1]) == 2  # fell back by the end
    assert take_off_epoch([]) is None and take_off_epoch([0.2]) == 1


def test_gradient_ratio_is_first_layer_over_last_in_the_first_steps():
    norms = {"0": [1.0, 3.0, 100.0], "9": [10.0, 10.0, 0.1]}
    assert gradient_ratio(norms, ["0", "9"], steps=2) == pytest.approx(2.0 / 10.0)


def test_ladder_verdicts_use_only_pairs_that_differ_in_one_ingredient():
    runs = {"C": _run("C", [0.10, 0.10, 0.11]), "D": _run("D", [0.55, 0.57, 0.56]), "G": _run("G", [0.7, 0.7, 0.7])}
    verdicts = {v.step.low + v.step.high: v for v in ladder_verdicts(runs)}
    assert set(verdicts) == {"CD"}
    assert verdicts["CD"].comparison.verdict == "higher" and verdicts["CD"].same_epochs and verdicts["CD"].at_epoch == 3
    assert verdicts["CD"].high_values == [0.55, 0.57, 0.56]
    assert all(len(step.changes) > 0 for step in LADDER_STEPS)


def test_a_longer_run_is_compared_after_the_shorter_runs_last_epoch():
    runs = {"F": _run("F", [0.70, 0.71, 0.72], epochs=5), "G": _run("G", [0.69, 0.73, 0.71], epochs=3)}
    (v,) = ladder_verdicts(runs)
    assert (v.epochs_low, v.epochs_high, v.at_epoch) == (5, 3, 3) and not v.same_epochs
    assert v.low_values == pytest.approx([0.42, 0.426, 0.432])  # F after its third epoch
    assert v.comparison.verdict == "higher"  # at equal epochs G is ahead; after their own last epochs it is not
    # a schedule makes F's third epoch unlike a 3-epoch run's: each is then compared after its own last epoch
    runs["F"] = _run("F", [0.70, 0.71, 0.72], epochs=5, schedule="onecycle")
    (v,) = ladder_verdicts(runs)
    assert v.at_epoch is None and v.low_values == [0.70, 0.71, 0.72] and v.comparison.verdict == "inconclusive"
    # the longer model may be either one, and a schedule of the shorter one does not matter: it ends at the epoch compared
    runs = {"G": _run("G", [0.60, 0.61, 0.62], epochs=2, schedule="onecycle"), "GAP": _run("GAP", [0.80, 0.81, 0.82], epochs=4)}
    (v,) = ladder_verdicts(runs)
    assert (v.epochs_low, v.epochs_high, v.at_epoch) == (2, 4, 2) and v.high_values == pytest.approx([0.40, 0.405, 0.41])
    assert v.low_values == [0.60, 0.61, 0.62]


def test_seeds_of_different_lengths_are_compared_after_the_last_epoch_all_reached():
    f = _run("F", [0.70, 0.71, 0.72], epochs=4)
    f[2] = _run("F", [0.60], epochs=2)[0]  # one seed stopped after two epochs
    (v,) = ladder_verdicts({"F": f, "G": _run("G", [0.69, 0.73, 0.71], epochs=3)})
    assert v.at_epoch == 2 and v.low_values == pytest.approx([0.35, 0.355, 0.60])
    assert v.high_values == pytest.approx([0.46, 0.4867, 0.4733], abs=1e-4)


def test_dropout_verdict_needs_the_gap_measured_in_evaluation_mode():
    runs = {"F": _run("F", [0.70, 0.71, 0.72], train_eval=[0.95, 0.96, 0.97]),
            "G": _run("G", [0.72, 0.73, 0.74], train_eval=[0.80, 0.81, 0.82])}
    assert dropout_verdict(runs).verdict == "lower"  # G's gap (0.08) is below F's (0.25)
    runs["G"] = _run("G", [0.72, 0.73, 0.74])  # training-mode train accuracy only
    assert dropout_verdict(runs) is None


def test_accuracy_at_equal_minutes():
    from convladder.analysis.statistics import accuracy_at_minutes, minutes_curve

    history = {"epoch_seconds": [60.0, 60.0, 120.0], "val_acc": [0.3, 0.5, 0.7]}
    assert minutes_curve(history) == ([1.0, 2.0, 4.0], [0.3, 0.5, 0.7])
    assert accuracy_at_minutes(history, 3.0) == 0.5
    assert accuracy_at_minutes(history, 4.0) == 0.7
    assert accuracy_at_minutes(history, 0.5) is None


def test_identical_seeds_give_no_verdict():
    result = compare([0.5, 0.5, 0.5], [0.6, 0.6, 0.6])
    assert result.verdict == "inconclusive" and "no spread" in result.reason


def test_the_latex_template_language(tmp_path):
    from convladder.report.latex import render

    (tmp_path / "t.tex.j2").write_text(
        "\\section{\\VAR{title|e}}\n\\BLOCK{for v in values}\\VAR{v|acc} \\BLOCK{endfor}\n"
        "\\#{ a comment }\\VAR{n|plural('seed')}, \\VAR{seeds|ms}, \\VAR{d|signed}, 100\\% {braces}\n")
    text = render(tmp_path / "t.tex.j2", dict(title="A_1 & 50%", values=[0.5, None], n=1, seeds=[0.5, 0.7], d=0.1))
    assert text.startswith("\\section{A\\_1 \\& 50\\%}\n0.500 -- ")
    assert "1 seed, 0.600\\,{\\scriptsize$\\pm$0.141}, +0.100, 100\\% {braces}" in text and "comment" not in text


def test_take_off_shifts_name_the_curves_whose_take_off_rests_on_its_definition():
    from convladder.analysis.statistics import take_off_shifts

    curves = {"steady": [0.1, 0.2, 0.3], "noisy": [0.1, 0.16, 0.1, 0.2], "fell back": [0.1, 0.2, 0.1], "flat": [0.1, 0.1]}
    assert take_off_shifts(curves) == [dict(label="noisy", first=2, take_off=4),
                                       dict(label="fell back", first=2, take_off=None)]


def test_the_studys_accuracy_is_judged_with_both_splits_noise_and_its_rounding():
    """GAP: ours 0.843, 0.845, 0.846 on 8,000 images, the study's 0.83. The seeds' own prediction interval
    (0.839 to 0.850) excludes it; each split's sampling noise (binomial, 8,000 images each) and the study's two
    decimals (+-0.005) put it inside."""
    import math

    from scipy import stats

    from convladder.analysis.statistics import prediction_interval, study_accuracy_interval

    ours = [0.843, 0.845, 0.846]
    low, high = prediction_interval(ours)
    assert not low <= 0.83 <= high
    judged = study_accuracy_interval(ours, 8_000)  # t on the seeds' estimated spread, z on the split's known noise
    mean, sd = sum(ours) / 3, stats.tstd(ours)
    half = math.sqrt(stats.t.ppf(0.975, 2) ** 2 * sd ** 2 * 4 / 3
                     + stats.norm.ppf(0.975) ** 2 * mean * (1 - mean) * 2 / 8_000) + 0.005
    assert judged == pytest.approx((mean - half, mean + half)) and judged[0] <= 0.83 <= judged[1]
    assert study_accuracy_interval([0.267, 0.26, 0.275], 8_000)[0] > 0.18  # A: the study's 0.18 stays outside
    assert study_accuracy_interval([0.8, 0.81], 8_000) is None  # fewer than 3 seeds


def test_t_on_the_split_noise_too_widens_the_interval_and_shows_which_verdicts_rest_on_it():
    """The archive's G (0.8034, 0.8025, 0.7964 after 30 epochs) against the study's 0.83: outside the report's interval
    (the split noise, whose variance is known, with the normal quantile), inside with t on the split noise too."""
    import math

    from scipy import stats

    from convladder.analysis.statistics import study_accuracy_interval
    from convladder.report.ladder import accuracy_within

    g = [0.803375, 0.8025, 0.796375]
    wide, narrow = study_accuracy_interval(g, 8_000, split_quantile="t"), study_accuracy_interval(g, 8_000)
    mean, sd = sum(g) / 3, stats.tstd(g)
    half = math.sqrt(stats.t.ppf(0.975, 2) ** 2 * sd ** 2 * 4 / 3
                     + stats.norm.ppf(0.975) ** 2 * mean * (1 - mean) * 2 / 8_000) + 0.005
    assert narrow == pytest.approx((mean - half, mean + half)) and wide[0] < narrow[0] and narrow[1] < wide[1]
    assert accuracy_within(g, 0.83, 8_000)[0] == "no" and accuracy_within(g, 0.83, 8_000, "t")[0] == "yes"
    gap = [0.8434, 0.8465, 0.8436]  # a verdict the construction does not decide stays
    assert accuracy_within(gap, 0.83, 8_000)[0] == accuracy_within(gap, 0.83, 8_000, "t")[0] == "yes"
    # the summary table marks the verdict the construction decides (G's), and only that one
    from convladder.report.ladder import summary_rows

    def seeds(name, vals):
        return [{"config": {"model": name}, "parameters": 1, "data": {"sizes": {"val": 8_000}},
                 "history": {"epoch": [1], "val_acc": [v], "train_acc": [v]},
                 "final": {"train_acc": v, "val_acc": v, "test_acc": v}} for v in vals]

    rows = {r["name"]: r for r in summary_rows({"G": seeds("G", g), "GAP": seeds("GAP", gap)})}
    assert rows["G"]["within"] == "no" and rows["G"]["construction_decides"]
    assert rows["GAP"]["within"] == "yes" and not rows["GAP"]["construction_decides"]


def test_an_accuracy_below_what_a_model_that_learned_nothing_scores_is_not_compared():
    """The study's E (0.01 for a model it says does not learn): no verdict against our seeds, which sit at chance."""
    import math

    from convladder.analysis.statistics import below_chance
    from convladder.report.ladder import accuracy_within

    margin = 1.959964 * math.sqrt(0.1 * 0.9 / 8_000)  # 95% binomial noise of chance accuracy on 8,000 images
    assert below_chance(0.01, 8_000, 0.005)
    assert below_chance(0.1 - margin - 0.006, 8_000, 0.005) and not below_chance(0.1 - margin - 0.004, 8_000, 0.005)
    assert not below_chance(0.1, 8_000) and not below_chance(0.18, 8_000)
    assert below_chance(0.09, 100_000) and not below_chance(0.09, 1_000)  # a smaller split allows more noise
    assert accuracy_within([0.093, 0.096, 0.1], 0.01, 8_000)[0] == "n/c"
    assert accuracy_within([0.093, 0.096, 0.1], 0.1, 8_000)[0] == "yes"
    assert accuracy_within([0.267, 0.26, 0.275], 0.18, 8_000)[0] == "no"
    assert accuracy_within([0.093, 0.096], 0.01, 8_000)[0] == "--"  # fewer than 3 seeds: no comparison at all
