"""Atomic files: a killed run leaves either the old file or the new one, never half of one.

Everything is written to a hidden temporary name in the target folder and renamed into
place (``os.replace`` is atomic on one file system). Temporary files orphaned by a killed
process carry :data:`TEMP_MARK` in their name and are removed by
:func:`remove_stale_temp_files` before a cache is written again.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from .events import EventDataError

TEMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is deleted and the exception propagates, so
    ``path`` keeps its previous content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_npz_atomic(path, **arrays):
    """``np.savez`` (uncompressed) to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


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


def write_json_atomic(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")


def read_json(path):
    """The JSON object in ``path``, or ``None`` when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def remove_stale_temp_files(directory):
    """Delete temporary files left in ``directory`` (recursively) by killed runs.

    Returns the number of files removed.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.rglob(f".*{TEMP_MARK}*"):
        if path.is_file() and not _writer_alive(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def _writer_alive(name):
    """Whether the process that created temporary file ``name`` is still running."""
    try:
        pid = int(name.rsplit(TEMP_MARK, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_fingerprint(path):
    """``{"name", "size", "mtime_ns"}`` of a file: a cache built from it is stale when
    any of these change."""
    stat = os.stat(path)
    return {"name": Path(path).name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
