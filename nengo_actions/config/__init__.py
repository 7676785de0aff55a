"""Configuration: defaults in code, JSON files in ``configs/``, ``--set`` overrides.

A config is a :class:`~nengo_actions.config.schema.Config`: frozen, typed sections
(:mod:`nengo_actions.config.schema`) checked when they are made. A JSON file overrides any subset
of the defaults, and ``--set a.b=value`` overrides on top of that. Errors name the file
(or the ``--set``) and the dotted key: an unknown key (with the closest valid one), a
wrong type, a value out of range or outside its choices. Configs written for the seed
project (``pickle_locations``, ``SNN_trainer`` ...) are mapped onto the keys here, with a
note for every key whose meaning changed.

This module imports only the standard library and numpy, so every command can parse its
config before it imports TensorFlow or PyTorch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import numpy as np

from nengo_actions import io, params

from nengo_actions.config import registry
from nengo_actions.errors import ConfigError, UserError
from nengo_actions.io import write_json_atomic, write_text_atomic, writing  # noqa: F401 (write_json_atomic re-exported)
from nengo_actions.config.schema import (  # noqa: F401 (re-exported: the schema is part of the config API)
    DEFAULT_CONFIG,
    EXISTING_PATHS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PROJECT_ROOT,
    Config,
)
from nengo_actions.config.section import build
from nengo_actions.config.seed_config import SEED_MARKERS, SEED_PICKLES, flatten, map_seed_config, set_path  # noqa: F401 (re-exported)

# ---------------------------------------------------------------------------------------
# Loading and validation


def parse_override(text):
    """``"a.b=value"`` -> ``("a.b", value)``, value parsed as JSON when it is JSON."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.epochs=5")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def override(cfg, values, where):
    """``cfg`` with dotted keys set (``{"train.epochs": 5}`` or ``(key, value)`` pairs),
    checked; errors name ``where``."""
    partial = {}
    for key, value in dict(values).items():
        set_path(partial, key, value)
    return build(type(cfg), partial, where, base=cfg)


def read_json(path):
    """The JSON object in ``path``; a :class:`ConfigError` naming it when it is missing
    or not valid JSON."""
    # Not io.read_json: that one answers None for a marker or cache that is missing or
    # damaged (it is then written again), where a config the user named must stop the
    # command and say what is wrong with the file.
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError; nesting too deep to parse
        raise ConfigError(f"{path}: not valid JSON: {e or type(e).__name__}") from None


def load_config(path=None, overrides=()):
    """Load a config file, apply ``--set`` overrides and validate.

    Parameters
    ----------
    path : str or Path or None
        JSON file; ``None`` uses ``configs/config.json``.
    overrides : iterable of str
        ``"a.b=value"`` strings, applied after the file.

    Returns
    -------
    Config
        The resolved config; ``source`` names the file and ``notes`` lists the notes for
        seed-style keys.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    notes = []
    if any(marker in raw for marker in SEED_MARKERS):
        raw, notes = map_seed_config(raw)
    cfg = build(Config, raw, str(path), base=Config(source=str(path), notes=tuple(notes)))
    for text in overrides:
        cfg = override(cfg, [parse_override(text)], f"--set {text}")
    check_paths(cfg)
    return cfg


def resolve_path(value):
    """A config path: ``~`` expanded, relative paths against the repository root."""
    if value is None:
        return None
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else PROJECT_ROOT / p


def get(cfg, dotted):
    """``get(cfg, "train.epochs")`` -> the value at a dotted key."""
    return registry.lookup(cfg, dotted)


def check_paths(cfg, keys=EXISTING_PATHS):
    """Raise :class:`ConfigError` naming the key for each set path that does not exist."""
    for key in keys:
        value = get(cfg, key)
        if value is not None and not resolve_path(value).exists():
            raise ConfigError(
                f"{cfg.source}: key '{key}' names a path that does "
                f"not exist: {resolve_path(value)}"
            )


def settings(cfg):
    """The settings of a config as JSON values, as written into a run folder."""
    return cfg.to_dict()


def jsonable(obj):
    """``obj`` with numpy values as Python ones and non-finite floats as ``None`` (JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    return obj


def make_run_dir(cfg, now=None):
    """Create ``<save_dir>/<name>-<YYYYmmdd-HHMMSS>`` holding the resolved config."""
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = resolve_path(cfg.save_dir) / f"{cfg.name}-{stamp}"
    run_dir, n = base, 1
    with writing(base):
        base.parent.mkdir(parents=True, exist_ok=True)
        while True:  # made, not checked then made: two runs started together get a folder each
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                n += 1
                run_dir = base.with_name(f"{base.name}-{n}")
    write_json_atomic(run_dir / "config.json", settings(cfg))
    # what the run was made for, kept apart from config.json (which a user may edit)
    write_json_atomic(run_dir / "run.json", {"models": list(cfg.model.types), "settings": run_settings(cfg)})
    if cfg.notes:
        write_text_atomic(run_dir / "config_notes.txt", "\n".join(cfg.notes) + "\n")
    return run_dir


#: Keys a resumed run may change: how long and how it trains, how it is evaluated, where
#: it is written, and which of its models run. The rest (the data, the features, the
#: models' sizes, the seed that splits and initialises) must stay as the run was made.
RESUMABLE_KEYS = ("name", "save_dir", "notes", "model.type", "model.compare", "train.", "evaluate.")


def run_settings(cfg):
    """The settings a resumed run must keep (every key not in :data:`RESUMABLE_KEYS`)."""
    return {key: value for key, value in flatten(settings(cfg))
            if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUMABLE_KEYS)}


def check_resumed_run(run_dir, cfg):
    """A resumed run continues what it was made for (``run.json``), before any work: the
    same models (or some of them) and the same data, features, sizes and seed
    (:func:`~nengo_actions.config.run_settings`). Otherwise another model would be trained
    inside the run folder and overwrite its results, or the epochs would mix two setups."""
    record = io.read_json(Path(run_dir) / "run.json")  # None when missing or damaged
    record = record if isinstance(record, dict) else {}
    types = cfg.model.types
    made_for = record.get("models", list(types))
    new = [t for t in types if t not in made_for]
    if new:
        raise ConfigError(
            f"--resume {run_dir}: key 'model.type' names {', '.join(new)}, which the run was not made for "
            f"({', '.join(made_for)}); restore its config.json, or start a new run"
        )
    made_with = record.get("settings")
    if not isinstance(made_with, dict):  # a run folder from before the record
        return
    now = json.loads(json.dumps(run_settings(cfg)))  # as run.json holds it
    for key in sorted(set(made_with) | set(now)):
        if made_with.get(key) != now.get(key):
            raise ConfigError(
                f"--resume {run_dir}: key '{key}' is {json.dumps(now.get(key))} but the run was made with "
                f"{json.dumps(made_with.get(key))}; a resumed run keeps its data, features, sizes and seed "
                "(train.* and evaluate.* may change); restore it, or start a new run"
            )


def finished_epochs(run_dir, cfg):
    """The epochs a finished run trained (its report is written and no model of ``cfg``
    has epochs left to train, or each stopped early), or ``None`` if it has work left."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.json").is_file():
        return None
    trained = 0
    for model in cfg.model.types:
        path = run_dir / model / "checkpoint.npz"
        if not path.is_file():
            return None
        state = params.read_params_header(path)
        epoch = int(state.get("epoch", 0))
        patience = cfg.train.early_stopping
        if epoch < cfg.train.epochs and not (patience and state.get("since_best", 0) >= patience):
            return None
        trained = max(trained, epoch)
    return trained


def load_run_config(run_dir, overrides=()):
    """The resolved config a run folder was made with (for ``--resume``)."""
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise ConfigError(f"--resume {run_dir}: not a run folder (no config.json)")
    return load_config(path, overrides)


def add_config_arguments(parser: argparse.ArgumentParser, default=DEFAULT_CONFIG):
    """Add ``-c/--config`` and ``--set`` to a command's parser."""
    parser.add_argument(
        "-c", "--config", default=str(default), help=f"JSON config (default: {default})"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=5 (repeatable)",
    )
    return parser


def config_from_args(args):
    """Load the config named by parsed ``-c``/``--set`` arguments; print seed notes."""
    cfg = load_config(args.config, args.overrides)
    for note in cfg.notes:
        print(f"note: {note}", file=sys.stderr)
    return cfg


def run_command(main):
    """Run a command's ``main``; bad input ends it with one line and exit status 2.

    Bad input is a :class:`~nengo_actions.errors.UserError`, or an ``OSError`` (a file
    that cannot be read or written; its message names the file). Anything else is a bug
    and keeps its traceback.
    """
    try:
        return main()
    except (UserError, OSError) as e:
        message = " ".join(str(e).split("\n"))
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
