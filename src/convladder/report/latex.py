"""The report's LaTeX: a Jinja2 environment with LaTeX-safe delimiters, and the filters the
template words numbers with. The templates (`report/report.tex.j2`, `report/run.tex.j2`, `report/h.tex.j2`, with
what they include from `report/sections/`, `report/floats/` and the macros of `report/macros.tex.j2`) hold every
sentence and every table's markup; Python (convladder.report.build) hands them numbers, verdicts and recorded strings.

Delimiters: `\\VAR{x}` prints a value, `\\BLOCK{for ...}` / `\\BLOCK{endfor}` are statements, and
`\\#{...}` a comment, so that LaTeX's own braces and percent signs stay untouched.

Everything a template prints is LaTeX-escaped (autoescape with a LaTeX escape as `finalize`), unless it
is `Markup`: the template's own text, its macros, and what the filters below build from numbers. A
name, CPU, checksum or class name read from a file can therefore never become a LaTeX command (such as
`\\input{/etc/passwd}`, which would print a local file into the PDF).
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
from markupsafe import Markup

from convladder.results.records import summarize
from convladder.tools.hardware import plain_cpu_name

_REPLACEMENTS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}",
}


def tex_escape(text) -> Markup:
    """Text with LaTeX's special characters escaped (Markup: it is not escaped again); Markup as it is.
    Control characters (a newline ends a paragraph, a NUL stops pdflatex) become spaces."""
    if isinstance(text, Markup):
        return text
    return Markup("".join(_REPLACEMENTS.get(ch, " " if ord(ch) < 32 or ord(ch) == 127 else ch) for ch in str(text)))


def _finalize(value):
    """What `\\VAR{}` prints: numbers as they are, Markup as it is, everything else escaped."""
    if isinstance(value, Markup) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return tex_escape(value)


_GRAPHIC_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")


def graphic(name) -> Markup:
    """A figure's file name for \\includegraphics, as it is (LaTeX takes '_' there): only letters, digits
    and '_.+-', so that no name can carry LaTeX; ValueError for any other."""
    if not _GRAPHIC_NAME.fullmatch(str(name)):
        raise ValueError(f"figure file name {str(name)!r} has characters the report does not put into LaTeX")
    return Markup(str(name))


def tex_join(items, separator: str = "") -> Markup:
    """Jinja's `join` for LaTeX: each item escaped unless it is Markup."""
    return Markup(tex_escape(separator).join(tex_escape(item) for item in items))


def tex_replace(text, old: str, new: str, count: int | None = None) -> Markup:
    """Jinja's `replace`: on plain text before it is escaped; on Markup (already LaTeX) with `old` and `new`
    escaped as Markup's text is."""
    count = -1 if count is None else count
    if isinstance(text, Markup):
        return Markup(str(text).replace(str(tex_escape(old)), str(tex_escape(new)), count))
    return tex_escape(str(text).replace(old, new, count))


def fmt_acc(value: float | None) -> str:
    return "--" if value is None else f"{value:.3f}"


def fmt_prob(p: float | None) -> Markup:
    """A predicted probability to three decimals; one that would round to 1.000 is written as its distance from 1
    ($1 - 3 \\times 10^{-5}$), so that near-certain predictions stay apart, as the study wrote 0.999999."""
    if p is None:
        return Markup("--")
    if p < 0.9995:
        return Markup(f"{p:.3f}")
    if 1 - p < 1e-7:  # the float32 softmax's resolution near 1
        return Markup("$1 - {<}10^{-7}$")
    mantissa, exponent = f"{1 - p:.0e}".split("e")
    return Markup(f"$1 - {mantissa} \\times 10^{{{int(exponent)}}}$")


def fmt_ms(values: list[float], digits: int = 3) -> Markup:
    """Mean $\\pm$ standard deviation over seeds; the single value for one seed. A spread that rounds to zero but is
    not zero reads "<0.001", so that seeds that differ do not look identical."""
    mean, std = summarize(values)
    if len(values) == 1:
        return Markup(f"{mean:.{digits}f}")
    if 1e-12 < std < 0.5 * 10 ** -digits:
        return Markup(f"{mean:.{digits}f}\\,{{\\scriptsize$\\pm{{<}}\\,${10 ** -digits:.{digits}f}}}")
    return Markup(f"{mean:.{digits}f}\\,{{\\scriptsize$\\pm${std:.{digits}f}}}")


def fmt_signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign; one that rounds to zero has none ("0.000", not "-0.000")."""
    if value is None:
        return "--"
    return f"{0:.{digits}f}" if round(value, digits) == 0 else f"{value:+.{digits}f}"


def fmt_seconds(seconds: float) -> Markup:
    """A duration: seconds below two minutes, minutes below five hours, else hours."""
    seconds = float(seconds)
    if seconds < 10:
        return Markup(f"{seconds:.1f}\\,s")
    if seconds < 120:
        return Markup(f"{seconds:.0f}\\,s")
    return Markup(f"{seconds / 60:.1f}\\,min" if seconds < 5 * 3600 else f"{seconds / 3600:.1f}\\,h")


def fmt_percent(fraction: float, digits: int = 0) -> Markup:
    return Markup(f"{100 * float(fraction):.{digits}f}\\%")


def fmt_p(p: float | None) -> Markup:
    """A p-value in math mode, two significant digits: 0.022, 3.7 x 10^-8; a dash for none."""
    if p is None:
        return Markup("--")
    if p >= 1e-3:
        return Markup(f"${p:.2g}$")
    mantissa, exponent = f"{p:.1e}".split("e")
    return Markup(f"${mantissa} \\times 10^{{{int(exponent)}}}$")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def and_list(items) -> Markup:
    """"X", "X and Y", "X, Y and Z" (each item escaped unless it is Markup)."""
    items = [tex_escape(item) for item in items]
    return Markup(" and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}")


class UnsupportedClaim(RuntimeError):
    """An authored sentence whose guard no longer holds for the runs the report reads."""


def claim(label: str, holds, draft: bool = False) -> Markup:
    """The guard of an authored sentence: `\\VAR{claim("label", predicate)}` beside the sentence prints nothing
    when the predicate holds and stops the build, naming the sentence, when it does not, so that a sentence the
    data have come to contradict is rewritten by its authors instead of being printed or silently reworded.
    In a draft (convladder report --draft) it prints a marker in the sentence instead of stopping."""
    if not holds and draft:
        return Markup(f"\\textbf{{[claim {tex_escape(label)} does not hold]}}")
    if not holds:
        raise UnsupportedClaim(f"the report's claim {label!r} no longer holds for these runs: rewrite the sentence "
                               f"that carries it (grep the templates under report/ for {label!r})")
    return Markup("")


def environment(folder: Path, draft: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        trim_blocks=True, lstrip_blocks=True, autoescape=True, finalize=_finalize,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    env.filters.update(e=tex_escape, escape=tex_escape, join=tex_join, replace=tex_replace, acc=fmt_acc, graphic=graphic,
                       ms=fmt_ms, signed=fmt_signed, plural=plural, thousands=lambda n: f"{n:,}",
                       seconds=fmt_seconds, percent=fmt_percent, and_list=and_list, p=fmt_p,
                       prob=fmt_prob, cpu=plain_cpu_name)
    env.globals.update(claim=lambda label, holds: claim(label, holds, draft))
    return env


def render(template: Path, context: dict, draft: bool = False) -> str:
    """The template at `template`, filled in with `context`."""
    return environment(template.parent, draft).get_template(template.name).render(**context)
