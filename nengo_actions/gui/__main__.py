"""``python -m nengo_actions.gui``: the GUI command (:mod:`nengo_actions.gui.cli`)."""

import sys

from nengo_actions.gui.cli import main

sys.exit(main())
