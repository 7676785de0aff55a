"""The whole sweep: validate it, run the unfinished trials, write the report."""

from __future__ import annotations

from nengo_actions.sweep.backends import run_trials
from nengo_actions.sweep.report import write_report
from nengo_actions.sweep.spec import prepare


def run_sweep(sweep_cfg, trial_fn=None, progress=True):
    """Validate, run the unfinished trials and write the report.

    Returns
    -------
    (trials, rows) : the trials and their result rows (see :func:`~nengo_actions.sweep.report.collect_rows`).
    """
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
