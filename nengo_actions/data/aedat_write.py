"""AEDAT 3.1 and 2.0 writers: the formats :mod:`.aedat` reads, for test data and
synthetic sets in the real layouts. Files are written atomically.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from ..io import atomic_path
from .aedat import PACKET_HEADER, POLARITY_EVENT, POLARITY_EVENT_SIZE
from .aedat_header import AEDAT2_MAGIC, AEDAT31_MAGIC, END_HEADER
from .events import as_events

def aedat31_header(source="DVS128", start_time=None):
    """The ASCII header :func:`write_aedat31` writes, as bytes."""
    if start_time is None:
        start_time = datetime.datetime.now(datetime.timezone.utc)
    if isinstance(start_time, datetime.datetime):
        start_time = start_time.strftime("%Y-%m-%d %H:%M:%S (TZ%z)")
    lines = [AEDAT31_MAGIC, "#Format: RAW", f"#Source 1: {source}", f"#Start-Time: {start_time}"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii") + END_HEADER + b"\r\n"


def write_aedat31(path, events, *, packet_events=4096, source="DVS128", start_time=None):
    """Write events as an AEDAT 3.1 file of polarity packets, atomically.

    Parameters
    ----------
    path : str or Path
    events : numpy.ndarray
        Structured array with ``x``, ``y``, ``p``, ``t`` (µs, >= 0); ``x`` and ``y``
        must fit the format's 15 bits.
    packet_events : int
        Events per packet; a packet also ends where ``t >> 31`` (the overflow) changes.
    source : str
        The ``#Source 1:`` device name.
    start_time : datetime or str or None
        The ``#Start-Time:`` line (default: now).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    events = as_events(events)
    for field, limit in (("x", 1 << 15), ("y", 1 << 15)):
        values = events[field]
        if values.shape[0] and (values.min() < 0 or values.max() >= limit):
            raise ValueError(f"{path}: event {field} outside 0..{limit - 1}: cannot write AEDAT 3.1")
    if events.shape[0] and events["t"].min() < 0:
        raise ValueError(f"{path}: negative timestamps cannot be written as AEDAT 3.1")
    if packet_events < 1:
        raise ValueError("packet_events must be at least 1")
    n = events.shape[0]
    records = np.empty((n, 2), dtype="<u4")
    records[:, 0] = (
        (events["x"].astype(np.uint32) << 17)
        | (events["y"].astype(np.uint32) << 2)
        | ((events["p"] != 0).astype(np.uint32) << 1)
        | 1
    )
    records[:, 1] = (events["t"] & 0x7FFFFFFF).astype(np.uint32)
    overflow = events["t"] >> 31
    cuts = set(range(0, n, packet_events))
    cuts.update((np.flatnonzero(np.diff(overflow)) + 1).tolist())
    bounds = sorted(cuts) + [n]
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(aedat31_header(source, start_time))
            for start, stop in zip(bounds[:-1], bounds[1:]):
                count = stop - start
                f.write(
                    PACKET_HEADER.pack(
                        POLARITY_EVENT, 1, POLARITY_EVENT_SIZE, 4,
                        int(overflow[start]), count, count, count,
                    )
                )
                f.write(records[start:stop].tobytes())
    return path


def write_aedat2(path, events, *, header_lines=("This is a raw AE data file - do not edit",)):
    """Write DVS128 events as a jAER AEDAT 2.0 file, atomically (the inverse of the
    reader's address translation: ``address_x = 127 - x``, ``address_y = 127 - y``,
    bit 0 set for OFF).

    Timestamps must fit in 32 bits (µs).
    """
    events = as_events(events)
    for field in ("x", "y"):
        values = events[field]
        if values.shape[0] and (values.min() < 0 or values.max() > 127):
            raise ValueError(f"{path}: event {field} outside 0..127: not a DVS128 recording")
    if events.shape[0] and (events["t"].min() < 0 or events["t"].max() >= 1 << 32):
        raise ValueError(f"{path}: timestamps must fit in 32 bits for AEDAT 2.0")
    pairs = np.empty((events.shape[0], 2), dtype=">u4")
    pairs[:, 0] = (
        ((127 - events["x"].astype(np.uint32)) << 1)
        | ((127 - events["y"].astype(np.uint32)) << 8)
        | (events["p"] == 0).astype(np.uint32)
    )
    pairs[:, 1] = events["t"].astype(np.uint32)
    header = AEDAT2_MAGIC + "\r\n" + "".join(f"# {line}\r\n" for line in header_lines)
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(pairs.tobytes())
    return path
