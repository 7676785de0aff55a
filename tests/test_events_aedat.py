"""AEDAT 2.0 / 3.1 readers and writers: real recordings, hand-built packets, bad input."""

import os
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from nengo_actions.data import (
    EVENT_DTYPE,
    EventFormatError,
    make_events,
    read_aedat,
    read_aedat_header,
    write_aedat2,
    write_aedat31,
)

# The real recordings of ../shared/fixtures (see its SOURCES.md).
FIXTURES = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "event_formats"
HEADER31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def random_events(n, seed=0, t0=1000, span=5_000_000):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0, t0 + span, n))
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n), t)


def packet(etype, payload_events, overflow=0, size=8, tsoffset=4, number=None, capacity=None):
    """A cAER packet: 28-byte header + payload (raw bytes for non-polarity packets)."""
    if etype == 1:
        body = b"".join(struct.pack("<Ii", data, ts) for data, ts in payload_events)
        n = len(payload_events)
    else:
        body = payload_events
        n = len(body) // size
    number = n if number is None else number
    capacity = n if capacity is None else capacity
    return struct.pack("<hhiiiiii", etype, 1, size, tsoffset, overflow, capacity, number, number) + body


def polarity_word(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def test_aedat31_round_trip_with_overflow(tmp_path):
    events = random_events(10_000)
    # Push the second half past 2**31 µs so packets carry a nonzero tsOverflow.
    events["t"][5000:] += (1 << 31) + 123
    path = write_aedat31(tmp_path / "rec.aedat", events, packet_events=777)
    back = read_aedat(path)
    assert back.dtype == EVENT_DTYPE
    assert np.array_equal(back, events)
    header = read_aedat_header(path)
    assert header.version == "3.1" and header.source == "DVS128"
    # The raw bytes: a packet never mixes two overflow values.
    raw = path.read_bytes()[header.data_offset:]
    pos, overflows = 0, []
    while pos < len(raw):
        etype, _, size, _, overflow, capacity, number, _ = struct.unpack_from("<hhiiiiii", raw, pos)
        overflows.append(overflow)
        assert etype == 1 and size == 8 and number <= 777
        pos += 28 + capacity * size
    assert sorted(set(overflows)) == [0, 1]


def test_aedat31_hand_built_packets(tmp_path):
    """Skips other event types, applies tsOverflow, drops (or keeps) invalid events."""
    special = packet(0, b"\x01\x00\x00\x00\x10\x00\x00\x00" * 3)  # 3 special events
    first = packet(1, [(polarity_word(5, 6, 1), 100), (polarity_word(127, 0, 0), 150)])
    invalid = packet(1, [(polarity_word(9, 9, 1, valid=0), 160), (polarity_word(1, 2, 0), 170)])
    late = packet(1, [(polarity_word(3, 4, 1), 7)], overflow=2)
    imu = packet(3, b"\x00" * 36 * 2, size=36)
    path = tmp_path / "hand.aedat"
    path.write_bytes(HEADER31 + special + first + imu + invalid + late)

    events = read_aedat(path)
    assert events["x"].tolist() == [5, 127, 1, 3]
    assert events["y"].tolist() == [6, 0, 2, 4]
    assert events["p"].tolist() == [1, 0, 0, 1]
    assert events["t"].tolist() == [100, 150, 170, 7 | (2 << 31)]

    kept = read_aedat(path, keep_invalid=True)
    assert kept["x"].tolist() == [5, 127, 9, 1, 3]
    assert kept["t"].tolist() == [100, 150, 160, 170, 7 | (2 << 31)]


def test_aedat31_large_coordinates_use_all_15_bits(tmp_path):
    events = make_events([0, 32767, 345], [32767, 0, 259], [1, 0, 1], [0, 1, 2**31 - 1])
    back = read_aedat(write_aedat31(tmp_path / "big.aedat", events))
    assert np.array_equal(back, events)


def test_aedat31_header_only_is_empty(tmp_path):
    path = tmp_path / "empty.aedat"
    path.write_bytes(HEADER31)
    events = read_aedat(path)
    assert events.shape == (0,) and events.dtype == EVENT_DTYPE


def test_aedat31_matches_tonic_reader(tmp_path):
    """tonic's AEDAT 3.x reader (read_dvs_ibm's body, its header unpacking fixed) gives
    the same events, including invalid ones when keep_invalid=True."""
    tio = pytest.importorskip("tonic.io")
    events = random_events(5000, seed=3)
    path = write_aedat31(tmp_path / "t.aedat", events, packet_events=512)
    version, start = tio.read_aedat_header_from_file(str(path))[:2]
    raw = tio.get_aer_events_from_file(str(path), version, start)
    address = raw["address"]
    ours = read_aedat(path)
    assert np.array_equal(ours["x"], (address >> 17) & 0x7FFF)
    assert np.array_equal(ours["y"], (address >> 2) & 0x7FFF)
    assert np.array_equal(ours["p"], (address >> 1) & 1)
    assert np.array_equal(ours["t"], raw["timeStamp"])


# ---------------------------------------------------------------------- bad input


def test_wrong_magic_names_file_and_offset(tmp_path):
    path = tmp_path / "bad.aedat"
    path.write_bytes(b"#!AER-DAT9.9\r\n")
    with pytest.raises(EventFormatError, match=r"bad\.aedat.*unsupported AEDAT version '9\.9'.*byte 0"):
        read_aedat(path)
    path.write_bytes(b"RIFF....not events")
    with pytest.raises(EventFormatError, match=r"bad\.aedat: not an AEDAT file: byte 0"):
        read_aedat(path)


def test_missing_end_header(tmp_path):
    path = tmp_path / "noend.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(EventFormatError, match="noend.aedat.*no '#!END-HEADER'"):
        read_aedat(path)


def test_odd_polarity_packet_size(tmp_path):
    path = tmp_path / "odd.aedat"
    good = packet(1, [(polarity_word(1, 1, 1), 5)])
    odd = struct.pack("<hhiiiiii", 1, 1, 12, 4, 0, 1, 1, 1) + b"\x00" * 12
    path.write_bytes(HEADER31 + good + odd)
    offset = len(HEADER31) + len(good)
    with pytest.raises(EventFormatError, match=rf"odd\.aedat: polarity packet at byte {offset} has eventSize=12"):
        read_aedat(path)


def test_corrupt_packet_header(tmp_path):
    path = tmp_path / "corrupt.aedat"
    path.write_bytes(HEADER31 + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 2, 5, 5))
    with pytest.raises(EventFormatError, match=rf"corrupt packet header at byte {len(HEADER31)}.*eventNumber=5"):
        read_aedat(path)


def test_truncated_aedat31_error_or_prefix(tmp_path):
    events = random_events(1000, seed=1)
    path = write_aedat31(tmp_path / "cut.aedat", events, packet_events=300)
    data = path.read_bytes()
    # Cut inside the third packet (after 2 * 300 whole events and 50.5 more).
    header_len = read_aedat_header(path).data_offset
    cut = header_len + 2 * (28 + 300 * 8) + 28 + 50 * 8 + 4
    path.write_bytes(data[:cut])
    third = header_len + 2 * (28 + 300 * 8)
    with pytest.raises(EventFormatError, match=rf"cut\.aedat: truncated packet at byte {third}"):
        read_aedat(path)
    with pytest.warns(UserWarning, match=rf"truncated packet at byte {third}"):
        prefix = read_aedat(path, allow_truncated=True)
    assert np.array_equal(prefix, events[:650])
    # A cut inside a packet header.
    path.write_bytes(data[:third + 10])
    with pytest.raises(EventFormatError, match=rf"truncated packet header at byte {third}"):
        read_aedat(path)


# ---------------------------------------------------------------------- AEDAT 2.0


def decode_dvs128_independently(path, offset):
    """x, y, p, t straight from the big-endian words: libcaer's translation."""
    raw = np.frombuffer(Path(path).read_bytes()[offset:], dtype=">u4").reshape(-1, 2)
    address = raw[:, 0].astype(np.int64)
    return 127 - ((address >> 1) & 0x7F), 127 - ((address >> 8) & 0x7F), 1 - (address & 1), raw[:, 1].astype(np.int64)


@pytest.mark.parametrize(
    "name, count, header_bytes, t_first, t_last",
    [
        ("mnist_0_scale04_0001.aedat", 15744, 216, 0, 2210588),
        ("alex_walking_again.aedat", 19182, 4612, 41306606, 48193156),
    ],
)
def test_real_aedat2_recordings(name, count, header_bytes, t_first, t_last):
    path = FIXTURES / name
    header = read_aedat_header(path)
    assert header.version == "2.0" and header.data_offset == header_bytes
    events = read_aedat(path)
    assert events.shape == (count,) and events.dtype == EVENT_DTYPE
    assert events["t"][0] == t_first and events["t"][-1] == t_last
    assert np.all(np.diff(events["t"]) >= 0)
    x, y, p, t = decode_dvs128_independently(path, header_bytes)
    assert np.array_equal(events["x"], x) and np.array_equal(events["y"], y)
    assert np.array_equal(events["p"], p) and np.array_equal(events["t"], t)
    assert 0 <= events["x"].min() and events["x"].max() <= 127
    assert 0 <= events["y"].min() and events["y"].max() <= 127
    if name.startswith("alex"):
        assert header.chip == "ch.unizh.ini.jaer.chip.retina.DVS128"
        assert (events["x"].min(), events["x"].max(), events["y"].min(), events["y"].max()) == (0, 127, 0, 127)


def test_aedat2_header_only_file():
    path = FIXTURES / "sample_aedat_header.aedat"
    header = read_aedat_header(path)
    assert header.version == "2.0"
    assert header.creation_time_ms == 1695355587880
    assert header.data_offset == 599
    assert read_aedat(path).shape == (0,)


def test_aedat2_round_trip_and_sync_events(tmp_path):
    events = random_events(3000, seed=5)
    path = write_aedat2(tmp_path / "r.aedat", events)
    assert np.array_equal(read_aedat(path), events)
    # An external sync event (address bit 15) is not a pixel event.
    data = bytearray(path.read_bytes())
    offset = read_aedat_header(path).data_offset
    data[offset:offset + 8] = struct.pack(">II", 0x8000, int(events["t"][0]))
    path.write_bytes(bytes(data))
    assert np.array_equal(read_aedat(path), events[1:])


def test_aedat2_rejects_non_dvs128_addresses_and_truncation(tmp_path):
    path = tmp_path / "davis.aedat"
    header = b"#!AER-DAT2.0\r\n# AEChip: Davis346\r\n"
    path.write_bytes(header + struct.pack(">IIII", 5, 1, 0x12345678, 2))
    with pytest.raises(EventFormatError, match=rf"davis\.aedat: event at byte {len(header) + 8} has address 0x12345678"):
        read_aedat(path)
    path = tmp_path / "cut2.aedat"
    write_aedat2(path, random_events(10))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(EventFormatError, match=r"cut2\.aedat: truncated event at byte"):
        read_aedat(path)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert read_aedat(path, allow_truncated=True).shape == (9,)


def test_writers_are_atomic(tmp_path):
    path = tmp_path / "keep.aedat"
    write_aedat31(path, random_events(10))
    before = path.read_bytes()
    bad = make_events([1, 40000], [1, 1], [1, 1], [1, 2])  # x beyond 15 bits
    with pytest.raises(ValueError, match="keep.aedat: event x outside"):
        write_aedat31(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.aedat"]
