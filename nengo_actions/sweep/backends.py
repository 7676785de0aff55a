"""Running trials: the train command as a subprocess, a local pool or Ray, timeouts.

Each trial runs as its own ``python -m nengo_actions.train`` process, so no TensorFlow
state leaks from one trial into the next. A trial whose folder holds a run folder with
a readable ``metrics.json`` is finished and is not run again (:func:`finished_run`), so a
sweep that was stopped resumes where it was.

A trial whose process (or Ray worker) is killed from outside, by a signal, the
out-of-memory killer or a lost node, is run again up to ``retries`` times; a trial that
fails on its own (an exit status, an exception) is not. Either way a failed trial is
recorded with its reason and the sweep goes on with the others.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

from nengo_actions.cluster import RAY_MISSING, checkout_pythonpath, ray_session
from nengo_actions.config import PROJECT_ROOT
from nengo_actions.errors import ConfigError
from nengo_actions.sweep.spec import BACKENDS

#: The train command prints its run folder on a line starting with this.
RUN_DIR_PREFIX = "run directory: "


class TrialError(RuntimeError):
    """A trial's train command failed; the message holds the end of its log."""



def train_env():
    """The environment of a trial's train process: this checkout first on the path, and
    plots drawn without a display."""
    env = dict(os.environ)
    env["PYTHONPATH"] = checkout_pythonpath(env.get("PYTHONPATH"))
    env.setdefault("MPLBACKEND", "Agg")
    return env


def exit_error(trial, returncode, log_path):
    """The :class:`TrialError` of a train process that exited with ``returncode`` > 0:
    the status, the log and the end of the log."""
    lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    tail = "\n".join("    " + line for line in lines[-15:])
    return TrialError(f"trial {trial.trial_id}: exit status {returncode}; log: {log_path}\n{tail}")


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
    retries : int
        Runs more of the trial when its process was killed by a signal.

    The process writes its output to ``<trial_dir>/log.txt`` (each attempt appends);
    the run folder is the path on the last ``run directory: PATH`` line it prints.
    """

    command: tuple = None
    timeout: float = None
    retries: int = 1

    def __call__(self, trial):
        for attempt in range(self.retries + 1):
            try:
                return self._attempt(trial, attempt)
            except _Killed as e:
                if attempt == self.retries:
                    signal_name, log_path = e.args
                    raise TrialError(f"trial {trial.trial_id}: killed by {signal_name} in each of {attempt + 1} "
                                     f"attempt(s); log: {log_path}") from None

    def _attempt(self, trial, attempt):
        command = self.command or (sys.executable, "-m", "nengo_actions.train")
        trial_dir = Path(trial.trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / "log.txt"
        env = train_env()
        argv = trial.command(command)
        with open(log_path, "w" if attempt == 0 else "a", encoding="utf-8") as log:
            log.write(("" if attempt == 0 else f"\n(attempt {attempt + 1}: the last one was killed)\n")
                      + "$ " + " ".join(argv) + "\n")
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
        if proc.returncode < 0:
            raise _Killed(signal_name(-proc.returncode), log_path)
        if proc.returncode != 0:
            raise exit_error(trial, proc.returncode, log_path)
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


class _Killed(Exception):
    """A trial's process died from a signal: ``args`` are the signal's name and the log."""


def signal_name(number):
    """``"SIGKILL"`` for 9; ``"signal N"`` for a number without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


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


def _ray_backend(todo, trial_fn, jobs, on_done, address=None, cpus_per_trial=1, retries=1):
    with ray_session(address, jobs * cpus_per_trial, missing="backend 'ray' " + RAY_MISSING) as ray:
        # Ray reruns a task whose worker died (not one that raised) up to max_retries times
        remote = ray.remote(num_cpus=cpus_per_trial, max_retries=retries)(_run_one)
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


def run_trials(
    trials,
    trial_fn=None,
    backend="process",
    jobs=1,
    ray_address=None,
    cpus_per_trial=1,
    timeout=None,
    retries=1,
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
    retries : int
        Runs more of a trial whose process or Ray worker was killed.
    progress : bool
        Show a progress bar with the time left.

    Returns
    -------
    dict
        trial id -> ``{"trial", "run_dir", "error", "skipped"}``.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")
    trial_fn = trial_fn or TrainCommandTrial(timeout=timeout, retries=retries)
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
            _ray_backend(todo, trial_fn, jobs, on_done, ray_address, cpus_per_trial, retries)
        else:
            _process_backend(todo, trial_fn, jobs, on_done)
    finally:
        bar.close()
    return outcomes


