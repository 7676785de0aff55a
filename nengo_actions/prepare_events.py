"""Slice and cache a DVS event dataset, then print a summary.

    python -m nengo_actions.prepare_events -c configs/dvs128_gesture_events.json

Samples per split and class, events per sample, time span and frame shape; the sliced
samples are cached (atomically) for training to reuse.
"""

from __future__ import annotations

import argparse
import sys

from nengo_actions.config import PROJECT_ROOT, add_config_arguments, config_from_args, run_command
from nengo_actions.data.prepare import format_summary, prepare_events


def main(argv=None):
    def command():
        parser = argparse.ArgumentParser(prog="python -m nengo_actions.prepare_events", description=__doc__.split("\n\n")[0])
        add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "dvs_synthetic_events.json")
        args = parser.parse_args(argv)
        print(format_summary(prepare_events(config_from_args(args))))
        return 0

    return run_command(command)


if __name__ == "__main__":
    sys.exit(main())
