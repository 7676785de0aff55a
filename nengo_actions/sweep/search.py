"""A search on Ray Tune: settings drawn from the sweep's ``search`` space, weak trials
stopped early by ASHA on the validation accuracy that training writes after every epoch.

Each trial is a Tune function trainable (:mod:`nengo_actions.sweep.search_trial`) that runs
the train command, as a grid sweep's trial does, and reports its epochs to Tune. The grid
and ``repeats`` stay: every draw runs at every grid point and seed (``tune.grid_search``
over them, ``num_samples`` times). The draws are seeded by ``seed``, so the same search
draws the same settings, and its trials (named by their settings, as grid trials are)
reuse what ran before. Tune's own records go into ``<output>/tune/``.

The scheduler is Ray Tune's ASHA (``AsyncHyperBandScheduler``): its time is the epoch,
``max_t`` the trials' ``train.epochs`` and its metric ``metric``, maximised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

from tqdm import tqdm

from nengo_actions import config as config_mod
from nengo_actions.errors import ConfigError
from nengo_actions.cluster import ray_session
from nengo_actions.sweep.search_report import write_record, write_search_report
from nengo_actions.sweep.search_trial import GRID_KEY, SearchContext, run_search_trial
from nengo_actions.sweep.spec import base_config, check_search, grid_points, output_dir, prepare, trial_factory

MISSING_TUNE = 'a search needs Ray Tune: pip install -e ".[cluster]"'


def require_tune():
    """Import Ray Tune, or stop with :data:`MISSING_TUNE` (a :class:`ConfigError`)."""
    try:
        import ray.tune as tune
    except ImportError:
        raise ConfigError(MISSING_TUNE) from None
    return tune


def plan(sweep_cfg, write=True):
    """Check a search before any trial: the base config, the grid, every key and range of
    the space and ASHA's settings; with ``write``, write ``sweep.json`` and
    ``base_config.json`` (what the trials read).

    Returns
    -------
    (context, max_t) : the :class:`SearchContext` of the trials and the most epochs one trains.
    """
    prepare(sweep_cfg, write=False)
    max_t = check_search(sweep_cfg, base_config(sweep_cfg))
    if write:  # only once all is checked: a bad search leaves no folder behind
        prepare(sweep_cfg)
    context = SearchContext(
        factory=trial_factory(sweep_cfg),
        points=tuple(tuple(p) for p in grid_points(sweep_cfg)),
        repeats=sweep_cfg.repeats,
        keys=tuple(sweep_cfg.search),
        metric=sweep_cfg.metric,
        timeout=sweep_cfg.timeout,
        retries=sweep_cfg.retries,
    )
    return context, max_t


def run_search(sweep_cfg, command=None, progress=True):
    """Run a search and write its report (:mod:`nengo_actions.sweep.search_report`).

    Parameters
    ----------
    command : tuple of str or None
        argv of the train entry point; ``None``: ``python -m nengo_actions.train``.
    progress : bool
        Show a progress bar over the trials.

    Returns
    -------
    (trials, rows) : the trials in Tune's order and their result rows.
    """
    require_tune()
    context, max_t = plan(sweep_cfg)
    context = dataclasses.replace(context, command=tuple(command) if command else None)
    out_dir = output_dir(sweep_cfg)
    _prepare_data(out_dir)
    started = time.time()
    total = len(context.points) * context.repeats * sweep_cfg.num_samples
    bar = tqdm(total=total, unit="trial", desc="search", disable=not progress, dynamic_ncols=True)
    try:
        with ray_session(sweep_cfg.ray_address, sweep_cfg.jobs * sweep_cfg.cpus_per_trial, missing=MISSING_TUNE):
            results = _fit(sweep_cfg, context, max_t, bar)
    finally:
        bar.close()
    trials, errors = [], {}
    for result in results:
        trial = context.trial(result.config)
        trials.append(trial)
        if result.error is not None:
            cause = getattr(result.error, "cause", None) or result.error
            errors[trial.trial_id] = f"{type(cause).__name__}: {cause}"
    write_record(out_dir, trials, errors, started, max_t)
    return trials, write_search_report(sweep_cfg, trials, errors, started, max_t)


def _prepare_data(out_dir):
    """Make the base config's features before trials start together (the process backend
    runs its first trial alone for this); the trials then find them."""
    from nengo_actions.clips.event_data import is_event_dataset
    from nengo_actions.clips.feature_data import ensure_features

    cfg = config_mod.load_config(out_dir / "base_config.json")
    if not is_event_dataset(cfg):
        ensure_features(cfg, log=tqdm.write)


def _distribution(tune, spec):
    (kind, args), = spec.items()
    if kind == "choice":
        return tune.choice(args)
    return {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[kind](*args)


def _trial_dirname(trial):
    return trial.trial_id  # Tune's default names hold every drawn value


class _Progress:
    """Moves the progress bar when a trial ends; made a Tune callback in :func:`_fit`."""

    def __init__(self, bar):
        self.bar = bar

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.bar.update(1)

    on_trial_error = on_trial_complete

    def __getstate__(self):  # Tune saves its callbacks; the bar stays here
        return {"bar": None}

    def __setstate__(self, state):
        self.bar = tqdm(disable=True)


@contextlib.contextmanager
def _legacy_output():
    # Tune's new console output prints its setup whatever the verbosity; its old one, at
    # verbosity 0, prints nothing, so the progress bar is the only output
    previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = previous


def _fit(sweep_cfg, context, max_t, bar):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    progress = type("Progress", (_Progress, tune.Callback), {})(bar)
    if sweep_cfg.scheduler == "asha":
        a = sweep_cfg.asha
        scheduler = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=a.grace_period,
                                  reduction_factor=a.reduction_factor, brackets=a.brackets)
    else:
        scheduler = FIFOScheduler()
    space = {key: _distribution(tune, spec) for key, spec in sweep_cfg.search.items()}
    n_grid = len(context.points) * context.repeats
    if n_grid > 1:
        space[GRID_KEY] = tune.grid_search(list(range(n_grid)))
    trainable = tune.with_resources(tune.with_parameters(run_search_trial, context=context),
                                    {"cpu": sweep_cfg.cpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=sweep_cfg.metric,
            mode="max",
            scheduler=scheduler,
            num_samples=sweep_cfg.num_samples,
            # jobs trials at once on a local Ray, as many as fit on a cluster (0)
            search_alg=BasicVariantGenerator(random_state=sweep_cfg.seed,
                                             max_concurrent=0 if sweep_cfg.ray_address else sweep_cfg.jobs),
            trial_dirname_creator=_trial_dirname,
            # an actor runs one trial after another: a new Ray worker takes seconds to start,
            # and each trial's TensorFlow is in its own train process anyway
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(output_dir(sweep_cfg)),
            verbose=0,
            callbacks=[progress],
            # for actors that die; a train process that fails or is killed is handled by the trial
            failure_config=tune.FailureConfig(max_failures=sweep_cfg.retries),
        ),
    )
    with _legacy_output():
        return tuner.fit()


__all__ = ["MISSING_TUNE", "require_tune", "plan", "run_search"]
