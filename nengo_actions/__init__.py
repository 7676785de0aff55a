"""Spiking neural network action and gesture recognition with Nengo and NengoDL.

Importing the package is cheap: TensorFlow and NengoDL are imported only by the
modules that build or run networks (through :mod:`nengo_actions.compat`), so data tools
such as :mod:`nengo_actions.config` and :mod:`nengo_actions.data` start fast.
"""

__version__ = "0.1.0"
