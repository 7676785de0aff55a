"""AEDAT 2.0 and 3.1 readers, vectorised with numpy (the writers: :mod:`.aedat_write`).

:func:`read_aedat` tells the versions apart by the first header line.

**AEDAT 3.1** (cAER; DVS128 Gesture). ASCII header lines start with ``#``; the first is
``#!AER-DAT3.1`` and the last ``#!END-HEADER\\r\\n``. Then little-endian packets: a
28-byte header (int16 eventType, int16 eventSource, int32 eventSize, int32
eventTSOffset, int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32
eventValid) followed by ``eventCapacity * eventSize`` bytes, of which the first
``eventNumber`` events are used. Polarity events (eventType 1) are 8 bytes: uint32 data
(bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and a uint32 timestamp in µs;
the full time is ``timestamp | eventTSOverflow << 31``. Packets of other types
(special, frame, IMU ...) are skipped.

Events whose valid bit is clear were invalidated by a cAER filter before the file was
written; cAER's own iterators skip them, and so does this reader by default.
SpikingJelly's ``load_aedat_v3`` and tonic's ``read_dvs_ibm`` keep them:
``keep_invalid=True`` reproduces their output exactly. On files where every event is
valid (the usual case) the three agree bit for bit.

**AEDAT 2.0** (jAER; SL-Animals-DVS, MNIST-DVS). Header lines start with ``#``, the first
being ``#!AER-DAT2.0``; then big-endian uint32 address and uint32 timestamp (µs) pairs.
The DVS128 address holds polarity in bit 0, the x address in bits 1-7 and the y address
in bits 8-14; bit 15 marks external sync events, which are dropped. Coordinates and
polarity are translated the way libcaer translates the same sensor's addresses when it
records AEDAT 3.1 (and so the DVS128 Gesture files): ``x = 127 - address_x``,
``y = 127 - address_y``, ON (p = 1) when bit 0 is clear. Events from both formats then
share one image orientation: (0, 0) top-left, ``x`` the column. (jAER flips only x
because its display puts y = 0 at the bottom, which shows the same picture; tonic's
``read_dvs_128`` swaps x and y, a transposed picture, and keeps the raw polarity bit.)

Errors (:class:`EventFormatError`) name the file and the byte offset. A file cut short
mid-packet can instead be read up to its last complete event with
``allow_truncated=True``, which warns with the same message.
"""

from __future__ import annotations

import os
import struct
import warnings

import numpy as np

from .aedat_header import read_aedat_header
from .events import EVENT_DTYPE, EventFormatError, empty_events

PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
POLARITY_EVENT_SIZE = 8

#: Events decoded per block: the block's temporaries stay in the CPU cache.
_BLOCK_EVENTS = 1 << 15
#: Bytes read from the file at a time.
_READ_BYTES = 1 << 20
_U1, _U17, _U31, _U32 = (np.uint64(v) for v in (1, 17, 31, 32))
_X_MASK = np.uint64(0x7FFF)
_Y_AND_P = np.uint64(0x1FFFE)  # polarity bit 1, y bits 2-16 of the data word
_Y_AND_P_MOVE = np.uint64((1 << 14) + (1 << 31))  # y to bit 16, p to bit 32
_Y_AND_P_TARGET = np.uint64(0x1_7FFF_0000)


def _read_body(path, offset):
    """The bytes after ``offset`` in a fresh (hence aligned) uint8 array."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        body = np.empty(max(size - offset, 0), dtype=np.uint8)
        f.seek(offset)
        view = memoryview(body)
        got = 0
        while got < body.shape[0]:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
    return body[:got]


def _truncated(path, message, allow_truncated):
    if not allow_truncated:
        raise EventFormatError(f"{path}: {message}")
    warnings.warn(f"{path}: {message}; keeping the events before it", stacklevel=4)


class _PolarityDecoder:
    """Decodes blocks of polarity events into one preallocated event array.

    Each 8-byte event is read as one little-endian uint64 ``W = data | timestamp << 32``
    and the 16-byte output record written as two uint64 words, ``x | y << 16 | p << 32``
    (which also zeroes the padding bytes) and ``t``.
    """

    def __init__(self, capacity, keep_invalid):
        # Pages of the array that are never written are never allocated, so sizing it
        # for the whole file (every byte an event) costs address space only.
        self.events = np.zeros(capacity, dtype=EVENT_DTYPE)  # padding bytes zero, as events.py says
        self.out = self.events.view(np.uint64).reshape(capacity, 2)
        self.keep_invalid = keep_invalid
        self.scratch = np.empty((2, _BLOCK_EVENTS), dtype=np.uint64)
        self.done = 0
        self.invalid_masks = []

    def decode(self, payloads, counts, overflows):
        n = sum(counts)
        raw = payloads[0] if len(payloads) == 1 else np.concatenate(payloads)
        words = raw.view("<u8")
        block = self.out[self.done:self.done + n]
        low, high = self.scratch[:, :n] if n <= _BLOCK_EVENTS else np.empty((2, n), dtype=np.uint64)
        # p (bit 1) and y (bits 2-16) to bits 32 and 16-30 with one multiply; x from 17.
        np.bitwise_and(words, _Y_AND_P, out=high)
        np.multiply(high, _Y_AND_P_MOVE, out=high)
        np.bitwise_and(high, _Y_AND_P_TARGET, out=high)
        np.right_shift(words, _U17, out=low)
        np.bitwise_and(low, _X_MASK, out=low)
        np.bitwise_or(low, high, out=block[:, 0])
        np.right_shift(words, _U32, out=block[:, 1])
        if any(overflows):
            high = np.repeat(np.asarray(overflows, dtype=np.uint64) << _U31, counts)
            np.bitwise_or(block[:, 1], high, out=block[:, 1])
        if not self.keep_invalid and not int(np.bitwise_and.reduce(words)) & 1:
            self.invalid_masks.append((self.done, (words & _U1).astype(bool)))
        self.done += n

    def result(self):
        events = self.events[:self.done]
        if self.invalid_masks:
            keep = np.ones(self.done, dtype=bool)
            for start, mask in self.invalid_masks:
                keep[start:start + mask.shape[0]] = mask
            events = events[keep]
        return events


def _read_aedat31(header, allow_truncated, keep_invalid):
    """Stream the packets through a reused buffer, decoding polarity events in blocks
    while they are still in the CPU cache."""
    path = header.path
    unpack = PACKET_HEADER.unpack_from
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        decoder = _PolarityDecoder(max(size - header.data_offset, 0) // POLARITY_EVENT_SIZE, keep_invalid)
        buffer = np.empty(_READ_BYTES, dtype=np.uint8)
        f.seek(header.data_offset)
        base = header.data_offset  # file offset of buffer[0]
        filled = f.readinto(memoryview(buffer))
        at_eof = base + filled >= size
        pos = 0
        payloads, counts, overflows = [], [], []

        def flush():
            if counts:
                decoder.decode(payloads, counts, overflows)
                payloads.clear(), counts.clear(), overflows.clear()

        def refill(need):
            """Keep buffer[pos:filled], read more; make room for ``need`` bytes."""
            nonlocal buffer, base, filled, pos, at_eof
            flush()  # the pending payloads are views of the buffer
            rest = filled - pos
            if need > buffer.shape[0]:
                bigger = np.empty(need, dtype=np.uint8)
                bigger[:rest] = buffer[pos:filled]
                buffer = bigger
            else:
                buffer[:rest] = buffer[pos:filled]
            base += pos
            pos, filled = 0, rest
            view = memoryview(buffer)
            while filled < buffer.shape[0]:
                got = f.readinto(view[filled:])
                if not got:
                    break
                filled += got
            at_eof = base + filled >= size

        pending = 0
        while True:
            if filled - pos < PACKET_HEADER.size:
                if not at_eof:
                    refill(PACKET_HEADER.size)
                    continue
                if filled > pos:
                    _truncated(
                        path,
                        f"truncated packet header at byte {base + pos}: {filled - pos} bytes "
                        f"left, a header needs {PACKET_HEADER.size}",
                        allow_truncated,
                    )
                break
            etype, _, esize, tsoffset, overflow, capacity, number, valid = unpack(buffer, pos)
            where = base + pos
            if (
                etype < 0
                or esize <= 0
                or capacity < 0
                or number < 0
                or number > capacity
                or not 0 <= valid <= number
                or overflow < 0
            ):
                raise EventFormatError(
                    f"{path}: corrupt packet header at byte {where} (eventType={etype}, "
                    f"eventSize={esize}, eventCapacity={capacity}, eventNumber={number}, "
                    f"eventValid={valid}, eventTSOverflow={overflow})"
                )
            polarity = etype == POLARITY_EVENT
            if polarity and (esize != POLARITY_EVENT_SIZE or tsoffset != 4):
                raise EventFormatError(
                    f"{path}: polarity packet at byte {where} has eventSize={esize} and "
                    f"eventTSOffset={tsoffset}; AEDAT 3.1 polarity events are 8 bytes with "
                    "the timestamp at offset 4"
                )
            length = PACKET_HEADER.size + capacity * esize
            if pos + length > filled:
                if where + length <= size:
                    pending = 0
                    refill(length)
                    continue
                complete = (size - where - PACKET_HEADER.size) // esize
                _truncated(
                    path,
                    f"truncated packet at byte {where}: it holds {capacity} events of "
                    f"{esize} bytes but the file ends after {complete} of them",
                    allow_truncated,
                )
                kept = min(complete, number)  # the file may end in the packet's unused capacity
                if polarity and kept > 0:
                    pending = 0
                    refill(PACKET_HEADER.size + kept * esize)
                    payloads.append(buffer[PACKET_HEADER.size:PACKET_HEADER.size + kept * esize])
                    counts.append(kept)
                    overflows.append(overflow)
                break
            if polarity and number:
                if pending and pending + number > _BLOCK_EVENTS:
                    flush()
                    pending = 0
                start = pos + PACKET_HEADER.size
                payloads.append(buffer[start:start + POLARITY_EVENT_SIZE * number])
                counts.append(number)
                overflows.append(overflow)
                pending += number
            pos += length
        flush()
    return decoder.result()


def _read_aedat2(header, allow_truncated):
    body = _read_body(header.path, header.data_offset)
    extra = body.shape[0] % 8
    if extra:
        _truncated(
            header.path,
            f"truncated event at byte {header.data_offset + body.shape[0] - extra}: the "
            f"{body.shape[0]} data bytes are not a whole number of 8-byte events",
            allow_truncated,
        )
        body = body[:body.shape[0] - extra]
    pairs = body.view(">u4").reshape(-1, 2)
    address = pairs[:, 0].astype(np.uint32)
    stamps = pairs[:, 1].astype(np.int64)
    if address.shape[0] and int(np.bitwise_or.reduce(address)) >> 16:
        first = int(np.flatnonzero(address >> 16)[0])
        raise EventFormatError(
            f"{header.path}: event at byte {header.data_offset + 8 * first} has address "
            f"{int(address[first]):#x}, which uses bits above the 16-bit DVS128 layout "
            f"(AEChip: {header.chip or 'not named'}); only DVS128 recordings are read"
        )
    keep = (address & 0x8000) == 0
    if not keep.all():
        address, stamps = address[keep], stamps[keep]
    # 32-bit timestamps wrap after about 71 minutes; unwrap them.
    if stamps.shape[0] > 1:
        wraps = np.diff(stamps) < -(1 << 31)
        if wraps.any():
            stamps[1:] += np.cumsum(wraps, dtype=np.int64) << 32
    events = empty_events(address.shape[0])
    events["x"] = 127 - ((address >> 1) & 0x7F)
    events["y"] = 127 - ((address >> 8) & 0x7F)
    events["p"] = 1 - (address & 1)
    events["t"] = stamps
    return events


def read_aedat(path, *, allow_truncated=False, keep_invalid=False):
    """Read the polarity events of an AEDAT 2.0 (DVS128) or 3.1 recording.

    Parameters
    ----------
    path : str or Path
    allow_truncated : bool
        Return the events before a truncated packet or event (with a warning) instead
        of raising.
    keep_invalid : bool
        AEDAT 3.1 only: keep events whose valid bit is clear, as SpikingJelly and
        tonic do.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_events,)``, dtype :data:`~nengo_actions.data.events.EVENT_DTYPE`, in
        file order (µs timestamps).

    Raises
    ------
    EventFormatError
        Naming the file and byte offset for a wrong magic line, a corrupt or odd-sized
        packet, a truncated file, or AEDAT 2.0 addresses outside the DVS128 layout.
    """
    header = read_aedat_header(path)
    if header.version == "2.0":
        return _read_aedat2(header, allow_truncated)
    return _read_aedat31(header, allow_truncated, keep_invalid)
