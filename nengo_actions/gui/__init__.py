"""Open a configured model in the Nengo GUI.

``python -m nengo_actions.gui -c CONFIG [--params PATH] [--port P] [--no-browser]``

1. Builds the model the config describes, with the feature and class sizes of its
   feature store. A model with more than ``--max-ensembles`` ensembles (the seed's
   EnsembleArray has 10,000) is too large to draw; the GUI then shows a *reduced copy*
   with the first ``--reduced-ensembles`` of them. The page says so: the script's file
   name (the page title) and a node on the canvas name it a reduced copy.
2. With ``--params`` (a parameter file saved by the train command or by NengoDL, or a
   run folder holding ``<model type>/params_best.npz``, the same rule as the train
   command's ``--params``) it loads the trained parameters into the full model with the
   engine and freezes them into plain Nengo values (encoders, gains, biases, connection
   weights), taking the matching leading block of each array for a reduced copy. A file
   that does not fit the model is an error before anything is served.
3. Adds what is worth watching: the input presents the first test clips of the feature
   store frame by frame, a node shows each clip's true and predicted class, and the GUI
   opens value plots of the input and output and spike rasters of a few ensembles.
4. Writes ``model.py`` (or ``model_reduced.py``) with its ``.cfg`` layout into the
   output folder and serves it with nengo-gui on ``--host`` (default 127.0.0.1),
   printing the URL with its access token.

One idea per module:

================  =======================================================================
``build``         the configured network, the data that sizes it, reduced copies
``freeze``        trained parameters -> plain Nengo values, by structural key
``model``         the network the GUI shows: trained values, input, probes, rasters
``script``        the files nengo-gui runs: model script, ``.cfg``, frozen values
``netgraph_fix``  a fix for nengo-gui 0.6's expanded subnetworks
``serve``         the nengo-gui server: host, port, token
``cli``           the command line
================  =======================================================================

The names below are the package's API (``from nengo_actions import gui; gui.X``); the
model script imports :func:`load_gui_model` from here.
"""

from nengo_actions.gui.build import (
    DEFAULT_BUILDER,
    GUI_CLIPS,
    GUI_DT,
    MAX_ENSEMBLES,
    MAX_NEURONS,
    REDUCED_ENSEMBLES,
    DataInfo,
    GuiError,
    build_configured,
    build_network,
    data_info,
    reduced_config,
    resolve_builder,
    unpack,
)
from nengo_actions.gui.cli import build_parser, main
from nengo_actions.gui.freeze import (
    apply_params,
    connection_keys,
    ensemble_keys,
    frozen_params,
    params_file,
    restrict_params,
)
from nengo_actions.gui.model import RASTER_ENSEMBLES, SHOWN_INPUT_DIMS, GuiModel, gui_model
from nengo_actions.gui.netgraph_fix import fix_nengo_gui_expansion
from nengo_actions.gui.script import RESERVED_SCRIPT_NAMES, load_gui_model, prepare
from nengo_actions.gui.serve import DEFAULT_PORTS, serve

__all__ = [
    "DEFAULT_BUILDER", "DEFAULT_PORTS", "GUI_CLIPS", "GUI_DT", "MAX_ENSEMBLES", "MAX_NEURONS",
    "RASTER_ENSEMBLES", "REDUCED_ENSEMBLES", "RESERVED_SCRIPT_NAMES", "SHOWN_INPUT_DIMS", "DataInfo",
    "GuiError", "GuiModel", "apply_params", "build_configured", "build_network", "build_parser",
    "connection_keys", "data_info", "ensemble_keys", "fix_nengo_gui_expansion", "frozen_params",
    "gui_model", "load_gui_model", "main", "params_file", "prepare", "reduced_config",
    "resolve_builder", "restrict_params", "serve", "unpack",
]
