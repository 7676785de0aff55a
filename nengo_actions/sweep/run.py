"""The whole sweep: validate it, run the unfinished trials, write the report."""

from __future__ import annotations

from nengo_actions.sweep.backends import TrainCommandTrial, run_trials
from nengo_actions.sweep.report import write_report
from nengo_actions.sweep.search import run_search
from nengo_actions.sweep.spec import prepare


def run_sweep(sweep_cfg, trial_fn=None, progress=True):
    """Validate, run the unfinished trials and write the report. A sweep with a
    ``search`` space runs on Ray Tune (:func:`~nengo_actions.sweep.search.run_search`),
    where ``trial_fn`` may only be a :class:`TrainCommandTrial` (its ``command`` is used).

    Returns
    -------
    (trials, rows) : the trials and their result rows (see :func:`~nengo_actions.sweep.report.collect_rows`).
    """
    if sweep_cfg.is_search:
        if trial_fn is not None and not isinstance(trial_fn, TrainCommandTrial):
            raise TypeError("a search's trials run the train command; trial_fn must be a TrainCommandTrial")
        return run_search(sweep_cfg, command=trial_fn.command if trial_fn else None, progress=progress)
    trials = prepare(sweep_cfg)
    outcomes = run_trials(
        trials,
        trial_fn=trial_fn,
        backend=sweep_cfg.backend,
        jobs=sweep_cfg.jobs,
        ray_address=sweep_cfg.ray_address,
        cpus_per_trial=sweep_cfg.cpus_per_trial,
        timeout=sweep_cfg.timeout,
        retries=sweep_cfg.retries,
        progress=progress,
    )
    rows = write_report(sweep_cfg, trials, outcomes)
    return trials, rows
