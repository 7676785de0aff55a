"""Sweeps: one base config, a grid over any config keys, repeats with different seeds.

``python -m nengo_actions.sweep -c configs/sweep_neurons.json`` expands the grid, checks
every trial's config (unknown keys, wrong types, unknown neuron types) before any trial
starts, runs each trial as its own ``python -m nengo_actions.train`` process (so no
TensorFlow state leaks from one trial into the next), and writes the results table and
plots into the sweep's output folder.

A sweep config (every key optional; :data:`SWEEP_DEFAULTS` holds the defaults)::

    {
      "name": "sweep_neurons",
      "base": "configs/config.json",          # a train config; null: the built-in defaults
      "base_settings": {"train": {"epochs": 5}},   # applied on top of the base config
      "grid": {                               # a key (as for --set) -> the values to try
        "model.lmu.neuron_type": ["LIF", "RegularSpiking(LIFRate)"],
        "model.lmu.neuron_type,model.lmu.hidden_neuron_type": ["LIF", "LIFRate"]
      },
      "repeats": 3,                           # repeat r runs with seed = seed + r
      "seed": 0,
      "output_dir": "results/sweep_neurons",  # default: results/sweeps/<name>
      "backend": "process", "jobs": 1, "ray_address": null, "cpus_per_trial": 1,
      "timeout": null                         # seconds per trial; null: no limit
    }

``grid`` is either one object (its Cartesian product) or a list of objects (the union of
their products, as scikit-learn's ``ParameterGrid``). A key of several comma-separated
config keys sets all of them to each value (e.g. the neuron type of two layers at once).

Output folder::

    sweep.json          the resolved sweep config
    base_config.json    the resolved base config every trial starts from
    trials/<id>/        one folder per trial: log.txt and the train command's run folder
    results.csv         one row per trial: the grid values, seed, status and every metric
    results.md          mean +- std over repeats per grid point, then every trial
    *.png               accuracy per grid point, accuracy against energy, training time

Resuming: a trial whose folder holds a run folder with a readable ``metrics.json`` is
finished and is not run again. A trial's id is derived from what the sweep states: the
base config file's content, ``base_settings``, the grid values and the seed. Editing any
of them gives new trials instead of reusing old results; defaults added to the project's
config schema later do not (each run folder records the full config it ran with).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import csv
import dataclasses
import datetime
import hashlib
import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from nengo_actions import config as config_mod
from nengo_actions.io import write_text_atomic
from nengo_actions.config import (
    DEFAULTS,
    PROJECT_ROOT,
    ConfigError,
    flatten,
    merge,
    parse_override,
    resolve_path,
    set_path,
    settings,
    write_json_atomic,
)

SWEEP_DEFAULTS = {
    "name": "sweep",
    "base": "configs/config.json",
    "base_settings": {},
    "grid": {},
    "repeats": 1,
    "seed": 0,
    "output_dir": None,  # default: results/sweeps/<name>
    "backend": "process",  # "process": local subprocesses; "ray": tasks on a Ray cluster
    "jobs": 1,  # trials at once (process backend; CPUs of a local Ray)
    "ray_address": None,  # an existing cluster; null starts a local one
    "cpus_per_trial": 1,  # CPUs Ray reserves for each trial
    "timeout": None,  # seconds per trial
}
#: Keys whose value is free-form and validated separately (against the train config).
OPEN_KEYS = ("grid", "base_settings")
BACKENDS = ("process", "ray")
#: Train config keys the sweep sets itself for every trial.
RESERVED_KEYS = ("seed", "save_dir", "name")

#: Metrics every train run writes, in the order the tables show them.
ACCURACY_KEYS = (
    "test_clip_accuracy",
    "spiking_test_clip_accuracy",
    "test_step_accuracy",
    "val_clip_accuracy",
)
TIME_KEYS = ("train_seconds",)
RUN_DIR_PREFIX = "run directory: "


class TrialError(RuntimeError):
    """A trial's train command failed; the message holds the end of its log."""


# ---------------------------------------------------------------------------------------
# The sweep config


@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of the train command: a grid point with one seed.

    ``overrides`` are ``--set`` strings (``key=<JSON value>``) applied on top of
    ``base_config``; ``trial_dir`` is where the run folder and ``log.txt`` go.
    """

    trial_id: str
    point: tuple  # ((key, value), ...) in grid order; a comma key sets several keys
    label: str
    repeat: int
    seed: int
    overrides: tuple
    base_config: str
    trial_dir: str

    def command(self, train_command):
        """The argv of this trial for ``train_command`` (argv of the train entry point)."""
        argv = list(train_command) + ["-c", self.base_config]
        for text in self.overrides:
            argv += ["--set", text]
        return argv


def _check_sweep_types(cfg, where):
    if cfg["backend"] not in BACKENDS:
        raise ConfigError(
            f"{where}: key 'backend' must be one of {', '.join(BACKENDS)}; got {cfg['backend']!r}"
        )
    for key in ("repeats", "jobs", "cpus_per_trial"):
        if cfg[key] < 1:
            raise ConfigError(f"{where}: key '{key}' must be at least 1, got {cfg[key]}")
    for key, kind in (("output_dir", str), ("ray_address", str), ("base", str), ("timeout", (int, float))):
        value = cfg[key]
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ConfigError(f"{where}: key '{key}' must be {'a number' if key == 'timeout' else 'a string'} or null, got {value!r}")
    if not isinstance(cfg["base_settings"], dict):
        raise ConfigError(f"{where}: key 'base_settings' must be an object")
    grid = cfg["grid"]
    grids = grid if isinstance(grid, list) else [grid]
    if not grids or not all(isinstance(g, dict) for g in grids):
        raise ConfigError(f"{where}: key 'grid' must be an object or a non-empty list of objects")
    for g in grids:
        for key, values in g.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(
                    f"{where}: grid key '{key}' must have a non-empty list of values, got {values!r}"
                )


def load_sweep_config(path, overrides=()):
    """Read a sweep config, apply ``--set`` overrides and check its own keys.

    ``--set grid.<key>=[...]`` sets a grid key (``<key>`` may itself contain dots) and
    ``--set base_settings.<key>=value`` a base setting. The train config keys in
    ``grid`` and ``base_settings`` are checked by :func:`expand_trials`.

    Returns
    -------
    dict
        The resolved sweep config, ``cfg["_source"]`` naming the file.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep config not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    open_values = {k: raw.pop(k) for k in OPEN_KEYS if k in raw}
    schema = {k: v for k, v in SWEEP_DEFAULTS.items() if k not in OPEN_KEYS}
    cfg = merge(schema, raw, str(path))
    for key in OPEN_KEYS:
        cfg[key] = copy.deepcopy(open_values.get(key, SWEEP_DEFAULTS[key]))
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("grid."):
            grid = cfg["grid"]
            if isinstance(grid, list):
                raise ConfigError(f"--set {text}: 'grid' is a list of grids; edit the file instead")
            grid[key[len("grid."):]] = value
        elif key.startswith("base_settings."):
            set_path(cfg["base_settings"], key[len("base_settings."):], value)
        elif key in OPEN_KEYS:
            cfg[key] = value
        else:
            partial = {}
            set_path(partial, key, value)
            cfg.update(merge({k: cfg[k] for k in schema}, partial, f"--set {text}"))
    _check_sweep_types(cfg, str(path))
    cfg["_source"] = str(path)
    return cfg


def output_dir(sweep_cfg):
    """The sweep's output folder (``results/sweeps/<name>`` unless set)."""
    return resolve_path(sweep_cfg["output_dir"] or f"results/sweeps/{sweep_cfg['name']}")


def base_config(sweep_cfg):
    """The train config every trial starts from: ``base`` plus ``base_settings``."""
    where = sweep_cfg.get("_source", "sweep config")
    if sweep_cfg["base"] is not None:
        base_path = resolve_path(sweep_cfg["base"])
        if not base_path.exists():
            raise ConfigError(f"{where}: key 'base' names a file that does not exist: {base_path}")
        cfg = config_mod.load_config(base_path)
    else:
        cfg = merge(DEFAULTS, {}, where)
    cfg = merge(cfg, sweep_cfg["base_settings"], f"{where}: base_settings")
    config_mod.check_paths(cfg)
    return cfg


def _points(grid):
    """Grid points in order: lists of (key, value), key possibly comma-separated."""
    for g in grid if isinstance(grid, list) else [grid]:
        keys = list(g)
        for values in itertools.product(*(g[k] for k in keys)):
            yield list(zip(keys, values))


def _check_neuron_types(cfg, where):
    from nengo_actions.neuron_types import NeuronTypeError, parse_neuron_type

    for key, value in flatten(settings(cfg)):
        if key.rsplit(".", 1)[-1].endswith("neuron_type") and value is not None:
            try:
                parse_neuron_type(value)
            except NeuronTypeError as e:
                raise ConfigError(f"{where}: key '{key}': {e}") from None


def _value_text(value):
    return value if isinstance(value, str) else json.dumps(value)


def _slug(point):
    text = "_".join(_value_text(v) for _, v in point) or "base"
    text = re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")
    return text[:60]


def _digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def expand_trials(sweep_cfg, base_cfg=None):
    """Expand a sweep into trials, checking every trial's train config first.

    Every grid value is merged into the base config with the train config's own
    validation (an unknown key names the closest valid one) and every ``*neuron_type``
    value is parsed by :func:`nengo_actions.neuron_types.parse_neuron_type`, so a bad
    key or neuron type raises :class:`ConfigError` before any trial starts.

    Returns
    -------
    list of Trial
        Grid points in order, each repeated ``repeats`` times with seeds
        ``seed, seed + 1, ...``.
    """
    where = sweep_cfg.get("_source", "sweep config")
    base_cfg = base_config(sweep_cfg) if base_cfg is None else base_cfg
    _check_neuron_types(base_cfg, f"{where}: base config")
    base_identity = None
    if sweep_cfg["base"] is not None:
        base_identity = json.loads(resolve_path(sweep_cfg["base"]).read_text(encoding="utf-8"))
    out_dir = output_dir(sweep_cfg)
    base_path = out_dir / "base_config.json"
    trials, seen = [], set()
    for point in _points(sweep_cfg["grid"]):
        cfg, overrides = base_cfg, []
        for group, value in point:
            for key in [k.strip() for k in group.split(",")]:
                if key in RESERVED_KEYS:
                    raise ConfigError(
                        f"{where}: grid key '{key}' is set by the sweep itself "
                        "(use 'repeats' and 'seed' for seeds)"
                    )
                partial = {}
                set_path(partial, key, value)
                cfg = merge(cfg, partial, f"{where}: grid key '{key}'")
                overrides.append(f"{key}={json.dumps(value)}")
        _check_neuron_types(cfg, f"{where}: grid point {_slug(point)}")
        label = " / ".join(_value_text(v) for _, v in point) or "base"
        for repeat in range(sweep_cfg["repeats"]):
            seed = sweep_cfg["seed"] + repeat
            stated = [base_identity, sweep_cfg["base_settings"], [[k, v] for k, v in point], seed]
            trial_id = f"{_slug(point)}-s{seed}-{_digest(stated)}"
            if trial_id in seen:
                raise ConfigError(f"{where}: grid point {label!r} appears twice in the grid")
            seen.add(trial_id)
            trial_dir = out_dir / "trials" / trial_id
            trials.append(
                Trial(
                    trial_id=trial_id,
                    point=tuple((k, v if not isinstance(v, list) else tuple(v)) for k, v in point),
                    label=label,
                    repeat=repeat,
                    seed=seed,
                    overrides=tuple(
                        overrides
                        + [f"seed={seed}", f"save_dir={json.dumps(str(trial_dir))}", 'name="run"']
                    ),
                    base_config=str(base_path),
                    trial_dir=str(trial_dir),
                )
            )
    return trials


# ---------------------------------------------------------------------------------------
# Running trials


def read_metrics(run_dir):
    """``metrics.json`` of a run folder as a dict, or ``None`` if missing or unreadable."""
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return metrics if isinstance(metrics, dict) else None


def finished_run(trial):
    """The newest run folder of a trial holding a readable ``metrics.json``, or ``None``."""
    trial_dir = Path(trial.trial_dir)
    if not trial_dir.is_dir():
        return None
    runs = sorted(
        (p for p in trial_dir.iterdir() if p.is_dir() and (p / "metrics.json").is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    for run in reversed(runs):
        if read_metrics(run) is not None:
            return run
    return None


@dataclasses.dataclass(frozen=True)
class TrainCommandTrial:
    """Run a trial as a subprocess of the train command and return its run folder.

    Parameters
    ----------
    command : tuple of str or None
        argv of the train entry point; ``None`` is ``python -m nengo_actions.train``
        with the Python running the trial (resolved where the trial runs, so a Ray
        worker uses its own interpreter).
    timeout : float or None
        Seconds before the trial's process is killed.

    The process writes its output to ``<trial_dir>/log.txt``; the run folder is the
    path on the last ``run directory: PATH`` line it prints.
    """

    command: tuple = None
    timeout: float = None

    def __call__(self, trial):
        command = self.command or (sys.executable, "-m", "nengo_actions.train")
        trial_dir = Path(trial.trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / "log.txt"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p
        )
        env.setdefault("MPLBACKEND", "Agg")
        argv = trial.command(command)
        with open(log_path, "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(argv) + "\n")
            log.flush()
            try:
                proc = subprocess.run(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=PROJECT_ROOT,
                    env=env,
                    timeout=self.timeout,
                )
            except subprocess.TimeoutExpired:
                raise TrialError(
                    f"trial {trial.trial_id}: no result after {self.timeout} s; log: {log_path}"
                ) from None
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        if proc.returncode != 0:
            tail = "\n".join("    " + line for line in lines[-15:])
            raise TrialError(
                f"trial {trial.trial_id}: exit status {proc.returncode}; log: {log_path}\n{tail}"
            )
        run_lines = [line for line in lines if line.startswith(RUN_DIR_PREFIX)]
        if not run_lines:
            raise TrialError(
                f"trial {trial.trial_id}: the train command printed no "
                f"'{RUN_DIR_PREFIX}PATH' line; log: {log_path}"
            )
        run_dir = Path(run_lines[-1][len(RUN_DIR_PREFIX):].strip())
        if read_metrics(run_dir) is None:
            raise TrialError(f"trial {trial.trial_id}: {run_dir} holds no readable metrics.json")
        return run_dir


def _run_one(trial_fn, trial):
    return str(trial_fn(trial))


def _outcome(trial, run_dir=None, error=None):
    return {"trial": trial, "run_dir": run_dir, "error": error}


def _process_backend(todo, trial_fn, jobs, on_done):
    if jobs == 1:
        for trial in todo:
            try:
                on_done(_outcome(trial, run_dir=_run_one(trial_fn, trial)))
            except Exception as e:  # one failed trial must not stop the others
                on_done(_outcome(trial, error=f"{type(e).__name__}: {e}"))
        return
    # The first trial runs alone: data and features it generates (the train command
    # generates a missing feature store) are then shared instead of built N times at once.
    first, todo = todo[:1], todo[1:]
    _process_backend(first, trial_fn, 1, on_done)
    # Each trial is its own train process; threads only wait for them.
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_one, trial_fn, t): t for t in todo}
        for future in concurrent.futures.as_completed(futures):
            trial = futures[future]
            try:
                on_done(_outcome(trial, run_dir=future.result()))
            except Exception as e:
                on_done(_outcome(trial, error=f"{type(e).__name__}: {e}"))


def _ray_backend(todo, trial_fn, jobs, on_done, address=None, cpus_per_trial=1):
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray: pip install ray") from None
    started = False
    if not ray.is_initialized():
        env_vars = {"PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)}
        if address:
            ray.init(address=address, runtime_env={"env_vars": env_vars}, log_to_driver=False)
        else:
            ray.init(
                num_cpus=jobs * cpus_per_trial,
                include_dashboard=False,
                runtime_env={"env_vars": env_vars},
                log_to_driver=False,
                configure_logging=False,
            )
        started = True
    try:
        remote = ray.remote(num_cpus=cpus_per_trial, max_retries=0)(_run_one)
        pending = {remote.remote(trial_fn, t): t for t in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                trial = pending.pop(ref)
                try:
                    on_done(_outcome(trial, run_dir=ray.get(ref)))
                except Exception as e:
                    cause = getattr(e, "cause", None) or e
                    on_done(_outcome(trial, error=f"{type(cause).__name__}: {cause}"))
    finally:
        if started:
            ray.shutdown()


def run_trials(
    trials,
    trial_fn=None,
    backend="process",
    jobs=1,
    ray_address=None,
    cpus_per_trial=1,
    timeout=None,
    progress=True,
):
    """Run the trials that are not finished yet.

    Parameters
    ----------
    trials : list of Trial
    trial_fn : callable or None
        ``trial_fn(trial) -> run folder`` (a folder holding ``metrics.json``); ``None``
        runs the train command (:class:`TrainCommandTrial`). With Ray it must be
        picklable.
    backend : "process" or "ray"
        ``"process"``: ``jobs`` trials at once on this machine. ``"ray"``: one Ray task per
        trial, on the cluster at ``ray_address`` or on a local Ray with ``jobs`` CPUs.
    progress : bool
        Show a progress bar with the time left.

    Returns
    -------
    dict
        trial id -> ``{"trial", "run_dir", "error", "skipped"}``.
    """
    from tqdm import tqdm

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    trial_fn = trial_fn or TrainCommandTrial(timeout=timeout)
    outcomes, todo = {}, []
    for trial in trials:
        run = finished_run(trial)
        if run is not None:
            outcomes[trial.trial_id] = dict(_outcome(trial, run_dir=str(run)), skipped=True)
        else:
            todo.append(trial)
    bar = tqdm(
        total=len(trials), initial=len(trials) - len(todo), unit="trial", desc="sweep",
        disable=not progress, dynamic_ncols=True,
    )

    def on_done(outcome):
        outcomes[outcome["trial"].trial_id] = dict(outcome, skipped=False)
        if outcome["error"]:
            bar.write(f"failed: {outcome['error']}")
        bar.update(1)

    try:
        if backend == "ray":
            _ray_backend(todo, trial_fn, jobs, on_done, ray_address, cpus_per_trial)
        else:
            _process_backend(todo, trial_fn, jobs, on_done)
    finally:
        bar.close()
    return outcomes


# ---------------------------------------------------------------------------------------
# Results


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_firing_rate(key):
    return "firing_rate" in key or key.endswith("_hz")


#: Devices whose energy the Markdown tables show (results.csv has every device).
TABLE_ENERGY_DEVICES = ("loihi", "spinnaker2", "gpu")


def metric_columns(rows):
    """The numeric metric columns of ``rows`` in table order: accuracies, time, firing
    rates, energy, then the rest. Keys of one model among several (``<model>.<key>``)
    and per-class figures are left to the end."""
    keys = []
    for row in rows:
        for k, v in row["metrics"].items():
            if _is_number(v) and k not in keys:
                keys.append(k)

    def rank(key):
        if "." in key:
            return (9, key)
        if key in ACCURACY_KEYS:
            return (0, ACCURACY_KEYS.index(key))
        if key in TIME_KEYS:
            return (1, key)
        if _is_firing_rate(key):
            return (2, key.startswith("rate_mode"), key)
        if "energy" in key:
            return (3, key)
        if "accuracy" in key:
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
                "metrics": {k: v for k, v in (metrics or {}).items() if _is_number(v)},
            }
        )
    return rows


def _grid_keys(trials):
    keys = []
    for trial in trials:
        for k, _ in trial.point:
            if k not in keys:
                keys.append(k)
    return keys


def write_csv(path, rows, columns):
    grid_keys = _grid_keys([r["trial"] for r in rows])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial_id", "label", *grid_keys, "repeat", "seed", "status", *columns, "run_dir", "error"])
    for row in rows:
        t = row["trial"]
        point = dict(t.point)
        writer.writerow(
            [t.trial_id, t.label]
            + [_value_text(point[k]) if k in point else "" for k in grid_keys]
            + [t.repeat, t.seed, row["status"]]
            + [format(row["metrics"][c], ".10g") if c in row["metrics"] else "" for c in columns]
            + [row["run_dir"], row["error"].splitlines()[0] if row["error"] else ""]
        )
    write_text_atomic(path, buf.getvalue())


def summarize(rows, columns):
    """Per grid point (in grid order): the number of finished repeats and, per metric,
    ``(mean, std)`` over them (sample standard deviation; 0 for one repeat)."""
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
                mean = sum(values) / len(values)
                var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
                stats[c] = (mean, math.sqrt(var), len(values))
        summary.append({"label": label, "point": group[0]["trial"].point, "n": len(done), "of": len(group), "stats": stats})
    return summary


def _is_fraction_column(column, rows):
    values = [r["metrics"][column] for r in rows if column in r["metrics"]]
    return "accuracy" in column and values and all(0.0 <= v <= 1.0 for v in values)


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
    rates = [c for c in columns if _is_firing_rate(c) and "." not in c]
    spiking_rates = [c for c in rates if not c.startswith("rate_mode")]
    shown += (spiking_rates or rates)[:3]
    energy = [c for c in columns if "energy" in c and "." not in c]
    picked = [c for d in TABLE_ENERGY_DEVICES for c in energy if f"_{d}_" in c]
    shown += picked or energy[:3]
    return shown


def write_markdown(path, sweep_cfg, trials, rows, summary, columns, plots):
    shown = table_columns(columns)
    frac = {c: _is_fraction_column(c, rows) for c in shown}
    repeats = sweep_cfg["repeats"]
    grid = sweep_cfg["grid"]
    lines = [
        f"# Sweep: {sweep_cfg['name']}",
        "",
        f"- base config: `{sweep_cfg['base']}`"
        + (f", with `{json.dumps(sweep_cfg['base_settings'])}`" if sweep_cfg["base_settings"] else ""),
        f"- grid: `{json.dumps(grid)}`",
        f"- repeats: {repeats} (seeds {sweep_cfg['seed']}..{sweep_cfg['seed'] + repeats - 1})",
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
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed trials", ""]
        for r in failed:
            error = r["error"].splitlines()[0].replace(str(Path(path).parent) + os.sep, "")
            lines.append(f"- `{r['trial'].trial_id}`: {error}")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", "Every metric of every trial is in `results.csv`; each trial's run folder "
              "(under `trials/`) holds its config, report and plots.", ""]
    write_text_atomic(path, "\n".join(lines))


def _energy_column(columns):
    energy = [c for c in columns if "energy" in c and "." not in c]
    for device in ("loihi", "spinnaker2", "spinnaker"):
        for c in energy:
            if f"_{device}_" in c:
                return c
    return energy[0] if energy else None


def write_plots(out_dir, summary, columns):
    """PNG plots of a sweep summary; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    labels = [s["label"] for s in summary]
    x = list(range(len(summary)))

    def series(column, scale=1.0):
        means = [s["stats"][column][0] * scale if column in s["stats"] else math.nan for s in summary]
        stds = [s["stats"][column][1] * scale if column in s["stats"] else 0.0 for s in summary]
        return means, stds

    acc = [c for c in ("test_clip_accuracy", "spiking_test_clip_accuracy") if c in columns]
    if acc:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(x) + 2), 4.5))
        width = 0.8 / len(acc)
        for i, column in enumerate(acc):
            means, stds = series(column, 100.0)
            ax.bar([xi + (i - (len(acc) - 1) / 2) * width for xi in x], means, width, yerr=stds,
                   capsize=3, label={"test_clip_accuracy": "rate neurons", "spiking_test_clip_accuracy": "spiking neurons"}[column])
        chance = [s["stats"]["chance_accuracy"][0] for s in summary if "chance_accuracy" in s["stats"]]
        if chance:
            ax.axhline(100 * chance[0], color="k", linestyle="--", linewidth=1, label="chance")
        for xi, s in zip(x, summary):
            if not s["n"]:
                ax.text(xi, 2, "no result", ha="center", va="bottom", rotation=90, color="tab:red")
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel("per-clip test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title("Accuracy per grid point (mean +- std over repeats)")
        ax.legend(loc="upper right")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        plots.append(out_dir / "accuracy.png")
        fig.savefig(plots[-1], dpi=120)
        plt.close(fig)

    energy = _energy_column(columns)
    acc_key = "spiking_test_clip_accuracy" if "spiking_test_clip_accuracy" in columns else (acc[0] if acc else None)
    if energy and acc_key:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
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
        plots.append(out_dir / "accuracy_vs_energy.png")
        fig.savefig(plots[-1], dpi=120)
        plt.close(fig)

    if "train_seconds" in columns:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(x) + 2), 4))
        means, stds = series("train_seconds")
        ax.bar(x, means, 0.6, yerr=stds, capsize=3, color="tab:gray")
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_ylabel("training time (s)")
        ax.set_title("Training time per grid point")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        plots.append(out_dir / "train_time.png")
        fig.savefig(plots[-1], dpi=120)
        plt.close(fig)
    return plots


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


# ---------------------------------------------------------------------------------------
# The whole sweep


def prepare(sweep_cfg, write=True):
    """Validate a sweep and return its trials; with ``write``, also write ``sweep.json``
    and ``base_config.json`` (what the trials read) into the output folder."""
    base_cfg = base_config(sweep_cfg)
    trials = expand_trials(sweep_cfg, base_cfg)
    if not write:
        return trials
    out_dir = output_dir(sweep_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "sweep.json", {k: v for k, v in sweep_cfg.items() if not k.startswith("_")})
    write_json_atomic(out_dir / "base_config.json", settings(base_cfg))
    return trials


def run_sweep(sweep_cfg, trial_fn=None, progress=True):
    """Validate, run the unfinished trials and write the report.

    Returns
    -------
    (trials, rows) : the trials and their result rows (see :func:`collect_rows`).
    """
    trials = prepare(sweep_cfg)
    outcomes = run_trials(
        trials,
        trial_fn=trial_fn,
        backend=sweep_cfg["backend"],
        jobs=sweep_cfg["jobs"],
        ray_address=sweep_cfg["ray_address"],
        cpus_per_trial=sweep_cfg["cpus_per_trial"],
        timeout=sweep_cfg["timeout"],
        progress=progress,
    )
    rows = write_report(sweep_cfg, trials, outcomes)
    return trials, rows


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nengo_actions.sweep",
        description="Run a grid of train runs (e.g. one per neuron type) and tabulate them.",
    )
    config_mod.add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "sweep_neurons.json")
    parser.add_argument("--jobs", type=int, help="trials at once (default: the config's 'jobs')")
    parser.add_argument("--backend", choices=BACKENDS, help="'process' (this machine) or 'ray'")
    parser.add_argument("--ray-address", help="address of an existing Ray cluster (default: a local Ray)")
    parser.add_argument("--output", help="output folder (default: the config's 'output_dir')")
    parser.add_argument("--dry-run", action="store_true", help="check the sweep and list its trials")
    parser.add_argument("--report-only", action="store_true", help="rewrite the tables and plots from finished trials")
    return parser


def _command(argv):
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    for flag, key in (("jobs", "jobs"), ("backend", "backend"), ("ray_address", "ray_address"), ("output", "output_dir")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if args.ray_address and not args.backend:
        overrides.append('backend="ray"')
    sweep_cfg = load_sweep_config(args.config, overrides)
    trials = prepare(sweep_cfg, write=not args.dry_run)
    out_dir = output_dir(sweep_cfg)
    n_done = sum(finished_run(t) is not None for t in trials)
    print(f"sweep '{sweep_cfg['name']}': {len(trials)} trials ({n_done} finished before), output: {out_dir}")
    if args.dry_run:
        for t in trials:
            state = "finished" if finished_run(t) else "to run"
            print(f"  {t.trial_id}  [{state}]  {' '.join('--set ' + o for o in t.overrides[:-2])}")
        return 0
    start = time.monotonic()
    if args.report_only:
        rows = write_report(sweep_cfg, trials)
    else:
        _, rows = run_sweep(sweep_cfg)
    failed = [r for r in rows if r["status"] == "failed"]
    missing = [r for r in rows if r["status"] == "missing"]
    print(f"{len(rows) - len(failed) - len(missing)}/{len(rows)} trials finished in {time.monotonic() - start:.0f} s")
    print(f"results: {out_dir / 'results.md'}")
    if failed:
        print(f"{len(failed)} trials failed; rerun the same command to retry them:", file=sys.stderr)
        for r in failed:
            print(f"  {r['error'].splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    """The command; bad input exits 2 with one line (see :func:`~nengo_actions.config.run_command`)."""
    return config_mod.run_command(lambda: _command(argv))


if __name__ == "__main__":
    sys.exit(main())
