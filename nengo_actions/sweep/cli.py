"""The sweep command: ``python -m nengo_actions.sweep -c SWEEP_CONFIG [options]``.

Expands the grid, checks every trial's config (unknown keys, wrong types, unknown neuron
types) before any trial starts, runs the trials and writes the results table and plots
into the sweep's output folder (see :mod:`nengo_actions.sweep`). A config with a
``search`` space runs a search on Ray Tune instead (:mod:`nengo_actions.sweep.search`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from nengo_actions import config as config_mod
from nengo_actions.config import PROJECT_ROOT
from nengo_actions.sweep.backends import finished_run
from nengo_actions.sweep.report import write_report
from nengo_actions.sweep.run import run_sweep
from nengo_actions.sweep.search import plan, require_tune, run_search
from nengo_actions.sweep.search_report import STOPPED, read_record, write_search_report
from nengo_actions.sweep.space import asha_rungs
from nengo_actions.sweep.spec import BACKENDS, load_sweep_config, output_dir, prepare


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nengo_actions.sweep",
        description="Run a grid of train runs (e.g. one per neuron type), or a search on Ray Tune, and tabulate them.",
    )
    config_mod.add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "sweep_neurons.json")
    parser.add_argument("--jobs", type=int, help="trials at once (default: the config's 'jobs')")
    parser.add_argument("--backend", choices=BACKENDS, help="'process' (this machine) or 'ray'")
    parser.add_argument("--ray-address", help="address of an existing Ray cluster (default: a local Ray)")
    parser.add_argument("--output", help="output folder (default: the config's 'output_dir')")
    parser.add_argument("--dry-run", action="store_true", help="check the sweep and list its trials")
    parser.add_argument("--report-only", action="store_true", help="rewrite the tables and plots from finished trials")
    return parser


def _command(argv):
    args = build_parser().parse_args(argv)
    overrides = list(args.overrides)
    for flag, key in (("jobs", "jobs"), ("backend", "backend"), ("ray_address", "ray_address"), ("output", "output_dir")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if args.ray_address and not args.backend:
        overrides.append('backend="ray"')
    sweep_cfg = load_sweep_config(args.config, overrides)
    if sweep_cfg.is_search:
        return _search_command(args, sweep_cfg)
    trials = prepare(sweep_cfg, write=not args.dry_run)
    out_dir = output_dir(sweep_cfg)
    n_done = sum(finished_run(t) is not None for t in trials)
    print(f"sweep '{sweep_cfg.name}': {len(trials)} trials ({n_done} finished before), output: {out_dir}")
    if args.dry_run:
        for t in trials:
            state = "finished" if finished_run(t) else "to run"
            print(f"  {t.trial_id}  [{state}]  {' '.join('--set ' + o for o in t.overrides[:-2])}")
        return 0
    start = time.monotonic()
    if args.report_only:
        rows = write_report(sweep_cfg, trials)
    else:
        _, rows = run_sweep(sweep_cfg)
    failed = [r for r in rows if r["status"] == "failed"]
    missing = [r for r in rows if r["status"] == "missing"]
    print(f"{len(rows) - len(failed) - len(missing)}/{len(rows)} trials finished in {time.monotonic() - start:.0f} s")
    return _results(rows, out_dir)


def _results(rows, out_dir):
    """Name the results file and the failed trials; the exit status (1: some failed)."""
    print(f"results: {out_dir / 'results.md'}")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        print(f"{len(failed)} trials failed; rerun the same command to retry them:", file=sys.stderr)
        for r in failed:
            print(f"  {r['error'].splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def _search_command(args, sweep_cfg):
    """A sweep with a search space: on Ray Tune (:mod:`nengo_actions.sweep.search`)."""
    out_dir = output_dir(sweep_cfg)
    if args.report_only:
        trials, errors, started, max_t = read_record(out_dir)
        return _results(write_search_report(sweep_cfg, trials, errors, started, max_t), out_dir)
    if not args.dry_run:
        require_tune()
    context, max_t = plan(sweep_cfg, write=not args.dry_run)
    n_grid = len(context.points) * context.repeats
    if sweep_cfg.scheduler == "asha":
        rungs = ", ".join(f"{r:g}" for r in asha_rungs(sweep_cfg.asha, max_t))
        stopping = f"ASHA on {sweep_cfg.metric} (rungs at {rungs} of {max_t} epochs)"
    else:
        stopping = f"no early stopping ({max_t} epochs each)"
    print(f"search '{sweep_cfg.name}': {sweep_cfg.num_samples * n_grid} trials ({sweep_cfg.num_samples} samples x "
          f"{n_grid} grid point(s) and seed(s)), {stopping}, output: {out_dir}")
    if args.dry_run:
        for key, spec in sweep_cfg.search.items():
            (kind, values), = spec.items()
            print(f"  {key}: {kind} {json.dumps(values)}")
        return 0
    start = time.monotonic()
    _, rows = run_search(sweep_cfg)
    count = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", STOPPED, "failed")}
    print(f"{len(rows)} trials in {time.monotonic() - start:.0f} s: {count['done']} finished, {count[STOPPED]} stopped "
          f"early, {count['failed']} failed; {sum(r['epochs'] for r in rows)} epochs trained "
          f"(every trial to the end: {len(rows) * max_t})")
    return _results(rows, out_dir)


def main(argv=None):
    """The command; bad input exits 2 with one line (see :func:`~nengo_actions.config.run_command`)."""
    return config_mod.run_command(lambda: _command(argv))
