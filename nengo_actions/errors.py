"""The errors that bad input causes, in one place.

Every error a user can cause (a config, a data folder, a parameter file) derives from
:class:`UserError`; the commands print its message on one line and exit 2
(:func:`nengo_actions.config.run_command`). Any other exception is a bug and keeps its
traceback. Each message names the file or config key it is about.
"""

from __future__ import annotations


def cause(error, limit=200):
    """``"<type>: <message>"`` of a library's exception, cut to ``limit`` characters: a
    reader's own message names the file, and some libraries quote kilobytes of it."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text if len(text) <= limit else text[:limit] + '...'}"


class UserError(Exception):
    """Caused by input rather than by the software; the message names the file or key."""


class ConfigError(UserError, ValueError):
    """A config file or override is invalid; the message names the file and the key."""


class DataError(UserError, ValueError):
    """Clip data that cannot be used: empty, inconsistent or not fitting the model."""


class DivergedError(UserError, ArithmeticError):
    """Training reached a loss that is not finite; the message names the epoch. The run
    folder keeps the epochs before it."""


class OutputError(UserError, OSError):
    """An output that cannot be written: no space left, a read-only file system, no
    permission. The message names the file; what was there before is left as it was."""


class ExtractionError(UserError, RuntimeError):
    """The feature extraction process failed or left no store behind."""


class ParamsError(UserError, ValueError):
    """A parameter or checkpoint file is missing, unreadable or from another model."""


class StoreError(UserError, ValueError):
    """A feature store file is missing, corrupt or inconsistent; the message names it."""


class SplitLeakError(UserError, ValueError):
    """A group appears on both sides of a split."""


class NeuronTypeError(UserError, ValueError):
    """A neuron type string cannot be parsed; the message lists the valid names."""


class NIRError(UserError, ValueError):
    """A NIR file that cannot be read, or a graph or model that NIR exchange cannot build;
    the message names the file, node or layer."""


class EventDataError(UserError, ValueError):
    """Bad event data or dataset layout; the message names the file (and offset/row)."""


class EventFormatError(EventDataError):
    """A recording's bytes do not follow its format; the message names file and offset."""


class DatasetError(EventDataError):
    """A dataset folder is incomplete or inconsistent (missing lists, bad label rows)."""


__all__ = [
    "cause", "UserError", "ConfigError", "DataError", "DivergedError", "OutputError", "ExtractionError", "ParamsError", "StoreError",
    "SplitLeakError", "NeuronTypeError", "NIRError", "EventDataError", "EventFormatError", "DatasetError",
]
