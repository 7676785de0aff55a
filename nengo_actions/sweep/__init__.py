"""Sweeps: one base config, a grid over any config keys, repeats with different seeds.

``python -m nengo_actions.sweep -c configs/sweep_neurons.json`` expands the grid, checks
every trial's config before any trial starts, runs each trial as its own
``python -m nengo_actions.train`` process and writes the results table and plots into
the sweep's output folder. One idea per module:

=============  ==========================================================================
``spec``       the sweep config: loading, checking, grid expansion, trial ids
``space``      a search's distributions and ASHA's settings and rungs
``backends``   running trials: the train command as a subprocess, a local pool, Ray
``report``     the results: one row per trial, ``results.csv``, ``results.md``
``plots``      the PNG plots of the results
``search``     a search on Ray Tune: drawn settings, early stopping (ASHA), its report in
               ``search_report`` and its trials (train processes watched epoch by epoch)
               in ``search_trial``
``run``        the whole sweep: validate, run the unfinished trials, report
``cli``        the command line
=============  ==========================================================================

The names below are the package's API (``from nengo_actions import sweep; sweep.X``).
"""

from nengo_actions.sweep.backends import (
    RUN_DIR_PREFIX,
    TrainCommandTrial,
    TrialError,
    finished_run,
    read_metrics,
    run_trials,
)
from nengo_actions.sweep.cli import build_parser, main
from nengo_actions.sweep.plots import write_plots
from nengo_actions.sweep.report import (
    ACCURACY_KEYS,
    TABLE_ENERGY_DEVICES,
    TIME_KEYS,
    collect_rows,
    metric_columns,
    summarize,
    table_columns,
    write_csv,
    write_markdown,
    write_report,
)
from nengo_actions.sweep.run import run_sweep
from nengo_actions.sweep.search import MISSING_TUNE, run_search
from nengo_actions.sweep.search_report import STOPPED
from nengo_actions.sweep.space import DISTRIBUTIONS, SCHEDULERS, AshaConfig
from nengo_actions.sweep.spec import (
    BACKENDS,
    RESERVED_KEYS,
    SweepConfig,
    Trial,
    base_config,
    expand_trials,
    load_sweep_config,
    output_dir,
    prepare,
)

__all__ = [
    "ACCURACY_KEYS", "AshaConfig", "BACKENDS", "DISTRIBUTIONS", "MISSING_TUNE", "RESERVED_KEYS", "RUN_DIR_PREFIX",
    "SCHEDULERS", "STOPPED", "SweepConfig", "run_search",
    "TABLE_ENERGY_DEVICES", "TIME_KEYS", "TrainCommandTrial", "Trial", "TrialError", "base_config",
    "build_parser", "collect_rows", "expand_trials", "finished_run", "load_sweep_config", "main",
    "metric_columns", "output_dir", "prepare", "read_metrics", "run_sweep", "run_trials", "summarize",
    "table_columns", "write_csv", "write_markdown", "write_plots", "write_report",
]
