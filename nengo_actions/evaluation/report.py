"""What a run writes for people: ``metrics.json``, ``report.md`` and PNG plots.

``metrics.json`` is flat: the first model's figures (``model.type``) under plain keys
(``test_clip_accuracy``, ``test_step_accuracy``, ``val_clip_accuracy``,
``spiking_test_clip_accuracy``, ``train_seconds`` ...) and every model's figures again
under ``<type>.<key>``, plus a few keys about the data and the run.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import numpy as np

from nengo_actions.config import registry

from nengo_actions.evaluation import run_metrics
from nengo_actions.config import jsonable, write_json_atomic
from nengo_actions.io import save_figure_atomic, write_text_atomic

SEED_ANCHORS = (
    ("EnsembleArray 10,000 x 50 SpikingRectifiedLinear", "87.98%"),
    ("LMU order 2, 800 units, non-spiking", "90.61%"),
    ("LMU with spiking memory ensembles", "42.89%"),
)


def shows_seed_anchors(model_types):
    """Whether a report of ``model_types`` lists :data:`SEED_ANCHORS`: they are UCF101
    figures, shown beside the clip classifiers (the models reading features) only. Read
    from the registry when asked, so models registered after import count."""
    video_models = registry.model_names(inputs="features")
    return any(name in video_models for name in model_types)


def clip_method_text(ev):
    """How ``ev.clip_method`` (a choice of :data:`~nengo_actions.config.schema.CLIP_METHODS`) reads
    a clip's answer, in the words of the report."""
    return {"last": "the scores at the last frame", "mean": f"the mean scores of the last {ev.last_k} frames",
            "vote": "the class most frames pick"}[ev.clip_method]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    try:
        return save_figure_atomic(fig, path, dpi=110, bbox_inches="tight").name
    finally:
        _plt().close(fig)


def _shown_path(path):
    """``path`` relative to the working directory when inside it (reports get committed)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _pct(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def _num(x, fmt=".3g"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def flat_metrics(cfg, data, results, total_seconds):
    """The dict written to ``metrics.json``."""

    primary = results[0]
    flat = dict(primary.metrics)
    flat.update(
        model_type=primary.model_type,
        models=",".join(r.model_type for r in results),
        n_train_clips=int(len(data.y_train)),
        n_val_clips=int(len(data.y_val)),
        n_test_clips=int(len(data.y_test)),
        n_classes=int(data.n_classes),
        n_frames=int(data.n_frames),
        n_features=int(data.n_features),
        **{run_metrics.CHANCE_ACCURACY: 1.0 / data.n_classes},
        total_seconds=float(total_seconds),
        clip_method=cfg.evaluate.clip_method,
    )
    if primary.test:
        for name, acc in zip(data.class_names, primary.test["per_class_accuracy"]):
            flat[f"test_class_accuracy.{name}"] = float(acc)
    for r in results:
        for key, value in r.metrics.items():
            flat[f"{r.model_type}.{key}"] = value
    return jsonable(flat)


# ---------------------------------------------------------------------------------------
# Plots


def plot_learning_curves(path, results):
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in results:
        if not r.history:
            continue
        epochs = [h["epoch"] for h in r.history]
        ax1.plot(epochs, [h["train_loss"] for h in r.history], label=r.model_type)
        if "val_clip_accuracy" in r.history[0]:
            ax2.plot(epochs, [h["val_clip_accuracy"] for h in r.history], label=r.model_type)
            best = r.metrics.get("best_epoch")
            if best:
                ax2.plot([best], [r.history[best - 1]["val_clip_accuracy"]], "k*")
    ax1.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    ax2.set(xlabel="epoch", ylabel="per-clip accuracy", title="Validation accuracy (* selected)", ylim=(0, 1.02))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion(path, confusion, class_names, title):
    plt = _plt()
    confusion = np.asarray(confusion, dtype=float)
    totals = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, totals, out=np.zeros_like(confusion), where=totals > 0)
    n = len(class_names)
    size = min(12, 2 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), class_names, fontsize=7)
        for i in range(n):
            for j in range(n):
                if confusion[i, j]:
                    ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return _save(fig, path)


def plot_accuracy_vs_steps(path, results):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, r in enumerate(results):
        if not r.spiking_runs:
            continue
        color = f"C{i}"
        ks = [run.steps_per_frame for run in r.spiking_runs]
        ax.plot(ks, [run.metrics["clip_accuracy"] for run in r.spiking_runs], "o-", color=color,
                label=f"{r.model_type}, spiking")
        ax.axhline(r.metrics["test_clip_accuracy"], color=color, ls="--", lw=1, label=f"{r.model_type}, rate")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="simulation steps per frame", ylabel="test per-clip accuracy",
           title="Spiking accuracy against simulation steps", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_raster(path, result, steps_per_frame, title):
    plt = _plt()
    layers = [(name, spikes) for name, spikes in result.raster.items() if spikes.size]
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, 1.2 + 1.6 * len(layers)), squeeze=False, sharex=True)
    for ax, (name, spikes) in zip(axes[:, 0], layers):
        steps, neurons = spikes.shape
        for j in range(neurons):
            t = np.flatnonzero(spikes[:, j])
            ax.vlines(t, j + 0.6, j + 1.4, color="k", lw=0.6)
        for f in range(0, steps + 1, steps_per_frame * max(1, steps // (steps_per_frame * 16))):
            ax.axvline(f, color="C0", lw=0.3, alpha=0.5)
        ax.set(ylabel=f"{name}\nneuron", ylim=(0.4, neurons + 0.6))
    axes[-1, 0].set_xlabel(f"simulation step ({steps_per_frame} per frame; blue lines: frames)")
    axes[0, 0].set_title(title)
    return _save(fig, path)


def plot_accuracy_per_frame(path, results):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, r in enumerate(results):
        acc = r.test.get("accuracy_per_step")
        if acc is None:
            continue
        ax.plot(np.arange(1, len(acc) + 1), acc, color=f"C{i}", label=f"{r.model_type}, rate")
        if r.spiking_test:
            sp = r.spiking_test["accuracy_per_step"]
            ax.plot(np.arange(1, len(sp) + 1), sp, color=f"C{i}", ls=":", label=f"{r.model_type}, spiking")
    ax.set(xlabel="frame", ylabel="test accuracy at that frame", title="Accuracy over the clip", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# ---------------------------------------------------------------------------------------
# report.md


def _results_table(results, cfg):
    ev = cfg.evaluate
    k, topk = ev.spiking_steps_per_frame, ev.top_k
    lines = [
        f"| model | test per-clip ({ev.clip_method}) | mean last {ev.last_k} | vote | top-{topk} | "
        f"per-step (seed's figure) | validation per-clip | spiking per-clip ({k} steps/frame) | "
        "training time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.metrics
        lines.append(
            f"| {r.model_type} | {_pct(m['test_clip_accuracy'])} | {_pct(m['test_clip_accuracy_mean'])} | "
            f"{_pct(m['test_clip_accuracy_vote'])} | {_pct(m.get(f'test_top{topk}_accuracy'))} | "
            f"{_pct(m['test_step_accuracy'])} | {_pct(m.get('val_clip_accuracy'))} | "
            f"{_pct(m.get('spiking_test_clip_accuracy'))} | {_num(m.get('train_seconds'), '.1f')} s |"
        )
    refits = [r for r in results if "refit_test_clip_accuracy" in r.metrics]
    if refits:
        lines += ["", "Refit (`train.refit`): a fresh model trained on the training and validation clips together "
                  "for the selected number of epochs, then tested:", "",
                  f"| model | epochs | training clips | test per-clip ({ev.clip_method}) | "
                  f"spiking per-clip ({k} steps/frame) | selected model's test per-clip |", "|---|---|---|---|---|---|"]
        for r in refits:
            m = r.metrics
            lines.append(f"| {r.model_type} | {m['refit_epochs']} | {m['refit_train_clips']} | "
                         f"{_pct(m['refit_test_clip_accuracy'])} | {_pct(m.get('refit_spiking_test_clip_accuracy'))} | "
                         f"{_pct(m['test_clip_accuracy'])} |")
    return lines


def _spiking_tables(results, cfg):
    lines = []
    devices = cfg.evaluate.energy_devices
    for r in results:
        if not r.spiking_runs:
            continue
        layers = list(r.spiking_runs[0].layer_rates_hz)
        lines += [
            "",
            f"**{r.model_type}** (rate neurons: {_pct(r.metrics['test_clip_accuracy'])})",
            "",
            "| steps per frame | per-clip | per-step | "
            + " | ".join(f"{name} rate (Hz)" for name in layers)
            + " | synaptic ops / clip | "
            + " | ".join(f"{d} (J/clip)" for d in devices)
            + " |",
            "|---" * (3 + len(layers) + 1 + len(devices)) + "|",
        ]
        for run in r.spiking_runs:
            ops = run.operations["spike_synops"] + run.operations["value_synops"]
            lines.append(
                f"| {run.steps_per_frame} | {_pct(run.metrics['clip_accuracy'])} | "
                f"{_pct(run.metrics['step_accuracy'])} | "
                + " | ".join(f"{run.layer_rates_hz[n]:.1f}" for n in layers)
                + f" | {ops:.3g} | "
                + " | ".join(_num(run.energy.get(d)) for d in devices)
                + " |"
            )
    return lines


def write_report(run_dir, cfg, data, results, total_seconds=0.0):
    """Write ``metrics.json``, the plots and ``report.md`` into ``run_dir``."""
    run_dir = Path(run_dir)
    metrics = flat_metrics(cfg, data, results, total_seconds)
    write_json_atomic(run_dir / "metrics.json", metrics)

    figures = []
    if any(r.history for r in results):
        figures.append(("Learning curves", plot_learning_curves(run_dir / "learning_curves.png", results)))
    for r in results:
        figures.append(
            (f"Confusion matrix, {r.model_type} (test, rate neurons)",
             plot_confusion(run_dir / f"confusion_{r.model_type}.png", r.test["confusion"], data.class_names,
                            f"{r.model_type}: test confusion (rate neurons)"))
        )
    if any(r.spiking_runs for r in results):
        figures.append(("Accuracy against simulation steps per frame",
                        plot_accuracy_vs_steps(run_dir / "accuracy_vs_steps.png", results)))
    figures.append(("Accuracy over the clip", plot_accuracy_per_frame(run_dir / "accuracy_per_frame.png", results)))
    k = cfg.evaluate.spiking_steps_per_frame
    for r in results:
        if r.raster:
            figures.append(
                (f"Spike raster, {r.model_type}",
                 plot_raster(run_dir / f"raster_{r.model_type}.png", r, k,
                             f"{r.model_type}: first neurons of each layer, first test clip, {k} steps per frame"))
            )

    primary = results[0]
    chance = 1.0 / data.n_classes
    lines = [
        f"# {cfg.name}: {', '.join(r.model_type for r in results)}",
        "",
        f"Run of {datetime.datetime.now():%Y-%m-%d %H:%M}, config `{Path(cfg.source).name}`"
        f" (resolved copy: `config.json`), seed {cfg.seed}, {total_seconds:.0f} s in all.",
        "",
        "## Data and protocol",
        "",
        f"- Features: `{_shown_path(data.store_dir)}`; dataset `{cfg.data.dataset}`; {data.summary()} "
        f"(chance {_pct(chance)}).",
        f"- Validation: whole groups carved out of the training side (`data.val_fraction` = "
        f"{cfg.data.val_fraction}); the epoch with the best validation per-clip accuracy is "
        "kept. The test set is used once, for the figures below, never for selection.",
        f"- Per-clip accuracy: one answer per clip ({cfg.evaluate.clip_method!r}: {clip_method_text(cfg.evaluate)}"
        + "). Per-step accuracy is the seed's figure (every frame of every clip counted).",
        "",
        "## Models",
        "",
    ]
    lines += [f"- **{r.model_type}**: {r.description}; {r.metrics['n_neurons']:,} neurons, "
              f"{r.metrics['n_parameters']:,} trained parameters" for r in results]
    lines += ["", "## Results (test set)", ""] + _results_table(results, cfg)
    spiking_lines = _spiking_tables(results, cfg)
    if spiking_lines:
        lines += [
            "",
            "## Spiking evaluation",
            "",
            "The trained parameters run with spiking neurons, each frame held for the given "
            "number of 1 ms steps. Energy per clip with keras-spiking's device figures: spiking "
            "devices count spike-driven synaptic operations at the measured rates, plus one "
            "operation per synapse and step for real-valued inputs; cpu/gpu run the network as "
            "an ANN, one pass per frame.",
        ] + spiking_lines
    non_spiking = [r for r in results if not r.spiking_runs]
    if non_spiking:
        lines += ["", "Energy of one ANN pass per frame (no spikes): "
                  + "; ".join(f"{r.model_type}: " + ", ".join(
                      f"{d} {_num(r.metrics.get(f'energy_{d}_joules_per_inference'))} J"
                      for d in ("cpu", "gpu") if f"energy_{d}_joules_per_inference" in r.metrics)
                      for r in non_spiking) + " per clip."]
    if primary.test:
        lines += ["", f"## Per-class accuracy ({primary.model_type}, test, rate neurons)", "",
                  "| class | accuracy |", "|---|---|"]
        lines += [f"| {n} | {_pct(float(a))} |" for n, a in zip(data.class_names, primary.test["per_class_accuracy"])]
    lines += ["", "## Figures", ""]
    lines += [f"![{title}]({name})" for title, name in figures]
    if shows_seed_anchors(r.model_type for r in results):
        lines += [
            "",
            "## For comparison: the seed's UCF101 split-1 figures",
            "",
            "Per-step accuracy with the epoch picked on the test set (so optimistic):",
            "",
        ]
        lines += [f"- {what}: {acc}" for what, acc in SEED_ANCHORS]
    lines += ["", "Files: `metrics.json` (every figure), `<model>/history.csv`, `<model>/tensorboard/`, "
              "`<model>/params_best.npz`, `<model>/confusion_test.csv`.", ""]
    write_text_atomic(run_dir / "report.md", "\n".join(lines))
    return metrics
