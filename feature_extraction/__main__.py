"""``python -m feature_extraction -c CONFIG ...``: the same command as scripts/extract_features.py."""

import sys

from .cli import main

sys.exit(main())
