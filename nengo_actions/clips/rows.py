"""Clip arrays that stay on disk: rows read on demand, decoded a minibatch at a time.

:class:`RowFile` reads rows of a C-order array stored in a file (an ``.npy`` file, or an
uncompressed member of a feature store ``.npz``) with ``os.pread``: nothing is mapped
into the process, so the rows read pass through the operating system's page cache and
the process holds only the minibatch it asked for.

:class:`LazyClips` is what the engine is fed instead of an in-memory array when data is
streamed (:mod:`nengo_actions.clips.streaming`): it has ``shape`` ``(clips, frames,
features)``, ``ndim``, ``dtype`` (float32) and ``len``, and indexing it with an integer,
a slice, integer indices or a boolean mask reads and decodes only those clips, giving
the float32 array the in-memory path would hold for them:

* a :class:`FrameDecode` turns stored event counts into the frames the config asks for
  (``sum_norm``: counts divided by the sample's largest count, as
  :func:`nengo_actions.data.frames.to_frames` does; channels-first frames moved to
  channels-last) and flattens each frame;
* optional standardisation ``(x - mean) / std`` with the training statistics, computed
  with the same float32/float64 operations as :meth:`ClipData.standardized`.

NumPy only.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np


class RowFile:
    """Rows ``array[i]`` of a C-order array at byte ``offset`` of ``path``.

    Parameters
    ----------
    path : path
        The file.
    offset : int
        Where the array's data starts.
    dtype, shape
        The stored array's dtype and shape (rows along the first axis).
    """

    def __init__(self, path, offset, dtype, shape):
        self.path = Path(path)
        self.offset = int(offset)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(v) for v in shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd = None
        size = self.path.stat().st_size
        if self.offset + self.row_bytes * self.shape[0] > size:
            raise ValueError(f"{self.path}: file holds {size} bytes, too few for an array of shape {self.shape}")

    @classmethod
    def npy(cls, path):
        """The rows of an ``.npy`` file (read through its header; never unpickled)."""
        path = Path(path)
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = np.lib.format._read_array_header(f, version)
            offset = f.tell()
        if fortran or dtype.hasobject:
            raise ValueError(f"{path}: rows can be read only from C-order arrays of plain numbers")
        return cls(path, offset, dtype, shape)

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        return dict(self.__dict__, _fd=None)

    def __del__(self):
        self.close()

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, indices):
        """Rows ``indices`` (integers, any order) as an array ``(len(indices),) + shape[1:]``.

        Runs of consecutive rows are read with one system call.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(indices),) + self.shape[1:], self.dtype)
        if not len(indices):
            return out
        if indices.min() < 0 or indices.max() >= self.shape[0]:
            raise IndexError(f"{self.path}: row index out of range 0..{self.shape[0] - 1}")
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [len(indices)]])
        for a, b in zip(starts.tolist(), stops.tolist()):
            want = (b - a) * self.row_bytes
            position = self.offset + int(indices[a]) * self.row_bytes
            view = buffer[a * self.row_bytes : a * self.row_bytes + want]
            done = 0
            while done < want:
                n = os.preadv(self._fd, [view[done:]], position + done)
                if n <= 0:
                    raise OSError(f"{self.path}: file ended while reading rows")
                done += n
        return out


@dataclasses.dataclass(frozen=True)
class FrameDecode:
    """Stored counts ``(n, T, ...)`` -> float32 frames ``(n, T, H * W * P)``.

    ``normalize``: divide each sample by its largest count (binning ``sum_norm``);
    ``channels_first``: stored ``(T, P, H, W)``, moved to ``(T, H, W, P)`` first.
    """

    normalize: bool = False
    channels_first: bool = False

    def __call__(self, raw):
        x = raw.astype(np.float32)
        if self.normalize:
            peak = x.reshape(len(x), -1).max(axis=1) if x.size else np.zeros(len(x), np.float32)
            for i in np.flatnonzero(peak > 0):
                x[i] = x[i] / peak[i]
        if self.channels_first:
            x = np.moveaxis(x, 2, -1)
        return np.ascontiguousarray(x).reshape(len(x), x.shape[1], -1)


def as_float32(raw):
    """Stored features -> float32 (any dtype the store holds)."""
    return np.asarray(raw, dtype=np.float32)


class LazyClips:
    """A float32 ``(clips, frames, features)`` view of rows of a :class:`RowFile`.

    Parameters
    ----------
    rows : RowFile
        Where the clips are.
    index : array of int or None
        Which rows, in order (``None``: all).
    decode : callable
        Stored rows -> float32 ``(n, frames, features)`` (:class:`FrameDecode`,
        :func:`as_float32`).
    mean, std : arrays or None
        Per-feature training statistics: clips come out as ``(x - mean) / std``.
    """

    dtype = np.dtype(np.float32)
    ndim = 3

    def __init__(self, rows, index=None, decode=as_float32, mean=None, std=None):
        self.rows = rows
        self.index = np.arange(len(rows), dtype=np.int64) if index is None else np.asarray(index, np.int64)
        self.decode = decode
        self.mean, self.std = mean, std
        sample = decode(rows.read([0])) if len(rows) else np.zeros((0, 0, 0), np.float32)
        self.shape = (len(self.index),) + sample.shape[1:]

    def __len__(self):
        return self.shape[0]

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * 4

    def _positions(self, key):
        if isinstance(key, (int, np.integer)):
            return None
        if isinstance(key, slice):
            return self.index[key]
        key = np.asarray(key)
        if key.dtype == bool:
            if key.shape != (len(self),):
                raise IndexError(f"boolean index of shape {key.shape} for {len(self)} clips")
            return self.index[key]
        if key.dtype.kind not in "iu":
            raise IndexError(f"clips are indexed by integers, slices or masks, not {key.dtype}")
        return self.index[key.reshape(-1)]

    def __getitem__(self, key):
        if isinstance(key, tuple):
            raise IndexError("index the clips first, e.g. x[indices], then the array it returns")
        positions = self._positions(key)
        if positions is None:
            return self[np.asarray([int(key)])][0]
        x = self.decode(self.rows.read(positions))
        if self.mean is not None:
            x = ((x - self.mean) / self.std).astype(np.float32)
        return x

    def __array__(self, dtype=None):
        """All clips in memory (what streaming avoids; for small sets and tests)."""
        x = self[:]
        return x if dtype is None else x.astype(dtype)

    def subset(self, indices):
        """The clips at ``indices`` (integers or a mask), still on disk."""
        return LazyClips(self.rows, self._positions(indices), self.decode, self.mean, self.std)

    def standardized(self, mean, std):
        """The same clips, scaled with ``mean`` and ``std``."""
        return LazyClips(self.rows, self.index, self.decode, mean, std)

    def batches(self, size):
        """``(start, clips)`` for consecutive groups of ``size`` clips."""
        for start in range(0, len(self), size):
            yield start, self[start : start + size]


def join_clips(a, b):
    """The clips of ``a`` then those of ``b``: arrays are concatenated, and clips of one
    file on disk (train and validation carved from it) stay on disk."""
    if len(b) == 0:
        return a
    if isinstance(a, LazyClips) and isinstance(b, LazyClips):
        same = a.rows is b.rows and a.decode == b.decode and a.mean is b.mean and a.std is b.std
        if not same:
            raise ValueError("clips on disk join only when they come from one file, decoded and scaled alike")
        return LazyClips(a.rows, np.concatenate([a.index, b.index]), a.decode, a.mean, a.std)
    return np.concatenate([np.asarray(a), np.asarray(b)])


def empty_like_clips(shape):
    """An in-memory float32 array of zero clips with the frames and features of ``shape``."""
    return np.zeros((0,) + tuple(shape[1:]), np.float32)


__all__ = ["RowFile", "FrameDecode", "LazyClips", "as_float32", "join_clips", "empty_like_clips"]
