"""Train and evaluate the configured networks: ``python -m nengo_actions.train``.

    python -m nengo_actions.train                      # configs/config.json
    python -m nengo_actions.train -c configs/ucf101_lmu.json --set data.root=/data/ucf101
    python -m nengo_actions.train --resume results/runs/synthetic_demo-20261124-101500
    python -m nengo_actions.train -c CONFIG --params results/runs/<run>   # evaluate only
    python -m nengo_actions.train -c CONFIG --nir model.nir                # evaluate a NIR graph
    python -m nengo_actions.train -c CONFIG --workers 2                    # two training workers here

The last line printed is ``run directory: PATH``.
"""

from __future__ import annotations

import argparse
import sys

from nengo_actions.config import add_config_arguments, config_from_args, run_command
from nengo_actions.config import load_run_config


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nengo_actions.train",
        description="Train Nengo networks on clip features with NengoDL, evaluate them with "
        "rate and spiking neurons, and write a report.",
    )
    add_config_arguments(parser)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint")
    parser.add_argument(
        "--params", metavar="PATH",
        help="evaluate these parameters instead of training (a params file, or a run folder)",
    )
    parser.add_argument(
        "--nir", metavar="FILE",
        help="evaluate this NIR graph on the config's test clips, spiking, instead of training",
    )
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="train with N worker processes on this machine (train.distribute \"multi_worker\", "
        "TF_CONFIG on localhost); on a cluster, start one command per worker with its own TF_CONFIG",
    )
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)

    def job():
        if args.workers is not None:
            from nengo_actions.engine import workers

            return workers.launch(workers.without_option(argv, "--workers"), args.workers, resume=args.resume)
        from nengo_actions.experiment import run

        if args.resume:
            cfg = load_run_config(args.resume, args.overrides)
        else:
            cfg = config_from_args(args)
        run_dir = run(
            cfg, overrides=args.overrides, run_dir=args.resume, resume=bool(args.resume),
            params=args.params, nir=args.nir,
        )
        print(f"run directory: {run_dir}", flush=True)
        return 0

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())
