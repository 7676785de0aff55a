"""The sweep config: loading and checking it, expanding its grid into trials.

A sweep config (every key optional; :class:`SweepConfig` holds the defaults)::

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
      "timeout": null,                        # seconds per trial; null: no limit
      "retries": 1,                           # runs more of a trial whose process or Ray worker was killed
      "search": {                             # optional: a search on Ray Tune, its draws crossed with the grid
        "train.learning_rate": {"loguniform": [1e-4, 1e-2]},
        "model.lmu.units": {"choice": [64, 128, 256]},
        "model.lmu.order": {"randint": [2, 7]}          # 2..6: the high end is left out, as tune.randint
      },
      "num_samples": 8,                       # settings drawn from the search space (times the grid)
      "scheduler": "asha",                    # "asha": stop weak trials early; "fifo" or null: none
      "asha": {"grace_period": 1, "reduction_factor": 4, "brackets": 1},   # max_t: train.epochs
      "metric": "val_clip_accuracy"           # what the search maximises, reported after every epoch
    }

``grid`` is either one object (its Cartesian product) or a list of objects (the union of
their products, as scikit-learn's ``ParameterGrid``). A key of several comma-separated
config keys sets all of them to each value (e.g. the neuron type of two layers at once).

With ``search``, the sweep runs on Ray Tune (:mod:`nengo_actions.sweep.search`): each
key (a config key as in ``grid``) is drawn from ``choice``, ``uniform``, ``loguniform`` or
``randint``, ``num_samples`` times for every grid point and repeat, with ``seed`` seeding
the draws. A search always runs on Ray (a local one unless ``ray_address``), ``jobs``
trials at a time on a local one.

A trial's id is derived from what the sweep states: the base config file's content,
``base_settings``, the grid values (and a search's drawn values) and the seed. Editing any of them gives new trials
instead of reusing old results; defaults added to the project's config schema later do
not (each run folder records the full config it ran with).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from pathlib import Path

from nengo_actions import config as config_mod
from nengo_actions.config import flatten, parse_override, read_json, resolve_path, set_path, settings
from nengo_actions.errors import ConfigError, NeuronTypeError
from nengo_actions.io import write_json_atomic
from nengo_actions.neurons.types import parse_neuron_type
from nengo_actions.config.schema import Config
from nengo_actions.config.section import FieldError, Section, build, setting
from nengo_actions.sweep.space import AshaConfig, SCHEDULERS, SEARCH_KEYS, SEARCH_METRICS, check_distribution, distribution_values

BACKENDS = ("process", "ray")
#: Train config keys the sweep sets itself for every trial.
RESERVED_KEYS = ("seed", "save_dir", "name")
@dataclasses.dataclass(frozen=True)
class SweepConfig(Section):
    """A sweep config; ``source`` (the file it came from) is not a setting."""

    name: str = setting("sweep")
    base: str = setting("configs/config.json", kind=str)  # a train config; null: the built-in defaults
    base_settings: dict = setting(kind=dict, factory=dict)  # applied on top of the base config
    grid: object = setting(factory=dict)  # a key (as for --set) -> the values to try; or a list of such objects
    repeats: int = setting(1, low=1)  # repeat r runs with seed = seed + r
    seed: int = setting(0)
    output_dir: str = setting(kind=str)  # default: results/sweeps/<name>
    backend: str = setting("process", choices=BACKENDS)  # "process": local subprocesses; "ray": a Ray cluster
    jobs: int = setting(1, low=1)  # trials at once (process backend; CPUs of a local Ray)
    ray_address: str = setting(kind=str)  # an existing cluster; null starts a local one
    cpus_per_trial: int = setting(1, low=1)  # CPUs Ray reserves for each trial
    timeout: float = setting(kind=float, above=0)  # seconds per trial; null: no limit
    # runs more of a trial whose process or Ray worker was killed (by a signal, the
    # out-of-memory killer, a lost node); a trial that fails on its own is not rerun
    retries: int = setting(1, low=0)
    # a search on Ray Tune: config key (as in grid) -> {"choice": [...]}, {"uniform": [lo, hi]},
    # {"loguniform": [lo, hi]} or {"randint": [lo, hi]}
    search: dict = setting(kind=dict, factory=dict)
    num_samples: int = setting(8, low=1)  # draws from the search space; 8 give ASHA's halving some to stop
    scheduler: str = setting(kind=str, choices=SCHEDULERS)  # "asha": stop weak trials early; null: "fifo"
    asha: AshaConfig = setting(factory=AshaConfig)
    metric: str = setting("val_clip_accuracy", choices=SEARCH_METRICS)  # maximised; reported every epoch
    source: str = dataclasses.field(default="sweep config", metadata={"setting": False})

    def check(self):
        grids = self.grids
        if not grids or not all(isinstance(g, dict) for g in grids):
            raise FieldError("grid", "must be an object or a non-empty list of objects")
        for g in grids:
            for key, values in g.items():
                if not isinstance(values, list) or not values:
                    raise FieldError(f"grid.{key}", f"must have a non-empty list of values, got {values!r}")
        for key, spec in self.search.items():
            check_distribution(key, spec)
        # a search setting without a search (or ASHA's without ASHA) would be silently ignored
        defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                    for f in dataclasses.fields(self)}
        for name in SEARCH_KEYS[1:]:
            if not self.search and getattr(self, name) != defaults[name]:
                raise FieldError(name, "applies to a search; add a 'search' space or leave it out")
        if self.search and self.scheduler != "asha" and self.asha != defaults["asha"]:
            raise FieldError("asha", f"applies to scheduler 'asha', not {self.scheduler or 'fifo'!r}")

    @property
    def is_search(self):
        """Whether the sweep is a search on Ray Tune (it has a ``search`` space)."""
        return bool(self.search)

    @property
    def grids(self):
        """``grid`` as a list of objects."""
        return self.grid if isinstance(self.grid, list) else [self.grid]


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


def load_sweep_config(path, overrides=()):
    """Read a sweep config, apply ``--set`` overrides and check its own keys.

    ``--set grid.<key>=[...]`` sets a grid key (``<key>`` may itself contain dots) and
    ``--set base_settings.<key>=value`` a base setting. The train config keys in
    ``grid`` and ``base_settings`` are checked by :func:`expand_trials`.

    Returns
    -------
    SweepConfig
        ``source`` names the file.
    """
    path = Path(path)
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    cfg = build(SweepConfig, raw, str(path), base=SweepConfig(source=str(path)))
    for text in overrides:
        key, value = parse_override(text)
        where = f"--set {text}"
        if key.startswith("grid."):
            if isinstance(cfg.grid, list):
                raise ConfigError(f"{where}: 'grid' is a list of grids; edit the file instead")
            cfg = build(SweepConfig, {"grid": {**cfg.grid, key[len("grid."):]: value}}, where, base=cfg)
        elif key.startswith("search."):
            cfg = build(SweepConfig, {"search": {**cfg.search, key[len("search."):]: value}}, where, base=cfg)
        elif key.startswith("base_settings."):
            base_settings = json.loads(json.dumps(cfg.base_settings))
            set_path(base_settings, key[len("base_settings."):], value)
            cfg = build(SweepConfig, {"base_settings": base_settings}, where, base=cfg)
        else:
            cfg = config_mod.override(cfg, [(key, value)], where)
    return cfg


def output_dir(sweep_cfg):
    """The sweep's output folder (``results/sweeps/<name>`` unless set)."""
    return resolve_path(sweep_cfg.output_dir or f"results/sweeps/{sweep_cfg.name}")


def base_config(sweep_cfg):
    """The train config every trial starts from: ``base`` plus ``base_settings``."""
    where = sweep_cfg.source
    if sweep_cfg.base is not None:
        base_path = resolve_path(sweep_cfg.base)
        if not base_path.is_file():
            what = "a folder, not a config file" if base_path.is_dir() else "a file that does not exist"
            raise ConfigError(f"{where}: key 'base' names {what}: {base_path}")
        cfg = config_mod.load_config(base_path)
    else:
        cfg = Config(source=where)
    cfg = build(Config, sweep_cfg.base_settings, f"{where}: base_settings", base=cfg)
    config_mod.check_paths(cfg)
    return cfg


def _points(grid):
    """Grid points in order: lists of (key, value), key possibly comma-separated."""
    for g in grid:
        keys = list(g)
        for values in itertools.product(*(g[k] for k in keys)):
            yield list(zip(keys, values))


def _check_neuron_types(cfg, where):
    for key, value in flatten(settings(cfg)):
        if key.rsplit(".", 1)[-1].endswith("neuron_type") and value is not None:
            try:
                parse_neuron_type(value)
            except NeuronTypeError as e:
                raise ConfigError(f"{where}: key '{key}': {e}") from None


def value_text(value):
    """A grid value as a table cell or label: strings as they are, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _slug(point):
    text = "_".join(value_text(v) for _, v in point) or "base"
    text = re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-")
    return text[:60]


def _digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def expand_trials(sweep_cfg, base_cfg=None):
    """Expand a sweep into trials, checking every trial's train config first.

    Every grid value is merged into the base config with the train config's own
    validation (an unknown key names the closest valid one) and every ``*neuron_type``
    value is parsed by :func:`nengo_actions.neurons.types.parse_neuron_type`, so a bad
    key or neuron type raises :class:`ConfigError` before any trial starts.

    Returns
    -------
    list of Trial
        Grid points in order, each repeated ``repeats`` times with seeds
        ``seed, seed + 1, ...``.
    """
    where = sweep_cfg.source
    base_cfg = base_config(sweep_cfg) if base_cfg is None else base_cfg
    _check_neuron_types(base_cfg, f"{where}: base config")
    factory = trial_factory(sweep_cfg)
    trials, seen = [], set()
    for point in _points(sweep_cfg.grids):
        cfg = base_cfg
        for group, value in point:
            for key in split_keys(group):
                if key in RESERVED_KEYS:
                    raise ConfigError(
                        f"{where}: grid key '{key}' is set by the sweep itself "
                        "(use 'repeats' and 'seed' for seeds)"
                    )
                cfg = config_mod.override(cfg, {key: value}, f"{where}: grid key '{key}'")
        _check_neuron_types(cfg, f"{where}: grid point {_slug(point)}")
        for repeat in range(sweep_cfg.repeats):
            trial = factory.make(point, repeat)
            if trial.trial_id in seen:
                raise ConfigError(f"{where}: grid point {trial.label!r} appears twice in the grid")
            seen.add(trial.trial_id)
            trials.append(trial)
    return trials


def split_keys(group):
    """The config keys of a grid or search key (several, comma-separated, set together)."""
    return [k.strip() for k in group.split(",")]


@dataclasses.dataclass(frozen=True)
class TrialFactory:
    """What trials are made of: plain values, so that a Ray Tune actor, given a sampled
    point, makes the same trial (id, folder, overrides) as the sweep that started it."""

    base_identity: object  # the base config file's content; None: the built-in defaults
    base_settings: dict
    seed: int
    out_dir: str

    def make(self, point, repeat, label=None):
        """The :class:`Trial` of ``point`` (``[(key, value), ...]``, a key possibly
        comma-separated) with seed ``seed + repeat``."""
        seed = self.seed + repeat
        out_dir = Path(self.out_dir)
        stated = [self.base_identity, self.base_settings, [[k, v] for k, v in point], seed]
        trial_id = f"{_slug(point)}-s{seed}-{_digest(stated)}"
        trial_dir = out_dir / "trials" / trial_id
        overrides = [f"{key}={json.dumps(value)}" for group, value in point for key in split_keys(group)]
        return Trial(
            trial_id=trial_id,
            point=tuple((k, v if not isinstance(v, list) else tuple(v)) for k, v in point),
            label=label or " / ".join(value_text(v) for _, v in point) or "base",
            repeat=repeat,
            seed=seed,
            overrides=tuple(overrides + [f"seed={seed}", f"save_dir={json.dumps(str(trial_dir))}", 'name="run"']),
            base_config=str(out_dir / "base_config.json"),
            trial_dir=str(trial_dir),
        )


def trial_factory(sweep_cfg):
    """The :class:`TrialFactory` of a sweep."""
    base_identity = None
    if sweep_cfg.base is not None:
        base_identity = json.loads(resolve_path(sweep_cfg.base).read_text(encoding="utf-8"))
    return TrialFactory(base_identity, sweep_cfg.base_settings, sweep_cfg.seed, str(output_dir(sweep_cfg)))


def grid_points(sweep_cfg):
    """The grid's points in order, each a list of ``(key, value)``."""
    return list(_points(sweep_cfg.grids))


def check_search(sweep_cfg, base_cfg):
    """Check a search space against the train config: every key exists and takes every
    choice and both ends of every range, none is set by the sweep itself or also in the
    grid. Returns the most epochs a trial trains (ASHA's ``max_t``)."""
    where = sweep_cfg.source
    grid_keys = {k for g in sweep_cfg.grids for group in g for k in split_keys(group)}
    configs = [base_cfg]
    for point in _points(sweep_cfg.grids):
        configs.append(config_mod.override(base_cfg, {k: v for g, v in point for k in split_keys(g)}, where))
    for group, spec in sweep_cfg.search.items():
        for key in split_keys(group):
            if key in RESERVED_KEYS:
                raise ConfigError(f"{where}: search key '{key}' is set by the sweep itself "
                                  "(use 'repeats' and 'seed' for seeds)")
            if key in grid_keys:
                raise ConfigError(f"{where}: search key '{key}' is in the grid too; give it in one of them")
        for value in distribution_values(spec):
            cfg = base_cfg
            for key in split_keys(group):
                cfg = config_mod.override(cfg, {key: value}, f"{where}: search key '{key}'")
            _check_neuron_types(cfg, f"{where}: search key '{group}' = {value_text(value)}")
            configs.append(cfg)
    max_t = max(cfg.train.for_model(cfg.model.type).epochs for cfg in configs)
    if sweep_cfg.scheduler == "asha" and sweep_cfg.asha.grace_period > max_t:
        raise ConfigError(f"{where}: key 'asha.grace_period' must be at most the epochs a trial trains "
                          f"({max_t}), got {sweep_cfg.asha.grace_period}")
    return max_t


def prepare(sweep_cfg, write=True):
    """Validate a sweep and return its trials; with ``write``, also write ``sweep.json``
    and ``base_config.json`` (what the trials read) into the output folder."""
    base_cfg = base_config(sweep_cfg)
    trials = expand_trials(sweep_cfg, base_cfg)
    if not write:
        return trials
    out_dir = output_dir(sweep_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    stated = sweep_cfg.to_dict()
    if not sweep_cfg.is_search:
        stated = {k: v for k, v in stated.items() if k not in SEARCH_KEYS}
    write_json_atomic(out_dir / "sweep.json", stated)
    write_json_atomic(out_dir / "base_config.json", settings(base_cfg))
    return trials
