"""The report's LaTeX: a Jinja2 environment with LaTeX-safe delimiters, and the filters the
template words numbers with. The template (`report/report.tex.j2`, with the sections it includes
from `report/sections/` and the macros of `report/macros.tex.j2`) holds every sentence and every
table's markup; Python (convladder.report) hands it numbers, verdicts and recorded strings.

Delimiters: `\\VAR{x}` prints a value, `\\BLOCK{for ...}` / `\\BLOCK{endfor}` are statements, and
`\\#{...}` a comment, so that LaTeX's own braces and percent signs stay untouched.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from convladder.results import summarize


def tex_escape(text) -> str:
    """Text with LaTeX's special characters escaped."""
    replacements = {
        "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    }
    return "".join(replacements.get(ch, ch) for ch in str(text))


def fmt_acc(value: float | None) -> str:
    return "--" if value is None else f"{value:.3f}"


def fmt_ms(values: list[float], digits: int = 3) -> str:
    """Mean $\\pm$ standard deviation over seeds; the single value for one seed."""
    mean, std = summarize(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}\\,{{\\scriptsize$\\pm${std:.{digits}f}}}"


def fmt_signed(value: float | None) -> str:
    """A difference with its sign; one that rounds to zero has none ("0.000", not "-0.000")."""
    if value is None:
        return "--"
    return "0.000" if round(value, 3) == 0 else f"{value:+.3f}"


def fmt_seconds(seconds: float) -> str:
    """A duration: seconds below two minutes, minutes below five hours, else hours."""
    if seconds < 10:
        return f"{seconds:.1f}\\,s"
    if seconds < 120:
        return f"{seconds:.0f}\\,s"
    return f"{seconds / 60:.1f}\\,min" if seconds < 5 * 3600 else f"{seconds / 3600:.1f}\\,h"


def fmt_percent(fraction: float, digits: int = 0) -> str:
    return f"{100 * fraction:.{digits}f}\\%"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def and_list(items) -> str:
    """"X", "X and Y", "X, Y and Z"."""
    items = [str(item) for item in items]
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        trim_blocks=True, lstrip_blocks=True, autoescape=False, undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(e=tex_escape, acc=fmt_acc, ms=fmt_ms, signed=fmt_signed, plural=plural,
                       thousands=lambda n: f"{n:,}", seconds=fmt_seconds, percent=fmt_percent,
                       and_list=and_list)
    return env


def render(template: Path, context: dict) -> str:
    """The template at `template`, filled in with `context`."""
    return environment(template.parent).get_template(template.name).render(**context)
