"""Configuration: defaults in code, JSON files in ``configs/``, ``--set`` overrides.

A config is a nested ``dict``. :data:`DEFAULTS` holds every valid key with its default;
a JSON file overrides any subset of it, and ``--set a.b=value`` overrides on top of that.
Validation names the file and the dotted key for an unknown key (with the closest valid
one), a wrong type or a value outside its choices. Configs written for the seed project
(``pickle_locations``, ``SNN_trainer`` ...) are mapped onto the keys here, with a note for
every key whose meaning changed.

This module imports only the standard library, so every command can parse its config
before it imports TensorFlow or PyTorch.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import difflib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError, UserError
from .defaults import (  # noqa: F401 (re-exported: the schema is part of the config API)
    BOUNDS,
    CHOICES,
    DATA_DEFAULTS,
    DEFAULT_CONFIG,
    DEFAULTS,
    EVALUATE_DEFAULTS,
    EVENTS_DEFAULTS,
    EXISTING_PATHS,
    FEATURES_DEFAULTS,
    FRAMES_DEFAULTS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODEL_DEFAULTS,
    PROJECT_ROOT,
    TRAIN_DEFAULTS,
    TYPES,
)
from .io import write_json_atomic  # noqa: F401 (re-exported)
from .registry import dataset_names, model_names
from .seed_config import SEED_MARKERS, SEED_PICKLES, flatten, map_seed_config, set_path  # noqa: F401 (re-exported)

# ---------------------------------------------------------------------------------------
# Loading and validation


#: Keys whose choices are the registered names (read when a config is checked, so a
#: type registered after import counts).
REGISTERED = {"model.type": model_names, "data.dataset": dataset_names}


def _closest(key, candidates, prefix=""):
    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean '{prefix}{match[0]}'?)" if match else ""


def _type_name(kind):
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string", list: "a list", dict: "an object"}.get(
        kind, kind.__name__
    )


def _check_value(where, path, value, default):
    kind = TYPES.get(path, type(default) if default is not None else None)
    if value is None or kind is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (kind is not bool and isinstance(value, bool)) or not isinstance(value, kind):
        raise ConfigError(
            f"{where}: key '{path}' must be {_type_name(kind)}, got {value!r}"
        )
    choices = REGISTERED[path]() if path in REGISTERED else CHOICES.get(path)
    if choices is not None and value not in choices:
        raise ConfigError(
            f"{where}: key '{path}' must be one of {', '.join(choices)}; "
            f"got {value!r}{_closest(str(value), choices)}"
        )
    low, inclusive = BOUNDS.get(re.sub(r"^train\.models\.\w+\.", "train.", path), (None, True))
    if low is not None and isinstance(value, (int, float)) and (value < low if inclusive else value <= low):
        raise ConfigError(f"{where}: key '{path}' must be {'at least' if inclusive else 'more than'} {low}, got {value!r}")
    return value


def merge(base, override, where, prefix=""):
    """Deep-merge ``override`` into a copy of ``base``, validating every key."""
    result = copy.deepcopy(base)
    if not isinstance(override, dict):
        raise ConfigError(f"{where}: '{prefix[:-1] or 'config'}' must be an object")
    for key, value in override.items():
        path = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(
                f"{where}: unknown key '{path}'" + _closest(key, base, prefix)
            )
        default = base[key]
        open_dict = TYPES.get(path) is dict
        if isinstance(default, dict) and not open_dict:
            result[key] = merge(default, value, where, path + ".")
        else:
            result[key] = _check_value(where, path, value, default)
    return result


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


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None


def load_config(path=None, overrides=(), defaults=None):
    """Load a config file, apply ``--set`` overrides and validate.

    Parameters
    ----------
    path : str or Path or None
        JSON file; ``None`` uses ``configs/config.json``.
    overrides : iterable of str
        ``"a.b=value"`` strings, applied after the file.
    defaults : dict or None
        The schema and defaults; :data:`DEFAULTS` when ``None``.

    Returns
    -------
    dict
        The resolved config. ``config["_notes"]`` lists the notes for seed-style keys and
        ``config["_source"]`` the file it came from; neither is a setting.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    notes = []
    if any(marker in raw for marker in SEED_MARKERS):
        raw, notes = map_seed_config(raw)
    cfg = merge(defaults or DEFAULTS, raw, str(path))
    for text in overrides:
        key, value = parse_override(text)
        partial = {}
        set_path(partial, key, value)
        cfg = merge(cfg, partial, f"--set {text}")
    cfg["_notes"] = notes
    cfg["_source"] = str(path)
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
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def check_paths(cfg, keys=EXISTING_PATHS):
    """Raise :class:`ConfigError` naming the key for each set path that does not exist."""
    for key in keys:
        value = get(cfg, key)
        if value is not None and not resolve_path(value).exists():
            raise ConfigError(
                f"{cfg.get('_source', 'config')}: key '{key}' names a path that does "
                f"not exist: {resolve_path(value)}"
            )


def settings(cfg):
    """The config without its bookkeeping keys, as written into a run folder."""
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


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
    base = resolve_path(cfg["save_dir"]) / f"{cfg['name']}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    write_json_atomic(run_dir / "config.json", settings(cfg))
    if cfg.get("_notes"):
        (run_dir / "config_notes.txt").write_text("\n".join(cfg["_notes"]) + "\n")
    return run_dir


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


def config_from_args(args, defaults=None):
    """Load the config named by parsed ``-c``/``--set`` arguments; print seed notes."""
    cfg = load_config(args.config, args.overrides, defaults=defaults)
    for note in cfg["_notes"]:
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
