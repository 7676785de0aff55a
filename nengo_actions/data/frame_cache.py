"""Framed event samples stored once on disk as exact integer counts.

:func:`cached_frames` frames every sample of an :class:`~.dataset.EventDataset` with a
transform ending in :class:`~.transforms.ToFrames` and writes the frames into one ``.npy``
file, ``(samples,) + frame shape``, in the smallest unsigned integer type that holds
them exactly:

* binning ``or``: ``uint8`` (0 or 1);
* ``sum``: ``uint8`` when no sample has more than 255 events, else ``uint16``, widened
  to ``uint32`` (the file rebuilt) if some pixel of some frame counts more than 65,535;
* ``sum_norm``: stored as ``sum`` counts; the division by each sample's largest count
  is done when the frames are read (:class:`nengo_actions.clips.rows.FrameDecode`), with the
  same float32 arithmetic as :func:`~.frames.to_frames`, so the values are equal.

The file is a plain ``.npy`` (``np.load(path, mmap_mode="r")`` opens it); the engine reads
its rows with :class:`nengo_actions.clips.rows.RowFile`.

Resuming: the frames are written into ``<file>.partial`` and, every few seconds, the
number of samples written so far and the state of the transform's random number
generator (random crops) go to ``<file>.progress.json`` (atomically, after the frames
it counts). A build killed at any point continues from the last count with the
generator where it was, so the finished file equals one built without interruption.
The ``.npy`` is renamed into place only when complete, after its ``.json`` description
(the cache key, dtype, shape), so a file with a matching description is whole.

NumPy only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..io import read_json, write_json_atomic, writing
from .events import EventDataError
from .transforms import Compose, RandomCropTime, ToFrames

#: Bumped when the stored layout or the framing rules change.
FRAME_CACHE_VERSION = 1
#: Seconds between progress records while a cache is built.
PROGRESS_SECONDS = 2.0

_WIDER = {np.dtype(np.uint8): np.dtype(np.uint16), np.dtype(np.uint16): np.dtype(np.uint32)}


@dataclasses.dataclass
class FrameFile:
    """A finished cache: its ``path``, ``dtype``, ``shape`` and whether its counts are
    divided by each sample's peak when read (``normalize``, binning ``sum_norm``)."""

    path: Path
    dtype: np.dtype
    shape: tuple
    normalize: bool


def count_transform(transform):
    """``(transform that gives int64 counts, normalize)`` for a framing transform.

    ``transform`` is a :class:`~.transforms.ToFrames` or a :class:`~.transforms.Compose` ending
    in one; ``sum_norm`` becomes ``sum`` with ``normalize=True``.
    """
    steps = transform.transforms if isinstance(transform, Compose) else (transform,)
    last = steps[-1]
    if not isinstance(last, ToFrames):
        raise TypeError("a frame cache needs a transform ending in ToFrames")
    normalize = last.mode == "sum_norm"
    counts = dataclasses.replace(last, mode="sum" if normalize else last.mode, dtype="int64")
    return Compose(tuple(steps[:-1]) + (counts,)), normalize


def smallest_dtype(mode, max_events):
    """The unsigned type to try first for frames of samples with ``max_events`` events."""
    if mode == "or" or max_events <= np.iinfo(np.uint8).max:
        return np.dtype(np.uint8)
    return np.dtype(np.uint16)


def _random_steps(transform):
    steps = transform.transforms if isinstance(transform, Compose) else (transform,)
    return [step for step in steps if getattr(step, "rng", None) is not None]


def _rng_states(transform):
    return [step.rng.bit_generator.state for step in _random_steps(transform)]


def _set_rng_states(transform, states):
    steps = _random_steps(transform)
    if len(steps) != len(states):
        raise ValueError("saved generator states do not match the transform")
    for step, state in zip(steps, states):
        step.rng.bit_generator.state = state


def cache_key(dataset, transform, extra=None):
    """What a cached file depends on: the samples (ids and event counts, spans) and
    the framing settings (the transform's parameters, ``extra`` such as the seed)."""
    samples = [[s["id"], s["n_events"], s["t_first"], s["t_last"]] for s in dataset.samples]
    digest = hashlib.sha1(json.dumps(samples).encode()).hexdigest()
    return {
        "version": FRAME_CACHE_VERSION,
        "samples": digest,
        "n_samples": len(dataset.samples),
        "transform": repr(transform),
        "extra": extra or {},
    }


def key_name(key):
    """A short file stem for ``key``."""
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _finished(path, key):
    meta = read_json(path.with_suffix(".json"))
    if not meta or meta.get("key") != key or not path.is_file():
        return None
    return FrameFile(path, np.dtype(meta["dtype"]), tuple(meta["shape"]), bool(meta["normalize"]))


def cached_frames(dataset, transform, directory, role, extra=None, progress=True, desc=None):
    """The :class:`FrameFile` of ``dataset`` framed by ``transform``, built when missing.

    Parameters
    ----------
    dataset : EventDataset
        The samples, in the order the file keeps them.
    transform : Compose or ToFrames
        The framing transform (a random crop in it draws from its generator in sample
        order, as framing in memory does; the generator is left where a full build
        leaves it).
    directory : path
        Where the caches live; the file is ``<directory>/<role>-<key>.npy``.
    role : str
        ``"train"``, ``"val"`` or ``"test"`` (part of the file name).
    extra : dict or None
        More of the key (settings the transform does not show, such as the seed).
    """
    if len(dataset) == 0:
        raise EventDataError(f"{dataset.name}: the split holds no samples")
    counts, normalize = count_transform(transform)
    key = cache_key(dataset, transform, extra)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{role}-{key_name(key)}.npy"
    with _building(path):
        done = _finished(path, key)
        if done is not None:
            _skip_draws(dataset, transform)
            return done
        mode = counts.transforms[-1].mode
        dtype = smallest_dtype(mode, max(int(s["n_events"]) for s in dataset.samples))
        progress_path = path.with_name(path.name + ".progress.json")
        saved = read_json(progress_path)
        if saved and saved.get("key") == key:
            dtype = np.dtype(saved["dtype"])
        start_states = _rng_states(transform)
        while True:
            try:
                return _build(dataset, transform, counts, path, key, dtype, normalize, progress, desc)
            except _Overflow:
                dtype = _WIDER[dtype]
                _set_rng_states(transform, start_states)
                for stale in (path.with_name(path.name + ".partial"), progress_path):
                    stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _building(path):
    """Hold ``<file>.lock`` while a cache file is checked and built: the workers of a
    multi-worker run (and runs started together) frame into the same cache, so one
    builds it and the others wait, then find it finished."""
    try:
        import fcntl

        lock = open(path.with_name(path.name + ".lock"), "a")
    except (ImportError, OSError):  # no advisory locks (Windows) or a read-only cache: no lock
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _skip_draws(dataset, transform):
    """Advance a random crop's generator past ``dataset`` as framing it would.

    The crop of a sample draws one number only when the sample is longer than the
    crop; its span is in the sample entry, so no events are read.
    """
    steps = transform.transforms if isinstance(transform, Compose) else (transform,)
    for step in steps:
        if isinstance(step, RandomCropTime):
            for s in dataset.samples:
                if s["n_events"] and s["t_last"] - s["t_first"] - step.duration > 0:
                    step.rng.uniform(0, s["t_last"] - s["t_first"] - step.duration)


class _Overflow(Exception):
    pass


def _build(dataset, transform, counts, path, key, dtype, normalize, progress, desc):
    partial = path.with_name(path.name + ".partial")
    progress_path = path.with_name(path.name + ".progress.json")
    shape = (len(dataset),) + tuple(counts.transforms[-1].output_shape())
    if shape[1] is None:
        raise EventDataError(f"{dataset.name}: a frame cache needs a fixed number of frames")
    saved = read_json(progress_path)
    start = 0
    if saved and saved.get("key") == key and saved.get("dtype") == dtype.str and partial.is_file():
        start = int(saved["done"])
        _set_rng_states(transform, saved["rng"])
    else:
        # writes the header and sizes the file; no frame pages are touched
        with writing(path):
            header = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
            del header
        write_json_atomic(progress_path, {"key": key, "dtype": dtype.str, "done": 0, "rng": _rng_states(transform)})
    with open(partial, "rb") as f:
        version = np.lib.format.read_magic(f)
        np.lib.format._read_array_header(f, version)
        offset = f.tell()
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    top = np.iinfo(dtype).max
    indices = range(start, len(dataset))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(dataset), initial=start, desc=desc or f"caching frames of {dataset.name}", unit="sample")
    last = time.monotonic()
    try:
        # recordings are read through a row cache that raises EventDataError, so a disk
        # full or read-only error here is the frame cache's own
        with writing(path), open(partial, "r+b") as f:
            for i in indices:
                events = dataset.events(i)
                frames = counts(events)
                if frames.shape != shape[1:]:
                    raise EventDataError(f"{dataset.samples[i]['id']}: frames of shape {frames.shape}, expected {shape[1:]}")
                if frames.size and int(frames.max()) > top:
                    raise _Overflow()
                f.seek(offset + i * row_bytes)
                f.write(np.ascontiguousarray(frames, dtype=dtype).tobytes())
                if bar is not None:
                    bar.update(1)
                if time.monotonic() - last > PROGRESS_SECONDS:
                    f.flush()  # the frames first, then the count that covers them
                    write_json_atomic(progress_path, {"key": key, "dtype": dtype.str, "done": i + 1, "rng": _rng_states(transform)})
                    last = time.monotonic()
    finally:
        if bar is not None:
            bar.close()
    meta = {"key": key, "dtype": dtype.str, "shape": list(shape), "normalize": normalize}
    write_json_atomic(path.with_suffix(".json"), meta)
    os.replace(partial, path)
    progress_path.unlink(missing_ok=True)
    return FrameFile(path, dtype, shape, normalize)


__all__ = ["FrameFile", "cached_frames", "cache_key", "count_transform", "smallest_dtype", "FRAME_CACHE_VERSION"]
