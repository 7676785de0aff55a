"""PNG plots of a sweep summary (:func:`nengo_actions.sweep.report.summarize`)."""

from __future__ import annotations

import math

# the object-oriented Figure needs no pyplot backend, so a sweep in a notebook or on a
# machine without a display draws the same files and leaves the process's backend alone
from matplotlib.figure import Figure

from nengo_actions.io import save_figure_atomic
from nengo_actions.evaluation.run_metrics import (
    CHANCE_ACCURACY,
    SPIKING_TEST_CLIP_ACCURACY,
    TEST_CLIP_ACCURACY,
    TRAIN_SECONDS,
    is_energy,
    is_per_model,
)

#: Devices whose energy the accuracy-against-energy plot prefers, in this order.
PLOT_ENERGY_DEVICES = ("loihi", "spinnaker2", "spinnaker")


def _energy_column(columns):
    """The energy metric to plot: the first of :data:`PLOT_ENERGY_DEVICES` present, else
    the first energy metric; ``None`` without one."""
    energy = [c for c in columns if is_energy(c) and not is_per_model(c)]
    for device in PLOT_ENERGY_DEVICES:
        for c in energy:
            if f"_{device}_" in c:
                return c
    return energy[0] if energy else None


def write_plots(out_dir, summary, columns, per="grid point"):
    """PNG plots of a sweep summary; returns their paths. ``per`` names what a bar is; an
    entry's ``note`` is written on its empty bar (default: "no result" where none finished)."""
    plots = []
    labels = [s["label"] for s in summary]
    x = list(range(len(summary)))

    def series(column, scale=1.0):
        means = [s["stats"][column][0] * scale if column in s["stats"] else math.nan for s in summary]
        stds = [s["stats"][column][1] * scale if column in s["stats"] else 0.0 for s in summary]
        return means, stds

    acc = [c for c in (TEST_CLIP_ACCURACY, SPIKING_TEST_CLIP_ACCURACY) if c in columns]
    if acc:
        fig = Figure(figsize=(max(6, 0.9 * len(x) + 2), 4.5))
        ax = fig.subplots()
        width = 0.8 / len(acc)
        for i, column in enumerate(acc):
            means, stds = series(column, 100.0)
            ax.bar([xi + (i - (len(acc) - 1) / 2) * width for xi in x], means, width, yerr=stds,
                   capsize=3, label={TEST_CLIP_ACCURACY: "rate neurons", SPIKING_TEST_CLIP_ACCURACY: "spiking neurons"}[column])
        chance = [s["stats"][CHANCE_ACCURACY][0] for s in summary if CHANCE_ACCURACY in s["stats"]]
        if chance:
            ax.axhline(100 * chance[0], color="k", linestyle="--", linewidth=1, label="chance")
        for xi, s in zip(x, summary):
            note = s.get("note") or ("no result" if not s["n"] else None)
            if note:
                ax.text(xi, 2, note, ha="center", va="bottom", rotation=90, color="tab:red")
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel("per-clip test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"Accuracy per {per} (mean +- std over repeats)" if per == "grid point" else f"Accuracy per {per}")
        ax.legend(loc="upper right")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        plots.append(save_figure_atomic(fig, out_dir / "accuracy.png", dpi=120))

    energy = _energy_column(columns)
    acc_key = SPIKING_TEST_CLIP_ACCURACY if SPIKING_TEST_CLIP_ACCURACY in columns else (acc[0] if acc else None)
    if energy and acc_key:
        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.subplots()
        for s in summary:
            if energy in s["stats"] and acc_key in s["stats"]:
                e, es, _ = s["stats"][energy]
                a, as_, _ = s["stats"][acc_key]
                ax.errorbar(e, 100 * a, xerr=es, yerr=100 * as_, fmt="o", capsize=3)
                ax.annotate(s["label"], (e, 100 * a), textcoords="offset points", xytext=(5, 4), fontsize=8)
        if all(s["stats"].get(energy, (0,))[0] > 0 for s in summary if energy in s["stats"]):
            ax.set_xscale("log")
        ax.set_xlabel(energy)
        ax.set_ylabel(f"{acc_key} (%)")
        ax.set_title("Accuracy against energy per inference")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        plots.append(save_figure_atomic(fig, out_dir / "accuracy_vs_energy.png", dpi=120))

    if TRAIN_SECONDS in columns:
        fig = Figure(figsize=(max(6, 0.9 * len(x) + 2), 4))
        ax = fig.subplots()
        means, stds = series(TRAIN_SECONDS)
        ax.bar(x, means, 0.6, yerr=stds, capsize=3, color="tab:gray")
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel("training time (s)")
        ax.set_title(f"Training time per {per}")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        plots.append(save_figure_atomic(fig, out_dir / "train_time.png", dpi=120))
    return plots


def write_curves(out_dir, rows, metric, stopped="stopped early", keys=()):
    """A search's ``metric`` after every epoch, one line per trial (``row["curve"]``,
    labelled with its values of ``keys``), dashed and ending in a cross where the trial was
    stopped early; returns its path, or ``None`` without any epoch."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    drawn = 0
    for row in rows:
        curve = row.get("curve") or []
        if not curve:
            continue
        was_stopped = row["status"] == stopped
        epochs = list(range(1, len(curve) + 1))
        values = [100 * v for v in curve]
        (line,) = ax.plot(epochs, values, linestyle="--" if was_stopped else "-", linewidth=1.2,
                          label=row["trial"].label)
        if was_stopped:
            ax.plot(epochs[-1], values[-1], "x", color=line.get_color(), markersize=8)
        drawn += 1
    if not drawn:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{metric} after every epoch (dashed, x: stopped early)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", title=" / ".join(keys) or None, title_fontsize=7)
    fig.tight_layout()
    return save_figure_atomic(fig, out_dir / "metric_per_epoch.png", dpi=120)
