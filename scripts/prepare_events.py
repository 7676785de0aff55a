"""Slice and cache a DVS event dataset, then print a summary (``python -m nengo_actions.prepare_events``).

    python scripts/prepare_events.py -c configs/dvs128_gesture_events.json
"""

import sys

from nengo_actions.prepare_events import main

if __name__ == "__main__":
    sys.exit(main())
