"""Events in memory: one structured numpy array per recording or sample.

Fields ``x``, ``y`` (int16, pixels), ``p`` (int8, 1 = ON, 0 = OFF) and ``t`` (int64,
microseconds), the names tonic uses, so tonic's transforms apply unchanged. The record is
aligned to 16 bytes (``x`` at byte 0, ``y`` at 2, ``p`` at 4, three zero padding bytes,
``t`` at 8): framing reads ``x | y << 16 | p << 32`` as one 64-bit word per event, which
is why every function here creates arrays with zeroed padding (:func:`make_events`,
:func:`empty_events`). Arrays made elsewhere (``np.empty``, another field order, tonic's
packed dtype) are accepted everywhere; :func:`as_events` converts them.

Image convention: ``x`` is the column and ``y`` the row, with (0, 0) at the top-left, as
libcaer writes DVS128 Gesture recordings.
"""

from __future__ import annotations

import numpy as np

from ..errors import DatasetError, EventDataError, EventFormatError  # noqa: F401 (re-exported)

#: The event record: x, y int16; p int8 (0 OFF, 1 ON); t int64 microseconds; 16 bytes.
EVENT_DTYPE = np.dtype(
    [("x", "<i2"), ("y", "<i2"), ("p", "i1"), ("t", "<i8")], align=True
)
EVENT_FIELDS = ("x", "y", "p", "t")

#: (width, height, polarities) of the DVS128 sensor, tonic's ``sensor_size`` order.
DVS128_SENSOR = (128, 128, 2)


def empty_events(n=0):
    """A zero-filled event array of length ``n`` (padding bytes zero)."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(x, y, p, t):
    """Build an event array from four equal-length sequences.

    Parameters
    ----------
    x, y : array_like of int
        Column and row, in pixels.
    p : array_like of int or bool
        Polarity; nonzero is ON (stored as 1), zero is OFF.
    t : array_like of int
        Timestamps in microseconds.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, dtype :data:`EVENT_DTYPE`.
    """
    t = np.asarray(t)
    events = empty_events(t.shape[0])
    events["x"] = x
    events["y"] = y
    events["p"] = np.asarray(p) != 0
    events["t"] = t
    return events


def as_events(array):
    """Return ``array`` as :data:`EVENT_DTYPE` (no copy when it already is).

    Any structured array with fields ``x``, ``y``, ``p``, ``t`` is accepted (tonic's
    packed ``(x, y, t, p)`` layout with boolean ``p`` included); polarity is mapped to
    1 (ON, nonzero) and 0 (OFF).
    """
    array = np.asarray(array)
    if array.dtype == EVENT_DTYPE:
        return array
    names = array.dtype.names or ()
    missing = [name for name in EVENT_FIELDS if name not in names]
    if missing:
        raise EventDataError(
            f"events need fields x, y, p, t; this array has {names or array.dtype} "
            f"(missing {', '.join(missing)})"
        )
    return make_events(array["x"], array["y"], array["p"], array["t"])


def is_time_sorted(events):
    """True when timestamps never decrease."""
    t = events["t"]
    return bool(t.shape[0] < 2 or np.all(t[1:] >= t[:-1]))


def sort_by_time(events):
    """Events in time order (stable: equal timestamps keep their file order)."""
    if is_time_sorted(events):
        return events
    return events[np.argsort(events["t"], kind="stable")]


def time_span_us(events):
    """``t[-1] - t[0]`` in microseconds (0 for fewer than two events)."""
    return int(events["t"][-1] - events["t"][0]) if events.shape[0] > 1 else 0
