"""Streamed data: clips kept on disk and fed to the engine a minibatch at a time.

With ``data.stream`` ``"on"`` (or ``"auto"`` and inputs larger than
``data.stream_above_mb`` as float32), the train command does not hold the data set in
memory:

* **event data** is framed once into integer count caches
  (:mod:`nengo_actions.data.frame_cache`), one per side (training, validation, test),
  and read back as :class:`~nengo_actions.clips.rows.LazyClips`;
* **feature stores** are read in place from their ``.npz`` files
  (:func:`store_clips`);
* **standardisation** (``train.standardize``) takes the per-feature mean and standard
  deviation in two passes over the training clips (:func:`feature_stats`), adding
  rows in the order NumPy's ``mean``/``std`` over the in-memory array do, so the figures
  are the same to the last bit, and the clips are scaled as they are read;
* **training** (:func:`fit_epoch`): NengoDL's ``fit`` runs on chunks of whole
  minibatches taken in the epoch's order. NengoDL starts every minibatch from the
  simulator's initial state, so chunks train as one call over the whole epoch does;
  an in-memory array is still passed in one call.

Prediction (``Engine.predict``, ``DirectEngine``) already reads one minibatch at a time,
so the same arrays serve it. The result: peak memory grows with the minibatch and the
network, not with the data set, and training, validation and test figures are those of
the in-memory path.

NumPy only: importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np

from nengo_actions.clips.rows import FrameDecode, LazyClips, RowFile, as_float32
from nengo_actions.config.schema import STREAM_CHOICES, DataConfig
from nengo_actions.store import _mmap_member

#: Bytes of packed input per ``fit`` call when training from a :class:`LazyClips`.
CHUNK_BYTES = 256 * 2**20
#: Bytes of float64 rows per pass of :func:`feature_stats`.
STATS_BYTES = 64 * 2**20


def stream_wanted(data: DataConfig, nbytes):
    """Whether to stream data whose float32 inputs take ``nbytes`` (``data.stream``,
    ``data.stream_above_mb``)."""
    if data.stream == "auto":
        return nbytes > data.stream_above_mb * 2**20
    return data.stream == "on"


# ---------------------------------------------------------------------------------------
# Sources


def event_clips(frame_file, channels_first=False, index=None):
    """:class:`LazyClips` over a finished frame cache (:class:`FrameFile`) whose frames
    are ``(T, P, H, W)`` (``channels_first``) or ``(T, H, W, P)``."""
    rows = RowFile.npy(frame_file.path)
    return LazyClips(rows, index, FrameDecode(frame_file.normalize, channels_first))


def store_clips(path, index=None):
    """:class:`LazyClips` over the ``features`` of a feature store split file, read in
    place (the store keeps its members uncompressed); ``None`` for a compressed file."""
    mapped = _mmap_member(path, "features")  # only locates the member; reads nothing
    if mapped is None:
        return None
    rows = RowFile(path, mapped.offset, mapped.dtype, mapped.shape)
    del mapped
    return LazyClips(rows, index, as_float32)


def store_input_bytes(path):
    """Bytes of the float32 inputs a feature store split file holds (0 when the file is
    missing or unreadable: loading it then reports the problem)."""
    try:
        mapped = _mmap_member(path, "features")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return 0
    return 0 if mapped is None else int(np.prod(mapped.shape, dtype=np.int64)) * 4


# ---------------------------------------------------------------------------------------
# Standardisation


def _running_sum(total, rows):
    """``total + rows[0] + rows[1] + ...`` in that order (NumPy's order along axis 0)."""
    return np.add.reduce(np.concatenate([total[None], rows]), axis=0)


def feature_stats(x, clips_per_pass=None):
    """Per-feature mean and standard deviation over all frames of ``x`` (float64).

    Equal to ``a.mean(axis=0)`` and ``a.std(axis=0)`` of
    ``a = np.asarray(x, np.float64).reshape(-1, features)``, read in groups of clips.
    """
    n, frames, features = x.shape
    if n == 0:
        raise ValueError("no clips to take statistics over")
    step = clips_per_pass or max(1, STATS_BYTES // max(1, frames * features * 8))
    total = np.zeros(features)
    for _, clips in x.batches(step) if isinstance(x, LazyClips) else _array_batches(x, step):
        total = _running_sum(total, np.asarray(clips, np.float64).reshape(-1, features))
    count = n * frames
    mean = total / count
    total = np.zeros(features)
    for _, clips in x.batches(step) if isinstance(x, LazyClips) else _array_batches(x, step):
        d = np.asarray(clips, np.float64).reshape(-1, features) - mean
        np.multiply(d, d, out=d)
        total = _running_sum(total, d)
    return mean, np.sqrt(total / count)


def _array_batches(x, size):
    for start in range(0, len(x), size):
        yield start, x[start : start + size]


def standardized(data):
    """:meth:`ClipData.standardized`: every feature of ``data`` scaled to zero mean and unit
    variance over the training clips' frames (validation and test use the training
    statistics). Streamed clips take the statistics of :func:`feature_stats` and are
    scaled as they are read."""
    if isinstance(data.x_train, np.ndarray):
        # in memory: NumPy's own sums over one float64 copy (feature_stats equals them,
        # except for a single feature read in several passes, where NumPy sums pairwise)
        flat = np.asarray(data.x_train, dtype=np.float64).reshape(-1, data.x_train.shape[-1])
        mean, std = flat.mean(axis=0), flat.std(axis=0)
    else:
        mean, std = feature_stats(data.x_train)
    std = np.where(std > 1e-6 * max(float(std.max()), 1e-30), std, 1.0)

    def scale(a):
        if isinstance(a, LazyClips):
            return a.standardized(mean, std)
        return ((np.asarray(a, dtype=np.float32) - mean) / std).astype(np.float32)

    return dataclasses.replace(data, x_train=scale(data.x_train), x_val=scale(data.x_val), x_test=scale(data.x_test))


# ---------------------------------------------------------------------------------------
# Training


def fit_epoch(engine, x, y, epoch, seed=0, chunk_bytes=None):
    """:meth:`Engine.fit_epoch`: one pass in the order of ``engine.epoch_order``.

    An in-memory ``x`` goes to NengoDL's ``fit`` in one call (:meth:`Engine.fit_chunk`);
    a :class:`LazyClips` in chunks of whole minibatches of at most ``chunk_bytes`` of
    packed input. Returns the mean training loss over the minibatches.
    """
    order = engine.epoch_order(len(x), epoch, seed)
    batch, chunk_bytes = engine.minibatch_size, chunk_bytes or CHUNK_BYTES
    if isinstance(x, np.ndarray):
        chunk = len(order)
    else:
        per_clip = int(np.prod(x.shape[1:])) * 4 * max(1, engine.built.steps_per_frame)
        chunk = batch * max(1, chunk_bytes // max(1, per_clip * batch))
    losses = []
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        losses.append((engine.fit_chunk(x[idx], y[idx]), len(idx) // batch))
    if len(losses) == 1:
        return losses[0][0]
    return float(sum(loss * n for loss, n in losses) / sum(n for _, n in losses))


__all__ = [
    "STREAM_CHOICES",
    "stream_wanted",
    "event_clips",
    "store_clips",
    "feature_stats",
    "standardized",
    "fit_epoch",
]
