"""The report: context built from hand-made results, sections rendered from the template, and a
whole report.tex written from tiny synthetic runs (no training, no LaTeX)."""

import json
import random
import re
from pathlib import Path

import matplotlib
import pytest

from convladder.analysis import h_targets
from convladder.analysis.architecture import architecture, layer_formula
from convladder.analysis.statistics import MIN_SEEDS, mean_interval
from convladder.core.config import TrainConfig
from convladder.report.latex import environment
from convladder.core.models import count_parameters, create_model, layer_records
from convladder.core.registry import model_names, study_model_names
from convladder.results import layout as paths
from convladder.report import h as report_h
from convladder.report import h_final
from convladder.results.layout import RunLayout, report_template
from convladder.results.schema import with_every_fact
from convladder.plan.profiles import (EARLIER_PROFILES, FINAL_PROFILE, H_B512_PROFILE, H_E16_PROFILE, H_PROFILE,
                                      get_profile, plan_config)
from convladder.plan.study import STUDY_PARAMS_A, STUDY_PARAMS_A_FORMULA
from convladder.report.build import ReportError, write_sources
from convladder.report.ladder import ladder_table, parameters_context
from convladder.report.setup import FAST_TARGET_ACC, FAST_TARGET_MINUTES, benchmark_context, benchmark_source, fast_target

matplotlib.use("Agg")

LADDER = {"A": "A", "B": "B", "C": "C", "D": "D", "E": "E", "F": "F", "G": "G", "GAP": "GAP", "GAP+": "GAP",
          "GAP-fast": "GAP"}


def hand_made(name: str, model: str, seed: int, val: float, epochs: int = 2, profile: str = "tiny", **config) -> dict:
    """The results.json of one seed of one run, as train_run writes it, with made-up numbers."""
    rng = random.Random(f"{name}{seed}")
    layers = layer_records(create_model(model))
    history = {"epoch": list(range(1, epochs + 1)), "epoch_seconds": [1.5] * epochs,
               "train_acc": [val] * epochs, "train_loss": [2.0] * epochs, "val_acc": [val] * epochs,
               "val_loss": [2.0] * epochs}
    proba = [0.1] * 10
    return with_every_fact({
        "name": name, "code_version": "0123456789abcdef", "continued_from": f"/runs/GAP/seed{seed}" if name == "GAP+" else None,
        "config": {**vars(TrainConfig(model=model, epochs=epochs, seed=seed)), "profile": profile, **config},
        "data": {"checksum": "ab" * 32, "class_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                        "horse", "ship", "truck"],
                 "root": "/data", "sizes": {"train": 40, "val": 20, "test": 20}},
        "environment": {"cpu": "test cpu", "cpu_count": 2, "device": "cpu", "git_commit": "abc1234", "platform": "linux",
                        "python": "3.11", "torch": "2.x", "torch_threads": 1},
        "final": {"train_acc": val, "train_acc_eval": val + 0.05, "val_acc": val + rng.uniform(-0.01, 0.01),
                  "test_acc": val, "train_loss": 2.0, "val_loss": 2.0, "test_loss": 2.0},
        "history": history, "layers": layers, "parameters": sum(layer["parameters"] for layer in layers),
        "proba_before": proba, "proba_after": proba, "probe_index": 0, "probe_label": 8,
        "train_seconds": 1.5 * epochs, "wall_seconds": 2.0 * epochs,
    })


def write_runs(root, seeds: int) -> RunLayout:
    """A tiny profile's worth of finished runs: every model of the ladder, `seeds` seeds each."""
    for i, (name, model) in enumerate(LADDER.items()):
        for seed in range(seeds):
            extra = {"optimizer": "sgd", "lr": 0.2, "schedule": "onecycle", "augment": True} if name == "GAP-fast" else {}
            results = hand_made(name, model, seed, val=0.1 + 0.05 * i, **extra)
            folder = root / name / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "results.json").write_text(json.dumps(results))
    return RunLayout(root)


def write_results(root, runs: dict[str, list[dict]]) -> RunLayout:
    """Each run's seeds as finished results (root/<name>/seed<k>/results.json)."""
    for name, seeds in runs.items():
        for results in seeds:
            folder = root / name / f"seed{results['config']['seed']}"
            folder.mkdir(parents=True)
            (folder / "results.json").write_text(json.dumps(results))
    return RunLayout(root)


def accuracies(vals: dict[str, list[float]]) -> dict[str, list[dict]]:
    """Hand-made runs of the ladder's models with these final validation accuracies, one per seed."""
    return {name: [hand_made(name, name, seed, val) for seed, val in enumerate(values)] for name, values in vals.items()}


def empty_h_archives(monkeypatch, root) -> None:
    """The report reads model H's runs from the h profile's archive, H-95's from the h95 profile's and their tuning
    runs from results/h-tuning: here empty folders under `root`, not the repository's."""
    monkeypatch.setattr(report_h, "h_layout", lambda: RunLayout(root / "h-archive"))
    use_h95_archives(monkeypatch, RunLayout(root / "h95-archive"), RunLayout(root / "h95-earlier-archive"))
    monkeypatch.setattr(report_h, "tuning_root", lambda: root / "h-tuning-archive")
    monkeypatch.setattr(h_final, "other_cpu_layouts", lambda profile: [])


@pytest.fixture(autouse=True)
def no_h_archive(tmp_path, monkeypatch):
    empty_h_archives(monkeypatch, tmp_path)


def full_ladder_sources(tmp_path, seeds: int, paper: bool) -> Path:
    """The LaTeX sources of every model's hand-made runs (`seeds` each), the paper or the run report; H's archives empty."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        empty_h_archives(monkeypatch, tmp_path)
        return write_sources(write_runs(tmp_path / "runs", seeds), benchmark=tmp_path / "no-benchmark.json", paper=paper)


# The sources of the full ladder's paper and run report are written once per seed count for the module (each takes a
# few seconds): the tests that take them only read them.
@pytest.fixture(scope="module", params=[1, MIN_SEEDS], ids=["one seed", "enough seeds"])
def report_tex(request, tmp_path_factory):
    report_dir = full_ladder_sources(tmp_path_factory.mktemp("paper"), request.param, paper=True)
    return request.param, report_dir, (report_dir / "report.tex").read_text()


def test_the_report_is_rendered_from_the_template_alone(report_tex):
    seeds, report_dir, tex = report_tex
    assert not (report_dir / "generated").exists() and "generated/" not in tex  # no LaTeX pieces written by Python
    assert "\\VAR{" not in tex and "\\BLOCK{" not in tex
    for heading in ("Introduction", "Setup", "Results: the study's questions", "Diagnoses of the study's anomalies",
                    "Beyond the study", "Conclusions", "Limitations", "How to reproduce this report"):
        assert f"\\section{{{heading}}}" in tex, heading
    assert tex.index("\\appendix") < tex.index("\\label{tab:layers-")  # layer tables only in the appendix
    assert "make report PROFILE=tiny" in tex and "abc1234" in tex


def test_the_report_reads_as_written_by_a_person(report_tex):
    seeds, _, tex = report_tex
    for phrase in ("seed(s)", "repeat(s)", " of 1 seeds", "1 seeds", "1 epochs", "train --, validation --"):
        assert phrase not in tex, phrase
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", tex)) if len(s.strip()) > 60]
    repeated = {s for s in sentences if sentences.count(s) > 1 and "\\" not in s}
    assert not repeated, repeated
    if seeds < MIN_SEEDS:
        assert "no question can be decided here" in tex and "inconclusive" in tex


def test_the_epochs_shorter_than_the_study_and_those_we_chose_are_named(report_tex):
    _, _, tex = report_tex
    text = " ".join(tex.split())
    assert "the study trained A for 150 (ours 2)" in text and "cannot be seen to stall" in text
    assert "the epochs of D (2), E (2), F (2), G (2) are our choice, not the study's" in text


def test_every_table_and_figure_has_a_caption_with_profile_and_epochs(report_tex):
    assert_captions(report_tex[2])


def test_every_table_and_figure_of_the_run_report_has_a_caption_with_profile_and_epochs(run_tex):
    assert_captions(run_tex[1])


def test_every_figure_of_the_run_report_is_cited_in_its_text(run_tex):
    _, tex = run_tex
    labels = re.findall(r"\\label\{(fig:[^}]*)\}", tex[:tex.index("\\appendix")])  # the appendix's per-run figures aside
    assert len(labels) >= 3
    assert [label for label in labels if f"\\ref{{{label}}}" not in tex] == []


def assert_captions(tex: str) -> None:
    floats = re.findall(r"\\begin\{(table|figure|longtable)\}(.*?)\\end\{\1\}", tex, re.S)
    assert len(floats) > 10
    for kind, body in floats:
        if re.search(r"\\label\{(tab|fig):(recipes|stability|h|h-ablations|h-layers|frontier)\}", body):
            continue  # archived experiments run outside any profile (results/), with their own settings
        caption = re.search(r"\\caption\{(.*)", body, re.S)
        assert caption, (kind, body[:200])
        text = caption.group(1)[:900]
        assert "\\texttt{tiny}" in text and "epoch" in text, (kind, text[:300])


def test_the_ladder_table_is_read_from_the_recorded_layers(report_tex, tmp_path):
    _, _, tex = report_tex
    # GAP+ and GAP-fast share GAP's layer table
    assert "\\label{tab:ladder}" in tex and tex.count("\\label{tab:layers-") == len(study_model_names())
    runs = {name: [hand_made(name, model, 0, 0.5)] for name, model in LADDER.items()}
    rows = {row["model"]: row for row in ladder_table(runs)}
    assert list(rows) == list(study_model_names())
    assert rows["A"]["convs"] == [5, 5] and rows["A"]["activations"] == ["Sigmoid"] and rows["A"]["changed"] == []
    assert rows["D"]["changed"] == ["activations"] and rows["F"]["changed"] == ["batch_norm", "parameters"]
    assert rows["G"]["dropout"] == [0.1, 0.2, 0.3, 0.4] and rows["GAP"]["global_pool"] and rows["GAP"]["features"] == 160
    runs["A"][0]["layers"] = runs["A"][0]["layers"][:1]  # what the run recorded wins over today's code
    assert ladder_table(runs)[0]["convs"] == [5]


def undefined_references(tex: str) -> set[str]:
    """The labels a LaTeX source refers to (\\ref) without defining them (\\label), and the citations without a bibitem."""
    refs = set(re.findall(r"\\ref\{([^}]*)\}", tex)) - set(re.findall(r"\\label\{([^}]*)\}", tex))
    cites = {key for keys in re.findall(r"\\cite\{([^}]*)\}", tex) for key in keys.split(",")}
    return refs | (cites - set(re.findall(r"\\bibitem\{([^}]*)\}", tex)))


@pytest.fixture(scope="module", params=[1, MIN_SEEDS], ids=["one seed", "enough seeds"])
def run_tex(request, tmp_path_factory):
    """The run report a short profile gets by default (no `paper`)."""
    report_dir = full_ladder_sources(tmp_path_factory.mktemp("run-report"), request.param, paper=False)
    return request.param, (report_dir / "report.tex").read_text()


def test_a_short_profile_gets_the_run_report_with_the_papers_tables_and_no_prose_sections(run_tex):
    seeds, tex = run_tex
    sections = re.findall(r"\\section\{([^}]*)\}", tex)
    assert sections[:6] == ["What was trained", "Accuracy", "The study's questions", "Diagnoses", "Beyond the study",
                            "How to reproduce this report"]
    assert "\\begin{abstract}" not in tex and "Conclusions" not in sections and "Limitations" not in sections
    first = tex[tex.index("\\maketitle"):tex.index("\\section{")]
    assert "report/study.pdf" in first  # the reproduction is the study paper's
    for label in ("tab:ladder", "tab:run-recipes", "tab:summary", "tab:verdicts", "fig:questions", "tab:time"):
        assert f"\\label{{{label}}}" in tex, label
    # the study's epochs for A are read from its text, not stated: marked so in the accuracy table
    start = tex.index("\\begin{tabular}", tex.index("\\section{Accuracy}"))
    summary = " ".join(tex[start:tex.index("\\label{tab:summary}")].split())
    assert re.search(r"^A & [\d,]+ & \d+ / 150\$\^\\S\$ &", summary[summary.index("\\midrule") + 9:])
    assert "$^\\S$: inferred from the study's text, which gives no epoch count for this model." in summary
    assert "B & " in summary and not re.search(r"B & [\d,]+ & \d+ / 150\$\^\\S", summary)
    verdicts = tex[tex.index("\\label{sec:questions}"):tex.index("\\label{tab:verdicts}")]
    rows = re.findall(r"^(.*) & ([A-Z]+), ([A-Z]+) & .* \\\\$", verdicts, re.M)
    assert [(low, high) for _, low, high in rows] == [("A", "B"), ("C", "D"), ("D", "E"), ("E", "F"), ("F", "G"), ("G", "GAP")]
    inconclusive = verdicts.count("& inconclusive \\\\")
    assert (inconclusive == len(rows)) == (seeds < MIN_SEEDS)
    assert ("every verdict below is inconclusive" in " ".join(first.split())) == (seeds < MIN_SEEDS)
    assert not undefined_references(tex)


def test_the_run_report_is_shorter_than_the_paper_of_the_same_runs_and_both_resolve_every_reference(tmp_path):
    layout = write_runs(tmp_path / "runs", MIN_SEEDS)
    run = (write_sources(layout, benchmark=tmp_path / "none.json") / "report.tex").read_text()
    paper = (write_sources(layout, benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    assert "\\begin{abstract}" in paper and "\\begin{abstract}" not in run
    prose = lambda tex: len(re.sub(r"\\begin\{(table|figure|longtable)\}.*?\\end\{\1\}", "", tex, flags=re.S))  # noqa: E731
    assert prose(run) < 0.6 * prose(paper)
    assert not undefined_references(run) and not undefined_references(paper)


@pytest.mark.parametrize("name", model_names())
def test_the_parameter_formula_from_recorded_layers_matches_pytorch(name):
    model = create_model(name)
    terms, total = layer_formula(layer_records(model))
    assert total == count_parameters(model) == architecture(layer_records(model))["parameters"] and terms


def test_the_parameter_counts_come_from_the_runs():
    runs = {name: [hand_made(name, model, 0, 0.5)] for name, model in LADDER.items()}
    context = parameters_context(runs)
    assert context["study_value"] == 181 and context["a"]["total"] == 1180
    assert eval(STUDY_PARAMS_A_FORMULA, {"__builtins__": {}}) == STUDY_PARAMS_A  # the study's formula gives its count
    assert [r["model"] for r in context["rows"]] == list(study_model_names())
    assert all(r["recorded"] == r["from_shapes"] for r in context["rows"])
    runs["B"][0]["layers"] = None  # not recorded
    assert {r["model"]: r["from_shapes"] for r in parameters_context(runs)["rows"]}["B"] is None


def test_the_fast_target_verdict():
    def run(acc, flip, minutes, tta=None):
        final = {"test_acc": acc, "test_acc_flip": flip, "test_acc_tta": flip if tta is None else tta}
        return {"train_seconds": minutes * 60, "final": final}

    fast, slow = FAST_TARGET_MINUTES - 1, FAST_TARGET_MINUTES + 1
    good, short = FAST_TARGET_ACC + 0.001, FAST_TARGET_ACC - 0.001
    assert fast_target([run(good, good, fast)])["verdict"] == "met"
    assert fast_target([run(short, good, fast)])["verdict"] == "met_with_flip"
    assert fast_target([run(short, short, fast, tta=good)])["verdict"] == "met_with_tta"
    assert fast_target([run(short, short, fast)])["verdict"] == "short"
    assert fast_target([run(good, good, fast), run(short, short, fast)])["verdict"] == "short"  # every seed
    assert fast_target([run(good, good, slow)]) == {"verdict": "too_slow", "minutes": slow}


def render_section(name: str, **context) -> str:
    template = report_template()
    return environment(template.parent).get_template(f"sections/{name}.tex.j2").render(**context)


def bench_json(tmp_path, compiled: bool = True):
    bench = {
        "train_images": 42_000, "batch_size": 128, "repeats": 1, "quick": False, "cores": 2, "clock_ghz": 2.6,
        "flop_per_cycle_fp32": 32, "peak_fp32_gflops": 166.4, "peak_bf16_gflops": 332.8, "amp_dtype": "torch.bfloat16",
        "environment": {"cpu": "test cpu", "torch": "2.x"}, "compile": compiled,
        "models": {
            name: {"study_style_s": [40.0], "ours_fp32_s": [30.0], "ours_s": [ours], "speedup": 40 / ours,
                   "speedup_fp32": 40 / 30, "flops_per_image": 1e8, "gflops": 100.0, "fraction_of_fp32_peak": 0.6,
                   "fraction_of_bf16_peak": 0.3, **({"ours_compiled_s": [fast], "compile_s": [61.0]} if compiled else {})}
            for name, ours, fast in (("G", 24.0, 20.0), ("A", 1.5, 1.6))
        },
    }
    path = tmp_path / "epoch_time.json"
    path.write_text(json.dumps(bench))
    return path


def test_the_training_cost_section_states_whether_compilation_pays(tmp_path):
    context = dict(benchmark=benchmark_context(bench_json(tmp_path)), fp32=None, fast=None, minutes_figure="m.pdf",
                   profile="tiny", epochs_low=2, epochs_high=2, min_seeds=MIN_SEEDS,
                   provenance=dict(ladder_settings=dict(batches=[32], threads=[1])))
    text = render_section("training_cost", **context)
    # the benchmark's settings (batch 128) against those the ladder's runs recorded
    assert "not the settings of the ladder's runs (batch 32, 1 thread a run)" in " ".join(text.split())
    same = render_section("training_cost", **{**context, "provenance": dict(ladder_settings=dict(batches=[128], threads=[2]))})
    assert "as the ladder's runs trained" in same and "not the settings" not in same
    assert "torch.compile" in text and "bfloat16 autocast" in text
    assert ("G: 20.0\\,s per epoch compiled against 24.0\\,s, compilation 61\\,s, so it pays for its compilation "
            "after 15.2 epochs") in text
    assert "A: 1.6\\,s per epoch compiled against 1.5\\,s" in text and "never pays" in text
    assert "one measurement each" in text and "median of" not in text and "repeat(s)" not in text
    # each rate against its own peak: G's fp32 run (30 s) at 140 GFLOP/s is 84% of the fp32 peak, its autocast run
    # (24 s) at 175 GFLOP/s 53% of the bf16 peak (the file's own fraction_of_fp32_peak, 0.6, is not used)
    g = next(r for r in context["benchmark"]["rows"] if r["name"] == "G")
    assert (g["gflops_fp32"], g["fp32_peak"], g["gflops"], g["bf16_peak"]) == pytest.approx((140, 84.13, 175, 52.58), abs=0.01)
    assert "G & 40.00 & 30.00 & 24.00" in text and "140 & 84\\% & 175 & 53\\%" in text
    assert "was not run" in render_section("training_cost", **{**context, "benchmark": None})
    assert benchmark_context(tmp_path / "missing.json") is None


def test_a_report_of_one_model_says_no_question_is_answered_yet(tmp_path):
    folder = tmp_path / "runs" / "F" / "seed0"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(hand_made("F", "F", 0, 0.78)))
    tex = (write_sources(RunLayout(tmp_path / "runs"), benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    abstract = " ".join(tex[tex.index("\\begin{abstract}"):tex.index("\\end{abstract}")].split())
    assert "The best model of the ladder, F, reaches 0.780 test accuracy after 2 epochs (the study: 0.750, after epochs it" \
           " does not state)." in abstract
    assert "No question of the study can be answered this way yet" in abstract and "Of the 0 questions" not in abstract
    text = " ".join(tex.split())
    assert "the epochs of F (2) are our choice, not the study's" in text
    assert "No question of the study is tested in this run" in text and "the 0 questions" not in text
    assert "No model trained for fewer epochs than the study states for it; where it states none (F)" in text
    assert "cannot be seen to stall" not in text


def write_h_archive(root, seeds: int, ablations: dict[str, float], test: float = 0.937, unit: str = "avx512_bf16"):
    """Hand-made runs of the h profile: H's seeds and one run per named ablation (plain test accuracy);
    TTA adds 0.005, except for the ablation without augmentation, which has none."""
    runs = {"H": [test - 0.002 + 0.002 * seed for seed in range(seeds)]} | {f"H-{n}": [v] for n, v in ablations.items()}
    for name, values in runs.items():
        for seed, value in enumerate(values):
            results = hand_made(name, "H", seed, val=value, epochs=13, profile="h", train_split="train+val")
            results["data"]["sizes"] = {"train": 50_000, "val": 8_000, "test": 10_000}
            if name != "H-no-augment":
                results["final"].update(test_acc_flip=value + 0.003, test_acc_tta=value + 0.005)
            results.update(train_seconds=25 * 60, evaluation_seconds=90, wall_seconds=26 * 60)
            results["environment"].update(cpu="AMD EPYC", cpu_bf16_unit=unit)
            folder = root / name / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "results.json").write_text(json.dumps(results))
    return RunLayout(root)


def layer_profile_json(convs_at: float) -> dict:
    """A per-layer profile whose two convolutions run at `convs_at` of a 300 GFLOP/s bf16 peak."""
    peak = 300e9
    layers = {"block1.conv1": {"kind": "Conv2d", "forward": 0.2, "backward": 0.4, "flops": 0.6 * peak * convs_at},
              "block1.pool": {"kind": "MaxPool2d", "forward": 0.05, "backward": 0.05, "flops": 0.0},
              "block1.act1": {"kind": "GELU", "forward": 0.02, "backward": 0.03, "flops": 0.0},
              "flatten": {"kind": "Flatten", "forward": 0.0001, "backward": 0.0, "flops": 0.0},
              "block2.conv1": {"kind": "Conv2d", "forward": 0.3, "backward": 0.6, "flops": 0.9 * peak * convs_at}}
    return {"step_seconds": 1.7, "other_seconds": 0.05, "layers": layers, "cpu": "AMD EPYC", "threads": 2,
            "batch_size": 1024, "steps": 5, "amp": True,
            "peaks": {"bf16": peak / 1e9, "fp32": peak / 2e9, "cores": 2, "clock_ghz": 2.6, "flop_per_cycle_bf16": 64,
                      "flop_per_cycle_fp32": 32}}


def h_note(tmp_path, monkeypatch, h_layout) -> str:
    """The LaTeX of model H's note built from `h_layout`, beside a hand-made ladder of one seed."""
    ladder = write_runs(tmp_path / "ladder", 1)
    monkeypatch.setattr(report_h, "ladder_layout", lambda: ladder)
    return (write_sources(h_layout, benchmark=tmp_path / "none.json") / "report.tex").read_text()


def write_tuning_run(name: str, model: str, val: float, val_tta: float, epochs: int = 10,
                     beside: float | None = None) -> dict:
    """A hand-made tuning run of H or H-95 in report.h.tuning_root() (results/h-tuning), with its validation.json."""
    results = hand_made(name, model, 0, val=val, epochs=epochs, profile="h-tuning")
    results["beside_cores"] = beside
    folder = report_h.tuning_root() / name / "seed0"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    (folder / report_h.VALIDATION_FILE).write_text(json.dumps({"val_acc_tta": val_tta}))
    return results


def h_section(tmp_path, monkeypatch, seeds, ablations, profile=None) -> str:
    h_layout = write_h_archive(tmp_path / "h", seeds, ablations)
    if profile:
        h_layout.layer_profile.write_text(json.dumps(profile))
    monkeypatch.setattr(report_h, "h_layout", lambda: h_layout)  # for h_context read as another profile's report would
    tex = h_note(tmp_path, monkeypatch, h_layout)
    return " ".join(tex[tex.index("\\label{sec:h}"):tex.index("\\label{sec:limitations}")].split())


def test_a_tuning_run_at_hs_target_is_not_called_short_of_it(tmp_path, monkeypatch):
    write_tuning_run("e10", "H", 0.935, 0.941)
    section = h_section(tmp_path, monkeypatch, MIN_SEEDS, {})
    assert "(0.941 with TTA) in 0 minutes of training on test cpu, at or above the target with TTA; the final runs" in section


def test_a_tuning_runs_minutes_say_what_ran_beside_it(tmp_path, monkeypatch):
    write_tuning_run("e10", "H", 0.935, 0.941, beside=0.39)
    section = h_section(tmp_path, monkeypatch, MIN_SEEDS, {})
    assert "in 0 minutes of training on test cpu (with 0.39 cores of other work beside it), at or above" in section
    assert [t["beside"] for t in report_h.tuning_runs()] == [0.39]


def test_the_h_section_judges_the_targets_the_ablations_and_the_layers(tmp_path, monkeypatch):
    write_tuning_run("e10", "H", 0.930, 0.937)
    section = h_section(tmp_path, monkeypatch, MIN_SEEDS, {"no-lookahead": 0.925, "random-flip": 0.939,
                                                           "no-augment": 0.90}, layer_profile_json(1.05))
    assert ("The target we set for H (0.940 mean test accuracy over 3 seeds, test-time augmentation allowed, each seed "
            "trained and evaluated within 15 minutes on an Intel Xeon with AMX or 30 on an AMD Zen 4) is met: the mean test "
            "accuracy reaches 0.940 with TTA, not without it (0.942") in section
    assert "the slowest seed took 26.5 minutes, within the 30 allowed on this kind of CPU (AMD Zen 4, AVX512-BF16)" in section
    assert "is met in accuracy, with and without TTA (0.942" in section
    assert "), but not in time: the slowest seed took 26.5 minutes" in section
    assert "H's final runs train on all 50,000 training images" in section
    assert "trained from abc1234 (H seeds 0, 1, 2, H-no-augment, H-no-lookahead, H-random-flip)" in section
    assert "H-no-lookahead & no lookahead (weight averaging) & 0.925 & -0.012 & 0.930 & 26.5 & lower" in section
    assert "H-random-flip & random flips instead of alternating ones & 0.939 & +0.002 & 0.944 & 26.5 & within" in section
    assert "H-no-augment & no flips and no crops & 0.900 & -0.037 & -- & 26.5 & lower" in section  # no TTA to judge
    assert "3 of the 7 planned ablations have been trained" in section
    assert "-dirty" not in section
    assert "reaches at least 90\\% of the fastest convolution's rate" in section and "faster than that clock" in section
    # above the nominal peak, the table gives each convolution's share of the fastest one's rate only
    assert "& 100\\% \\\\" in section and "& 105\\%" not in section and "of fastest \\\\" in section
    assert "H, seed 0 & nothing (the ablations' seed) & 0.935 & -0.002 & 0.940" in section
    assert "prediction interval of one more seed of H (0.927 to 0.947)" in section
    assert "were compared on test accuracy (\\texttt{results/README.md}). Table~" in section
    assert "(0.937 with TTA) in 0 minutes of training on test cpu, short of the target with TTA, so the final runs" in section
    assert "on 50,000 training images, with 1 thread;" in section
    assert ("the mirror image alone (2 views) gives 0.940\\,{\\scriptsize$\\pm$0.002}; the eight shifted views change "
            "the mean by +0.002") in section
    assert "block2.conv1 & 300 & 600" in section and "all MaxPool2d layers (1)" in section
    assert "1 kind of layer taking less than 0.5\\% each left out" in section  # Flatten
    context = report_h.h_context({}, tmp_path, None)
    assert context["interval"] is not None and not context["stale"] and not context["mixed_configs"]
    slow = report_h.layer_rows(layer_profile_json(0.5))
    assert not slow["at_peak"] and not slow["above_peak"] and slow["precision"] == "bf16"
    uneven = layer_profile_json(1.0)
    uneven["layers"]["block2.conv1"]["flops"] *= 1.4  # 140% of the nominal peak: the real one is at least that
    rows = report_h.layer_rows(uneven)
    assert rows["above_peak"] and not rows["at_peak"] and rows["fastest"] == pytest.approx(420)
    assert rows["large_of_fastest"] == pytest.approx([1 / 1.4, 1.0])


@pytest.mark.parametrize("current", [True, False])
def test_a_dirty_commit_of_h_is_explained_by_its_training_code_version(tmp_path, monkeypatch, current):
    from convladder.core.runs import code_version

    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {})
    for seed in range(MIN_SEEDS):
        path = h_layout.seed("H", seed) / "results.json"
        results = json.loads(path.read_text())
        results["code_version"] = code_version("H") if current else "an older version"
        if seed == 1:
            results["environment"]["git_commit"] = "abc1234-dirty"
        path.write_text(json.dumps(results))
    tex = h_note(tmp_path, monkeypatch, h_layout)
    section = " ".join(tex[tex.index("\\label{sec:h}"):tex.index("\\label{sec:limitations}")].split())
    assert "trained from abc1234 (H seeds 0, 2), abc1234-dirty (H seed 1) (" in section
    if current:
        assert "had uncommitted changes when those runs trained; each run records" in section
        assert "so the changes were not to the code that trained them." in section
    else:  # the code changed since: the version cannot tell what the uncommitted changes were
        assert "had uncommitted changes when those runs trained. The training code of model H has changed" in section


def test_with_too_few_seeds_of_h_nothing_is_judged_but_everything_renders(tmp_path, monkeypatch):
    section = h_section(tmp_path, monkeypatch, 2, {"no-dirac": 0.93})
    assert ("The target we set for H (0.940 mean test accuracy over 3 seeds, test-time augmentation allowed, each seed "
            "trained and evaluated within 15 minutes on an Intel Xeon with AMX or 30") in section
    assert "is not judged yet: it needs 3 seeds, and 2 of them have been trained" in section
    assert "one more seed would fall" not in section and "milestone" not in section
    assert "H-no-dirac & no identity initialisation of the convs & 0.930" in section and "& -- \\\\" in section
    assert "has not been measured for these runs" in section


def test_the_h_targets_are_one_named_verdict(tmp_path):
    def verdict(name, seeds, test, unit="avx512_bf16", accuracy=h_targets.TARGET_ACC):
        runs = report_h.collect_runs(write_h_archive(tmp_path / name, seeds, {}, test=test, unit=unit).root)["H"]
        return h_targets.target_verdict(runs, accuracy, h_targets.TARGET_MINUTES)
    assert verdict("few", 2, 0.95)["verdict"] == "undecided"
    assert verdict("short", 3, 0.93)["verdict"] == "short"
    intel = verdict("intel", 3, 0.936, unit="amx_bf16")
    assert intel["verdict"] == "too_slow" and intel["unit"] == "AMX-BF16" and intel["slowest"] == pytest.approx(26.5)
    assert verdict("amd", 3, 0.936)["verdict"] == "met" and not verdict("amd2", 3, 0.936)["plain_met"]
    assert verdict("plain", 3, 0.945)["plain_met"]
    assert verdict("old", 3, 0.936, unit=None)["verdict"] == "time_not_judged"
    # H-95's goal: 0.950 within 35 minutes on AMX, 70 on a Zen 4 (the archive's slowest seed: 26.5 minutes)
    (goal, accuracy, limits, tta), = h_targets.GOALS["H95"]
    h95 = lambda name, test, unit: h_targets.target_verdict(  # noqa: E731
        report_h.collect_runs(write_h_archive(tmp_path / name, 3, {}, test=test, unit=unit).root)["H"], accuracy, limits)
    assert goal == "target" and tta and h95("h95-short", 0.945, "avx512_bf16")["verdict"] == "short"
    assert h95("h95-amd", 0.951, "avx512_bf16")["verdict"] == h95("h95-intel", 0.951, "amx_bf16")["verdict"] == "met"
    assert h95("h95-amd2", 0.951, "avx512_bf16")["limit"] == 70
    # one rule for whether a mean over the seeds exists: every seed measured it
    runs = report_h.collect_runs(write_h_archive(tmp_path / "measured", 3, {}, test=0.951).root)["H"]
    assert h_targets.every_seed_measured(runs, "test_acc_tta") and not h_targets.every_seed_measured([], "test_acc")
    runs[1]["final"]["test_acc_tta"] = None
    assert not h_targets.every_seed_measured(runs, "test_acc_tta") and h_targets.every_seed_measured(runs, "test_acc")
    assert h_targets.target_verdict(runs, accuracy, limits)["verdict"] == "short"
    assert h_targets.target_verdict(runs, accuracy, limits)["interval"] is None  # not judged: no interval either


def test_a_verdict_gives_its_means_interval_and_whether_that_holds_the_goal():
    runs = [{"final": {"test_acc": acc, "test_acc_tta": acc + 0.007}, "environment": {"cpu_bf16_unit": "avx512_bf16"},
             "train_seconds": 600, "evaluation_seconds": 60, "wall_seconds": None} for acc in (0.9380, 0.9390, 0.9395)]
    plain = h_targets.target_verdict(runs, 0.94, h_targets.TARGET_MINUTES, tta=False)
    low, high = plain["interval"]  # t-interval with 2 degrees of freedom: mean 0.93883, sd 0.00076, half 0.00190
    assert (low, high) == pytest.approx((0.93883 - 0.00190, 0.93883 + 0.00190), abs=2e-5)
    assert plain["verdict"] == "short" and plain["straddles"] and plain["kind"] == "AMD Zen 4"
    with_tta = h_targets.target_verdict(runs, 0.94, h_targets.TARGET_MINUTES)  # 0.94583: the interval lies above it
    assert with_tta["verdict"] == "met" and not with_tta["straddles"] and with_tta["interval"][0] > 0.94


def test_the_same_seeds_on_two_cpus_are_averaged_per_seed_and_only_where_every_run_measured_it():
    def run(seed, tta):
        return {"config": {"seed": seed}, "final": {"test_acc": 0.94, "test_acc_tta": tta}}
    own = {"seeds": [run(0, 0.951), run(1, 0.949), run(2, 0.950)], "target": {"tta": True, "accuracy": 0.95}}
    other = {"seeds": [run(0, 0.949), run(1, 0.951), run(2, 0.948)]}
    p = h_final.pooled(own, [other])
    assert p["seeds"] == [0, 1, 2] and p["runs_per_seed"] == 2
    assert p["mean"] == pytest.approx((0.950 + 0.950 + 0.949) / 3)
    assert p["interval"] == pytest.approx(mean_interval([0.950, 0.950, 0.949])) and p["straddles"]
    other["seeds"][0]["final"]["test_acc_tta"] = None  # one run did not measure it: no mean of the seeds
    assert h_final.pooled(own, [other]) is None and h_final.pooled(own, []) is None


def test_minutes_count_the_whole_call_where_it_took_longer():
    run = {"train_seconds": 600, "evaluation_seconds": 60, "wall_seconds": 700}
    assert h_targets.minutes(run) == pytest.approx(700 / 60)
    assert h_targets.minutes({**run, "evaluation_seconds": None, "wall_seconds": None}) == 10  # schema 1: not measured
    assert h_targets.minutes({**run, "wall_seconds": 100}) == pytest.approx(11)  # continued: the calls' sum is larger


def test_a_profile_that_trains_h_shows_its_own_runs(tmp_path, monkeypatch):
    write_h_archive(tmp_path / "archive", 3, {})  # not read: the report's own runs hold H
    monkeypatch.setattr(report_h, "h_layout", lambda: RunLayout(tmp_path / "archive"))
    own = {"H": [hand_made("H", "H", 0, 0.6, profile="tiny")]}
    own["H"][0]["final"].update(test_acc_flip=0.61, test_acc_tta=0.62)
    context = report_h.h_context(own, tmp_path, None)
    assert context["archive"] is None and [r["final"]["test_acc"] for r in context["seeds"]] == [0.6]
    assert context["target"]["verdict"] == "undecided"


def test_without_h_runs_the_section_says_how_to_train_them(report_tex):
    _, _, tex = report_tex
    section = tex[tex.index("\\label{sec:h}"):tex.index("\\label{sec:errors}")]
    assert "has no finished runs in this report's runs or in its archive" in " ".join(section.split())
    assert "convladder all -{}-profile h" in section


def test_model_hs_archive_builds_its_note_and_a_ladder_report_cites_it(tmp_path, monkeypatch):
    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {"no-dirac": 0.93})
    note = " ".join(h_note(tmp_path, monkeypatch, h_layout).split())
    assert "\\title{Model H: a small network for CIFAR-10 on a CPU" in note and "\\label{tab:h-ablations}" in note
    assert "the study profile's ladder (\\texttt{results/study}: A, B, C, D, E, F, G, GAP" in note
    assert "\\label{sec:limitations}" in note and "each ablation is one seed" in " ".join(note.lower().split())
    monkeypatch.setattr(report_h, "h_layout", lambda: h_layout)
    tex = (write_sources(write_runs(tmp_path / "runs", 1), benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    section = " ".join(tex[tex.index("\\label{sec:h}"):tex.index("\\label{sec:errors}")].split())
    assert "a technical note of its own~\\cite{hnote}" in section and "\\bibitem{hnote}" in tex
    assert "Over 3 seeds, each trained on 50,000 images" in section and "it reaches 0.937" in section
    assert "\\label{tab:h}" not in tex and "\\textbf{Model H.}" not in tex  # the note holds the rest


def _study_run(name: str, model: str, seed: int, take_off: int | None, epochs: int, final: float) -> dict:
    """One seed trained with the study profile's recipe for `epochs`, at chance until `take_off`."""
    from convladder.plan.profiles import config_from_parameters

    config = config_from_parameters("study", model, epochs=epochs, seed=seed).to_dict()
    results = hand_made(name, model, seed, val=final, epochs=epochs,
                        **{k: v for k, v in config.items() if k not in ("model", "epochs", "seed")})
    val = [0.1 if take_off is None or epoch < take_off else final for epoch in range(1, epochs + 1)]
    results["history"]["val_acc"] = val
    results["final"]["val_acc"] = val[-1]
    return results


def test_the_study_epochs_table_gives_take_offs_and_end_points_with_the_summary_rule(tmp_path):
    from convladder.report.ladder import study_epochs_rows

    runs = {
        "A": [_study_run("A", "A", s, t, 150, 0.2) for s, t in enumerate([120, 135, 150])],
        "B": [_study_run("B", "B", s, t, 150, 0.3) for s, t in enumerate([50, None])],
        "C": [_study_run("C", "C", s, None, 16, 0.1) for s in range(3)],  # no take-off in the study's text
        "D": [_study_run("D", "D", 0, 2, 5, 0.5)],  # epochs the study did not state: not in the table
        "GAP": [_study_run("GAP", "GAP", s, 1, 120, 0.83 + 0.01 * s) for s in range(3)],
        "GAP+": [_study_run("GAP+", "GAP", 0, 1, 240, 0.86)],
    }
    rows = {row["name"]: row for row in study_epochs_rows(runs)}
    assert list(rows) == ["A", "B", "C", "GAP", "GAP+"]
    assert rows["A"]["curve"]["take_offs"] == ["120", "135", "150"] and rows["A"]["curve"]["within"] == "yes"
    # the sensitivity check just above chance: these hand-made curves step from 0.1 to their end value at once
    assert rows["A"]["curve"]["low_take_offs"] == ["120", "135", "150"]
    a0 = runs["A"][0]["history"]["val_acc"]
    a0[100:119] = [0.12] * 19  # a slow rise above 0.11 but below 0.15 from epoch 101
    assert study_epochs_rows(runs)[0]["curve"]["low_take_offs"][0] == "101"
    assert study_epochs_rows(runs)[0]["curve"]["take_offs"][0] == "120"
    a0[80:85] = [0.13] * 5  # an early rise above 0.11 (epochs 81-85) that falls back: the first crossing, beside
    assert study_epochs_rows(runs)[0]["curve"]["low_first"][0] == "81"
    assert study_epochs_rows(runs)[0]["curve"]["low_take_offs"][0] == "101"
    assert rows["B"]["curve"]["take_offs"] == ["50", "never"] and rows["B"]["curve"]["never"] == 1
    assert rows["B"]["curve"]["within"] == "--"  # a seed that never left chance: no interval
    assert rows["C"]["curve"] is None and rows["GAP+"]["within"] == "--"  # one seed
    assert rows["GAP"]["within"] == "yes" and rows["GAP"]["study_val"] == 0.83
    # a run of another recipe at the same epochs (the quick profile's Adam) is not the study's setting
    adam = {"A": [hand_made("A", "A", 0, 0.4, epochs=150, profile="study", optimizer="adam")]}
    assert study_epochs_rows(adam) == []

    layout = write_results(tmp_path / "runs", runs)
    # the study paper's abstract says the study is reproduced in part (here every study number lies inside), and that
    # A and B leave chance earlier than the study's (B's seed that never did breaks it): the first stops the build
    with pytest.raises(ReportError, match="claim 'abstract-some-reproduced' no longer holds"):
        write_sources(layout, benchmark=tmp_path / "none.json")
    tex = (write_sources(layout, benchmark=tmp_path / "none.json", draft=True) / "report.tex").read_text()
    assert "[claim abstract-some-reproduced does not hold]" in tex and "[claim abstract-a-b-early does not hold]" in tex
    section = tex[tex.index("\\label{sec:study-epochs}"):tex.index("\\label{tab:study-epochs}")]
    assert "120, 135, 150 & about 140 & yes" in section and "50, never & about 110 & --" in section
    text = " ".join(tex.split())
    # the study paper's table gives each seed's take-off; the prose below it judges, without repeating them
    assert "Model A: the study's take-off lies within the range of ours" in text and "left chance at epochs 120" not in text
    # the study paper answers the questions in one table, C against D after epoch 5, the last both reached
    assert "\\label{sec:q-C-D}" not in tex and "Does ReLU instead of sigmoid let the model learn? & C, D & 5 &" in text
    # no logits runs beside the study recipe's: the recipe search (archived) stands in
    assert "The ladder's runs here all use the softmax output;" in text
    assert "the recipe search (Section~\\ref{sec:recipe}) trains model A both ways" in text
    assert "With Adam at batch 128 on logits, the recipe we assumed before the search, A leaves chance within a few" \
           " epochs (Table~\\ref{tab:recipes})" in text
    assert "varies from seed to seed; the ladder's runs with the recipe show it (Section~\\ref{sec:study-epochs}): A's 3" \
           " seeds left chance 30 epochs apart (Table~\\ref{tab:study-epochs}), B's 2 seeds left chance at epoch 50 (1 of" \
           " its seeds never did). So this is the candidate" in text
    assert "band: range; epochs on a logarithmic axis, so that the short runs are not squeezed" in text  # 16 to 240 epochs
    tested = " ".join(tex[tex.index("\\label{sec:tested}"):tex.index("\\label{sec:diagnoses}")].split())
    conclusions = " ".join(tex[tex.index("\\label{sec:conclusions}"):tex.index("\\label{sec:limitations}")].split())
    # the study profile's conclusions are the authored ones (report/study/conclusions_tested.tex.j2 in the results,
    # the closing in report/study/conclusions.tex.j2), whose claims these hand-made runs break (no F or G: the dropout
    # conclusion cannot be drawn), not the generated summary
    assert "The study closes with five conclusions." in tested and "B reached" not in conclusions
    assert "[claim conclusion-dropout does not hold]" in tested and "What the reproduction does not settle" in conclusions


def test_the_experiment_archives_name_their_command_runs_and_commits(tmp_path, monkeypatch):
    import convladder.report.setup as report
    monkeypatch.setattr(report, "results_archive", lambda name: tmp_path / name)
    for folder, commit in (("A/seed0", "aaaaaaa"), ("B/seed0", "bbbbbbb-dirty"), ("B/seed1", "aaaaaaa")):
        (tmp_path / "study-150" / folder).mkdir(parents=True)
        (tmp_path / "study-150" / folder / "results.json").write_text(json.dumps(
            {"environment": {"git_commit": commit}, "code_version": "v1"}))
    (tmp_path / "study-150" / "C").mkdir()
    (tmp_path / "study-150" / "C" / "results.json").write_text("{not json")
    (tmp_path / "study-150" / "D-gradients" / "seed0").mkdir(parents=True)  # a run that records its gradients
    (tmp_path / "study-150" / "D-gradients" / "seed0" / "gradients.json").write_text(json.dumps(
        {"environment": {"git_commit": "ccccccc"}, "code_version": "v2"}))
    rows = report.experiment_archives()  # the other archives are absent: no rows
    assert [(r["archive"], r["command"], r["runs"], r["unreadable"], r["commits"], r["dirty"], r["code_versions"])
            for r in rows] == [("results/study-150", "python -m convladder.experiments.longer_training", 4, 1,
                                ["aaaaaaa", "bbbbbbb-dirty", "ccccccc"], True, ["v1", "v2"])]
    # each archive's module exists
    import importlib.util
    for _, module in report.EXPERIMENT_ARCHIVES:
        assert importlib.util.find_spec(f"convladder.experiments.{module}") is not None


def test_benchmark_source_prefers_this_machines_then_the_archived_and_says_when_there_is_none(tmp_path, monkeypatch, capsys):
    import convladder.report.setup as report
    fresh, archive = tmp_path / "runs" / "benchmark" / "epoch_time.json", tmp_path / "results"
    monkeypatch.setattr(report, "benchmark_json", lambda: fresh)
    monkeypatch.setattr(report, "results_archive", lambda name: archive / name)
    assert benchmark_source() is None
    assert "benchmarks/epoch_time.py" in capsys.readouterr().err
    archived = archive / "benchmark" / "epoch_time.json"
    archived.parent.mkdir(parents=True)
    archived.write_text("{}")
    assert benchmark_source() == archived
    other_cpu = archive / "benchmark" / "intel" / "epoch_time.json"  # archived per CPU: the one the runs trained on
    other_cpu.parent.mkdir()
    other_cpu.write_text('{"environment": {"cpu": "Intel(R) Xeon(R) Processor"}}')
    assert benchmark_source(cpu="Intel(R) Xeon(R) Processor") == other_cpu
    assert benchmark_source(cpu="AMD EPYC") == archived
    fresh.parent.mkdir(parents=True)
    fresh.write_text("{}")
    assert benchmark_source() == fresh
    assert benchmark_source(tmp_path / "given.json") == tmp_path / "given.json"


def test_the_abstract_and_conclusions_count_the_questions_answered_yes_and_no(tmp_path):
    vals = {"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62], "E": [0.40, 0.41, 0.42], "F": [0.39, 0.42, 0.41]}
    layout = write_results(tmp_path / "runs", accuracies(vals))
    tex = (write_sources(layout, benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    text = " ".join(tex.split())
    assert "The ladder can answer 3 questions this way: 2 are decided at 95\\% confidence (C against D, D against E) and" \
           " the other is inconclusive." in text
    assert "the data answer 1 of the 3 questions that the ladder can test cleanly with yes (C to D) and 1 with no (D to E:" \
           " the model with the ingredient is worse; the study too found E failing" in text
    assert "After epoch 2, D is ahead of C: the answer is yes." in text and "After epoch 2, E is behind D" in text


def test_a_model_with_too_few_seeds_leaves_only_its_own_questions_undecided(tmp_path):
    # a profile part-way: E has 2 seeds, so D against E and E against F cannot be decided; C against D can
    vals = {"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62], "E": [0.70, 0.71], "F": [0.80, 0.81, 0.82]}
    layout = write_results(tmp_path / "runs", accuracies(vals))
    text = " ".join((write_sources(layout, benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text().split())
    assert "no question can be decided here" not in text and "so every comparison in it is inconclusive" not in text
    assert "each model has at least 3 seeds; E has fewer here, so the questions that involve it are inconclusive" in text
    assert "has between 2 and 3 seeds" in text and "E has fewer than the 3 from which this report draws a verdict" in text
    assert "After epoch 2, D is ahead of C: the answer is yes." in text


def test_the_diagnosis_names_its_recipe_and_whether_the_ladder_used_it():
    from convladder.report.analyses import diagnosis_recipe

    ours = {"E": [hand_made("E", "E", 0, 0.1)]}  # TrainConfig's defaults, as the diagnosis trains
    study = {"E": [hand_made("E", "E", 0, 0.1, profile="study", optimizer="sgd", momentum=0.9, batch_size=32,
                             study_softmax=True)]}
    recipe = diagnosis_recipe({"batch_size": 128}, ours)
    assert recipe["config"]["optimizer"] == "adam" and recipe["config"]["batch_size"] == 128 and recipe["ladders"]
    assert not diagnosis_recipe({"batch_size": 128}, study)["ladders"]


@pytest.mark.parametrize("models, wording", [
    ({"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62]}, "The ladder can answer 1 question this way: it is decided"),
    ({"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62], "E": [0.70, 0.71, 0.72]},
     "The ladder can answer 2 questions this way: both are decided"),
    ({"C": [0.50, 0.55, 0.45], "D": [0.52, 0.47, 0.57]}, "The ladder can answer 1 question this way: it is not decided at"),
])
def test_the_abstract_counts_the_questions_decided_in_words(tmp_path, models, wording):
    layout = write_results(tmp_path / "runs", accuracies(models))
    tex = (write_sources(layout, benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    assert wording in " ".join(tex.split())


def test_a_longer_run_with_a_schedule_is_compared_after_its_own_last_epoch_and_the_report_says_why(tmp_path):
    runs = {"F": [hand_made("F", "F", s, 0.70 + 0.01 * s, epochs=4, schedule="onecycle") for s in range(3)],
            "G": [hand_made("G", "G", s, 0.60 + 0.01 * s) for s in range(3)]}
    tex = (write_sources(write_results(tmp_path / "runs", runs), benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    question = " ".join(tex[tex.index("\\label{sec:q-F-G}"):tex.index("\\label{sec:q-G-GAP}")].split())
    assert "F's plan depends on its length (onecycle schedule), so its history cannot stand for a shorter run" in question
    assert "Each after its own last epoch, G is behind F: the answer is no." in question


def test_runs_trained_on_two_cpus_name_both_and_the_time_table_says_which(tmp_path):
    runs = accuracies({"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62]})
    for run in runs["D"]:
        run["environment"].update(cpu="Intel Xeon", cpu_bf16_unit="amx_bf16")
    tex = (write_sources(write_results(tmp_path / "runs", runs), benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    text = " ".join(tex.split())
    assert "The runs were trained on Intel Xeon with AMX-BF16 and test cpu (2 cores each, PyTorch using 1 thread per run;" \
           " device cpu; Appendix~\\ref{app:time} says which run trained on which)" in text
    table = " ".join(tex[tex.index("\\label{app:time}"):tex.index("\\label{tab:time}")].split())
    assert "& CPU \\\\" in table and re.search(r"\nD & 2 & 3 & .* & Intel Xeon with AMX-BF16 \\\\", tex)
    assert "Everything ran on CPUs (Intel Xeon with AMX-BF16 and test cpu, 2 cores each)" in text
    assert "Times are of these machines only" in text


def test_a_cpu_is_named_once_whether_or_not_its_runs_recorded_the_bf16_unit():
    from convladder.tools.hardware import cpu_names, plain_cpu_name

    epyc, old_epyc, xeon = ({"cpu": "AMD EPYC", "cpu_bf16_unit": "avx512_bf16"}, {"cpu": "AMD EPYC"},
                            {"cpu": "Intel Xeon", "cpu_bf16_unit": "amx_bf16"})
    assert cpu_names([epyc, old_epyc, epyc]) == ["AMD EPYC with AVX512-BF16"]
    assert cpu_names([old_epyc]) == ["AMD EPYC"]
    assert cpu_names([xeon, old_epyc]) == ["AMD EPYC", "Intel Xeon with AMX-BF16"]
    recorded = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_bf16_unit": "amx_bf16"}  # as /proc/cpuinfo names it
    assert cpu_names([recorded, xeon]) == ["Intel Xeon with AMX-BF16"]
    assert plain_cpu_name("AMD EPYC 9R14 96-Core Processor") == "AMD EPYC 9R14 96-Core"
    assert plain_cpu_name("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz") == "Intel Core i7-8700 CPU @ 3.20GHz"


def test_runs_on_one_cpu_name_it_once_without_a_cpu_column(report_tex):
    _, _, tex = report_tex
    text = " ".join(tex.split())
    assert "The runs were trained on test cpu (2 cores, PyTorch" in text and "& CPU \\\\" not in text
    assert "Everything ran on a CPU (test cpu, 2 cores)" in text and "Times are of this machine only" in text


def test_runs_of_one_thread_on_two_cores_count_half_their_time_as_the_machines(tmp_path):
    runs = accuracies({"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62]})
    for run in runs["D"]:
        run["environment"]["torch_threads"] = 2
    tex = (write_sources(write_results(tmp_path / "runs", runs), benchmark=tmp_path / "none.json",
                         paper=True) / "report.tex").read_text()
    # 6 seeds of 3 s each; C's 3 (one thread of two cores) count half for the machine: 13.5 s
    text = " ".join(tex.split())
    assert "training took 18\\,s over all runs and seeds" in text
    assert "that is about 14\\,s of the machine, not a measured wall time." in text


def test_seeds_trained_beside_other_work_are_marked_in_the_time_table(tmp_path):
    runs = accuracies({"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62]})
    runs["D"][1]["beside_cores"] = 0.8  # another process kept most of a core busy while seed 1 trained
    runs["D"][2]["beside_cores"] = 0.05  # housekeeping only: counts as alone
    tex = (write_sources(write_results(tmp_path / "runs", runs), benchmark=tmp_path / "none.json") / "report.tex").read_text()
    text = " ".join(tex.split())
    assert "D & 2 & 3 & 3.0\\,s$^*$ &" in text and "C & 2 & 3 & 3.0\\,s &" in text  # 2 epochs, 3 seeds
    assert "with seeds that trained while other work kept the machine's cores busy (D seed 1), so their times" in text
    del runs["D"][1]["beside_cores"]
    tex = (write_sources(write_results(tmp_path / "again", runs), benchmark=tmp_path / "none.json") / "report.tex").read_text()
    text = " ".join(tex.split())
    assert "D & 2 & 3 & 3.0\\,s &" in text and "other work kept" not in text


def test_the_run_reports_first_lines_name_the_runs_with_fewer_seeds(tmp_path):
    runs = accuracies({"C": [0.50, 0.51, 0.52], "D": [0.60, 0.61, 0.62], "E": [0.65]})
    text = " ".join((write_sources(write_results(tmp_path / "runs", runs), benchmark=tmp_path / "none.json")
                     / "report.tex").read_text().split())
    assert "; fewer seeds for E (1)) trained" in text
    runs["E"] += [hand_made("E", "E", seed, 0.66) for seed in (1, 2)]
    text = " ".join((write_sources(write_results(tmp_path / "again", runs), benchmark=tmp_path / "none.json")
                     / "report.tex").read_text().split())
    assert "fewer seeds for" not in text


def test_the_precision_comparison_names_the_seeds_that_trained_beside_other_work(tmp_path):
    from convladder.report.setup import fp32_context

    runs = {"G": [hand_made("G", "G", seed, val=0.7) for seed in range(3)],
            "G-fp32": [hand_made("G-fp32", "G", seed, val=0.7, amp=False) for seed in range(3)]}
    runs["G"][0]["beside_cores"] = 0.9  # a test suite kept a core busy while seed 0 trained
    runs["G-fp32"][2]["beside_cores"] = 0.05  # housekeeping only: alone
    context = fp32_context(runs)
    assert context["amp_crowded"] == [0] and context["plain_crowded"] == []
    text = " ".join((write_sources(write_results(tmp_path / "runs", runs), benchmark=tmp_path / "none.json")
                     / "report.tex").read_text().split())
    assert "1.5\\,s per epoch (bfloat16 seed 0 trained beside other work, so these seconds compare the runs as they went, " \
           "not the two precisions' speeds). The difference" in text
    del runs["G"][0]["beside_cores"]
    assert fp32_context(runs)["amp_crowded"] == []
    text = " ".join((write_sources(write_results(tmp_path / "again", runs), benchmark=tmp_path / "none.json")
                     / "report.tex").read_text().split())
    assert "Does bfloat16 keep the accuracy?" in text and "trained beside other work, so these seconds" not in text


@pytest.mark.parametrize("seconds, shown", [(5, "5.0\\,s"), (90, "90\\,s"), (600, "10.0\\,min"),
                                             (4 * 3600, "240.0\\,min"), (15.6 * 3600, "15.6\\,h")])
def test_durations_are_shown_in_seconds_minutes_or_hours(seconds, shown):
    from convladder.report.latex import fmt_seconds

    assert fmt_seconds(seconds) == shown


@pytest.mark.parametrize("value, shown", [(None, "--"), (0.0123, "+0.012"), (-0.0123, "-0.012"),
                                         (-0.0004, "0.000"), (0.0004, "0.000")])
def test_differences_carry_a_sign_unless_they_round_to_zero(value, shown):
    from convladder.report.latex import fmt_signed

    assert fmt_signed(value) == shown


@pytest.mark.parametrize("items, text", [([], ""), (["X"], "X"), (["X", "Y"], "X and Y"), (["X", "Y", "Z"], "X, Y and Z")])
def test_lists_in_prose_end_with_and(items, text):
    from convladder.report.latex import and_list

    assert and_list(items) == text


@pytest.mark.parametrize("lengths, scale", [([3, 10], "linear"), ([16, 30, 150, 240], "log"), ([30, 120], "linear")])
def test_curves_of_very_different_lengths_share_a_logarithmic_epoch_axis(lengths, scale):
    from convladder.report.plots import log_epochs, plot_compare, plot_ladder

    runs = {f"M{i}": [hand_made("C", "C", 0, 0.5, epochs=n)] for i, n in enumerate(lengths)}
    assert log_epochs(lengths) == (scale == "log")
    for figure in (plot_ladder(runs, {}), plot_compare(runs)):
        assert figure.axes[0].get_xscale() == scale
        matplotlib.pyplot.close(figure)


def test_a_continued_run_is_drawn_from_its_own_first_epoch_against_minutes():
    """GAP+ repeats GAP's epochs in its history: drawn from its own first epoch, at the minutes counted until then."""
    from convladder.report.plots import plot_accuracy_minutes

    runs = {"GAP": [hand_made("GAP", "GAP", 0, 0.5, epochs=2)], "GAP+": [hand_made("GAP+", "GAP", 0, 0.6, epochs=4)]}
    figure = plot_accuracy_minutes(runs, starts={"GAP+": 3})
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines["GAP"].get_xdata()) == pytest.approx([1.5 / 60, 3.0 / 60])
    assert list(lines["GAP+"].get_xdata()) == pytest.approx([4.5 / 60, 6.0 / 60])  # epochs 3 and 4, after 3 minutes' worth
    matplotlib.pyplot.close(figure)


INJECTION = r"\input{/etc/hostname}"
STRUCTURAL = {"model", "optimizer", "schedule", "train_split", "without", "name"}  # checked where they are read


def injected(value, key=None):
    """Every string read from a file, but those the report checks against known values, replaced by a LaTeX command."""
    if isinstance(value, dict):
        return {k: v if k == "layers" else injected(v, k) for k, v in value.items()}  # layers: parsed, not printed
    if isinstance(value, list):
        return [injected(v, key) for v in value]
    return INJECTION if isinstance(value, str) and key not in STRUCTURAL else value


def test_no_string_from_a_file_reaches_the_latex_unescaped(tmp_path):
    """A name, CPU, commit, checksum, class name or path from results.json or data.json prints as text: LaTeX
    never sees a command in it (it would print any local file into the PDF)."""
    root = tmp_path / "runs"
    layout = write_runs(root, MIN_SEEDS)
    for path in root.glob("*/seed*/results.json"):
        path.write_text(json.dumps(injected(json.loads(path.read_text()))))
    layout.data_facts.parent.mkdir(parents=True, exist_ok=True)
    facts = json.loads((paths.results_archive("study") / "data.json").read_text())
    layout.data_facts.write_text(json.dumps(injected(facts)))
    tex = (write_sources(layout, benchmark=tmp_path / "no-benchmark.json", paper=True) / "report.tex").read_text()
    assert INJECTION not in tex and "\\input" not in tex
    assert tex.count(r"\textbackslash{}input\{/etc/hostname\}") >= 5


def test_a_claim_prints_nothing_when_it_holds_and_stops_the_build_or_marks_a_draft_when_not(tmp_path):
    from convladder.report.latex import UnsupportedClaim, fmt_p

    (tmp_path / "t.tex.j2").write_text('A sentence.\\VAR{claim("the-sentence", x > 1)} \\VAR{p|p}')
    env = environment(tmp_path)
    assert env.get_template("t.tex.j2").render(x=2, p=0.022) == "A sentence. $0.022$"
    with pytest.raises(UnsupportedClaim, match="'the-sentence' no longer holds"):
        env.get_template("t.tex.j2").render(x=1, p=0.5)
    draft = environment(tmp_path, draft=True).get_template("t.tex.j2").render(x=1, p=3.7e-8)
    assert draft == "A sentence.\\textbf{[claim the-sentence does not hold]} $3.7 \\times 10^{-8}$"
    assert fmt_p(None) == "--"


def test_a_near_certain_probability_is_written_as_its_distance_from_one():
    from convladder.report.latex import fmt_prob

    assert [fmt_prob(p) for p in (0.434, 0.9994, None)] == ["0.434", "0.999", "--"]
    assert fmt_prob(0.99996) == "$1 - 4 \\times 10^{-5}$" and fmt_prob(1 - 2e-6) == "$1 - 2 \\times 10^{-6}$"
    assert fmt_prob(1.0) == "$1 - {<}10^{-7}$"  # the float32 softmax cannot tell it from 1


def test_a_draft_is_not_exported(capsys):
    from convladder.cli import main

    assert main(["report", "--profile", "smoke", "--draft", "--export"]) != 0
    assert "a draft is not exported" in capsys.readouterr().err


def test_a_question_panel_zooms_into_a_difference_too_small_to_see_and_only_then():
    from convladder.report.question_plots import plot_questions

    def seeds(end: float, offset: float = 0.0):
        return [{"history": {"epoch": list(range(1, 31)),
                             "val_acc": [0.4 + (end - 0.4) * e / 30 + offset + 0.001 * s for e in range(1, 31)]}}
                for s in range(3)]

    runs = {"F": seeds(0.78), "G": seeds(0.80), "E": [{"history": {"epoch": list(range(1, 31)), "val_acc": [0.1] * 30}}]}
    colors = {"E": "C0", "F": "C1", "G": "C2"}
    panels = [dict(letter="a", low="F", high="G", at_epoch=None, runs=runs, colors=colors),
              dict(letter="b", low="E", high="F", at_epoch=None, runs=runs, colors=colors)]
    fig = plot_questions(panels)
    close, apart = fig.axes[:2]
    assert len(close.child_axes) == 1 and not apart.child_axes
    inset = close.child_axes[0]
    assert inset.get_xlim() == (23, 30)  # the last quarter of 30 epochs
    low, high = inset.get_ylim()
    # zoomed to the window's values (F at epoch 23: 0.691 to G's third seed at 30: 0.802), not the panel's 0.4-0.8
    assert 0.67 < low < 0.691 and 0.802 < high < 0.82


def _curve(values: list[float]) -> list[dict]:
    return [{"history": {"epoch": list(range(1, len(values) + 1)), "val_acc": values}}]


@pytest.mark.parametrize("low, high, at_epoch, slot", [
    (_curve([0.3, 0.9]), _curve([0.31, 0.91]), None, 0.22),  # the curves end high: the inset low
    (_curve([0.9, 0.3]), _curve([0.91, 0.31]), None, 0.58),  # they end low: the inset high
    # compared at epoch 20, where they are close; the longer one climbs after it, over the right half of the panel
    (_curve([0.5] * 20), _curve([0.5] * 20 + [0.95] * 40), 20, 0.22),
])
def test_a_question_panels_inset_sits_where_the_curves_are_not(low, high, at_epoch, slot):
    from convladder.report.question_plots import plot_questions

    fig = plot_questions([dict(letter="a", low="F", high="G", at_epoch=at_epoch, runs={"F": low, "G": high},
                               colors={"F": "C1", "G": "C2"})])
    fig.canvas.draw()
    panel, inset = fig.axes[0].get_position(), fig.axes[0].child_axes[0].get_position()
    assert (inset.y0 - panel.y0) / panel.height == pytest.approx(slot, abs=0.01)  # its bottom, a share of the panel


def test_near_certain_mistakes_keep_distinct_probability_labels():
    from convladder.report.error_plots import probability_label

    assert probability_label(0.871) == "0.87"
    labels = [probability_label(p) for p in (0.99991, 0.999999, 0.9962)]
    assert len(set(labels)) == 3 and not any(label == "1.00" for label in labels)
    assert labels[0] == "1-9e-05"


def test_curves_at_chance_get_markers_between_each_others():
    """Two runs that never leave chance lie on one another: their markers alternate, so both stay visible."""
    from convladder.report.plots import chance_names, plot_ladder, stagger_markers

    runs = {"C": [hand_made("C", "C", 0, 0.1, epochs=16)], "D": [hand_made("D", "D", 0, 0.4, epochs=16)],
            "E": [hand_made("E", "E", 0, 0.1, epochs=16)]}
    for run in ("C", "E"):
        runs[run][0]["history"]["val_acc"] = [0.1] * 16
    marks = stagger_markers({name: seeds[0]["history"]["val_acc"] for name, seeds in runs.items()})
    assert marks == {"C": (0, 2), "D": (0, 2), "E": (1, 2)}  # 16 epochs: a marker every other epoch
    assert stagger_markers({"C": [0.1] * 4, "E": [0.1] * 4, "X": [0.1] * 4}) == \
        {"C": (0, 3), "E": (1, 3), "X": (2, 3)}  # three at chance: a period of three, whatever each one's own
    figure = plot_ladder(runs, {})
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert lines["C"].get_markevery() == (0, 2) and lines["E"].get_markevery() == (1, 2)
    matplotlib.pyplot.close(figure)
    # the captions name them, by the same rule, from the curves each figure draws (a run drawn from a later epoch on is
    # judged on what is drawn of it)
    assert chance_names(runs) == ["C", "E"]
    runs["E"][0]["history"]["val_acc"][:3] = [0.2, 0.2, 0.2]
    assert chance_names(runs) == ["C"] and chance_names(runs, {"E": 4}) == ["C", "E"]
    env = environment(paths.project_root() / "report")
    caption = env.from_string('\\BLOCK{from "macros.tex.j2" import chance_overlap with context}\\VAR{chance_overlap(names)}')
    assert " ".join(caption.render(names=["C", "E"], take_off_acc=0.15).split()) == (
        "; C and E, whose means never rise above 0.15, lie on one another near 0.1 (the dotted line), their markers "
        "alternating")
    assert caption.render(names=["C"], take_off_acc=0.15) == ""


def test_a_question_panel_ends_at_twice_the_compared_epoch_when_the_longer_run_goes_on():
    from convladder.report.question_plots import panel_end, plot_questions

    assert panel_end([30, 120], 30) == 60 and panel_end([16, 30], 16) is None and panel_end([30, 30], None) is None
    runs = {"G": [hand_made("G", "G", 0, 0.8, epochs=30)], "GAP": [hand_made("GAP", "GAP", 0, 0.84, epochs=120)]}
    fig = plot_questions([dict(letter="f", low="G", high="GAP", at_epoch=30, runs=runs, colors={"G": "C0", "GAP": "C1"})])
    panel = fig.axes[0]
    assert max(max(line.get_xdata()) for line in panel.get_lines() if len(line.get_xdata()) > 2) == 60
    matplotlib.pyplot.close(fig)


def test_the_whole_paper_as_one_family_counts_a_shared_comparison_once_and_only_verdicts_with_enough_seeds():
    from convladder.analysis.statistics import compare
    from convladder.report.family import paper_family

    apart = compare([0.10, 0.11, 0.12], [0.40, 0.41, 0.43])  # called, p about 1e-4
    barely = compare([0.50, 0.52, 0.54], [0.56, 0.58, 0.60])  # called, p about 0.02
    few = compare([0.1, 0.2], [0.5, 0.6])  # fewer than 3 seeds a side: no verdict, not in the family
    step = dict(low="C", high="D", at_epoch=None, epochs_low=16, c=apart)
    context = {"conclusions": {"steps": [step, dict(low="F", high="G", at_epoch=None, epochs_low=30, c=barely)]},
               "longer": {"verdicts": [dict(low="C", high="D", budget=16, c=apart), dict(low="C", high="D", budget=30, c=few)]},
               "robustness": None, "ladder_diagnosis": None}
    family = paper_family(context)
    assert (family["tests"], family["called"]) == (2, 2)
    # Holm over 2: the smaller p doubled, the larger (0.021) as it is: both keep p < 0.05
    assert [k["label"] for k in family["kept"]] == ["D against C after 16 epochs", "G against F after 30 epochs"]
    assert family["lost"] == []
    # three more like "barely": over 5 tests its 0.021 becomes 0.085, and every one of the four is lost
    context["longer"]["verdicts"] += [dict(low="D", high="E", budget=b, c=barely) for b in (30, 60, 150)]
    family = paper_family(context)
    assert family["tests"] == 5 and [k["label"] for k in family["kept"]] == ["D against C after 16 epochs"]
    assert [k["label"] for k in family["lost"]] == ["G against F after 30 epochs"] + [
        f"E against D after {b} epochs" for b in (30, 60, 150)]
    # the precision test of the recipe probes (plain fp32 against bfloat16) is one of the paper's tests too: it calls
    # nothing, but it makes the correction stricter (a p of 0.028 is kept over 2 tests and lost over 3)
    context["longer"]["verdicts"] = context["longer"]["verdicts"][:2]
    context["conclusions"]["steps"][1]["c"] = compare([0.50, 0.52, 0.54], [0.555, 0.575, 0.595])
    assert [k["label"] for k in paper_family(context)["kept"]][-1] == "G against F after 30 epochs"
    context["probes"] = {"precision": [dict(model="A", c=compare([0.26, 0.26, 0.28], [0.26, 0.27, 0.27]))]}
    family = paper_family(context)
    assert family["tests"] == 3 and family["called"] == 2
    assert [k["label"] for k in family["lost"]] == ["G against F after 30 epochs"]


def use_h95_archives(monkeypatch, latest: RunLayout, earlier: RunLayout | None = None) -> None:
    """report.h reads H-95's latest final runs (FINAL_PROFILE's) from `latest`, its earlier ones (EARLIER_PROFILES') from
    `earlier` (None: an empty folder)."""
    earlier = earlier or RunLayout(latest.root.with_name(latest.root.name + "-none"))
    empty = RunLayout(latest.root.with_name(latest.root.name + "-other"))  # another profile's (H's longer runs)
    monkeypatch.setattr(h_final, "final_layout", lambda profile: {FINAL_PROFILE["H95"]: latest}.get(
        profile, earlier if profile in EARLIER_PROFILES["H95"] else empty))


def write_h95_archive(root, tests: list[float], beside: list[float | None], without_tta: tuple[int, ...] = (),
                      epochs: int = 16, unit: str = "avx512_bf16", train_minutes: float = 58) -> RunLayout:
    """Hand-made final runs of H-95 (results/h95-e16, or results/h95 with 15 `epochs`): plain test accuracy per seed,
    TTA 0.007 above it (none for the seeds `without_tta`), `train_minutes` of training in epochs of equal length, 5 of
    evaluation, and the cores other processes kept busy beside each (None: not recorded); on an AMD EPYC, or an Intel
    Xeon where the bfloat16 `unit` is "amx_bf16"."""
    profile = next(p for p in (FINAL_PROFILE["H95"], *EARLIER_PROFILES["H95"]) if get_profile(p).epochs["H95"] == epochs)
    for seed, (test, cores) in enumerate(zip(tests, beside)):
        results = hand_made("H95", "H95", seed, val=test, epochs=epochs, profile=profile, train_split="train+val", lr=1.3)
        results["history"]["epoch_seconds"] = [train_minutes * 60 / epochs] * epochs
        results["config"] = plan_config(profile, "H95", seed=seed)[0].to_dict()  # as the profile plans it
        results["data"]["sizes"] = {"train": 50_000, "val": 8_000, "test": 10_000}
        if seed not in without_tta:
            results["final"].update(test_acc_flip=test + 0.004, test_acc_tta=test + 0.007)
        results.update(train_seconds=train_minutes * 60, evaluation_seconds=5 * 60, wall_seconds=(train_minutes + 4) * 60,
                       beside_cores=cores)
        results["environment"].update(cpu="Intel Xeon" if unit == "amx_bf16" else "AMD EPYC", cpu_bf16_unit=unit)
        folder = root / "H95" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(results))
    return RunLayout(root)


def test_h95_in_hs_note_one_seed_is_a_single_run_and_three_are_judged(tmp_path, monkeypatch):
    from convladder.report.archive_plots import plot_frontier

    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {})
    tuning = write_tuning_run("H95-tune", "H95", 0.9470, 0.9480)
    one = write_h95_archive(tmp_path / "h95-one", [0.9440], [0.01])
    use_h95_archives(monkeypatch, one)
    note = " ".join(h_note(tmp_path / "one", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert "128, 384, 384 channels instead of 64, 256, 256" in section
    assert "(its value converted to our loss as H's is: 1.3)" in section
    assert "0 & 0.9440 & 0.9480 & 0.9510 & 58.0 & 63.0 & 0.01 & AMD EPYC \\\\" in section
    assert "it needs 3 seeds, and 1 has been trained. The one seed is a single run: 0.9510 with TTA and 0.9440 without, " \
           "in 63.0 minutes, at or above the target accuracy with TTA" in section
    assert "over 1 seed so far, too few to judge its target of 0.950." in note  # the abstract
    tuning_acc = tuning["final"]["val_acc"]  # hand_made's validation accuracy, near the 0.9470 asked for
    assert f"gave {tuning_acc:.4f} validation accuracy (0.9480 with TTA)" in section
    assert "(with TTA where measured) lies 0.0020 from it, within 0.005: close enough" in section  # TTA's, measured
    # two seeds whose mean with TTA prints as the target at four decimals but lies below it
    two = write_h95_archive(tmp_path / "h95-two", [0.9430, 0.9429], [0.01, 0.01])
    use_h95_archives(monkeypatch, two)
    note = " ".join(h_note(tmp_path / "two", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert "The 2 seeds so far average 0.94995 with TTA, -0.00005 from the target" in section
    three = write_h95_archive(tmp_path / "h95-three", [0.9450, 0.9440, 0.9430], [0.01, 1.02, None])
    use_h95_archives(monkeypatch, three)
    note = " ".join(h_note(tmp_path / "three", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert "The target is met: over 3 seeds the mean test accuracy with TTA is 0.95100" in section and "(0.9440" in section
    assert "+0.00100 from 0.950" in section and ": its target of 0.950 with test-time augmentation is met (+0.00100" in note
    low, high = report_h.h95_context()["target"]["interval"]  # the mean's 95% interval, and whether it holds 0.950
    assert (f"without, not at the target); the 95\\% interval of the mean with TTA over the seeds is {low:.4f} to {high:.4f}, "
            "which contains 0.950: the true mean could lie on either side of it; the slowest seed took 63.0 minutes, "
            "within the 70 allowed on this kind of CPU (AMD Zen 4, AVX512-BF16)") in section
    assert "& 1.02 & AMD EPYC" in section and "& -- & AMD EPYC" in section
    assert report_h.h95_context()["target"]["crowded"] == [1]  # 1.02 cores beside seed 1; seed 2 did not record it
    monkeypatch.setattr(report_h, "h_layout", lambda: h_layout)
    assert report_h.h_context({}, tmp_path, None)["h95"] is None  # the run reports and the paper leave H-95 out
    context = report_h.h_context({}, tmp_path, None, with_h95=True)
    h95_seeds = context["h95"]["seeds"]
    groups = report_h.frontier_groups(report_h.h_runs_for({})[0], {"H95": h95_seeds}, [("H-95", h95_seeds)])
    assert groups[0]["label"] == "H-95, test-time augmentation" and groups[0]["alone"] == [True, False, None]
    assert groups[2]["alone"] == [None] * MIN_SEEDS  # H's archive did not record it
    assert "H95" not in [g["label"] for g in groups]  # H's family is drawn as its own groups only
    plot_frontier(groups)  # draws every state
    # a seed that did not measure TTA: a dash in its row and in the mean, no point with TTA, and the target not met
    untested = write_h95_archive(tmp_path / "h95-untested", [0.9450, 0.9440, 0.9430], [0.01] * 3, without_tta=(1,))
    use_h95_archives(monkeypatch, untested)
    note = " ".join(h_note(tmp_path / "untested", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert "1 & 0.9440 & -- & -- & 58.0" in section and "$\\pm$0.0010} & -- & -- & 58.0" in section
    assert "The target is not met: not every seed measured its accuracy with TTA" in section
    context = report_h.h95_context()
    assert context["complete"] == {"test": True, "flip": False, "tta": False}
    seeds = context["seeds"]
    assert report_h.frontier_groups(report_h.h_runs_for({})[0], {}, [("H-95", seeds)])[0]["minutes"] == [58.0, 58.0]


def test_final_runs_trained_again_on_the_other_cpu_are_judged_by_its_limit_in_hs_note(tmp_path, monkeypatch):
    """H-95's latest final runs and H's 16-epoch runs trained again on an Intel Xeon (plan.profiles.OTHER_CPU_ARCHIVES):
    their seeds are rows of the runs' table, last, and each archive is judged by the same goal with that CPU's limit."""
    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {})
    use_h95_archives(monkeypatch, write_h95_archive(tmp_path / "h95", [0.9450, 0.9440, 0.9430], [0.01] * 3))
    intel = {FINAL_PROFILE["H95"]: [write_h95_archive(tmp_path / "h95-intel", [0.9430, 0.9420, 0.9420], [0.01] * 3,
                                                      unit="amx_bf16", train_minutes=29)]}
    monkeypatch.setattr(h_final, "other_cpu_layouts", lambda profile: intel.get(profile, []))
    note = " ".join(h_note(tmp_path / "h95-note", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    table = section[:section.index("\\label{tab:h95}")]
    intel_row = "0 & 0.9430 & 0.9470 & 0.9500 & 29.0 & 34.0 & 0.01 & Intel Xeon"
    assert table.index("0 & 0.9450 & 0.9490 & 0.9520 & 58.0") < table.index(intel_row)
    assert "the latest ones trained again on Intel Xeon with AMX-BF16 last" in table
    assert ("where the target allows 35 minutes a seed. The target is not met there: over 3 seeds the mean test accuracy "
            "with TTA is 0.94933, -0.00067 from 0.950 (0.9423") in section
    assert "the slowest seed took 34.0 minutes, within the 35 allowed there." in section
    assert re.search(r"python benchmarks/model_h.py --model H95 --run-dir \S+/h95-intel convladder report", note)
    abstract = note[:note.index("\\end{abstract}")]
    again = abstract[abstract.index("Repeated on Intel Xeon with AMX-BF16, the same runs reached 0.9493"):]
    assert again.index(": short of its target of 0.950 with test-time augmentation (-0.00067 from it") < 400
    # the seeds of both CPUs together (report.h_final.pooled), in the abstract and in the section
    pooled = report_h.h95_context()["pooled"]
    # the same seeds on both CPUs: each seed's two runs averaged first, the interval over the 3 seeds
    per_seed = [(a["final"]["test_acc_tta"] + b["final"]["test_acc_tta"]) / 2
                for a, b in zip(report_h.h95_context()["seeds"], h_final.other_cpu_runs("H95", FINAL_PROFILE["H95"])[0]["seeds"])]
    assert pooled["seeds"] == [0, 1, 2] and pooled["runs_per_seed"] == 2
    assert pooled["mean"] == pytest.approx(sum(per_seed) / 3) and pooled["interval"] == pytest.approx(mean_interval(per_seed))
    assert f"Each seed's runs on both CPUs averaged, the mean is {pooled['mean']:.5f}" in again
    assert "so they are not 6 independent runs: averaging each seed's 2 runs first" in section
    assert f"{pooled['difference']:+.5f}" in section
    # a seed trained with another profile is not one of "the same runs": left out, and named
    seed2 = intel[FINAL_PROFILE["H95"]][0].root / "H95" / "seed2" / "results.json"
    results = json.loads(seed2.read_text())
    results["config"]["profile"] = EARLIER_PROFILES["H95"][0]
    seed2.write_text(json.dumps(results))
    other = h_final.other_cpu_runs("H95", FINAL_PROFILE["H95"])[0]
    assert [r["config"]["seed"] for r in other["seeds"]] == [0, 1] and other["target"]["verdict"] == "undecided"
    assert other["damaged"] == [f"H95/seed2 (trained with profile {EARLIER_PROFILES['H95'][0]}, not {FINAL_PROFILE['H95']})"]
    # too slow there: over the Intel limit, though within the AMD one
    intel[FINAL_PROFILE["H95"]] = [write_h95_archive(tmp_path / "h95-intel-slow", [0.9450] * 3, [0.01] * 3,
                                                     unit="amx_bf16", train_minutes=40)]
    note = " ".join(h_note(tmp_path / "h95-slow", monkeypatch, h_layout).split())
    assert "The target's accuracy is met there (0.95200 with TTA, +0.00200 from 0.950; 0.9450" in note
    assert "), but not its time: the slowest seed took 45.0 minutes" in note
    assert "the slowest seed took 45.0 minutes, over the 35 allowed there." in note
    # H's 16-epoch runs on the Intel Xeon, judged on H's goal without TTA within 15 minutes
    intel = {H_E16_PROFILE: [write_longer_h_archive(tmp_path / "h-e16-intel", [0.9400, 0.9372, 0.9371], [0.01] * 3,
                                                    epoch_seconds=48.0, unit="amx_bf16")]}
    note = longer_h_note(tmp_path / "h", monkeypatch, [0.9395, 0.9405, 0.9410])
    section = note[note.index("\\paragraph{H for 16 epochs"):note.index("\\caption{Test accuracy against training minutes")]
    assert ("where the goal allows 15 minutes a seed. The goal is not met there: over 3 seeds the mean test accuracy "
            "without TTA is 0.93810, -0.00190 from 0.940 (0.9441") in section
    assert "16 & 0 & 0.9400 & 0.9440 & 0.9460 & 12.8 & 14.8 & 0.01 & Intel Xeon" in section
    assert "the runs trained again on Intel Xeon with AMX-BF16 last" in section
    abstract = note[:note.index("\\end{abstract}")]
    again = abstract[abstract.index("Repeated on Intel Xeon with AMX-BF16, the same runs reached 0.9381"):]
    assert again.index(": short of its goal of 0.940 without test-time augmentation (-0.00190 from it") < 400


def write_longer_h_archive(root, tests: list[float], beside: list[float | None], epoch_seconds: float = 102.0,
                           profile: str = H_E16_PROFILE, unit: str = "avx512_bf16") -> RunLayout:
    """Hand-made runs of H at 16 epochs (results/h-e16, or another attempt's `profile`) as the profile plans them: plain
    test accuracy per seed, TTA 0.006 above it, 16 epochs of `epoch_seconds`, 110 s of evaluation, and the cores other
    processes kept busy."""
    for seed, (test, cores) in enumerate(zip(tests, beside)):
        results = hand_made("H", "H", seed, val=test, epochs=16, profile=profile, train_split="train+val")
        results["config"] = plan_config(profile, "H", seed=seed)[0].to_dict()
        results["history"]["epoch_seconds"] = [epoch_seconds] * 16
        results["data"]["sizes"] = {"train": 50_000, "val": 8_000, "test": 10_000}
        results["final"].update(test_acc_flip=test + 0.004, test_acc_tta=test + 0.006)
        results.update(train_seconds=16 * epoch_seconds, evaluation_seconds=110, wall_seconds=16 * epoch_seconds + 118,
                       beside_cores=cores)
        results["environment"].update(cpu="Intel Xeon" if unit == "amx_bf16" else "AMD EPYC", cpu_bf16_unit=unit)
        folder = root / "H" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(results))
    return RunLayout(root)


def longer_h_note(tmp_path, monkeypatch, tests: list[float], epoch_seconds: float = 102.0, base: float = 0.937,
                  later: dict[str, RunLayout] | None = None) -> str:
    """H's note, whitespace collapsed, with H's 13-epoch runs (3 seeds, plain mean `base`, as the h profile plans them,
    seed 0's epochs 110 s, the others' 100 s, evaluation 90 s), its 16-epoch runs of plain accuracy `tests` and
    their tuning run, and H's tuning run at 10 epochs; `later`: the archives of later attempts, by profile."""
    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {}, test=base)
    for folder in sorted(h_layout.run("H").glob("seed*")):
        results = json.loads((folder / "results.json").read_text())
        results["config"] = plan_config(H_PROFILE, "H", seed=results["config"]["seed"])[0].to_dict()
        results["history"]["epoch_seconds"] = [110.0 if results["config"]["seed"] == 0 else 100.0] * 13
        (folder / "results.json").write_text(json.dumps(results))
    longer = write_longer_h_archive(tmp_path / "h-e16", tests, [0.01, 0.01, 0.5][:len(tests)], epoch_seconds)
    layouts = {H_E16_PROFILE: longer, **(later or {})}
    monkeypatch.setattr(h_final, "final_layout", lambda profile: layouts.get(profile, RunLayout(tmp_path / "none")))
    if not (report_h.tuning_root() / "e10").exists():  # one tuning archive per test
        write_tuning_run("e10", "H", 0.9300, 0.9370)
        write_tuning_run("h-e16", "H", 0.9350, 0.9420, epochs=16)
    monkeypatch.setattr(report_h, "h_layout", lambda: h_layout)
    return " ".join(h_note(tmp_path / "note", monkeypatch, h_layout).split())


@pytest.mark.parametrize("tests, epoch_seconds, words, abstract", [
    ([0.9395, 0.9405, 0.9410], 102.0,
     "The goal is met: over 3 seeds the mean test accuracy without TTA is 0.94033, +0.00033 from 0.940",
     ": its goal of 0.940 without test-time augmentation is met (+0.00033 from it; the 95\\% interval of the mean "
     "contains 0.940), each seed within its time limit."),
    ([0.9380, 0.9390, 0.9395], 102.0,
     "The goal is not met: over 3 seeds the mean test accuracy without TTA is 0.93883, -0.00117 from 0.940",
     ": short of its goal of 0.940 without test-time augmentation (-0.00117 from it; the 95\\% interval of the "
     "mean contains 0.940)."),
    ([0.93996] * 3, 102.0, "The goal is not met: over 3 seeds the mean test accuracy without TTA is 0.93996, -0.00004",
     "(-0.00004 from it)."),
    ([0.9410] * 3, 115.0, "without TTA over the seeds is 0.9410 to 0.9410), but not its time: the slowest seed took 32.6 "
                          "minutes, over the 30 allowed on this kind of CPU (AMD Zen 4, AVX512-BF16); seed 2 ran beside "
                          "other work, which may have slowed it.",
     "its goal's accuracy is met without test-time augmentation, but a seed took longer than its time limit."),
    ([0.9420], 102.0, "The goal is not judged yet: it needs 3 seeds, and 1 of them has been trained "
                      "(Table~\\ref{tab:h-longer}); the one seed is a single run, 0.9420 without TTA in 29.2 minutes.",
     "over 1 seed, too few to judge its goal of 0.940 without test-time augmentation."),
], ids=["met", "short", "a hair short", "too slow", "one seed"])
def test_hs_longer_runs_are_judged_without_tta_in_hs_note(tests, epoch_seconds, words, abstract, tmp_path, monkeypatch):
    """H at 16 epochs (results/h-e16), issue 28's goal for H: 0.940 without TTA within 30 AMD minutes; reported in H's
    note beside the 13-epoch runs (judged on the same goal), with the projection from their epochs, the setting changed,
    the tuning run at 16 epochs, and that the longer runs are a second look at the test set."""
    note = longer_h_note(tmp_path, monkeypatch, tests, epoch_seconds)
    section = note[note.index("\\paragraph{H for 16 epochs"):note.index("\\caption{Test accuracy against training minutes")]
    assert "The runs above (13 epochs, 3 seeds) reach 0.93700 without TTA, -0.00300 from it. H was therefore trained" in section
    assert "changing epochs from 13 to 16 and no other setting, though not with the same version" not in section
    assert "changing epochs from 13 to 16 and no other setting." in section
    # epochs of 100 and 110 s, evaluation 1.5 minutes: 16 x 1.67 + 1.5 = 28.2 and 16 x 1.83 + 1.5 = 30.8
    assert ("took 1.67--1.83 minutes each and their final evaluation (test accuracy plain, flipped and with TTA, and "
            "training-split accuracy) up to 1.5, which projects 28.2 minutes a seed for 16 epochs at their fastest and "
            "30.8 at their slowest: only the first within the 30 minutes allowed on their CPU kind.") in section
    assert "they are a second look at the test set, so the goal met here would be weaker evidence" in section
    tuned = json.loads((report_h.tuning_root() / "h-e16" / "seed0" / "results.json").read_text())["final"]["val_acc"]
    error = (tuned * (1 - tuned) / 20) ** 0.5  # hand_made's validation split: 20 images
    assert (f"16 epochs gave {tuned:.4f} validation accuracy without TTA (0.9420 with it), a binomial standard error of "
            f"{error:.4f} on its 20 images.") in section
    assert "(For comparison, the tuning run of the earlier runs: 10 epochs," in section
    assert words in section and abstract in note
    assert ("16 & 0 & 0.9395 & 0.9435 & 0.9455 & 27.2 & 29.2 & 0.01 & AMD EPYC" in section) == (tests[0] == 0.9395)
    # H's own tuning paragraph keeps the run that chose its 13 epochs, not the one at 16
    main = note[note.index("\\label{sec:h}"):note.index("\\paragraph{H for 16 epochs")]
    assert "10 epochs on" in main and "16 epochs on" not in main
    assert "H's 16-epoch runs were planned after its 13-epoch runs' test accuracy was known." in note
    assert "``beside'' columns of Tables~\\ref{tab:h-longer} and~\\ref{tab:h95} show" not in note  # no H-95 runs here
    assert "``beside'' column of Table~\\ref{tab:h-longer} shows for the runs that recorded it." in note


def test_hs_longer_runs_in_other_states(tmp_path, monkeypatch):
    """Before any seed (a tuning run only): said as planned, no commit, no verdict; the 13-epoch runs already at the
    goal: not 'therefore'; the run reports and the paper leave the longer runs out; a note of the longer runs'
    own profile does not compare them with themselves; the frontier draws both."""
    note = longer_h_note(tmp_path / "none", monkeypatch, [])
    section = note[note.index("\\paragraph{H for 16 epochs"):note.index("\\caption{Test accuracy against training minutes")]
    assert "H is therefore to be trained for 16 epochs (\\texttt{" in section and "from commit" not in section
    assert "No seed of these runs has finished yet (\\texttt{python benchmarks/model\\_h.py -{}-profile h-e16}" in section
    assert "tab:h-longer" not in note and "The goal is" not in section
    assert "Trained for 16 epochs" not in note[:note.index("\\end{abstract}")]
    note = longer_h_note(tmp_path / "met", monkeypatch, [0.9420] * 3, base=0.9425)
    assert "reach 0.94250 without TTA: they meet it already. H is also trained for 16 epochs" in note
    context = report_h.h_context({}, tmp_path, None, with_h95=True)
    assert context["longer"]["target"]["tta"] is False and context["longer"]["base"]["target"]["verdict"] == "met"
    assert report_h.h_context({}, tmp_path, None)["longer"] is None  # the run reports and the paper leave it out
    assert report_h.h_context({"H": context["longer"]["seeds"]}, tmp_path, None, with_h95=True)["longer"] is None
    groups = report_h.frontier_groups(report_h.h_runs_for({})[0], {}, [], [("H (16 epochs)", context["longer"]["seeds"])])
    assert [g["label"] for g in groups][:4] == ["H (16 epochs), test-time augmentation", "H (16 epochs)",
                                                "H (13 epochs), test-time augmentation", "H (13 epochs)"]


def write_b512_tuning_run() -> dict:
    """The batch-512 tuning run (results/h-tuning/h-e16-b512) with the h-b512 profile's settings on the 42,000 / 8,000
    split: hand_made's validation from 0.9401, 0.9451 with TTA."""
    write_tuning_run("h-e16-b512", "H", 0.9401, 0.9451, epochs=16)
    tuning_file = report_h.tuning_root() / "h-e16-b512" / "seed0" / "results.json"
    tuned = json.loads(tuning_file.read_text())
    tuned["config"] = plan_config(H_B512_PROFILE, "H", train_split="train")[0].to_dict()
    tuning_file.write_text(json.dumps(tuned))
    return tuned


def test_a_second_attempt_at_hs_milestone_is_reported_after_the_first(tmp_path, monkeypatch):
    """H at 16 epochs and batch 512 (results/h-b512) after the 16-epoch runs at batch 1,024 fell short: both attempts in
    H's note, each judged, the second with the settings changed from the first, its own tuning run (the one with its
    settings) beside the first's, a third look at the test set, one table naming each attempt by its batch, both on the
    frontier, and the abstract's sentence for each."""
    tuned = write_b512_tuning_run()
    second = write_longer_h_archive(tmp_path / "h-b512", [0.9405, 0.9410, 0.9400], [0.01, 0.01, 0.01],
                                    profile=H_B512_PROFILE)
    note = longer_h_note(tmp_path, monkeypatch, [0.9380, 0.9390, 0.9395], later={H_B512_PROFILE: second})
    section = note[note.index("\\paragraph{H for 16 epochs"):note.index("\\caption{Test accuracy against training minutes")]
    assert "H was therefore trained for 16 epochs" in section
    assert ("The goal is not met: over 3 seeds the mean test accuracy without TTA is 0.93883, -0.00117 from 0.940"
            in section)
    second_part = section[section.index("As those runs fell short, H was trained again for 16 epochs (\\texttt{"):]
    assert "changing batch size from 1024 to 512, lr from 1.5 to 0.75 and no other setting of the runs before them." \
        in second_part
    assert "a third look at the test set, weaker evidence still." in second_part
    first_tuned = json.loads((report_h.tuning_root() / "h-e16" / "seed0" / "results.json").read_text())["final"]["val_acc"]
    assert f"16 epochs gave {tuned['final']['val_acc']:.4f} validation accuracy without TTA (0.9451 with it)" in second_part
    difference = tuned["final"]["val_acc"] - first_tuned  # two single runs: a difference, not a gain
    assert (f"(For comparison, the tuning run of the runs before them: 16 epochs, {first_tuned:.4f}: a difference of "
            f"{difference:+.4f} between two single runs, not a measured gain") in second_part
    assert ("The goal is met: over 3 seeds the mean test accuracy without TTA is 0.94050, +0.00050 from 0.940"
            in second_part)
    first_part = section[:section.index("As those runs fell short")]
    assert "0.9451" not in first_part and f"16 epochs gave {first_tuned:.4f} validation accuracy" in first_part
    assert "batch size & seed & test" in section and "1024 & 0 & 0.9380" in section and "512 & 0 & 0.9405" in section
    abstract = note[:note.index("\\end{abstract}")]
    assert "Trained for 16 epochs (planned once those runs' test accuracy was known: a second look" in abstract
    assert ("Trained again with batch size 512, lr 0.75 (a third look at the test set), H reaches "
            "0.9405\\,{\\scriptsize$\\pm$0.0005} test accuracy without test-time augmentation") in abstract
    assert "and each later attempt after the test accuracy of those before it." in note
    context = report_h.h_context({}, tmp_path, None, with_h95=True)
    assert [a["profile"] for a in context["longer"]["attempts"]] == [H_E16_PROFILE, H_B512_PROFILE]
    assert context["longer"]["named_by"] == "batch_size"
    groups = report_h.frontier_groups(report_h.h_runs_for({})[0], {}, [],
                                      [(report_h.attempt_label(a, context["config"], "batch_size"), a["seeds"])
                                       for a in context["longer"]["attempts"]])
    assert [g["label"] for g in groups][:4] == ["H (16 epochs), test-time augmentation", "H (16 epochs)",
                                                "H (16 epochs, batch size 512), test-time augmentation",
                                                "H (16 epochs, batch size 512)"]


def test_a_later_attempt_with_a_tuning_run_but_no_seeds_is_planned_and_keeps_its_tuning_run(tmp_path, monkeypatch):
    """The batch-512 tuning run before any seed of h-b512 (a clean checkout before its runs are committed): said under a
    planned second attempt, not as a second tuning run of the first."""
    tuned = write_b512_tuning_run()
    note = longer_h_note(tmp_path, monkeypatch, [0.9380, 0.9390, 0.9395])
    section = note[note.index("\\paragraph{H for 16 epochs"):note.index("\\caption{Test accuracy against training minutes")]
    first, second = section.split("As those runs fell short, H is to be trained again for 16 epochs (\\texttt{")
    assert "0.9451" not in first and "16 epochs gave" in first
    assert f"16 epochs gave {tuned['final']['val_acc']:.4f} validation accuracy without TTA (0.9451 with it)" in second
    assert "No seed of these runs has finished yet (\\texttt{python benchmarks/model\\_h.py -{}-profile h-b512}" in second
    assert "512 &" not in section  # no row of an attempt without seeds


def test_the_goal_without_tta_judges_plain_accuracy(tmp_path):
    runs = report_h.collect_runs(write_h_archive(tmp_path / "plain", 3, {}, test=0.9405).root)["H"]  # TTA 0.005 above
    accuracy, limits, tta = h_targets.goal("H", h_targets.PLAIN_GOAL)
    assert (accuracy, limits, tta) == (h_targets.TARGET_ACC, h_targets.TARGET_MINUTES, False)
    assert h_targets.target_verdict(runs, accuracy, limits, tta)["verdict"] == "met"
    assert h_targets.target_verdict(runs, accuracy, limits, tta)["difference"] == pytest.approx(0.0005)
    for run in runs:  # TTA is not needed for a goal without it; 0.001 lower misses it
        run["final"].update(test_acc_tta=None, test_acc=run["final"]["test_acc"] - 0.001)
    verdict = h_targets.target_verdict(runs, accuracy, limits, tta)
    assert verdict["verdict"] == "short" and verdict["difference"] == pytest.approx(-0.0005)


@pytest.mark.parametrize("tests, without_tta, units, words", [
    ([0.9440, 0.9410], (), (), "15 epochs, 2 seeds from commit abc1234) reached 0.9495\\,{\\scriptsize$\\pm$0.0021} "
                               "test accuracy with TTA (0.9425\\,{\\scriptsize$\\pm$0.0021} without), too few seeds to judge"),
    ([0.9440, 0.9410, 0.9400], (1,), (), "reached 0.9417\\,{\\scriptsize$\\pm$0.0021} test accuracy without TTA (not every "
                                         "seed measured it with TTA): short of the target; the slowest"),
    ([0.9450, 0.9440, 0.9430], (), (), "without): the target met; the slowest seed took 63.0 minutes."),
    ([0.9450, 0.9440, 0.9430], (), ("amx_bf16",), "without): the target's accuracy, its time not judged (the seeds ran on no "
                                                  "one CPU kind with a limit); the slowest"),
], ids=["two seeds", "a seed without TTA", "met", "two CPU kinds"])
def test_each_verdict_on_h95s_earlier_final_runs_is_worded(tests, without_tta, units, words, tmp_path, monkeypatch):
    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {})
    first = write_h95_archive(tmp_path / "h95-first", tests, [0.01] * len(tests), without_tta=without_tta, epochs=15)
    for unit, folder in zip(units, sorted(first.run("H95").glob("seed*"))):  # a seed on another CPU kind
        results = json.loads((folder / "results.json").read_text())
        results["environment"]["cpu_bf16_unit"] = unit
        (folder / "results.json").write_text(json.dumps(results))
    use_h95_archives(monkeypatch, RunLayout(tmp_path / "h95-e16-none"), first)
    note = " ".join(h_note(tmp_path / "note", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert words in section
    assert "The latest final runs change one setting of the earlier ones: epochs from 15 to 16;" in section


def test_h95s_earlier_final_runs_are_reported_beside_the_latest(tmp_path, monkeypatch):
    """H-95's first final runs (15 epochs, results/h95) fell short; the latest (16 epochs) are judged on their own, and
    the note says both, the projection that chose 16 and that the latest are a second look at the test set."""
    h_layout = write_h_archive(tmp_path / "h", MIN_SEEDS, {})
    first = write_h95_archive(tmp_path / "h95-first", [0.9440, 0.9410, 0.9400], [0.01] * 3, epochs=15)
    use_h95_archives(monkeypatch, RunLayout(tmp_path / "h95-e16-none"), first)
    note = " ".join(h_note(tmp_path / "none-yet", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert "for 16 epochs (airbench95 trains for 15; H-95's first final runs trained for 15, as below)" in section
    assert "3 seeds from commit abc1234) reached 0.9487" in section
    assert ": short of the target, -0.00133 from it; the 95\\% interval of the mean with TTA over the seeds is" in section
    assert "; the slowest seed took 63.0 minutes." in section
    # 58 minutes in 15 equal epochs: 3.87 each; 16 of them and the 5 minutes of evaluation: 66.9, within 70
    assert ("change one setting of the earlier ones: epochs from 15 to 16; the earlier seeds' epochs took 3.87--3.87 "
            "minutes each and their final evaluation up to 5.0, which with the rest of a run projects 66.9 minutes a seed "
            "at the slowest for 16 epochs, within the 70 allowed") in section
    assert "a second look at the test set" in section
    assert "No final run of H-95 at 16 epochs has finished yet" in section and "15 & 2 & 0.9400 & 0.9440 & 0.9470" in section
    assert ("first trained for 15 epochs, reached 0.9487" in note and "over 3 seeds: short of its target of 0.950 with "
            "test-time augmentation (-0.00133 from it" in note)  # the abstract
    latest = write_h95_archive(tmp_path / "h95-latest", [0.9445], [0.01])
    use_h95_archives(monkeypatch, latest, first)
    note = " ".join(h_note(tmp_path / "one", monkeypatch, h_layout).split())
    section = note[note.index("\\label{sec:h95}"):note.index("\\label{sec:limitations}")]
    assert "16 & 0 & 0.9445 & 0.9485 & 0.9515 & 58.0 & 63.0" in section and "15 & mean & " in section
    assert "The target is not judged yet on the latest final runs: it needs 3 seeds, and 1 has been trained." in section
    assert ("Trained for 16 epochs (planned once that test accuracy was known: a second look at the test set), it reaches "
            "0.9515 test accuracy") in note and "so far, too few to judge" in note
    monkeypatch.setattr(report_h, "h_layout", lambda: h_layout)
    context = report_h.h_context({}, tmp_path, None, with_h95=True)
    assert context["h95"]["target"]["verdict"] == "undecided" and context["h95"]["earlier"][0]["target"]["verdict"] == "short"
    h95 = [("H-95 (16 epochs)", context["h95"]["seeds"]), ("H-95 (15 epochs)", context["h95"]["earlier"][0]["seeds"])]
    groups = report_h.frontier_groups(report_h.h_runs_for({})[0], {}, h95)
    assert [g["label"] for g in groups[:4]] == ["H-95 (16 epochs), test-time augmentation", "H-95 (16 epochs)",
                                                "H-95 (15 epochs), test-time augmentation", "H-95 (15 epochs)"]
    assert len({g["color"] for g in groups[:4]}) == 4
    # three seeds of the latest: judged on their own, the earlier attempt said beside the verdict
    latest = write_h95_archive(tmp_path / "h95-latest3", [0.9445, 0.9440, 0.9435], [0.01] * 3)
    use_h95_archives(monkeypatch, latest, first)
    note = " ".join(h_note(tmp_path / "three", monkeypatch, h_layout).split())
    assert "The target is met: over 3 seeds the mean test accuracy with TTA is 0.95100" in note and "+0.00100 from 0.950" in note
    assert ("These are H-95's final runs after 1 earlier attempt, planned once the earlier test accuracy was known; the "
            "verdict is theirs alone, and the earlier attempt's above stands beside it.") in note


def test_the_reproduction_section_never_offers_a_dirty_build_as_a_checkout(tmp_path):
    provenance = dict(commits=["abc1234"], code_versions=["v1"], dirty=False, built_code_current=True,
                      checksum="0" * 64)

    def text(built_from: str) -> str:
        tex = render_section("reproduce", profile="study", experiment_archives=[],
                             provenance={**provenance, "built_from": built_from})
        return " ".join(tex.split())

    clean, dirty = text("def5678"), text("def5678-dirty")
    assert "built from commit def5678, whose training code has the same version" in clean
    assert "uncommitted changes on top of commit def5678" in dirty and "def5678-dirty" not in dirty
    assert "checking it out" in clean and "checking it out" not in dirty
