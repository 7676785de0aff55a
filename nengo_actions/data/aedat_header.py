"""AEDAT file headers: the magic lines and the ASCII header parser (:func:`read_aedat_header`)."""

from __future__ import annotations

from dataclasses import dataclass

from .events import EventFormatError

AEDAT31_MAGIC = "#!AER-DAT3.1"
AEDAT2_MAGIC = "#!AER-DAT2.0"
END_HEADER = b"#!END-HEADER"
_HEADER_READ = 1 << 16


@dataclass(frozen=True)
class AedatHeader:
    """What the ASCII header of an AEDAT file says.

    Attributes
    ----------
    path : str
    version : str
        ``"2.0"`` or ``"3.1"`` (``"3.0"`` is read as 3.1).
    data_offset : int
        Byte offset of the first packet (3.x) or event (2.0).
    lines : tuple of str
        Header lines without their ``#`` and line ending.
    creation_time_ms : int or None
        jAER's ``Creation time: System.currentTimeMillis()`` value.
    start_time : str or None
        cAER's ``Start-Time`` line.
    source : str or None
        cAER's ``Source 1`` device name.
    chip : str or None
        jAER's ``AEChip`` class name.
    """

    path: str
    version: str
    data_offset: int
    lines: tuple
    creation_time_ms: int | None = None
    start_time: str | None = None
    source: str | None = None
    chip: str | None = None


def _header_value(lines, key):
    for line in lines:
        text = line.strip()
        if text.startswith(key):
            return text[len(key):].strip()
    return None


def read_aedat_header(path):
    """Parse the header of an AEDAT 2.0 or 3.x file.

    Raises
    ------
    EventFormatError
        When the first line is not an AEDAT 2.0/3.x magic line or a 3.x header has no
        ``#!END-HEADER`` line.
    """
    path = str(path)
    with open(path, "rb") as f:
        data = f.read(_HEADER_READ)
        first = data.split(b"\n", 1)[0].rstrip(b"\r")
        if not first.startswith(b"#!AER-DAT"):
            raise EventFormatError(
                f"{path}: not an AEDAT file: byte 0 starts {first[:32]!r}; expected "
                f"'{AEDAT31_MAGIC}' or '{AEDAT2_MAGIC}'"
            )
        version = first[len(b"#!AER-DAT"):].decode("ascii", "replace").strip()
        if version.startswith("4"):
            raise EventFormatError(
                f"{path}: AEDAT {version} (byte 0) is read by "
                "nengo_actions.data.read_events, which uses the 'aedat' package"
            )
        if version not in ("2.0", "3.0", "3.1"):
            raise EventFormatError(
                f"{path}: unsupported AEDAT version {version!r} in the first line "
                "(byte 0); this reader handles 2.0 and 3.1"
            )
        lines, pos, at_eof, found_end = [], 0, False, False
        while True:
            if pos >= len(data) and not at_eof:
                more = f.read(_HEADER_READ)
                at_eof = not more
                data += more
                continue
            if pos >= len(data) or (version == "2.0" and data[pos:pos + 1] != b"#"):
                break
            newline = data.find(b"\n", pos)
            if newline < 0 and not at_eof:
                more = f.read(_HEADER_READ)
                at_eof = not more
                data += more
                continue
            end = len(data) if newline < 0 else newline + 1
            line = data[pos:end]
            if not line.startswith(b"#"):
                raise EventFormatError(
                    f"{path}: header line at byte {pos} does not start with '#' and no "
                    "'#!END-HEADER' line came before it"
                )
            lines.append(line.decode("latin-1").rstrip("\r\n")[1:])
            pos = end
            if version != "2.0" and line.rstrip(b"\r\n") == END_HEADER:
                found_end = True
                break
        if version != "2.0" and not found_end:
            raise EventFormatError(
                f"{path}: the AEDAT {version} header has no '#!END-HEADER' line "
                f"(read {len(data)} bytes)"
            )
    creation = _header_value(lines, "Creation time: System.currentTimeMillis()")
    return AedatHeader(
        path=path,
        version="3.1" if version == "3.0" else version,
        data_offset=pos,
        lines=tuple(lines),
        creation_time_ms=int(creation) if creation and creation.isascii() and creation.isdigit() else None,
        start_time=_header_value(lines, "Start-Time:"),
        source=_header_value(lines, "Source 1:"),
        chip=_header_value(lines, "AEChip:"),
    )
