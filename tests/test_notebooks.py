"""Every notebook executed with papermill on the smoke profile, ending in the smoke PDF."""

import json
import re
import shutil
import subprocess

import papermill as pm
import pytest

from convladder.pipeline import execute, plan
from convladder.plan.profiles import ladder
from convladder.results.layout import RunLayout, notebooks_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(full_size_cifar, tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    pm.execute_notebook(
        str(notebooks_dir() / "run_all.ipynb"), str(out / "run_all.ipynb"),
        parameters={"profile": "smoke", "data_dir": str(full_size_cifar), "run_dir": str(out / "runs")},
        progress_bar=False,
    )
    return out


def test_run_all_trains_every_model_and_keeps_one_executed_copy_each(smoke_run):
    for run in ladder("smoke"):
        for seed in run.seeds:
            results = json.loads((smoke_run / "runs" / run.name / f"seed{seed}" / "results.json").read_text())
            assert results["history"]["epoch"][-1] == run.epochs and results["config"]["seed"] == seed
        assert (smoke_run / "runs" / run.name / "train.ipynb").exists()
    for notebook in ("00_data", "20_other_sizes", "30_errors", "40_diagnosis", "90_report"):
        assert (smoke_run / "runs" / f"{notebook}.ipynb").exists()
    for gap_run in ("GAP+", "GAP-fast"):  # the study's GAP, and the GAP layers trained on several sizes
        other = json.loads((smoke_run / "runs" / "other_sizes" / gap_run / "other_sizes.json").read_text())
        assert {"32x32", "32x20", "32x18", "16x16", "64x64"} <= set(other["curve"][0]["accuracy"])
    errors = json.loads((smoke_run / "runs" / "errors" / "errors.json").read_text())
    assert set(errors["runs"]) == {"G", "GAP+"}
    assert errors["test_images"] == results["data"]["sizes"]["test"]  # every test image, as the accuracy table
    diagnosis = json.loads((smoke_run / "runs" / "diagnosis" / "diagnosis.json").read_text())
    assert set(diagnosis["gradients"]) == {"C", "D"} and len(diagnosis["variants"]) >= 4


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) not installed")
def test_smoke_pdf_names_every_model_and_has_the_accuracy_table(smoke_run):
    pdf = smoke_run / "runs" / "report" / "report.pdf"
    assert pdf.exists()
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    text = text.replace("\u2019", "'")  # LaTeX's typographic apostrophe, as pdftotext gives it
    for name in ("Model A", "Model B", "Model C", "Model D", "Model E", "Model F", "Model G", "GAP", "GAP+", "GAP-fast"):
        assert name in text, name
    assert "Accuracy of every model" in text
    assert "ours" in text and "study" in text
    # the run report: a short profile's tables and figures, pointing to the study paper for the reproduction
    assert "report/study.pdf" in text and "Conclusions" not in text
    for section in ("What was trained", "Accuracy", "The study's questions", "Diagnoses", "The double softmax",
                    "Model E's variants", "Gradient norms of C and D", "Parameter counts", "Beyond the study",
                    "Image size", "Training cost", "Does bfloat16 keep the accuracy", "A fast recipe for the GAP layers",
                    "Where the models go wrong", "How to reproduce this report", "Every run: layers",
                    "Training time of every run"):
        assert section in text, section
    tex = (pdf.parent / "report.tex").read_text()
    main = tex[:tex.index("\\appendix")]  # every figure of the main matter is cited in its text (the mistakes' too)
    assert "fig:mistakes" in main and [f for f in re.findall(r"\\label\{(fig:[^}]*)\}", main) if f"\\ref{{{f}}}" not in tex] == []
    log = (pdf.parent / "report.log").read_text(errors="replace")
    assert "undefined references" not in log and "Citation" not in log  # every \\ref and \\cite resolves
    assert "smoke" in text and "Not trained for this report" not in text
    for figure in ("samples.png", "history_GAPplus.pdf", "confusion_G.pdf", "mistakes.pdf", "size_curve.pdf", "e_variants.pdf",
                   "gradient_norms.pdf", "double_softmax.pdf"):
        assert (smoke_run / "runs" / "figures" / figure).exists(), figure


def test_run_all_shows_progress_and_keeps_html_copies(smoke_run):
    nb = json.loads((smoke_run / "run_all.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    steps = len(ladder("smoke")) + 5  # data, the runs, other sizes, errors, diagnosis, report
    assert f"[1/{steps}] data facts" in printed and f"[{steps}/{steps}] report: done" in printed
    assert "epoch 1" in printed and "val_acc=" in printed  # the training's own progress, streamed
    assert "report: " in printed and "report.pdf (total" in printed
    html = smoke_run / "runs" / "html"
    for name in ("00_data", "10_train_A", "10_train_GAP+", "20_other_sizes", "30_errors", "40_diagnosis", "90_report"):
        assert (html / f"{name}.html").stat().st_size > 1000, name


def test_run_all_again_reuses_finished_runs_and_force_retrains(smoke_run, full_size_cifar):
    stamps = {run.name: (smoke_run / "runs" / run.name / "seed0" / "results.json").stat().st_mtime_ns for run in ladder("smoke")}
    diagnosis = smoke_run / "runs" / "diagnosis" / "diagnosis.json"
    diagnosis_stamp = diagnosis.stat().st_mtime_ns
    parameters = {"profile": "smoke", "data_dir": str(full_size_cifar), "run_dir": str(smoke_run / "runs")}
    again = pm.execute_notebook(str(notebooks_dir() / "run_all.ipynb"), str(smoke_run / "again.ipynb"),
                                parameters=parameters, progress_bar=False)
    printed = "".join(o.get("text", "") for c in again.cells for o in c.get("outputs", []))
    assert printed.count("reused") == len(stamps)
    for name, stamp in stamps.items():
        assert (smoke_run / "runs" / name / "seed0" / "results.json").stat().st_mtime_ns == stamp
    assert diagnosis.stat().st_mtime_ns == diagnosis_stamp  # the diagnosis is reused too
    # force: the finished run of A planned again from epoch 0 (the data notebook and the report around it, which the
    # run above executed, are not executed again), and its training notebook trains it again
    layout = RunLayout(smoke_run / "runs")
    steps = plan("smoke", layout, str(full_size_cifar), models=["A"], force=True)
    training = {step.parameters["name"]: step for step in steps if step.notebook == "10_train"}
    assert set(training) == {run.name for run in ladder("smoke", ["A"])}  # every run of model A, finished or not
    assert all(step.parameters["restart"] is True for step in training.values())
    execute(training["A"], layout, html=False)
    assert (smoke_run / "runs" / "A" / "seed0" / "results.json").stat().st_mtime_ns != stamps["A"]
    assert (smoke_run / "runs" / "B" / "seed0" / "results.json").stat().st_mtime_ns == stamps["B"]


def test_train_notebook_rejects_bad_parameters_in_its_first_failing_cell(full_size_cifar, tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(notebooks_dir() / "10_train.ipynb"), str(tmp_path / "bad.ipynb"),
            parameters={"model": "Z", "profile": "smoke", "data_dir": str(full_size_cifar), "run_dir": str(tmp_path / "r")},
            progress_bar=False,
        )
    assert "unknown model 'Z'" in str(err.value)
    assert not (tmp_path / "r").exists()  # nothing was trained


def test_every_notebook_is_paired_with_its_script_and_they_agree():
    import jupytext

    scripts = sorted(notebooks_dir().glob("*.py"))
    assert {p.stem for p in scripts} == {p.stem for p in notebooks_dir().glob("*.ipynb")}
    for script in scripts:
        text, notebook = jupytext.read(script), jupytext.read(script.with_suffix(".ipynb"))
        assert notebook.metadata["jupytext"]["formats"] == "ipynb,py:percent", script.name
        assert [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in text.cells] == [
            (c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in notebook.cells], script.name


def test_every_parameter_has_a_type_and_a_comment():
    for path in sorted(notebooks_dir().glob("*.ipynb")):
        parameters = pm.inspect_notebook(str(path))
        assert parameters, path.name
        for name, info in parameters.items():
            assert info["inferred_type_name"] != "None", (path.name, name)
            assert info["help"].strip(), (path.name, name)


def test_notebooks_are_committed_without_outputs():
    for path in notebooks_dir().glob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
        params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1, f"{path.name} needs exactly one parameters cell"


def test_saving_in_jupyterlab_updates_the_paired_script(tmp_path):
    """A save through the contents manager JupyterLab uses (with jupytext's pairing) writes the .py too."""
    import asyncio

    jupytext_cm = pytest.importorskip("jupytext.async_contentsmanager")
    largefile = pytest.importorskip("jupyter_server.services.contents.largefilemanager")
    for suffix in (".py", ".ipynb"):
        shutil.copyfile(notebooks_dir() / f"30_errors{suffix}", tmp_path / f"30_errors{suffix}")
    manager = jupytext_cm.build_async_jupytext_contents_manager_class(largefile.AsyncLargeFileManager)(
        root_dir=str(tmp_path))

    async def edit_and_save():
        model = await manager.get("30_errors.ipynb")
        model["content"].cells[-1].source += "\nprint('edited in JupyterLab')"
        await manager.save({"type": "notebook", "content": model["content"]}, "30_errors.ipynb")

    asyncio.run(edit_and_save())
    assert "print('edited in JupyterLab')" in (tmp_path / "30_errors.py").read_text()
