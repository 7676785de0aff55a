"""One trial of a search, run by a Ray Tune actor: the train command as its own process,
each epoch reported to Tune as training writes it, the process ended with the trial.

Why a process watched from outside: the trial runs the very command a grid sweep (or a
user) runs, with no TensorFlow in the actor, and the training loop needs no hook. The
train command rewrites ``<run>/<model type>/history.csv`` atomically after every epoch
(:mod:`nengo_actions.engine.training`); the trial reads it every :data:`POLL_SECONDS` and calls
``ray.tune.report`` once per new epoch, with ``epoch`` (ASHA's time) and the metric.

Stopping. Tune runs the function in a thread of the actor and blocks it in ``report``
until it decides; a stopped trial's ``report`` raises ``SystemExit`` in that thread, and
the ``finally`` ends the train process's process group (SIGTERM, then SIGKILL). Tune does
not wait for that thread before it lets the actor go, and an actor can also die (a lost
node, the out-of-memory killer), so the kernel backs this up: the train command starts
through a few lines that set ``PR_SET_PDEATHSIG`` (SIGKILL once the thread that started it
ends) and then ``exec`` it. subprocess's ``preexec_fn`` could set it too, but runs Python
between ``fork`` and ``exec``, which is unsafe in the actor's many threads.

The last epoch is reported only once the process has exited and ``metrics.json`` is
written: ASHA stops every trial that reaches ``max_t``, and a stop then would cut the
trial's test evaluation short.

A trial whose run folder already holds ``metrics.json`` replays its epochs from
``history.csv`` without training; an unfinished run folder (a trial stopped or killed
before) replays its epochs and then goes on with ``--resume``. So running a search again
reuses every epoch trained before, and a train process killed by a signal continues where
it was (``retries`` times).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nengo_actions import config as config_mod
from nengo_actions.config import PROJECT_ROOT
from nengo_actions.io import write_text_atomic
from nengo_actions.sweep.backends import (
    TrialError,
    exit_error,
    finished_run,
    read_metrics,
    signal_name,
    train_env,
)
from nengo_actions.sweep.spec import TrialFactory

POLL_SECONDS = 0.5
#: Seconds a stopped train process has after SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 10.0
#: The Tune config key of the grid point (and repeat) a trial belongs to.
GRID_KEY = "_grid"
#: In a trial folder: why the trial failed (see :func:`run_search_trial`).
FAILED_FILE = "failed.txt"
#: Figures of metrics.json that the last report carries besides the epoch's.
FINAL_KEYS = ("test_clip_accuracy", "spiking_test_clip_accuracy")

# Run with `python -S -c`: ask for SIGKILL when the parent thread ends (PR_SET_PDEATHSIG is
# 1), leave if the parent is gone already, then become the train command.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


@dataclasses.dataclass(frozen=True)
class SearchContext:
    """What a trial needs besides its Tune config; plain values, sent to the actors."""

    factory: TrialFactory
    points: tuple  # the grid's points, each ((key, value), ...)
    repeats: int
    keys: tuple  # the search space's keys, in the config's order
    metric: str = "val_clip_accuracy"
    command: tuple = None  # argv of the train entry point; None: this Python's train command
    timeout: float = None
    retries: int = 1

    def trial(self, config):
        """The :class:`~nengo_actions.sweep.spec.Trial` of a Tune config: the grid point
        and repeat at ``config[GRID_KEY]`` (point-major), then the drawn values."""
        point, repeat = divmod(int(config.get(GRID_KEY, 0)), self.repeats)
        drawn = [(key, _plain(config[key])) for key in self.keys]
        pairs = list(self.points[point]) + drawn
        label = " / ".join(_short(v) for _, v in pairs)
        return self.factory.make(pairs, repeat, label=label)


def _plain(value):
    """A drawn value as a plain Python value (Tune may give numpy scalars)."""
    return value.item() if hasattr(value, "item") else value


def _short(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return value if isinstance(value, str) else str(value).replace(" ", "")


def read_history(path):
    """The rows of a ``history.csv`` as ``{field: float}`` (NaN for an empty cell), ``[]``
    while there is none. It is replaced whole after each epoch, so a read sees one version."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append({k: float(v) if v not in ("", None) else math.nan for k, v in row.items()})
        except ValueError:
            continue
    return rows


def run_folders(trial_dir):
    """A trial's run folders (holding ``config.json``), oldest first."""
    trial_dir = Path(trial_dir)
    if not trial_dir.is_dir():
        return []
    return sorted((p for p in trial_dir.iterdir() if (p / "config.json").is_file()), key=lambda p: p.stat().st_mtime)


def history_path(run_dir, model_type=None):
    """``history.csv`` of the run's first model (``model.type`` of its config)."""
    if model_type is None:
        try:
            model_type = config_mod.read_json(Path(run_dir) / "config.json")["model"]["type"]
        except (OSError, KeyError, TypeError, config_mod.ConfigError):
            return Path(run_dir) / "history.csv"  # none: the run holds no epochs
    return Path(run_dir) / model_type / "history.csv"


def start_process(argv, log, env=None, cwd=PROJECT_ROOT):
    """Start ``argv`` in a process group of its own, writing to ``log``; on Linux it is
    killed when the thread that started it ends (see the module's notes)."""
    if sys.platform.startswith("linux"):
        argv = [sys.executable, "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=cwd, env=env, start_new_session=True)


def end_process(proc, grace=STOP_GRACE_SECONDS):
    """End a process started by :func:`start_process` and what it started, unless it
    has exited by itself."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group: an extraction the train command started too
    proc.wait()


class _Reporter:
    """Reports epochs to Tune once each, in order; the last epoch only with the final figures."""

    def __init__(self, report, metric, epochs):
        self.report, self.metric, self.epochs, self.reported = report, metric, epochs, 0

    def send(self, rows, final=None):
        rows = [r for r in rows if "epoch" in r and int(r["epoch"]) > self.reported]
        for i, row in enumerate(rows):
            epoch = int(row["epoch"])
            if final is None and epoch >= self.epochs:
                return
            result = {k: v for k, v in row.items() if k != "epoch"}
            result.update(epoch=epoch)
            result.setdefault(self.metric, math.nan)
            if final is not None and i == len(rows) - 1:
                result.update({k: final[k] for k in FINAL_KEYS if isinstance(final.get(k), (int, float))})
            self.report(result)
            self.reported = epoch


def run_search_trial(config, context):
    """The Tune function trainable of a search (``tune.with_parameters(..., context=)``).

    A failure of the train command (an exit status, a timeout, a signal in every attempt)
    is written to ``<trial>/failed.txt`` and the function returns: raised, it would make
    Tune run the trial again up to ``max_failures``, which is kept for actors that die.
    """
    from ray import tune

    trial = context.trial(config)
    trial_dir = Path(trial.trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    failed = trial_dir / FAILED_FILE
    failed.unlink(missing_ok=True)
    cfg = config_mod.load_config(trial.base_config, trial.overrides)
    model_type = cfg.model.type
    reporter = _Reporter(tune.report, context.metric, cfg.train.for_model(model_type).epochs)
    run = finished_run(trial)
    if run is not None:
        reporter.send(read_history(history_path(run, model_type)), final=read_metrics(run))
        return
    try:
        _train(trial, context, model_type, reporter)
    except TrialError as e:
        write_text_atomic(failed, str(e))


def _train(trial, context, model_type, reporter):
    command = context.command or (sys.executable, "-m", "nengo_actions.train")
    trial_dir = Path(trial.trial_dir)
    log_path = trial_dir / "log.txt"
    returncode = 0
    for attempt in range(context.retries + 1):
        runs = run_folders(trial_dir)
        unfinished = [r for r in runs if read_metrics(r) is None]
        run = unfinished[-1] if unfinished else None
        if run is not None:
            reporter.send(read_history(history_path(run, model_type)))  # its epochs so far
            argv = [*command, "--resume", str(run)]
        else:
            argv = trial.command(command)
        note = "" if attempt == 0 else f"\n(attempt {attempt + 1}: the last one was killed)\n"
        with open(log_path, "a" if run is not None or attempt else "w", encoding="utf-8") as log:
            log.write(note + "$ " + " ".join(argv) + "\n")
            log.flush()
            proc = start_process(argv, log, train_env())
            try:
                returncode, run = _watch(proc, trial, run, set(runs), model_type, reporter, context.timeout, log_path)
            finally:
                end_process(proc)
        if returncode == 0:
            metrics = read_metrics(run) if run is not None else None
            if metrics is None:
                raise TrialError(f"trial {trial.trial_id}: the train command wrote no metrics.json; log: {log_path}")
            reporter.send(read_history(history_path(run, model_type)), final=metrics)
            return
        if returncode > 0:
            raise exit_error(trial, returncode, log_path)
    raise TrialError(f"trial {trial.trial_id}: killed by {signal_name(-returncode)} in each of "
                     f"{context.retries + 1} attempt(s); log: {log_path}")


def _watch(proc, trial, run, before, model_type, reporter, timeout, log_path):
    """Report the process's epochs as they come; ``(exit status, run folder)`` once it exits."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        returncode = proc.poll()
        if run is None:
            new = [r for r in run_folders(trial.trial_dir) if r not in before]
            run = new[-1] if new else None
        if run is not None:
            reporter.send(read_history(history_path(run, model_type)))
        if returncode is not None:
            return returncode, run
        if deadline is not None and time.monotonic() > deadline:
            raise TrialError(f"trial {trial.trial_id}: no result after {timeout} s; log: {log_path}")
        time.sleep(POLL_SECONDS)


__all__ = ["SearchContext", "run_search_trial", "read_history", "run_folders", "history_path",
           "start_process", "end_process", "GRID_KEY", "FAILED_FILE"]
