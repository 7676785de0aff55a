"""The GUI command: ``python -m nengo_actions.gui -c CONFIG [--params PATH] [--port P] [--no-browser]``.

Writes the model script for the configured model (see :mod:`nengo_actions.gui`) and
serves it with nengo-gui, printing the URL with its access token.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nengo_actions import config as config_mod
from nengo_actions.config import resolve_path
from nengo_actions.gui.build import GUI_CLIPS, MAX_ENSEMBLES, REDUCED_ENSEMBLES
from nengo_actions.gui.script import prepare
from nengo_actions.gui.serve import serve


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nengo_actions.gui", description="Open a configured model in the Nengo GUI."
    )
    config_mod.add_config_arguments(parser)
    parser.add_argument("--params", help="trained parameters: a NengoDL .npz file or a run folder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves every "
                        "network interface, to anyone who also has the token)")
    parser.add_argument("--port", type=int, help="port (default: the first free of 8080-8089; 0: any free port)")
    parser.add_argument("--no-browser", dest="browser", action="store_false", help="only print the URL")
    parser.add_argument("--out", help="folder for the model script (default: <save_dir>/gui-<name>)")
    parser.add_argument("--max-ensembles", type=int, default=MAX_ENSEMBLES, help="draw a reduced copy above this many ensembles")
    parser.add_argument("--reduced-ensembles", type=int, default=REDUCED_ENSEMBLES, help="ensembles kept in a reduced copy")
    parser.add_argument("--clips", type=int, default=GUI_CLIPS, help="test clips the input presents")
    parser.add_argument("--spiking", action="store_true", help="build with spiking neurons (as the spiking evaluation)")
    parser.add_argument("--steps-per-frame", type=int, help="steps each frame is held (default: 1; with --spiking evaluate.spiking_steps_per_frame)")
    parser.add_argument("--builder", help="MODULE:FUNCTION building another network (default: the project's)")
    parser.add_argument("--prepare-only", action="store_true", help="write the model script and exit")
    return parser


def _command(argv):
    args = build_parser().parse_args(argv)
    cfg = config_mod.config_from_args(args)
    steps = args.steps_per_frame or (cfg.evaluate.spiking_steps_per_frame if args.spiking else 1)
    out = Path(args.out) if args.out else resolve_path(cfg.save_dir) / f"gui-{cfg.name}"
    script, gui = prepare(cfg, out, params=args.params, max_ensembles=args.max_ensembles,
                          reduced_ensembles=args.reduced_ensembles, n_clips=args.clips, build=args.builder,
                          spiking=True if args.spiking else None, steps_per_frame=steps)
    print(f"model script: {script}" + (f" ({gui.note})" if gui.note else ""))
    if args.params:
        print(f"trained parameters: {gui.n_params} ensembles and connections set from {args.params}")
    if args.prepare_only:
        return 0
    serve(script, port=args.port, browser=args.browser, host=args.host)
    return 0


def main(argv=None):
    """The command; bad input exits 2 with one line (see :func:`~nengo_actions.config.run_command`)."""
    return config_mod.run_command(lambda: _command(argv))
