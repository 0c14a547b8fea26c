"""The study paper, compiled from the archive as `convladder report --profile study --export` builds it on a fresh
clone, keeps to its length (issue 25): 12 to 16 pages of main matter (the references included), at most 6 pages of
appendix; a page the two share counts for both."""

from __future__ import annotations

import re
import shutil

import pytest

from convladder.report.build import compile_pdf, report_context, write_tex
from convladder.results.layout import RunLayout, benchmark_json, report_template, results_archive
from convladder.results.records import collect_runs

STUDY = results_archive("study")
pytestmark = [
    pytest.mark.slow,  # draws every figure and compiles the paper (about 15 s)
    pytest.mark.skipif(not (STUDY / "A").exists(), reason="the study profile's archive (results/study) is absent"),
    pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdflatex") is None, reason="no LaTeX"),
]


def label_page(aux: str, label: str) -> int:
    """The page LaTeX put a label on, from its .aux file (hyperref's five-field \\newlabel)."""
    return int(re.search(r"\\newlabel\{" + re.escape(label) + r"\}\{\{[^}]*\}\{(\d+)\}", aux).group(1))


def test_the_study_paper_keeps_to_16_pages_before_its_appendix_and_6_of_appendix(tmp_path):
    class Layout(RunLayout):  # the archive's runs and analyses, the generated files elsewhere
        report_dir = tmp_path / "report"
        figures_dir = tmp_path / "figures"

    layout = Layout(STUDY)
    damaged: list[str] = []
    # the archived epoch-time benchmark, as an export from a clean checkout reads it (report.setup.benchmark_source)
    context = report_context(layout, collect_runs(STUDY, damaged), damaged,
                             benchmark=results_archive("benchmark") / benchmark_json().name)
    pdf = compile_pdf(write_tex(report_template(), context, False, layout.report_dir))
    tex = (pdf.parent / "report.tex").read_text()
    # how to reproduce it is a section of the paper (its outline's 'Reproduce'), before the references, not the appendix
    assert tex.index("\\section{How to reproduce this paper}") < tex.index("\\begin{thebibliography}") < tex.index("\\appendix")
    assert tex.index("\\appendix") < tex.index("\\label{app:time}")
    aux = (pdf.parent / "report.aux").read_text()
    pages = int(re.search(r"Output written on report\.pdf \((\d+) pages?",
                          " ".join((pdf.parent / "report.log").read_text(errors="replace").split())).group(1))
    main = label_page(aux, "main-end")  # the page of the references' last line, where the main matter ends
    appendix = label_page(aux, "app:time")  # the page of the appendix's first section
    assert 12 <= main <= 16, main
    assert pages - appendix + 1 <= 6, (appendix, pages)
