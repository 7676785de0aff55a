"""The results of a sweep: one row per trial, ``results.csv`` and ``results.md``.

Output folder::

    sweep.json          the resolved sweep config
    base_config.json    the resolved base config every trial starts from
    trials/<id>/        one folder per trial: log.txt and the train command's run folder
    results.csv         one row per trial: the grid values, seed, status and every metric
    results.md          mean +- std over repeats per grid point, then every trial
    *.png               accuracy per grid point, accuracy against energy, training time
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
from pathlib import Path

from nengo_actions.io import write_text_atomic
from nengo_actions.evaluation.run_metrics import (
    ACCURACY_KEYS,
    TIME_KEYS,
    is_accuracy,
    is_energy,
    is_firing_rate,
    is_number,
    is_per_model,
    mean_std,
)
from nengo_actions.sweep.backends import finished_run, read_metrics
from nengo_actions.sweep.plots import write_plots
from nengo_actions.sweep.spec import output_dir, value_text

#: Devices whose energy the Markdown tables show (results.csv has every device).
TABLE_ENERGY_DEVICES = ("loihi", "spinnaker2", "gpu")


def metric_columns(rows):
    """The numeric metric columns of ``rows`` in table order: accuracies, time, firing
    rates, energy, then the rest. Keys of one model among several (``<model>.<key>``)
    and per-class figures are left to the end."""
    keys = []
    for row in rows:
        for k, v in row["metrics"].items():
            if is_number(v) and k not in keys:
                keys.append(k)

    def rank(key):
        if is_per_model(key):
            return (9, key)
        if key in ACCURACY_KEYS:
            return (0, ACCURACY_KEYS.index(key))
        if key in TIME_KEYS:
            return (1, key)
        if is_firing_rate(key):
            return (2, key.startswith("rate_mode"), key)
        if is_energy(key):
            return (3, key)
        if is_accuracy(key):
            return (4, key)
        return (5, key)

    return sorted(keys, key=lambda k: tuple(str(x) for x in rank(k)))


def collect_rows(trials, outcomes, out_dir):
    """One row per trial: its grid values, seed, status, run folder and metrics."""
    rows = []
    for trial in trials:
        outcome = outcomes.get(trial.trial_id) or {}
        run_dir = outcome.get("run_dir")
        if run_dir is None and outcome.get("error") is None:
            run = finished_run(trial)
            run_dir = str(run) if run else None
        metrics = read_metrics(run_dir) if run_dir else None
        if outcome.get("error"):
            status = "failed"
        elif metrics is None:
            status = "missing"
        else:
            status = "skipped (finished before)" if outcome.get("skipped") else "done"
        rows.append(
            {
                "trial": trial,
                "status": status,
                "run_dir": os.path.relpath(run_dir, out_dir) if run_dir else "",
                "error": outcome.get("error") or "",
                "metrics": {k: v for k, v in (metrics or {}).items() if is_number(v)},
            }
        )
    return rows


def grid_keys(trials):
    """The keys of the trials' points, in order of first use."""
    keys = []
    for trial in trials:
        for k, _ in trial.point:
            if k not in keys:
                keys.append(k)
    return keys


def write_csv(path, rows, columns, epochs=False):
    """``results.csv``: one line per trial, its grid values, seed, status (with
    ``epochs``, the epochs it trained: ``row["epochs"]``), every metric in ``columns`` and
    its run folder (relative to the sweep's folder)."""
    keys = grid_keys([r["trial"] for r in rows])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial_id", "label", *keys, "repeat", "seed", "status", *(["epochs"] if epochs else []),
                     *columns, "run_dir", "error"])
    for row in rows:
        t = row["trial"]
        point = dict(t.point)
        writer.writerow(
            [t.trial_id, t.label]
            + [value_text(point[k]) if k in point else "" for k in keys]
            + [t.repeat, t.seed, row["status"]]
            + ([row["epochs"]] if epochs else [])
            + [format(row["metrics"][c], ".10g") if c in row["metrics"] else "" for c in columns]
            + [row["run_dir"], row["error"].splitlines()[0] if row["error"] else ""]
        )
    write_text_atomic(path, buf.getvalue())


def summarize(rows, columns):
    """Per grid point (in grid order): the number of finished repeats and, per metric,
    ``(mean, std, n)`` over them (:func:`~nengo_actions.evaluation.run_metrics.mean_std`: the sample
    standard deviation, 0 for one repeat)."""
    groups = {}
    for row in rows:
        groups.setdefault(row["trial"].label, []).append(row)
    summary = []
    for label, group in groups.items():
        done = [r for r in group if r["metrics"]]
        stats = {}
        for c in columns:
            values = [r["metrics"][c] for r in done if c in r["metrics"]]
            if values:
                stats[c] = mean_std(values)
        summary.append({"label": label, "point": group[0]["trial"].point, "n": len(done), "of": len(group), "stats": stats})
    return summary


def _is_fraction_column(column, rows):
    values = [r["metrics"][column] for r in rows if column in r["metrics"]]
    return is_accuracy(column) and values and all(0.0 <= v <= 1.0 for v in values)


def _fmt(value, column, fraction, like=None):
    """A table cell; ``like``: format as that value is formatted (a std as its mean)."""
    if fraction:
        return f"{100 * value:.2f}"
    ref = value if like is None else like
    if abs(ref) >= 1000 or (ref != 0 and abs(ref) < 0.01):
        return f"{value:.3g}"
    return f"{value:.2f}"


def _header(column, fraction):
    return f"{column} (%)" if fraction else column


def table_columns(columns):
    """The columns of the Markdown tables: accuracies, training time, the firing rates
    of the spiking run (or, without one, of the rate run) and energy on a few devices."""
    shown = [c for c in ACCURACY_KEYS + TIME_KEYS if c in columns]
    rates = [c for c in columns if is_firing_rate(c) and not is_per_model(c)]
    spiking_rates = [c for c in rates if not c.startswith("rate_mode")]
    shown += (spiking_rates or rates)[:3]
    energy = [c for c in columns if is_energy(c) and not is_per_model(c)]
    picked = [c for d in TABLE_ENERGY_DEVICES for c in energy if f"_{d}_" in c]
    shown += picked or energy[:3]
    return shown


def write_markdown(path, sweep_cfg, trials, rows, summary, columns, plots):
    """``results.md``: the sweep, mean +- std per grid point, every trial, the failed
    ones and the ``plots`` (paths beside ``path``)."""
    shown = table_columns(columns)
    frac = {c: _is_fraction_column(c, rows) for c in shown}
    repeats = sweep_cfg.repeats
    grid = sweep_cfg.grid
    lines = [
        f"# Sweep: {sweep_cfg.name}",
        "",
        f"- base config: `{sweep_cfg.base}`"
        + (f", with `{json.dumps(sweep_cfg.base_settings)}`" if sweep_cfg.base_settings else ""),
        f"- grid: `{json.dumps(grid)}`",
        f"- repeats: {repeats} (seeds {sweep_cfg.seed}..{sweep_cfg.seed + repeats - 1})",
        f"- trials: {len(trials)}; finished: {sum(1 for r in rows if r['metrics'])}; "
        f"failed: {sum(1 for r in rows if r['status'] == 'failed')}",
        f"- written: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        "Accuracies are per-clip on the test split unless named otherwise (`test_step_accuracy`: "
        "the accuracy over all steps, as the seed reported; `val_clip_accuracy`: the validation "
        "split that picked the epoch). `spiking_*`: the same network run with spiking neurons.",
        "",
        "## Mean +- std over repeats",
        "",
    ]
    head = ["grid point", "n"] + [_header(c, frac[c]) for c in shown]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = [f"`{s['label']}`", f"{s['n']}/{s['of']}"]
        for c in shown:
            if c in s["stats"]:
                mean, std, n = s["stats"][c]
                cells.append(f"{_fmt(mean, c, frac[c])} +- {_fmt(std, c, frac[c], like=mean)}" if n > 1 else _fmt(mean, c, frac[c]))
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Every trial", ""]
    head = ["trial", "seed", "status"] + [_header(c, frac[c]) for c in shown]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        t = row["trial"]
        cells = [f"`{t.label}`", str(t.seed), row["status"]]
        cells += [_fmt(row["metrics"][c], c, frac[c]) if c in row["metrics"] else "" for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    lines += closing_sections(rows, path, plots, "holds its config, report and plots.")
    write_text_atomic(path, "\n".join(lines))


def closing_sections(rows, path, plots, trial_folder):
    """The Markdown table's closing lines, shared by grids and searches: the failed trials
    (their first error line, paths relative to the table), the plots, and where the rest
    is (``trial_folder`` ends the sentence on a trial's run folder)."""
    lines = []
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed trials", ""]
        for r in failed:
            error = r["error"].splitlines()[0].replace(str(Path(path).parent) + os.sep, "")
            lines.append(f"- `{r['trial'].trial_id}`: {error}")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
    return lines + ["", f"Every metric of every trial is in `results.csv`; each trial's run folder (under `trials/`) "
                        f"{trial_folder}", ""]


def write_report(sweep_cfg, trials, outcomes=None):
    """Write ``results.csv``, ``results.md`` and the plots; returns the rows."""
    out_dir = output_dir(sweep_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = collect_rows(trials, outcomes or {}, out_dir)
    columns = metric_columns(rows)
    summary = summarize(rows, columns)
    write_csv(out_dir / "results.csv", rows, columns)
    plots = write_plots(out_dir, summary, columns) if any(r["metrics"] for r in rows) else []
    write_markdown(out_dir / "results.md", sweep_cfg, trials, rows, summary, columns, plots)
    return rows


