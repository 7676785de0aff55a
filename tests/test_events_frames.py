"""Framing: equal to tonic's ToFrame and to SpikingJelly's integration rules."""

import numpy as np
import pytest

from nengo_actions.data import (
    EVENT_DTYPE,
    Compose,
    CropTime,
    Downsample,
    EventDataError,
    RandomCropTime,
    ToFrames,
    make_events,
    to_frames,
)

TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def sample(n=5000, width=128, height=128, seed=0, span=2_000_000):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(10_000, 10_000 + span, n))
    return make_events(rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n), t)


def as_tonic(events):
    out = np.empty(events.shape[0], dtype=TONIC_DTYPE)
    for name in "xypt":
        out[name] = events[name]
    return out


def reference_frames(events, width, height, n_frames, split_by):
    """SpikingJelly's integrate_events_by_fixed_frames_number, restated: "number" gives
    each frame N // T events and the last the rest; "time" cuts [t0, t0 + T * dt) into T
    bins of dt = (t[-1] - t0) // T and gives the last frame everything after."""
    frames = np.zeros((n_frames, 2, height, width))
    n, t = events.shape[0], events["t"]
    for i in range(n_frames):
        if split_by == "number":
            lo, hi = i * (n // n_frames), (i + 1) * (n // n_frames) if i < n_frames - 1 else n
            chunk = events[lo:hi]
        else:
            dt = (t[-1] - t[0]) // n_frames
            lo = t[0] + i * dt
            mask = t >= lo if i == n_frames - 1 else (t >= lo) & (t < lo + dt)
            chunk = events[mask]
        np.add.at(frames[i], (chunk["p"].astype(int), chunk["y"], chunk["x"]), 1)
    return frames


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("width, height, n, n_frames", [(128, 128, 4003, 16), (34, 34, 999, 7), (100, 60, 2500, 5)])
def test_equal_to_spikingjelly_rule(split_by, width, height, n, n_frames):
    events = sample(n, width, height, seed=n)
    ours = to_frames(events, (width, height, 2), n_frames, split_by)
    assert ours.shape == (n_frames, 2, height, width) and ours.dtype == np.float32
    assert np.array_equal(ours, reference_frames(events, width, height, n_frames, split_by))
    assert ours.sum() == n  # the remainder goes to the last frame: nothing lost


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_equal_to_tonic_toframe(split_by):
    tonic_transforms = pytest.importorskip("tonic.transforms")
    for width, height, n, n_frames in [(128, 128, 4003, 16), (34, 34, 999, 7), (100, 60, 2500, 5)]:
        events = sample(n, width, height, seed=n + 1)
        key = "n_event_bins" if split_by == "number" else "n_time_bins"
        theirs = tonic_transforms.ToFrame(sensor_size=(width, height, 2), **{key: n_frames})(as_tonic(events))
        ours = to_frames(events, (width, height, 2), n_frames, split_by, remainder="drop")
        assert np.array_equal(ours, theirs)
        # tonic's packed (x, y, t, p) layout takes the field-by-field path: same frames.
        assert np.array_equal(to_frames(as_tonic(events), (width, height, 2), n_frames, split_by, remainder="drop"), ours)


def test_time_window_equal_to_tonic():
    tonic_transforms = pytest.importorskip("tonic.transforms")
    events = sample(3000, 64, 64, seed=7)
    for window in (30_000, 123_457):
        theirs = tonic_transforms.ToFrame(sensor_size=(64, 64, 2), time_window=window)(as_tonic(events))
        ours = to_frames(events, (64, 64, 2), None, "window", time_window=window)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_downsample_equal_to_tonic():
    tonic_transforms = pytest.importorskip("tonic.transforms")
    events = sample(4000, 128, 128, seed=9)
    small = tonic_transforms.Downsample(spatial_factor=0.25)(as_tonic(events))
    theirs = tonic_transforms.ToFrame(sensor_size=(32, 32, 2), n_event_bins=8)(small)
    ours = to_frames(events, (128, 128, 2), 8, "number", remainder="drop", downsample=4)
    assert ours.shape == (8, 2, 32, 32) and np.array_equal(ours, theirs)
    assert np.array_equal(to_frames(Downsample(4)(events), (32, 32, 2), 8, remainder="drop"), ours)


def test_fixed_window_pads_and_crops():
    """50 windows of 30 ms from the first event: events after 1.5 s are dropped and
    windows past the sample's end stay empty (the SL-Animals seed's framing)."""
    t = np.array([0, 10_000, 29_999, 30_000, 1_499_999, 1_500_000, 2_000_000]) + 5_000_000
    events = make_events(np.arange(7), np.zeros(7), np.ones(7), t)
    frames = to_frames(events, (8, 8, 2), 50, "window", time_window=30_000, channels="last")
    assert frames.shape == (50, 8, 8, 2)
    assert frames[0, 0, :3, 1].tolist() == [1, 1, 1] and frames[0].sum() == 3
    assert frames[1, 0, 3, 1] == 1 and frames[49, 0, 4, 1] == 1
    assert frames.sum() == 5
    short = to_frames(events[:3], (8, 8, 2), 50, "window", time_window=30_000)
    assert short.shape == (50, 2, 8, 8) and short[1:].sum() == 0


def test_modes_layout_and_polarity_merge():
    events = make_events([1, 1, 1, 2, 3], [0, 0, 0, 1, 2], [1, 1, 0, 0, 1], [0, 1, 2, 3, 4])
    counts = to_frames(events, (4, 3, 2), 1)
    assert counts[0, 1, 0, 1] == 2 and counts[0, 0, 0, 1] == 1 and counts.sum() == 5
    binary = to_frames(events, (4, 3, 2), 1, mode="or")
    assert np.array_equal(binary, (counts > 0).astype(np.float32))
    norm = to_frames(events, (4, 3, 2), 1, mode="sum_norm")
    assert norm.max() == 1.0 and np.allclose(norm, counts / 2)
    last = to_frames(events, (4, 3, 2), 1, channels="last")
    assert np.array_equal(last, counts.transpose(0, 2, 3, 1))
    merged = to_frames(events, (4, 3, 1), 1)
    assert merged.shape == (1, 1, 3, 4) and np.array_equal(merged[:, 0], counts.sum(axis=1))
    assert to_frames(events, (4, 3, 2), 1, dtype=np.int16).dtype == np.int16


def test_fast_path_checks_every_event():
    """Garbage in the padding bytes (np.empty) or an off-sensor x must not corrupt frames."""
    events = sample(2000, 128, 128, seed=2)
    raw = np.empty(events.shape[0], dtype=EVENT_DTYPE)
    raw.view(np.uint8)[:] = 0xAB  # nonzero padding
    for name in "xypt":
        raw[name] = events[name]
    assert np.array_equal(to_frames(raw), to_frames(events))
    bad = events.copy()
    bad["x"][1234] = 128
    with pytest.raises(EventDataError, match="event x=128 outside sensor size 128 x 128"):
        to_frames(bad)
    bad["x"][1234] = -1
    with pytest.raises(EventDataError, match="event x=-1 outside"):
        to_frames(bad)
    odd = sample(500, 100, 60, seed=4)
    odd["y"][7] = 61  # inside the padded 128 x 64 grid, outside the 100 x 60 sensor
    with pytest.raises(EventDataError, match="outside sensor size 100 x 60"):
        to_frames(odd, (100, 60, 2), 4)
    polarity = events.copy()
    polarity["p"][0] = -1
    with pytest.raises(EventDataError, match="polarity must be 0 or 1"):
        to_frames(polarity)


def test_empty_and_tiny_samples():
    empty = make_events([], [], [], [])
    assert to_frames(empty, (8, 8, 2), 4).shape == (4, 2, 8, 8)
    assert to_frames(empty, (8, 8, 2), 4, "time").sum() == 0
    two = make_events([0, 1], [0, 0], [1, 1], [5, 6])
    frames = to_frames(two, (8, 8, 2), 4)  # fewer events than frames: all in the last
    assert frames[:3].sum() == 0 and frames[3].sum() == 2


def test_unsorted_time_split_equals_sorted():
    events = sample(3000, 32, 32, seed=11)
    shuffled = events[np.random.default_rng(0).permutation(events.shape[0])]
    assert np.array_equal(to_frames(shuffled, (32, 32, 2), 6, "time"), to_frames(events, (32, 32, 2), 6, "time"))


def test_transforms():
    events = sample(4000, 32, 32, seed=12, span=1_000_000)
    t0 = int(events["t"][0])
    crop = CropTime(200_000, offset=100_000)(events)
    assert crop["t"].min() >= t0 + 100_000 and crop["t"].max() < t0 + 300_000
    assert crop.shape[0] == np.count_nonzero((events["t"] >= t0 + 100_000) & (events["t"] < t0 + 300_000))
    rng = np.random.default_rng(0)
    starts = {int(RandomCropTime(300_000, rng=rng)(events)["t"][0]) for _ in range(5)}
    assert len(starts) > 1  # a different window each call
    for _ in range(5):
        piece = RandomCropTime(300_000, rng=rng)(events)
        assert np.ptp(piece["t"]) < 300_000
    to = ToFrames((32, 32, 2), n_frames=4, channels="last")
    pipeline = Compose((CropTime(500_000), to))
    frames = pipeline(events)
    assert frames.shape == to.output_shape() == (4, 32, 32, 2)
    assert frames.sum() == np.count_nonzero(events["t"] < t0 + 500_000)
    with pytest.raises(ValueError, match="mode must be one of"):
        ToFrames(mode="max")
