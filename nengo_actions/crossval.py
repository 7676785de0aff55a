"""Cross-validation over recordings: the SL-Animals-DVS protocol.

SL-Animals-DVS results are the mean and standard deviation of the test accuracy over
``events.sl_animals.n_folds`` folds of the recordings (no signer in training and test),
for the full set and for the reduced set without the S3 (indoor) recordings.
:func:`cross_validate` runs the train command's job (:func:`nengo_actions.experiment.run`)
once per fold and set, each fold in its own run folder under one parent, and writes
``crossval.json`` and ``crossval.md`` there::

    python -m nengo_actions.crossval -c configs/sl_animals.json --sets full,reduced
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nengo_actions import config as config_mod
from nengo_actions.evaluation import run_metrics
from nengo_actions.config import ConfigError, write_json_atomic
from nengo_actions.io import write_text_atomic
from nengo_actions.experiment import run
from nengo_actions.config.schema import Config

SETS = {"full": False, "reduced": True}
#: metrics.json keys summarised over folds (rate and spiking test accuracy).
KEYS = (run_metrics.TEST_CLIP_ACCURACY, run_metrics.SPIKING_TEST_CLIP_ACCURACY, run_metrics.VAL_CLIP_ACCURACY)


def fold_config(cfg: Config, fold, reduced, save_dir):
    """``cfg`` for one fold of one set, saving under ``save_dir``."""
    values = {
        "events.sl_animals.fold": int(fold),
        "events.sl_animals.reduced": bool(reduced),
        "name": f"{cfg.name}-{'reduced' if reduced else 'full'}-fold{fold}",
        "save_dir": str(save_dir),
    }
    return config_mod.override(cfg, values, cfg.source)


def summarize_folds(per_fold):
    """``{key: {"mean", "std", "values"}}`` over the folds' metrics (sample std,
    :func:`~nengo_actions.evaluation.run_metrics.mean_std`)."""
    summary = {}
    for key in KEYS:
        values = [float(m[key]) for m in per_fold if run_metrics.is_number(m.get(key))]
        if values:
            mean, std, _ = run_metrics.mean_std(values)
            summary[key] = {"mean": mean, "std": std, "values": values}
    return summary


def cross_validate(cfg: Config, sets=("full", "reduced"), folds=None, log=print):
    """Run every fold of every set; returns the parent folder.

    Parameters
    ----------
    sets : sequence of str
        ``"full"`` and/or ``"reduced"`` (without S3).
    folds : sequence of int or None
        Folds to run; ``None``: all ``events.sl_animals.n_folds``.
    """
    if cfg.data.dataset != "sl_animals":
        raise ConfigError(f"{cfg.source}: cross-validation over recordings needs data.dataset = 'sl_animals'")
    for name in sets:
        if name not in SETS:
            raise ConfigError(f"sets: {name!r} is not one of {', '.join(SETS)}")
    n_folds = cfg.events.sl_animals.n_folds
    folds = list(range(n_folds)) if folds is None else [int(f) for f in folds]
    outside = [f for f in folds if not 0 <= f < n_folds]
    if outside:
        raise ConfigError(f"folds: {outside} outside 0..{n_folds - 1} (events.sl_animals.n_folds = {n_folds})")
    parent = config_mod.make_run_dir(cfg.replace(name=f"{cfg.name}-cv"))
    results = {"n_folds": n_folds, "folds": folds, "sets": {}}
    for name in sets:
        per_fold = []
        for fold in folds:
            log(f"== {name} set, fold {fold + 1} of {n_folds}")
            run_dir = run(fold_config(cfg, fold, SETS[name], parent), log=log)
            metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
            per_fold.append({k: metrics.get(k) for k in KEYS} | {"run_dir": Path(run_dir).name})
        results["sets"][name] = {"per_fold": per_fold, "summary": summarize_folds(per_fold)}
        write_json_atomic(parent / "crossval.json", results)
    write_text_atomic(parent / "crossval.md", format_table(results))
    return parent


def format_table(results):
    """The summary as a Markdown table: mean +- std per set and figure."""
    lines = [
        f"# Cross-validation over recordings ({results['n_folds']} folds; folds run: {results['folds']})",
        "",
        "| set | " + " | ".join(KEYS) + " |",
        "|---|" + "---|" * len(KEYS),
    ]
    for name, entry in results["sets"].items():
        cells = []
        for key in KEYS:
            s = entry["summary"].get(key)
            cells.append(f"{100 * s['mean']:.2f} +- {100 * s['std']:.2f}%" if s else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    """``python -m nengo_actions.crossval -c CONFIG [--sets full,reduced] [--folds 0,1]``."""

    def command():
        parser = argparse.ArgumentParser(prog="python -m nengo_actions.crossval", description=__doc__.split("\n\n")[0])
        config_mod.add_config_arguments(parser, default=config_mod.PROJECT_ROOT / "configs" / "sl_animals.json")
        parser.add_argument("--sets", default="full,reduced", help="comma-separated: full, reduced (default: both)")
        parser.add_argument("--folds", default=None, help="comma-separated fold numbers (default: all)")
        args = parser.parse_args(argv)
        cfg = config_mod.config_from_args(args)
        try:
            folds = [int(f) for f in args.folds.split(",")] if args.folds else None
        except ValueError:
            raise ConfigError(f"--folds {args.folds}: expected comma-separated fold numbers") from None
        parent = cross_validate(cfg, [s.strip() for s in args.sets.split(",") if s.strip()], folds)
        print((parent / "crossval.md").read_text())
        print(f"run directory: {parent}", flush=True)
        return 0

    return config_mod.run_command(command)


__all__ = ["cross_validate", "fold_config", "summarize_folds", "format_table", "main"]


if __name__ == "__main__":
    sys.exit(main())
