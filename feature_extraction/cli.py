"""The extraction command: argument parsing and the closing summary."""

from __future__ import annotations

import argparse
import sys

from nengo_actions.config import ConfigError, add_config_arguments, config_from_args, run_command

from .seed_pickles import export_seed_pickles


def build_parser():
    parser = argparse.ArgumentParser(
        prog="extract_features.py",
        description="Turn a config's videos into per-frame ResNet features in the feature store "
        "(<store_dir>/train.npz and test.npz). Exit status: 0 done, 1 some clips failed "
        "(unless features.allow_failures), 2 a config or input error.",
    )
    add_config_arguments(parser)
    parser.add_argument("--shard", metavar="i/n", help="do only shard i of n (1-based); merge afterwards")
    parser.add_argument(
        "--merge", nargs="*", metavar="SHARD_STORE_DIR", default=None,
        help="assemble the store from the chunks of all shards (plus those in the named folders)",
    )
    parser.add_argument(
        "--backend", choices=("local", "ray"), default="local",
        help="local: this process (or the one shard of --shard); ray: --jobs shards as Ray tasks, then the merge",
    )
    parser.add_argument(
        "--ray-address", metavar="ADDR",
        help="with --backend ray: the Ray cluster to run on; without it a local Ray is started",
    )
    parser.add_argument(
        "--jobs", type=int, metavar="N",
        help="with --backend ray: shards as Ray tasks, one GPU each where the cluster has GPUs, else one "
        "CPU (default: the cluster's GPUs, else its CPUs)",
    )
    parser.add_argument("--force", action="store_true", help="delete the existing store and extract again")
    parser.add_argument(
        "--export-seed-pickles", metavar="DIR",
        help="after extracting, also write the seed's four pickles ({train,test}_{data,labels}.pickle) to DIR",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    """Run the command; returns the exit status (a config error exits 2 via SystemExit)."""
    args = build_parser().parse_args(argv)

    def command():
        cfg = config_from_args(args)
        # torch loads only once the config has been checked
        from . import extract
        from .merge import merge

        progress = not args.no_progress
        if args.backend == "ray":
            if args.shard or args.merge is not None:
                raise ConfigError("--backend ray runs and merges the shards itself; leave out --shard and --merge")
            from .ray_backend import extract_on_ray

            summary = extract_on_ray(cfg, args.jobs, args.ray_address, progress, force=args.force)
        elif args.jobs is not None or args.ray_address:
            raise ConfigError("--jobs and --ray-address go with --backend ray")
        elif args.merge is not None:
            if args.shard:
                raise ConfigError("--merge and --shard do not go together")
            summary = merge(cfg, args.merge, progress)
        else:
            shard = extract.parse_shard(args.shard) if args.shard else (1, 1)
            summary = extract.extract(cfg, shard, progress, force=args.force)
        for line in summary.lines():
            print(line, flush=True)
        if args.export_seed_pickles:
            if not summary.complete:
                raise ConfigError("--export-seed-pickles needs a complete store; merge the shards first")

            written = export_seed_pickles(summary.store_dir, args.export_seed_pickles)
            print(f"  seed pickles: {', '.join(str(p) for p in written.values())}", flush=True)
        return summary.exit_code

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
