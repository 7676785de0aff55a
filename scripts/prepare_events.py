"""Slice and cache a DVS event dataset, then print a summary.

    python scripts/prepare_events.py -c configs/dvs128_gesture_events.json

Samples per split and class, events per sample, time span and frame shape; the sliced
samples are cached (atomically) for training to reuse.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nengo_actions.config import PROJECT_ROOT, add_config_arguments, config_from_args, run_command  # noqa: E402
from nengo_actions.data.prepare import format_summary, prepare_events  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "dvs_synthetic_events.json")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    summary = prepare_events(cfg)
    print(format_summary(summary))
    return summary


if __name__ == "__main__":
    run_command(main)
