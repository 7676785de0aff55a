"""Video -> events: a moving edge, the pixel model's options, a real UCF101 clip."""

import os
from pathlib import Path

import numpy as np
import pytest

from nengo_actions.data import EventEmulator, read_aedat, video_to_aedat, video_to_events

UCF_CLIP = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "ucf101" / "test.avi"
DARK, BRIGHT = 0.1, 0.8


def moving_edge(n_frames=12, width=20, height=6, start=4, dt=10_000):
    """A bright region whose edge advances one column per frame (columns < start + k are
    bright in frame k)."""
    frames = np.full((n_frames, height, width), DARK)
    for k in range(n_frames):
        frames[k, :, : start + k] = BRIGHT
    return frames, np.arange(n_frames) * dt


def test_moving_edge_events_where_and_when_the_edge_moves():
    frames, times = moving_edge()
    emulator = EventEmulator(pos_threshold=0.2, neg_threshold=0.2, log_eps=1e-3)
    events = emulator(frames, times)
    assert events.shape[0] > 0
    assert np.all(np.diff(events["t"]) >= 0)
    # Column c turns bright between frames c - start and c - start + 1: its events lie in
    # that interval, every row fires, nothing else fires, and all are ON.
    expected_per_pixel = int(np.floor(np.log((BRIGHT + 1e-3) / (DARK + 1e-3)) / 0.2))
    assert set(np.unique(events["x"]).tolist()) == set(range(4, 4 + 11))
    assert set(events["p"].tolist()) == {1}
    for column in range(4, 15):
        mine = events[events["x"] == column]
        k = column - 4 + 1  # the frame in which the column first shows bright
        assert mine["t"].min() > times[k - 1] and mine["t"].max() <= times[k]
        assert mine.shape[0] == 6 * expected_per_pixel
        assert set(mine["y"].tolist()) == set(range(6))
    # Threshold crossings are spread over the interval in log-intensity steps.
    one = events[(events["x"] == 8) & (events["y"] == 0)]["t"] - times[4]
    log_start = np.log(DARK + 1e-3)
    crossings = log_start + 0.2 * np.arange(1, expected_per_pixel + 1)
    fraction = (crossings - log_start) / (np.log(BRIGHT + 1e-3) - log_start)
    assert np.allclose(one, np.rint(fraction * 10_000), atol=1)


def test_edge_moving_back_gives_off_events():
    frames, times = moving_edge()
    events = EventEmulator()(frames[::-1], times)
    assert set(events["p"].tolist()) == {0}


def test_refractory_period_and_noise():
    frames, times = moving_edge()
    plain = EventEmulator()(frames, times)
    refractory = EventEmulator(refractory_us=3000)(frames, times)
    assert 0 < refractory.shape[0] < plain.shape[0]
    for x, y in {(int(a), int(b)) for a, b in zip(refractory["x"], refractory["y"])}:
        stamps = refractory[(refractory["x"] == x) & (refractory["y"] == y)]["t"]
        assert np.all(np.diff(stamps) >= 3000 - 1)  # rounding to whole µs
    # Background noise on a still scene: Poisson with the expected mean.
    still = np.full((201, 10, 10), 0.5)
    noisy = EventEmulator(noise_rate_hz=5.0, seed=3)(still, np.arange(201) * 10_000)
    expected = 5.0 * 2.0 * 100  # rate x 2 s x 100 pixels
    assert abs(noisy.shape[0] - expected) < 5 * np.sqrt(expected)
    assert set(noisy["p"].tolist()) == {0, 1}
    assert EventEmulator(seed=3)(still, np.arange(201) * 10_000).shape[0] == 0


def test_threshold_mismatch_varies_counts():
    frames, times = moving_edge(width=40, n_frames=30, height=20)
    events = EventEmulator(threshold_sigma=0.2, seed=1)(frames, times)
    pixel = events["y"].astype(np.int64) * 40 + events["x"]
    counts = np.bincount(pixel)[np.unique(pixel)]
    assert counts.min() < counts.max()


def test_bad_frames():
    with pytest.raises(ValueError, match="frame times must increase"):
        EventEmulator()(np.zeros((3, 4, 4)), [0, 10, 10])
    with pytest.raises(ValueError, match="one timestamp each"):
        EventEmulator()(np.zeros((3, 4, 4)), [0, 10])


def test_ucf101_clip_to_aedat(tmp_path):
    events, sensor = video_to_events(UCF_CLIP, sensor_size=(64, 48), max_frames=25)
    assert sensor == (64, 48, 2)
    assert events.shape[0] > 1000
    assert events["x"].max() < 64 and events["y"].max() < 48
    assert np.all(np.diff(events["t"]) >= 0)
    assert 0 < events["t"].min() and events["t"].max() <= 24 * 1e6 / 25  # 25 fps clip
    assert set(np.unique(events["p"]).tolist()) == {0, 1}
    written, _ = video_to_aedat(UCF_CLIP, tmp_path / "clip.aedat", sensor_size=(64, 48), max_frames=25)
    assert np.array_equal(read_aedat(tmp_path / "clip.aedat"), written)
    assert np.array_equal(written, events)
