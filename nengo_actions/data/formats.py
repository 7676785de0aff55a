"""Other event file formats, read through existing packages.

:func:`read_events` picks a reader by the file's first bytes and suffix:

- AEDAT 2.0 / 3.1: :func:`~nengo_actions.data.aedat.read_aedat` (this package);
- AEDAT 4.0: the ``aedat`` package (first event stream of the file);
- Prophesee ``.dat`` and EVT 2.0 / EVT 3.0 ``.raw``: the ``expelliarmus`` package;
- N-MNIST / N-Caltech101 ``.bin`` (ATIS 40-bit records): decoded here with numpy. tonic
  has the reference reader (``tonic.io.read_mnist_file``), but importing tonic imports
  PyTorch, which this package never does; the tests compare both on a real sample.

``aedat`` and ``expelliarmus`` are optional: a clear ImportError names the package when a
file needs one that is not installed. Whatever those packages raise on a damaged file
becomes an :class:`~nengo_actions.errors.EventFormatError` naming it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from .aedat import read_aedat
from ..errors import cause
from .events import EventFormatError, make_events


def _require(module):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(
            f"reading this file needs the '{module}' package: pip install {module}"
        ) from None


@contextlib.contextmanager
def _decoding(path, package):
    # the packages are compiled decoders that raise RuntimeError, ValueError, OSError or
    # their own types on damaged input, with messages that name no file
    try:
        yield
    except EventFormatError:
        raise
    except Exception as e:
        raise EventFormatError(f"{path}: {package} cannot decode it: {cause(e)}") from None


def read_aedat4(path):
    """Polarity events of the first event stream in an AEDAT 4.0 file (``aedat`` package)."""
    aedat = _require("aedat")
    with _decoding(path, "aedat"):
        return _read_aedat4(aedat, path)


def _read_aedat4(aedat, path):
    decoder = aedat.Decoder(str(path))
    streams = [i for i, s in decoder.id_to_stream().items() if s["type"] == "events"]
    if not streams:
        raise EventFormatError(f"{path}: the AEDAT 4 file has no event stream")
    stream = min(streams)
    parts = [packet["events"] for packet in decoder if packet["stream_id"] == stream and "events" in packet]
    if not parts:
        return make_events([], [], [], [])
    raw = np.concatenate(parts)
    return make_events(raw["x"], raw["y"], raw["on"], raw["t"].astype(np.int64))


def read_prophesee(path, encoding=None):
    """Events of a Prophesee ``.dat`` or ``.raw`` (EVT 2.0 / 3.0) file (``expelliarmus``).

    ``encoding`` (``"dat"``, ``"evt2"``, ``"evt3"``) defaults to the suffix for ``.dat``
    and to the ``% evt`` / ``% format`` header line for ``.raw``.
    """
    expelliarmus = _require("expelliarmus")
    path = Path(path)
    _check_prophesee_header(path)
    if encoding is None:
        encoding = "dat" if path.suffix.lower() == ".dat" else _raw_encoding(path)
    with _decoding(path, "expelliarmus"):
        raw = expelliarmus.Wizard(encoding=encoding).read(str(path))
        return make_events(raw["x"], raw["y"], raw["p"], raw["t"])


def _check_prophesee_header(path):
    # expelliarmus loops forever on a header line that the file ends inside, and reads a
    # .dat file's event type and size bytes without checking that they are there
    with open(path, "rb") as f:
        position = 0
        while f.read(1) == b"%":
            line = f.readline()
            if not line.endswith(b"\n"):
                raise EventFormatError(f"{path}: the header line at byte {position} is cut off (no line end)")
            position = f.tell()
        f.seek(position)
        if path.suffix.lower() == ".dat" and len(f.read(2)) < 2:
            raise EventFormatError(f"{path}: the file ends at byte {position}, before the event type and size bytes")


def _raw_encoding(path):
    with open(path, "rb") as f:
        head = f.read(1 << 14)
    for line in head.split(b"\n"):
        if not line.startswith(b"%"):
            break
        text = line.decode("latin-1").lower()
        if "evt 2.0" in text or "format evt2" in text:
            return "evt2"
        if "evt 3.0" in text or "format evt3" in text:
            return "evt3"
    raise EventFormatError(
        f"{path}: no '% evt 2.0' or '% format EVT3' header line; pass encoding="
    )


def read_nmnist(path):
    """Events of an N-MNIST / N-Caltech101 ``.bin`` file.

    Each event is 5 bytes: x, y, then polarity (bit 7) and a 23-bit timestamp (µs) over
    three bytes. Records with y == 240 are timestamp overflows that add 2**13 µs to every
    later event (the format's convention, as in tonic) and are not events themselves.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.shape[0] % 5:
        raise EventFormatError(
            f"{path}: {raw.shape[0]} bytes is not a whole number of 5-byte events "
            f"(truncated at byte {raw.shape[0] - raw.shape[0] % 5})"
        )
    records = raw.reshape(-1, 5).astype(np.int64)
    x, y = records[:, 0], records[:, 1]
    p = records[:, 2] >> 7
    t = ((records[:, 2] & 0x7F) << 16) | (records[:, 3] << 8) | records[:, 4]
    overflow = y == 240
    t += np.cumsum(overflow) << 13
    keep = ~overflow
    return make_events(x[keep], y[keep], p[keep], t[keep])


def read_events(path, **kwargs):
    """Read any supported event file (see the module docstring) into an event array.

    Extra keyword arguments go to the AEDAT 2.0/3.1 reader.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    suffix = path.suffix.lower()
    if head.startswith(b"#!AER-DAT4") or suffix == ".aedat4":
        return read_aedat4(path)
    if head.startswith(b"#!AER-DAT") or suffix == ".aedat":
        return read_aedat(path, **kwargs)
    if suffix in (".dat", ".raw"):
        return read_prophesee(path)
    if suffix == ".bin":
        return read_nmnist(path)
    raise EventFormatError(
        f"{path}: unknown event file type (suffix {suffix or 'none'!r}, first bytes "
        f"{head[:12]!r}); supported: .aedat (2.0, 3.1, 4.0), .aedat4, .dat, .raw, .bin"
    )
