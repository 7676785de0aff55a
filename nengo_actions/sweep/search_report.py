"""The results of a search: one row per trial with its status and the epochs it trained,
in the files a grid sweep writes (``results.csv``, ``results.md``, the plots) plus the
metric after every epoch of every trial (``metric_per_epoch.png``).

A trial's status: ``done`` (its run folder holds ``metrics.json``; ``skipped (finished
before)`` when that was there before the search started), ``stopped early`` (the
scheduler stopped it: a run folder with its epochs so far and no ``metrics.json``; its
figures are those of its best epoch in ``history.csv``), ``failed`` (with the reason) or
``missing`` (it never trained an epoch).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
from pathlib import Path

from nengo_actions.errors import ConfigError
from nengo_actions.io import write_json_atomic, write_text_atomic
from nengo_actions.evaluation.run_metrics import is_number
from nengo_actions.sweep.backends import finished_run, read_metrics
from nengo_actions.sweep.plots import write_curves, write_plots
from nengo_actions.sweep.report import (
    _fmt,
    closing_sections,
    _header,
    _is_fraction_column,
    grid_keys,
    metric_columns,
    summarize,
    table_columns,
    write_csv,
)
from nengo_actions.sweep.search_trial import FAILED_FILE, history_path, read_history, run_folders
from nengo_actions.sweep.space import asha_rungs
from nengo_actions.sweep.spec import Trial, output_dir, value_text

STOPPED = "stopped early"
#: In the output folder: the search's trials and errors, read by ``--report-only``.
RECORD_FILE = "search_trials.json"


def write_record(out_dir, trials, errors, started, max_t):
    """``search_trials.json``: the trials Tune ran, their errors, when it started, max_t."""
    write_json_atomic(Path(out_dir) / RECORD_FILE, {
        "started": started, "max_t": max_t,
        "trials": [dict(dataclasses.asdict(t), error=errors.get(t.trial_id, "")) for t in trials],
    })


def read_record(out_dir):
    """``(trials, errors, started, max_t)`` from ``search_trials.json``."""
    path = Path(out_dir) / RECORD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        trials = []
        for t in record["trials"]:
            point = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in t["point"])
            trials.append(Trial(**dict({k: t[k] for k in ("trial_id", "label", "repeat", "seed", "base_config", "trial_dir")},
                                       point=point, overrides=tuple(t["overrides"]))))
        errors = {t["trial_id"]: t["error"] for t in record["trials"] if t.get("error")}
        return trials, errors, record["started"], record["max_t"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: no readable record of a search ({type(e).__name__}); run the search first") from None


def _history_figures(history, metric):
    """The figures of a run without ``metrics.json``: its best epoch by ``metric``."""
    figures = {"epochs_run": len(history), "train_seconds": sum(r.get("seconds", 0.0) for r in history
                                                                 if math.isfinite(r.get("seconds", math.nan)))}
    scored = [r for r in history if math.isfinite(r.get(metric, math.nan))]
    if scored:
        best = max(scored, key=lambda r: r[metric])  # the first of equals, as training keeps it
        figures["best_epoch"] = int(best["epoch"])
        figures.update({k: best[k] for k in ("val_clip_accuracy", "val_step_accuracy", "val_loss")
                        if math.isfinite(best.get(k, math.nan))})
    return figures


def collect_search_rows(trials, errors, out_dir, metric, started):
    """One row per trial: as :func:`~nengo_actions.sweep.report.collect_rows`, with
    ``epochs`` (epochs trained) and ``curve`` (``metric`` after each)."""
    rows = []
    for trial in trials:
        error = errors.get(trial.trial_id, "")
        failed = Path(trial.trial_dir) / FAILED_FILE
        if not error and failed.is_file():
            error = failed.read_text(encoding="utf-8", errors="replace").strip()
        run = finished_run(trial)
        runs = run_folders(trial.trial_dir)
        latest = run or (runs[-1] if runs else None)
        history = read_history(history_path(latest)) if latest else []
        metrics = {}
        if error:
            status = "failed"
        elif run is not None:
            metrics = {k: v for k, v in (read_metrics(run) or {}).items() if is_number(v)}
            before = (run / "metrics.json").stat().st_mtime < started
            status = "skipped (finished before)" if before else "done"
        elif history:
            status, metrics = STOPPED, _history_figures(history, metric)
        else:
            status = "missing"
        rows.append({
            "trial": trial,
            "status": status,
            "run_dir": os.path.relpath(latest, out_dir) if latest else "",
            "error": error,
            "metrics": metrics,
            "epochs": len(history),
            "curve": [r.get(metric, math.nan) for r in history],
        })
    return rows


def _cell(value):
    return f"{value:.4g}" if isinstance(value, float) else value_text(value)


def _rank(row, metric):
    """Sort key: the best ``metric`` first, trials without it last."""
    value = row["metrics"].get(metric, math.nan)
    return -value if math.isfinite(value) else math.inf


def _best(rows, metric):
    done = [r for r in rows if r["status"] != STOPPED and math.isfinite(r["metrics"].get(metric, math.nan))]
    return max(done, key=lambda r: r["metrics"][metric]) if done else None


def write_search_markdown(path, sweep_cfg, rows, columns, plots, max_t):
    """``results.md`` of a search: its settings, the epochs trained, the best trial, every
    trial (best ``metric`` first), the failed ones and the ``plots``."""
    metric = sweep_cfg.metric
    shown = table_columns(columns)
    frac = {c: _is_fraction_column(c, rows) for c in shown}
    keys = grid_keys([r["trial"] for r in rows])
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", STOPPED, "failed")}
    if sweep_cfg.scheduler == "asha":
        a = sweep_cfg.asha
        rungs = ", ".join(f"{r:g}" for r in asha_rungs(a, max_t))
        scheduler = (f"ASHA on `{metric}` (max): max_t {max_t} epochs, grace_period {a.grace_period}, "
                     f"reduction_factor {a.reduction_factor:g}, brackets {a.brackets}; rungs at {rungs} epochs")
    else:
        scheduler = f"FIFO: every trial trains all its epochs ({max_t}); `{metric}` (max) picks the best"
    lines = [
        f"# Search: {sweep_cfg.name}",
        "",
        f"- base config: `{sweep_cfg.base}`"
        + (f", with `{json.dumps(sweep_cfg.base_settings)}`" if sweep_cfg.base_settings else ""),
        f"- search space: `{json.dumps(sweep_cfg.search)}`, {sweep_cfg.num_samples} samples (seed {sweep_cfg.seed})"
        + (f"; grid: `{json.dumps(sweep_cfg.grid)}`" if any(sweep_cfg.grids) else "")
        + (f"; repeats: {sweep_cfg.repeats}" if sweep_cfg.repeats > 1 else ""),
        f"- scheduler: {scheduler}",
        f"- trials: {len(rows)}; finished: {counts['done'] + sum(1 for r in rows if r['status'].startswith('skipped'))}; "
        f"stopped early: {counts[STOPPED]}; failed: {counts['failed']}",
        f"- epochs trained: {sum(r['epochs'] for r in rows)} (every trial to the end: {len(rows) * max_t})",
    ]
    best = _best(rows, metric)
    if best is not None:
        figures = ", ".join(f"{c} {100 * best['metrics'][c]:.2f}%"
                            for c in (metric, "test_clip_accuracy", "spiking_test_clip_accuracy") if c in best["metrics"])
        lines.append(f"- best finished trial by `{metric}`: `{best['trial'].label}` ({figures})")
    lines += [
        f"- written: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        "Accuracies are per-clip on the test split unless named otherwise (`val_clip_accuracy`: the "
        "validation split that the search and the epoch selection use). A trial stopped early has "
        "no test figures; its validation figures are those of its best epoch so far.",
        "",
        f"## Every trial (best `{metric}` first)",
        "",
    ]
    head = [*keys, "seed", "status", "epochs"] + [_header(c, frac[c]) for c in shown]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sorted(rows, key=lambda r: _rank(r, metric)):
        point = dict(row["trial"].point)
        cells = [f"`{_cell(point[k])}`" if k in point else "" for k in keys]
        cells += [str(row["trial"].seed), row["status"], str(row["epochs"])]
        cells += [_fmt(row["metrics"][c], c, frac[c]) if c in row["metrics"] else "" for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    lines += closing_sections(rows, path, plots, "holds its config, `history.csv` and, when it finished, its "
                              "report; Ray Tune's records are in `tune/`.")
    write_text_atomic(path, "\n".join(lines))


def write_search_report(sweep_cfg, trials, errors, started, max_t):
    """Write ``results.csv``, ``results.md`` and the plots of a search; returns the rows."""
    out_dir = output_dir(sweep_cfg)
    rows = collect_search_rows(trials, errors, out_dir, sweep_cfg.metric, started)
    columns = metric_columns(rows)
    write_csv(out_dir / "results.csv", rows, columns, epochs=True)
    summary = summarize(rows, columns)
    status = {r["trial"].label: r["status"] for r in rows}
    for s in summary:  # a trial stopped early has no test figures: say so on its empty bar
        s["note"] = status[s["label"]] if status[s["label"]] in (STOPPED, "failed") else None
    plots = write_plots(out_dir, summary, columns, per="trial") if any(r["metrics"] for r in rows) else []
    curves = write_curves(out_dir, rows, sweep_cfg.metric, stopped=STOPPED, keys=grid_keys(trials))
    plots = ([curves] if curves else []) + plots
    write_search_markdown(out_dir / "results.md", sweep_cfg, rows, columns, plots, max_t)
    return rows


__all__ = ["STOPPED", "RECORD_FILE", "write_record", "read_record", "collect_search_rows",
           "write_search_markdown", "write_search_report"]
