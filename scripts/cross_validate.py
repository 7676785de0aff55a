"""Cross-validation over recordings (SL-Animals-DVS), ``python -m nengo_actions.crossval``.

    python scripts/cross_validate.py -c configs/sl_animals.json --sets full,reduced

Writes one run folder per fold and set under ``<save_dir>/<name>-cv-<stamp>/`` and the
mean +- std table there (``crossval.json``, ``crossval.md``); the last line printed is
``run directory: PATH``.
"""

import sys

from nengo_actions.crossval import main

if __name__ == "__main__":
    sys.exit(main())
