"""Cached event samples on disk: reading them back, and when a cache is stale.

They are written through :mod:`nengo_actions.io` (atomic files).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .events import EventDataError


def load_npz(path):
    """Load every array of an ``.npz`` file into a dict, never unpickling.

    Raises
    ------
    EventDataError
        Naming the file when it is missing, truncated or not an ``.npz`` archive.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise EventDataError(f"{path}: cached sample is missing") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise EventDataError(f"{path}: unreadable cache file ({e})") from None


def file_fingerprint(path):
    """``{"name", "size", "mtime_ns"}`` of a file: a cache built from it is stale when
    any of these change."""
    stat = os.stat(path)
    return {"name": Path(path).name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
