"""The figures of the archived experiments beside the ladder: the recipe search, C, D and E continued to 150
epochs, GAP-fast's stability, and model H's accuracy against training minutes (plots.py holds the shared helpers
and the ladder's own figures)."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from convladder.report.plots import LINE_STYLES, epoch_axis


def plot_stability(result: dict) -> Figure:
    """One GAP-fast run's validation accuracy after every epoch: as trained, with batch-norm statistics
    estimated again, with averaged weights; the learning rate and the image side on a second axis."""
    rows = result["epochs"]
    epochs = [row["epoch"] for row in rows]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for key, label, style in (("val_acc", "as trained", "-o"),
                              ("val_acc_recalibrated", "batch-norm statistics re-estimated", "-s"),
                              ("val_acc_ema", f"weights averaged (EMA {result['ema_decay']:g} per step)", "-^")):
        ax.plot(epochs, [row[key] for row in rows], style, ms=3, label=label)
    for row in rows:
        if row["side"] != 32:
            ax.axvspan(row["epoch"] - 0.5, row["epoch"] + 0.5, color="grey", alpha=0.08, lw=0)
    ax.set(xlabel="epoch (shaded: trained on images smaller than 32 pixels)", ylabel="validation accuracy", ylim=(0, 1))
    epoch_axis(ax)
    ax.grid(alpha=0.3)
    lr = ax.twinx()
    lr.plot(epochs, [row["lr_at_start"] for row in rows], color="black", ls=":", lw=1, label="learning rate (right)")
    lr.set_ylabel("learning rate at the epoch's start")
    handles = ax.get_legend_handles_labels()[0] + lr.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_recipe_search(candidates: list[dict], study: dict[str, dict]) -> Figure:
    """Validation accuracy per epoch of every recipe candidate, one panel per model, with the study's take-off epoch
    (dotted) and its accuracy after 150 epochs (star); each candidate that left chance one colour and line style in
    both panels, those that never did (take_off None) thin grey lines under one legend entry, since their
    curves lie on each other at 0.1; one legend below the panels, large enough to read at the page's width."""
    models = sorted({c["model"] for c in candidates})
    label = lambda c: f"{c['optimizer']}, {c['output']}, batch {c['batch_size']}"  # noqa: E731 - one per candidate
    never = [c for c in candidates if c["take_off"] is None and c["finished"]]
    labels = list(dict.fromkeys(label(c) for c in candidates if c not in never))
    styles = {name: dict(color=f"C{i % 10}", ls=LINE_STYLES[i % len(LINE_STYLES)]) for i, name in enumerate(labels)}
    chance = dict(color="0.6", ls="-", lw=0.7)
    fig, axes = plt.subplots(1, len(models), figsize=(8, 4.6), squeeze=False,
                             gridspec_kw={"width_ratios": [2 if m == "A" else 1 for m in models]})
    for ax, model in zip(axes[0], models):
        for c in (c for c in candidates if c["model"] == model):
            epochs = range(1, c["epochs"] + 1)
            if c in never:
                ax.plot(epochs, c["curve"], zorder=1, **chance)
            else:
                ax.plot(epochs, c["curve"], lw=1.2, label=label(c), zorder=2, **styles[label(c)])
        ax.axvline(study[model]["take_off"], color="grey", ls=":", lw=1)
        ax.plot([150], [study[model]["val_acc"]], "k*", ms=10)
        ax.set(title=f"model {model}", xlabel="epoch", ylim=(0, 0.6))
        epoch_axis(ax)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy")
    handles = [plt.Line2D([], [], lw=1.2, **styles[name]) for name in labels]
    names = list(labels)
    if never:
        handles.append(plt.Line2D([], [], **chance))
        names.append(f"never left chance ({len(never)} runs of {len({c['name'] for c in never})} candidates)")
    handles += [plt.Line2D([], [], color="grey", ls=":", lw=1), plt.Line2D([], [], color="k", marker="*", ls="", ms=10)]
    names += ["the study's take-off", "the study after 150 epochs"]
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * ((len(names) + 1) // 2), 1, 1))
    return fig


def plot_longer(rows: list[dict], d_target: float, continued_from: int = 16) -> Figure:
    """Validation accuracy per epoch of every continued seed, one panel per model, with the epoch the archived
    runs ended at (dotted) and the study's accuracy for D (dashed)."""
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(2.4 * len(models), 2.6), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        for r in (r for r in rows if r["model"] == model):
            ax.plot(range(1, r["epochs"] + 1), r["curve"], lw=1, label=f"seed {r['seed']}")
        ax.axvline(continued_from, color="grey", ls=":", lw=1, label=f"epoch {continued_from}")
        if model == "D":
            ax.axhline(d_target, color="k", ls="--", lw=0.8, label=f"the study's D ({d_target:.2f})")
        ax.set(title=f"model {model}", xlabel="epoch", ylim=(0, 0.7))
        epoch_axis(ax)
        ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.grid(alpha=0.3)
        # off the curves: D's rise at the top left, C's and E's lie low until late
        ax.legend(fontsize=8, loc="lower right" if model == "D" else "upper left", handlelength=1.2, borderaxespad=0.3)
    axes[0][0].set_ylabel("validation accuracy")
    fig.tight_layout()
    return fig


def _name_points(ax, group: dict) -> None:
    """Write each of `group`'s `names` beside its point, the labels moved apart vertically (a thin line to the point
    where moved) so that points close together keep readable names."""
    points = sorted(zip(group.get("names", ()), group["minutes"], group["accuracy"]), key=lambda p: -p[2])
    low, high = ax.get_ylim()
    gap, last = 0.045 * (high - low), None
    for name, x, y in points:
        at = y if last is None else min(y, last - gap)
        last = at
        ax.annotate(name, (x, y), xytext=(x + 0.04 * (ax.get_xlim()[1] - ax.get_xlim()[0]), at), fontsize=6,
                    color=group.get("color", "black"), va="center",
                    arrowprops=dict(arrowstyle="-", lw=0.4, color=group.get("color", "black")))


def plot_frontier(groups: list[dict]) -> Figure:
    """Test accuracy against training minutes, one marker per seed: each group (label, minutes, accuracy, and
    optionally marker, color, alone: per point True, False or None, and names: per point, written beside it where
    zoomed) is one run or one kind of run. A point is
    filled where its run had the machine to itself, hollow where other work ran beside it, faint where that was not
    recorded. Left: every group; right: the groups with a marker of their own (models H and H-95), zoomed to their
    range, so that their seeds and ablations do not merge into one blob."""
    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(9, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    plain = [g for g in groups if "marker" not in g]
    for i, group in enumerate(plain):  # the other runs: a colour each, never one of H's
        group.setdefault("color", f"C{i % 10}")
    styles = {True: dict(alpha=0.85), False: dict(facecolors="none", linewidths=1.2), None: dict(alpha=0.3)}
    for ax in (whole, zoom):
        for group in groups if ax is whole else [g for g in groups if "marker" in g]:
            alone = group.get("alone") or [None] * len(group["minutes"])
            colour = group.get("color", "black")
            for state, style in styles.items():
                shown = [i for i, a in enumerate(alone) if a is state]
                if shown:
                    ax.scatter([group["minutes"][i] for i in shown], [group["accuracy"][i] for i in shown],
                               marker=group.get("marker", "o"), s=30 if ax is zoom else 22,
                               **({"edgecolors": colour} if state is False else {"color": colour}), **style)
        ax.grid(alpha=0.3, which="both")
    for group in groups:  # a group of different runs (H's ablations) names each point where it is zoomed
        _name_points(zoom, group)
    whole.axhline(0.1, color="grey", lw=0.8, ls=":")  # chance, which the captions name
    whole.set(title="every run", xlabel="training minutes (log scale)", ylabel="test accuracy", xscale="log",
              ylim=(0, 1))
    zoom.set(title="models H and H-95, zoomed" if any(g["label"].startswith("H-95") for g in groups)
             else "model H, zoomed", xlabel="training minutes")
    zoom.tick_params(labelsize=9)
    handles = [Line2D([], [], ls="", marker=g.get("marker", "o"), color=g.get("color", "black"), label=g["label"])
               for g in groups]
    states = {a for g in groups for a in (g.get("alone") or [None])}
    handles += [Line2D([], [], ls="", marker="o", label=label, **style)
                for state, label, style in ((True, "ran alone", dict(color="black")),
                                            (False, "other work beside", dict(color="black", mfc="none")),
                                            (None, "not recorded", dict(color="black", alpha=0.3)))
                if state in states]
    # four columns at 10 points: about 7 points once the figure is scaled to a page's width, readable in print
    rows = -(-len(handles) // 4)
    fig.set_figheight(3.8 + 0.2 * rows)
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=10, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.2 * rows / (3.8 + 0.2 * rows), 1, 1))
    return fig
