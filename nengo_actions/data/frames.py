"""Frames from events: per-pixel, per-polarity event counts over T slices of a sample.

:func:`to_frames` slices a sample into ``n_frames`` frames in one of three ways:

- ``split_by="number"``: equal event counts, ``n // T`` events per frame;
- ``split_by="time"``: equal time spans, ``(t[-1] - t[0]) // T`` µs per frame;
- ``split_by="window"``: a fixed ``time_window`` (µs) per frame from the first event (or
  ``start_time``); with ``n_frames`` set, frames past the sample's end stay empty and
  events after the last frame are dropped (the SL-Animals seed: 50 frames of 30 ms),
  with ``n_frames=None`` the count is tonic's ``floor((duration - window) / window) + 1``.

Where the two reference tools define the same frames, the results are equal:

- ``remainder="last"`` (default) gives the ``n % T`` events left over by "number" and the
  events after ``T`` whole time bins to the last frame, as SpikingJelly's
  ``integrate_events_by_fixed_frames_number`` does;
- ``remainder="drop"`` drops them, as tonic's ``ToFrame(n_event_bins=T)`` and
  ``ToFrame(n_time_bins=T)`` do; ``split_by="window"`` with ``n_frames=None`` equals
  ``ToFrame(time_window=...)``.

Binning: ``"sum"`` (counts), ``"or"`` (1 where a pixel fired at least once) or
``"sum_norm"`` (counts divided by the sample's largest count, so values lie in [0, 1]:
the "SUM" mode of the SL-Animals/N-MNIST STBP loaders). Spatial downsampling by an integer
factor sums blocks of ``factor x factor`` pixels (``x // factor``, ``y // factor``) before
binning. Output is channels-first ``(T, P, H, W)`` or channels-last ``(T, H, W, P)`` (Keras).

Speed: for arrays in the package's own layout (:data:`~.events.EVENT_DTYPE`), the
histogram key of each event is computed from its first 8 bytes (``x | y << 16 | p << 32``)
with one 64-bit multiply and one shift, which moves the three fields next to each other;
a bitwise OR over the same words checks every event lies on the sensor and falls back to
the field-by-field path (which names the offending field) when one does not.
"""

from __future__ import annotations

import functools

import numpy as np

from ..config.events import FRAME_MODES as MODES
from ..config.events import REMAINDERS
from ..config.events import SPLIT_BY as SPLITS
from .events import DVS128_SENSOR, EVENT_DTYPE, EventDataError, as_events, sort_by_time

# not the schema's: events.frames.channels lists "last" first, and the order shows in errors
CHANNELS = ("first", "last")

#: Events per block in the key computation: the block stays in the CPU cache.
_BLOCK = 1 << 15


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def frame_bounds(t, n_frames, split_by="number", *, time_window=None, start_time=None, remainder="last"):
    """Index ranges of each frame in a time-sorted event array.

    Parameters
    ----------
    t : numpy.ndarray
        Timestamps (µs), non-decreasing, shape ``(n,)``.
    n_frames : int or None
        Number of frames; ``None`` only with ``split_by="window"``.
    split_by, time_window, start_time, remainder
        As in :func:`to_frames`.

    Returns
    -------
    starts, stops : numpy.ndarray
        int64 arrays of shape ``(T,)``: frame ``i`` holds events ``starts[i]:stops[i]``.
    """
    _check_choice("split_by", split_by, SPLITS)
    _check_choice("remainder", remainder, REMAINDERS)
    n = int(t.shape[0])
    if split_by == "window":
        if time_window is None or time_window <= 0:
            raise ValueError("split_by='window' needs a positive time_window (µs)")
        if n == 0:
            count = n_frames or 0
            return np.zeros(count, np.int64), np.zeros(count, np.int64)
        start = t[0] if start_time is None else start_time
        if n_frames is None:
            duration = t[-1] - start
            n_frames = max(int(np.floor((duration - time_window) / time_window) + 1), 1)
        edges = start + np.arange(n_frames + 1) * time_window
        bounds = np.searchsorted(t, edges, side="left").astype(np.int64)
        return bounds[:-1], bounds[1:]
    if n_frames is None or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer for split_by={split_by!r}")
    if split_by == "number":
        per_frame = n // n_frames
        starts = np.arange(n_frames, dtype=np.int64) * per_frame
        stops = starts + per_frame
    else:
        if n == 0:
            return np.zeros(n_frames, np.int64), np.zeros(n_frames, np.int64)
        step = (int(t[-1]) - int(t[0])) // n_frames
        edges = int(t[0]) + np.arange(n_frames + 1, dtype=np.int64) * step
        bounds = np.searchsorted(t, edges, side="left").astype(np.int64)
        starts, stops = bounds[:-1], bounds[1:]
    if remainder == "last" and n_frames:
        stops[-1] = n
    return starts, stops


@functools.lru_cache(maxsize=None)
def _packing(x_bits, y_bits):
    """Multiplier and shift that map ``w = x | y << 16 | p << 32`` to
    ``p | x << 1 | y << (1 + x_bits)`` as ``(w * multiplier mod 2**64) >> shift``.

    Each field lands in the top ``1 + x_bits + y_bits`` bits from its own partial
    product; the other partial products must fall wholly above bit 63 (they vanish) or
    wholly below the window with a sum too small to carry into it. Returns ``None`` when
    no such placement exists (sensors above 128 x 128 or so).
    """
    fields = ((0, x_bits), (16, y_bits), (32, 1))  # (bit position in w, width)
    width = 1 + x_bits + y_bits
    low = 64 - width
    targets = (low + 1, low + 1 + x_bits, low)  # x, y, p positions in the product
    shifts = [target - position for target, (position, _) in zip(targets, fields)]
    if min(shifts) < 0:
        return None
    below = 0
    for i, shift in enumerate(shifts):
        for j, (position, bits) in enumerate(fields):
            if i == j:
                continue
            lo = position + shift
            if lo >= 64:
                continue
            if lo + bits > low:
                return None
            below += ((1 << bits) - 1) << lo
    if below >= 1 << low:
        return None
    multiplier = sum(1 << shift for shift in shifts)
    return np.uint64(multiplier), np.uint64(low)


def _bits(size):
    return max(int(size - 1).bit_length(), 1)


class _FrameStore:
    """Writes each frame's histogram (flat, ``(rows, cols, 2)`` order) into the output.

    ``rows x cols`` may be a padded ``2**k`` grid; cells outside the sensor are counted
    in :attr:`outside` instead of being stored.
    """

    def __init__(self, target, channels_first, height, width, rows, cols):
        self.target = target
        self.first = channels_first
        self.height, self.width, self.rows, self.cols = height, width, rows, cols
        self.padded = (rows, cols) != (height, width)
        self.outside = 0

    def empty(self, frame):
        self.target[frame] = 0

    def __call__(self, frame, flat):
        hist = flat.reshape(self.rows, self.cols, 2)
        if self.padded:
            total = int(flat.sum())
            hist = hist[:self.height, :self.width]
            self.outside += total - int(hist.sum())
        self.target[frame] = hist.transpose(2, 0, 1) if self.first else hist


def _fast_counts(events, starts, stops, store):
    """Histogram each frame from the events' packed 64-bit words.

    Returns False (``store`` then holds garbage) when some event's word has bits outside
    the sensor's fields: an off-sensor coordinate, a polarity other than 0/1 or nonzero
    padding bytes; the caller then takes the field-by-field path, which names the field.
    """
    x_bits, y_bits = _bits(store.width), _bits(store.height)
    packing = _packing(x_bits, y_bits)
    if packing is None:
        return False
    multiplier, shift = packing
    allowed = ((1 << x_bits) - 1) | (((1 << y_bits) - 1) << 16) | (1 << 32)
    words = events.view(np.uint64)[0::2]
    n_bins = 1 << (1 + x_bits + y_bits)
    longest = int((stops - starts).max()) if starts.shape[0] else 0
    keys = np.empty(max(longest, 1), dtype=np.uint64)
    seen = 0
    for frame, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        if b <= a:
            store.empty(frame)
            continue
        for s in range(a, b, _BLOCK):
            e = min(b, s + _BLOCK)
            block = keys[s - a:e - a]
            # One strided read; the check and the arithmetic then run on the cached,
            # contiguous copy (an OR over strided words costs as much as the copy).
            np.copyto(block, words[s:e])
            seen |= int(np.bitwise_or.reduce(block))
            np.multiply(block, multiplier, out=block)
            np.right_shift(block, shift, out=block)
        store(frame, np.bincount(keys[:b - a].view(np.int64), minlength=n_bins))
    return not seen & ~allowed


def _checked_fields(events, width, height):
    x, y, p = events["x"], events["y"], events["p"]
    if events.shape[0]:
        for name, values, limit in (("x", x, width), ("y", y, height), ("p", p, 2)):
            low, high = int(values.min()), int(values.max())
            if low < 0 or high >= limit:
                what = "polarity must be 0 or 1" if name == "p" else f"sensor size {width} x {height}"
                bad = low if low < 0 else high
                raise EventDataError(
                    f"event {name}={bad} outside {what} (valid {name}: 0..{limit - 1})"
                )
    return x, y, p


def _generic_counts(events, starts, stops, store):
    """Histogram each frame field by field, for any structured array."""
    width, height = store.width, store.height
    x, y, p = _checked_fields(events, width, height)
    n_bins = 2 * width * height
    for frame, (a, b) in enumerate(zip(starts.tolist(), stops.tolist())):
        if b <= a:
            store.empty(frame)
            continue
        key = np.multiply(y[a:b], width, dtype=np.intp)
        key += x[a:b]
        key *= 2
        key += p[a:b]
        store(frame, np.bincount(key, minlength=n_bins))


def to_frames(
    events,
    sensor_size=DVS128_SENSOR,
    n_frames=16,
    split_by="number",
    *,
    time_window=None,
    start_time=None,
    remainder="last",
    mode="sum",
    downsample=1,
    channels="first",
    dtype=np.float32,
):
    """Accumulate events into frames.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with fields ``x``, ``y``, ``p`` (0/1 or bool), ``t`` (µs).
    sensor_size : tuple of int
        ``(width, height, polarities)``, tonic's order; with 1 polarity both are summed.
    n_frames : int or None
        Number of frames T (``None``: as many windows as fit, ``split_by="window"``).
    split_by : str
        ``"number"``, ``"time"`` or ``"window"`` (see the module docstring).
    time_window : float or None
        Frame length in µs for ``split_by="window"``.
    start_time : float or None
        Start of the first window (µs) for ``split_by="window"``; default the first
        event's time.
    remainder : str
        ``"last"`` (SpikingJelly) or ``"drop"`` (tonic) for events past T equal parts.
    mode : str
        ``"sum"``, ``"or"`` or ``"sum_norm"``.
    downsample : int
        Spatial factor f: the frames are ``ceil(H / f) x ceil(W / f)`` pixels.
    channels : str
        ``"first"``: shape ``(T, P, H, W)``; ``"last"``: ``(T, H, W, P)``.
    dtype : numpy dtype
        Output dtype (counts are exact in float32 up to 2**24).

    Returns
    -------
    numpy.ndarray
        The frames, C-contiguous.
    """
    _check_choice("mode", mode, MODES)
    _check_choice("channels", channels, CHANNELS)
    dtype = np.dtype(dtype)
    if mode == "sum_norm" and dtype.kind != "f":
        raise ValueError("mode='sum_norm' needs a floating-point dtype")
    width, height, polarities = (int(v) for v in sensor_size)
    if polarities not in (1, 2):
        raise ValueError(f"sensor_size polarities must be 1 or 2; got {polarities}")
    downsample = int(downsample)
    if downsample < 1:
        raise ValueError(f"downsample must be a positive integer; got {downsample}")
    events = np.asarray(events)
    if events.dtype.names is None or any(k not in events.dtype.names for k in "xypt"):
        events = as_events(events)  # raises with the missing fields named
    if split_by != "number":
        events = sort_by_time(events)
    starts, stops = frame_bounds(
        events["t"], n_frames, split_by, time_window=time_window,
        start_time=start_time, remainder=remainder,
    )
    n_out = starts.shape[0]

    # Without downsampling or merged polarities the histograms go straight into the
    # output (cast and, for channels-first, transposed on the way).
    direct = downsample == 1 and polarities == 2
    first = direct and channels == "first"
    shape = (n_out, 2, height, width) if first else (n_out, height, width, 2)
    counts = np.empty(shape, dtype if direct else np.int64)
    fast = events.dtype == EVENT_DTYPE and events.flags.c_contiguous
    if fast:
        rows, cols = 1 << _bits(height), 1 << _bits(width)
        store = _FrameStore(counts, first, height, width, rows, cols)
        fast = _fast_counts(events, starts, stops, store)
        if fast and store.outside:
            raise EventDataError(
                f"{store.outside} events outside sensor size {width} x {height} "
                f"(x up to {int(events['x'].max())}, y up to {int(events['y'].max())})"
            )
    if not fast:
        store = _FrameStore(counts, first, height, width, height, width)
        _generic_counts(events, starts, stops, store)

    if polarities == 1:
        counts = counts.sum(axis=3, keepdims=True)
    if downsample > 1:
        h, w = -(-height // downsample), -(-width // downsample)
        padded = np.zeros((n_out, h * downsample, w * downsample, polarities), counts.dtype)
        padded[:, :height, :width] = counts
        counts = padded.reshape(n_out, h, downsample, w, downsample, polarities).sum(axis=(2, 4))
    if mode == "or":
        counts = counts > 0
    elif mode == "sum_norm":
        counts = counts.astype(dtype, copy=False)
        peak = counts.max() if counts.size else 0
        if peak > 0:
            counts = counts / peak
    if channels == "first" and not first:
        counts = counts.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(counts, dtype=dtype)
