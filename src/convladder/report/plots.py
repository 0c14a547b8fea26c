"""The study's figures: training history, random samples, probability vectors."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from convladder.analysis.statistics import at_chance, minutes_curve
from convladder.results.records import summarize

# Curves of runs whose lengths differ by this factor or more share a logarithmic epoch axis: on a linear one a
# run of 16 epochs beside one of 240 is squeezed into the first fifteenth of the width.
LOG_EPOCHS_RATIO = 8


def log_epochs(lengths: list[int]) -> bool:
    """Whether curves of runs of these lengths (epochs) are drawn on a logarithmic epoch axis."""
    return bool(lengths) and max(lengths) >= LOG_EPOCHS_RATIO * max(1, min(lengths))


def curve_lengths(runs: dict[str, list[dict]]) -> list[int]:
    """The epochs each run's curve shows: those all its seeds reached."""
    return [min(len(r["history"]["epoch"]) for r in seeds) for seeds in runs.values()]


def drawn_curves(runs: dict[str, list[dict]], starts: dict[str, int] | None = None) -> dict[str, list[list[float]]]:
    """Each run's seeds' validation curves as the figures draw them: from its `starts` epoch (a run continuing
    another) to the last epoch all its seeds reached."""
    starts = starts or {}
    return {name: [r["history"]["val_acc"][starts.get(name, 1) - 1:length] for r in seeds]
            for (name, seeds), length in zip(runs.items(), curve_lengths(runs))}


def chance_names(runs: dict[str, list[dict]], starts: dict[str, int] | None = None) -> list[str]:
    """The runs whose mean curve over seeds, as drawn (drawn_curves), never leaves chance (analysis.statistics.at_chance):
    the curves that lie on one another in a figure of `runs`, whose markers stagger_markers staggers, for its caption."""
    return at_chance({name: _mean(series) for name, series in drawn_curves(runs, starts).items()})


def stagger_markers(curves: dict[str, list[float]]) -> dict[str, tuple[int, int]]:
    """Marker positions (matplotlib's markevery: first index, period) for curves of mean accuracies (name -> values):
    about six markers a curve; the curves that never take off lie on one another at chance, so they share a period of
    at least their number and start one index apart, each one's markers showing between the others'."""
    step = {name: max(1, len(values) // 6) if len(values) > 12 else 1 for name, values in curves.items()}
    flat = at_chance(curves)
    period = max([len(flat)] + [step[name] for name in flat])
    return {name: (flat.index(name), period) if name in flat else (0, step[name]) for name in curves}


def epoch_axis(ax, lengths: list[int] | None = None) -> None:
    """Whole epochs only on the x axis; logarithmic (ticks 1, 2, 5, 10, 20, ...) where log_epochs(lengths)."""
    if lengths and log_epochs(lengths):
        ax.set_xscale("log")
        ticks = [t * 10 ** k for k in range(4) for t in (1, 2, 5) if t * 10 ** k <= max(lengths)]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel("epoch (logarithmic)")
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))


def _legend_outside(ax, **kwargs) -> None:
    """The legend to the right of the axes, where it covers no curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=9, **kwargs)


def _mean(series: list[list[float]]) -> list[float]:
    return torch.tensor(series, dtype=torch.float64).mean(0).tolist()


def band(ax, x, series: list[list[float]], label: str, **style) -> None:
    """The mean of `series` as a line, and the range across them as a shaded band."""
    rows = torch.tensor(series, dtype=torch.float64)
    ax.plot(x, rows.mean(0).tolist(), label=label, marker="." if len(x) < 30 else None, **style)
    if len(series) > 1:
        ax.fill_between(x, rows.min(0).values.tolist(), rows.max(0).values.tolist(), alpha=0.25, **style)


def plot_history(histories: dict | list[dict], title: str = "") -> Figure:
    """Per epoch: mean loss and accuracy on train and validation, and the epoch's seconds.
    Several histories (seeds): the line is their mean, the band their range."""
    histories = [histories] if isinstance(histories, dict) else list(histories)
    epochs = histories[0]["epoch"]
    length = min(len(h["epoch"]) for h in histories)
    epochs = epochs[:length]
    column = lambda key: [h[key][:length] for h in histories]  # noqa: E731
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    band(axes[0], epochs, column("train_loss"), "train", color="tab:blue")
    band(axes[0], epochs, column("val_loss"), "validation", color="tab:orange")
    axes[0].set(title="cross-entropy loss", xlabel="epoch")
    band(axes[1], epochs, column("train_acc"), "train", color="tab:blue")
    band(axes[1], epochs, column("val_acc"), "validation", color="tab:orange")
    axes[1].axhline(0.1, color="grey", lw=0.8, ls=":", label="chance")
    axes[1].set(title="accuracy" + (f" (mean, band: range of {len(histories)} seeds)" if len(histories) > 1 else ""),
                xlabel="epoch", ylim=(0, 1))
    seconds = torch.tensor(column("epoch_seconds"), dtype=torch.float64).mean(0).tolist()
    axes[2].bar(epochs, seconds, color="tab:gray")
    axes[2].set(title="epoch time (s)" + (", mean over seeds" if len(histories) > 1 else ""), xlabel="epoch")
    for ax in axes:
        epoch_axis(ax)
    for ax in axes[:2]:
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_samples(images: torch.Tensor, labels: torch.Tensor, class_names, rows: int = 4, cols: int = 8) -> Figure:
    """A grid of images (uint8 or float, N x 3 x H x W) with their labels (Figure 1)."""
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.45))
    for ax, image, label in zip(axes.flat, images, labels):
        pixels = image.permute(1, 2, 0)
        ax.imshow(pixels if pixels.dtype == torch.uint8 else pixels.clamp(0, 1))
        ax.set_title(class_names[int(label)], fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(images):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_proba(probas: dict[str, list[float]], class_names, title: str = "") -> Figure:
    """Bar charts of probability vectors side by side, e.g. {"before": [...], "after": [...]}."""
    fig, axes = plt.subplots(1, len(probas), figsize=(4.2 * len(probas), 3), squeeze=False)
    for ax, (label, proba) in zip(axes[0], probas.items()):
        ax.bar(range(len(proba)), proba, color="tab:blue")
        ax.set_xticks(range(len(proba)), class_names, rotation=60, fontsize=8)
        ax.set(title=label, ylim=(0, 1), ylabel="probability")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<")


def plot_ladder(runs: dict[str, list[dict]], study: dict, starts: dict[str, int] | None = None) -> Figure:
    """Validation accuracy per epoch for every run (mean over seeds), each with its own colour, line style and marker
    so that curves lying on one another (at chance) stay apart; a run that continues another (`starts`: its name ->
    the first epoch of its own) is drawn from that epoch on. Beside them, final accuracies (mean, error bar: standard
    deviation over seeds) beside the study's."""
    starts = starts or {}
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    lengths = curve_lengths(runs)
    shown = drawn_curves(runs, starts)
    markers = stagger_markers({name: _mean(series) for name, series in shown.items()})
    for i, ((name, seeds), length) in enumerate(zip(runs.items(), lengths)):
        first = starts.get(name, 1) - 1
        epochs = seeds[0]["history"]["epoch"][first:length]
        style = dict(color=f"C{i % 10}", ls=LINE_STYLES[i % len(LINE_STYLES)])
        band(curves, epochs, shown[name], name, **style)
        curves.lines[-1].set(marker=MARKERS[i % len(MARKERS)], markersize=4, markevery=markers[name])
    curves.axhline(0.1, color="grey", lw=0.8, ls=":")
    curves.set(title="validation accuracy (mean over seeds)", xlabel="epoch", ylim=(0, 1))
    curves.grid(alpha=0.3)
    epoch_axis(curves, lengths)
    _legend_outside(curves)
    names = list(runs)
    x = range(len(names))
    width = 0.27
    for offset, key, label in ((-width, "val_acc", "ours, validation"), (0, "test_acc", "ours, test")):
        stats = [summarize([r["final"][key] for r in runs[name]]) for name in names]
        bars.bar([i + offset for i in x], [m for m, _ in stats], width, yerr=[s for _, s in stats], capsize=2, label=label)
    study_val = [study.get(name, {}).get("val_acc") for name in names]
    bars.bar([i + width for i in x], [v if v is not None else 0 for v in study_val], width, label="study, validation",
             color="tab:gray")
    bars.set_xticks(list(x), names, rotation=45, fontsize=8)
    bars.set(title="final accuracy", ylim=(0, 1))
    bars.legend(fontsize=8, loc="upper left")
    bars.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_compare(runs: dict[str, list[dict]], key: str = "val_acc", title: str = "") -> Figure:
    """One history key per epoch for several runs (label -> seeds): mean line, range band."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    lengths = curve_lengths(runs)
    for (label, seeds), length in zip(runs.items(), lengths):
        band(ax, seeds[0]["history"]["epoch"][:length], [r["history"][key][:length] for r in seeds], label)
    ax.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax.set(title=title, xlabel="epoch", ylim=(0, 1))
    ax.grid(alpha=0.3)
    epoch_axis(ax, lengths)
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_accuracy_minutes(runs: dict[str, list[dict]], title: str = "", starts: dict[str, int] | None = None) -> Figure:
    """Validation accuracy against cumulative training minutes for every run (mean over seeds of
    the epoch times and accuracies): runs compared at equal time, not at their own budgets. A run in
    `starts` (name -> its own first epoch) continues another whose epochs its history repeats: it is
    drawn from that epoch on, at the minutes its history counts until then, so no curve is drawn twice."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    drawn = {}
    for name, seeds in runs.items():
        length = min(len(r["history"]["epoch"]) for r in seeds)
        curves = [minutes_curve(r["history"]) for r in seeds]
        first = (starts or {}).get(name, 1) - 1
        drawn[name] = (_mean([c[0][first:length] for c in curves]), _mean([c[1][first:length] for c in curves]))
    markers = stagger_markers({name: acc for name, (_, acc) in drawn.items()})
    for i, (name, (minutes, acc)) in enumerate(drawn.items()):
        ax.plot(minutes, acc, color=f"C{i % 10}", ls=LINE_STYLES[i % len(LINE_STYLES)], marker=MARKERS[i % len(MARKERS)],
                markersize=4, markevery=markers[name], label=name)
    ax.axhline(0.1, color="grey", lw=0.8, ls=":")
    ax.set(title=title or "validation accuracy against training time", xlabel="training minutes (cumulative)",
           ylabel="validation accuracy", ylim=(0, 1), xscale="log")
    ax.grid(alpha=0.3, which="both")
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_size_curve(studies: dict[str, dict]) -> Figure:
    """Test accuracy of GAP runs against input size (run name -> what other_sizes_study wrote):
    squares by side length, other aspect ratios as points; mean over seeds, range as band or bar."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    first = next(iter(studies.values()))
    # the other aspect ratios by area, then width, the largest at the top
    others = sorted((s for s in first["sizes"] if s.split("x")[0] != s.split("x")[1]),
                    key=lambda s: (int(s.split("x")[0]) * int(s.split("x")[1]), int(s.split("x")[0])))
    for k, (name, study) in enumerate(studies.items()):
        sizes = study["sizes"]
        acc = torch.tensor([[seed["accuracy"][s] for s in sizes] for seed in study["curve"]], dtype=torch.float64)
        mean, low, high = acc.mean(0), acc.min(0).values, acc.max(0).values
        squares = sorted((i for i, s in enumerate(sizes) if s.split("x")[0] == s.split("x")[1]),
                         key=lambda i: int(sizes[i].split("x")[0]))
        sides = [int(sizes[i].split("x")[0]) for i in squares]
        seeds = len(acc)
        line = left.plot(sides, mean[squares], marker="o", label=f"{name} ({seeds} seed{'s' if seeds > 1 else ''})")[0]
        if seeds > 1:
            left.fill_between(sides, low[squares], high[squares], alpha=0.2, color=line.get_color())
        rows = [sizes.index(s) for s in others]
        y = torch.arange(len(others), dtype=torch.float64) + (k - (len(studies) - 1) / 2) * 0.25
        right.errorbar(mean[rows], y, xerr=(mean[rows] - low[rows], high[rows] - mean[rows]), fmt="o", ms=4,
                       capsize=2, color=line.get_color(), label=name)
        right.axvline(float(mean[sizes.index("32x32")]), color=line.get_color(), ls=":", lw=0.8)
    left.axvline(32, color="grey", ls=":", lw=0.8)
    several = any(len(study["curve"]) > 1 for study in studies.values())
    left.set(title="square images" + (" (band: range over seeds)" if several else ""), xlabel="side (pixels); trained on 32",
             ylabel="test accuracy", ylim=(0, 1))
    left.grid(alpha=0.3)
    left.legend(fontsize=9, loc="lower right")
    right.set_yticks(range(len(others)), others)
    right.set(title="other sizes (width x height; dotted: 32x32)", xlabel="test accuracy", xlim=(0, 1))
    right.grid(alpha=0.3, axis="x")
    if len(studies) > 1:
        right.legend(fontsize=9, loc="lower left")
    fig.tight_layout()
    return fig


LOSS_WINDOWS = 40  # the loss per step of a diagnosis is drawn as the mean of each of this many windows of steps


def plot_variants(diagnosis: dict) -> Figure:
    """Validation accuracy per epoch of every E/F variant (mean over seeds; whole epochs), and its training loss per
    step as the mean of each of LOSS_WINDOWS windows, its axis over the loss after the first window (a first-steps
    spike would flatten the rest); one legend below both, each variant its own colour and line style."""
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(8, 3.6))
    tops = []
    for i, v in enumerate(diagnosis["variants"]):
        style = dict(color=f"C{i % 10}", ls=LINE_STYLES[i % len(LINE_STYLES)])
        epochs = list(range(1, len(v["seeds"][0]["val_acc"]) + 1))
        band(acc, [0] + epochs, [[0.1] + s["val_acc"] for s in v["seeds"]], v["label"], **style)
        steps = torch.tensor([s["step_loss"] for s in v["seeds"]], dtype=torch.float64).mean(0)
        window = max(1, len(steps) // LOSS_WINDOWS)
        smooth = steps.unfold(0, window, window).mean(1) if len(steps) >= window else steps
        loss.plot([window * (i + 0.5) for i in range(len(smooth))], smooth, lw=1.2, **style)
        tops.append(float(smooth[1:].max()) if len(smooth) > 1 else float(smooth.max()))
    acc.axhline(0.1, color="grey", lw=0.8, ls=":")
    acc.set(title="validation accuracy (epoch 0: chance)", xlabel="epoch", ylim=(0, 1))
    acc.set_ylabel("validation accuracy")
    acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss.set(title="training loss (as optimised)", xlabel="step", ylim=(None, max(tops) * 1.05))
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
    fig.legend(*acc.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=9, frameon=False)
    rows = -(-len(diagnosis["variants"]) // 2)
    fig.tight_layout(rect=(0, 0.02 + 0.07 * rows, 1, 1))
    return fig


def plot_gradient_norms(diagnosis: dict, names: dict[str, str] | None = None) -> Figure:
    """Gradient norm of every weight layer per step, first seed, one panel per model (log scale); each layer named
    by `names` (module name -> a reader's name, e.g. "conv 1"), the legend beside the panels."""
    models = list(diagnosis["gradients"])
    fig, axes = plt.subplots(1, len(models), figsize=(8, 3.4), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], models):
        run = diagnosis["gradients"][name][0]
        for i, layer in enumerate(run["layers"]):
            ax.plot(range(1, len(run["norms"][layer]) + 1), run["norms"][layer], lw=0.9, color=f"C{i % 10}",
                    label=(names or {}).get(layer, layer))
        ax.set(yscale="log", title=f"model {name}", xlabel="step")
        ax.grid(alpha=0.3)
        _legend_outside(ax, title="layer (input first)", title_fontsize=8)
    axes[0][0].set_ylabel("gradient norm")
    fig.tight_layout()
    return fig


def save(fig: Figure, path: str | Path, close: bool = True) -> Path:
    """Write `fig` to `path` (its format from the suffix) atomically: never half-written, and a symbolic link
    at `path` is replaced, not written through."""
    import io

    from convladder.tools.files import atomic_write_bytes

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or None, bbox_inches="tight", dpi=150)
    atomic_write_bytes(buffer.getvalue(), path)
    if close:
        plt.close(fig)
    return path
