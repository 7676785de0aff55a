"""Cross-validation over recordings (SL-Animals-DVS): every fold trained and evaluated.

    python scripts/cross_validate.py -c configs/sl_animals.json --sets full,reduced

Writes one run folder per fold and set under ``<save_dir>/<name>-cv-<stamp>/`` and the
mean +- std table there (``crossval.json``, ``crossval.md``); the last line printed is
``run directory: PATH``.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nengo_actions.config import PROJECT_ROOT, add_config_arguments, config_from_args, run_command  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "sl_animals.json")
    parser.add_argument("--sets", default="full,reduced", help="comma-separated: full, reduced (default: both)")
    parser.add_argument("--folds", default=None, help="comma-separated fold numbers (default: all)")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    from nengo_actions.crossval import cross_validate

    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    parent = cross_validate(cfg, [s.strip() for s in args.sets.split(",") if s.strip()], folds)
    print((parent / "crossval.md").read_text())
    print(f"run directory: {parent}", flush=True)


if __name__ == "__main__":
    run_command(main)
