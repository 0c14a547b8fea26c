"""The figure of the study's questions: one panel per question, the two models it compares, and a zoomed inset where
their difference is too small to see at the panel's scale."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from convladder.report.plots import band, curve_lengths, epoch_axis

SHOWN_BEYOND_COMPARISON = 2  # beyond this many times the compared epoch, a panel's shorter curve would be squeezed


def panel_end(lengths: list[int], at_epoch: int | None) -> int | None:
    """The last epoch a question's panel shows when it cuts the longer run short (None: every epoch is shown)."""
    return SHOWN_BEYOND_COMPARISON * at_epoch if at_epoch and max(lengths) > SHOWN_BEYOND_COMPARISON * at_epoch else None


PANEL_COLUMNS = 3


INSET_BELOW = 0.1  # a question's panel gets a zoomed inset where its two means differ by less than this share of its axis


def _inset_at_end(ax, curves: list[tuple], end: int) -> None:
    """A zoomed inset in the panel's right half, low or high, wherever less of the curves' lines falls there (as drawn:
    the panel's axes final, a logarithmic epoch axis included): the last quarter (at least 3) of the epochs up to `end`
    of each (epochs, seeds' series, color) curve, mean line and range band, its vertical axis spanning only those."""
    first = max(1, end - max(3, end // 4))
    ax.get_xlim(), ax.get_ylim()  # the view limits brought up to date before the transform reads them
    to_axes, right = ax.transData + ax.transAxes.inverted(), []
    for epochs, rows, _ in curves:
        for row in rows:
            xy = to_axes.transform(np.column_stack([epochs, row]))
            line = [a + (b - a) * k / 10 for a, b in zip(xy[:-1], xy[1:]) for k in range(11)] or list(xy)
            right += [y for x, y in line if x >= 0.5]
    bottom = min((0.22, 0.58), key=lambda y: sum(y - 0.05 <= v <= y + 0.43 for v in right))  # its tick labels too
    inset = ax.inset_axes([0.5, bottom, 0.46, 0.38])
    values = []
    for epochs, series, color in curves:
        keep = [i for i, e in enumerate(epochs) if first <= e <= end]
        window = [[row[i] for i in keep] for row in series]
        band(inset, [epochs[i] for i in keep], window, "", color=color)
        values += [v for row in window for v in row]
    pad = 0.1 * (max(values) - min(values)) + 1e-3
    inset.set(ylim=(min(values) - pad, max(values) + pad), xlim=(first, end))
    inset.xaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
    inset.yaxis.set_major_locator(MaxNLocator(nbins=3))
    inset.tick_params(labelsize=9)  # about 7 pt once the figure is scaled to the text width
    inset.grid(alpha=0.3)


def _mean_at(epochs: list[int], series: list[list[float]], epoch: int) -> float:
    return sum(row[max(j for j, e in enumerate(epochs) if e <= epoch)] for row in series) / len(series)


def plot_questions(panels: list[dict]) -> Figure:
    """The study's questions side by side, one panel each (titled by its `letter`): validation accuracy per epoch of
    the two runs a question compares (`low`, `high`: seeds), mean line and range band in each model's colour (`colors`: one per
    model, the same in every panel), the y axis zoomed to their range, and the epoch the verdict compares them at where
    it is not both runs' last (`at_epoch`, else None) as a dashed line."""
    rows = max(1, -(-len(panels) // PANEL_COLUMNS))
    fig, axes = plt.subplots(rows, PANEL_COLUMNS, figsize=(8, 2.5 * rows), squeeze=False)
    for i, (ax, panel) in enumerate(zip(axes.flat, panels)):
        runs = {panel["low"]: panel["runs"][panel["low"]], panel["high"]: panel["runs"][panel["high"]]}
        lengths = curve_lengths(runs)
        values, curves = [], []
        cut = panel_end(lengths, panel["at_epoch"])
        for (label, seeds), length in zip(runs.items(), lengths):
            color = panel["colors"][label]
            epochs = seeds[0]["history"]["epoch"][:length]
            keep = len([e for e in epochs if cut is None or e <= cut])
            series = [r["history"]["val_acc"][:keep] for r in seeds]
            epochs = epochs[:keep]
            band(ax, epochs, series, label, color=color)
            values += [v for row in series for v in row]
            curves.append((epochs, series, color))
        ax.axhline(0.1, color="grey", lw=0.8, ls=":")
        if panel["at_epoch"]:
            ax.axvline(panel["at_epoch"], color="black", lw=0.9, ls="--")
        ax.set_ylim(max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05))  # the curves' range, bands included
        ax.set_xlabel("epoch", fontsize=9)
        epoch_axis(ax, [min(length, cut or length) for length in lengths])  # before the inset, which reads the axes
        end = panel["at_epoch"] or min(lengths)
        low, high = ax.get_ylim()
        means = [_mean_at(epochs, series, end) for epochs, series, _ in curves]
        inset = abs(means[0] - means[1]) < INSET_BELOW * (high - low)
        if inset:
            _inset_at_end(ax, curves, end)
        ax.set_title(f"({panel['letter']}) {panel['low']} against {panel['high']}", fontsize=10)
        if i % PANEL_COLUMNS == 0:
            ax.set_ylabel("validation accuracy", fontsize=9)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left" if inset else "best", fontsize=9)  # "best" does not see the inset
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
