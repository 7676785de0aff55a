"""Atomic files: a killed run leaves either the old file or the new one, never half of one.

Everything is written to a hidden temporary name in the target folder and renamed into
place (``os.replace`` is atomic on one file system). Temporary files orphaned by a killed
process carry :data:`TEMP_MARK` and the writer's process id in their name;
:func:`remove_stale_temp_files` deletes those whose writer is gone before a job that
writes into the folder starts again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np

from nengo_actions.errors import OutputError

TEMP_MARK = ".tmp-"

#: What zipfile and NumPy raise on a damaged ``.npz``: bad headers, truncated members,
#: flag bits for encryption or compression they do not implement.
ARCHIVE_ERRORS = (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError, NotImplementedError, RuntimeError)

# errno values that say the output cannot be written, as opposed to a bad input
_OUTPUT_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG") if hasattr(errno, name)
)


@contextlib.contextmanager
def writing(path):
    """Turn a failed write of ``path`` (disk full, read-only, no permission) into one
    :class:`~nengo_actions.errors.OutputError` that names ``path``.

    Write errors often carry no file name (a ``write`` on an open file), so the caller
    names the file the user knows, not a temporary one. Other errors pass unchanged.
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        if e.errno not in _OUTPUT_ERRNOS:
            raise
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    ``suffix`` ends the temporary name (writers such as OpenCV's pick the format from
    it). On an exception the temporary file is deleted and the exception propagates, so
    ``path`` keeps its previous content (or stays absent).
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
        try:
            yield tmp
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def write_bytes_atomic(path, write):
    """Call ``write(file)`` on a binary file that becomes ``path`` once it returns."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
    return Path(path)


def save_npz_atomic(path, **arrays):
    """``np.savez`` (uncompressed, so members can be memory-mapped) to ``path`` atomically.

    No member may need pickle. The bytes are those of ``np.savez``.
    """
    return write_bytes_atomic(path, lambda f: _write_npz(f, arrays))


def _write_npz(f, arrays):
    # np.savez's own loop, with the archive closed when a write fails: NumPy leaves the
    # ZipFile open then, and its finaliser raises a second traceback on the closed file.
    archive = zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)
    try:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    except BaseException:
        with contextlib.suppress(Exception):
            archive.close()
        raise
    archive.close()


def save_figure_atomic(fig, path, **savefig):
    """``fig.savefig`` (a matplotlib figure; the format from ``path``'s suffix) to ``path``
    atomically."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, **savefig)
    return path


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json_atomic(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


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


__all__ = [
    "TEMP_MARK", "ARCHIVE_ERRORS", "writing", "atomic_path", "write_bytes_atomic", "save_npz_atomic", "save_figure_atomic", "write_text_atomic",
    "write_json_atomic", "read_json", "remove_stale_temp_files",
]
