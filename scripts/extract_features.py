"""Extract per-frame features of a config's clips into the feature store.

    python scripts/extract_features.py -c CONFIG [--set KEY=VALUE ...] [--shard i/n]
    python scripts/extract_features.py -c CONFIG --merge [SHARD_STORE_DIR ...]
    python scripts/extract_features.py -c CONFIG --export-seed-pickles DIR

Exit status: 0 done, 1 some clips failed (unless features.allow_failures), 2 a config or
input error (named file or key) found before any work.
"""

import sys

from feature_extraction.cli import main

if __name__ == "__main__":
    sys.exit(main())
