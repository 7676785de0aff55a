"""``python -m nengo_actions.sweep``: the sweep command (:mod:`nengo_actions.sweep.cli`)."""

import sys

from nengo_actions.sweep.cli import main

sys.exit(main())
