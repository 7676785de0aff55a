"""Video -> events: a DVS pixel model driven by video frames.

Every pixel keeps a reference log intensity ``ref``. Between two frames (times ``t0`` and
``t1``) its log intensity ``L`` is taken to change linearly. Each time ``L`` climbs a
further ``pos_threshold`` above ``ref`` the pixel emits an ON event (p = 1) and ``ref``
rises by one threshold; each time it falls ``neg_threshold`` below, an OFF event (p = 0)
and ``ref`` falls by one threshold. So a large change gives several events per frame
interval, each at the time the linear ramp crosses its level:

    t = t0 + (ref + k * threshold - L0) / (L1 - L0) * (t1 - t0),   k = 1, 2, ...

Optional effects: per-pixel threshold mismatch (``threshold_sigma``, relative standard
deviation, fixed per emulator seed), a refractory period (events closer than
``refractory_us`` to the pixel's previous event are dropped; the reference still moves, as
a pixel held in reset misses the change) and background noise events (Poisson,
``noise_rate_hz`` per pixel, random polarity, uniform in time).

Frames are intensities in [0, 1] (uint8 frames are divided by 255); the log uses
``log(I + log_eps)``, so changes in the dark are damped as in a real photoreceptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .aedat_write import write_aedat31
from .events import EventDataError, empty_events, make_events


@dataclass(frozen=True)
class EventEmulator:
    """DVS pixel model parameters; call it on ``(frames, timestamps_us)``.

    Parameters
    ----------
    pos_threshold, neg_threshold : float
        ON and OFF contrast thresholds (change of natural-log intensity).
    threshold_sigma : float
        Relative per-pixel threshold mismatch (0 = identical pixels).
    refractory_us : float
        Minimum time between two events of one pixel (0 = none).
    noise_rate_hz : float
        Background event rate per pixel (0 = none).
    log_eps : float
        Offset inside the log, in units of full-scale intensity.
    seed : int
        Seed of the mismatch and the noise.
    """

    pos_threshold: float = 0.2
    neg_threshold: float = 0.2
    threshold_sigma: float = 0.0
    refractory_us: float = 0.0
    noise_rate_hz: float = 0.0
    log_eps: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.pos_threshold <= 0 or self.neg_threshold <= 0:
            raise ValueError("pos_threshold and neg_threshold must be positive")
        if self.threshold_sigma < 0 or self.refractory_us < 0 or self.noise_rate_hz < 0:
            raise ValueError("threshold_sigma, refractory_us and noise_rate_hz must be >= 0")
        if self.log_eps <= 0:
            raise ValueError("log_eps must be positive")

    def start(self, frame, t_us):
        """A :class:`PixelArray` whose references are set by ``frame`` at ``t_us``."""
        return PixelArray(self, frame, t_us)

    def __call__(self, frames, timestamps_us):
        """Events from a frame sequence.

        Parameters
        ----------
        frames : array_like
            Shape ``(n_frames, height, width)``; float in [0, 1] or uint8.
        timestamps_us : array_like
            Shape ``(n_frames,)``, increasing, microseconds.

        Returns
        -------
        numpy.ndarray
            Events in time order (the first frame only sets the references).
        """
        frames = np.asarray(frames)
        timestamps_us = np.asarray(timestamps_us, dtype=np.float64)
        if frames.ndim != 3 or timestamps_us.shape != (frames.shape[0],):
            raise ValueError(
                f"frames must be (n_frames, height, width) with one timestamp each; got "
                f"{frames.shape} and {timestamps_us.shape}"
            )
        if frames.shape[0] == 0:
            return empty_events()
        pixels = self.start(frames[0], timestamps_us[0])
        parts = [pixels.step(frame, t) for frame, t in zip(frames[1:], timestamps_us[1:])]
        return np.concatenate(parts) if parts else empty_events()


def _intensity(frame):
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.float64) / 255.0
    return frame.astype(np.float64, copy=False)


class PixelArray:
    """The state of an emulated sensor: references, thresholds, last event times."""

    def __init__(self, emulator, frame, t_us):
        frame = _intensity(frame)
        if frame.ndim != 2:
            raise ValueError(f"a frame must be (height, width); got shape {frame.shape}")
        self.emulator = emulator
        self.height, self.width = frame.shape
        n = frame.size
        self.rng = np.random.default_rng(emulator.seed)
        sigma = emulator.threshold_sigma
        mismatch = 1.0 + sigma * self.rng.standard_normal((2, n)) if sigma else np.ones((2, n))
        floor = 0.05 * min(emulator.pos_threshold, emulator.neg_threshold)
        self.on = np.maximum(emulator.pos_threshold * mismatch[0], floor)
        self.off = np.maximum(emulator.neg_threshold * mismatch[1], floor)
        self.level = np.log(frame.ravel() + emulator.log_eps)
        self.ref = self.level.copy()
        self.t = float(t_us)
        self.last_event = np.full(n, -np.inf)

    def step(self, frame, t_us):
        """Advance to ``frame`` at ``t_us``; return the events of the interval, in time
        order."""
        frame = _intensity(frame)
        if frame.shape != (self.height, self.width):
            raise ValueError(
                f"frame shape {frame.shape} differs from the first frame's "
                f"{(self.height, self.width)}"
            )
        t_us = float(t_us)
        if t_us <= self.t:
            raise ValueError(f"frame times must increase: {t_us} after {self.t}")
        level = np.log(frame.ravel() + self.emulator.log_eps)
        change = level - self.ref
        n_on = np.floor(np.maximum(change, 0.0) / self.on).astype(np.int64)
        n_off = np.floor(np.maximum(-change, 0.0) / self.off).astype(np.int64)
        pixels, ranks, polarity = self._crossings(n_on, n_off)
        threshold = np.where(polarity == 1, self.on[pixels], -self.off[pixels])
        crossing = self.ref[pixels] + ranks * threshold
        start = self.level[pixels]
        fraction = (crossing - start) / (level[pixels] - start)
        times = self.t + fraction * (t_us - self.t)
        if self.emulator.refractory_us > 0 and pixels.shape[0]:
            keep = self._refractory(pixels, ranks, times)
            pixels, polarity, times = pixels[keep], polarity[keep], times[keep]
        self.ref += n_on * self.on - n_off * self.off
        if self.emulator.noise_rate_hz > 0:
            pixels, polarity, times = self._add_noise(pixels, polarity, times, t_us)
        self.level = level
        self.t = t_us
        order = np.argsort(times, kind="stable")
        pixels, polarity = pixels[order], polarity[order]
        stamps = np.rint(times[order]).astype(np.int64)
        return make_events(pixels % self.width, pixels // self.width, polarity, stamps)

    @staticmethod
    def _crossings(n_on, n_off):
        """Per event: pixel index, crossing number (1, 2, ...) and polarity."""
        counts = n_on + n_off  # a pixel crosses one way only within an interval
        pixels = np.flatnonzero(counts)
        per_pixel = counts[pixels]
        total = int(per_pixel.sum())
        event_pixels = np.repeat(pixels, per_pixel)
        first = np.repeat(np.cumsum(per_pixel) - per_pixel, per_pixel)
        ranks = np.arange(1, total + 1) - first
        polarity = (n_on[event_pixels] > 0).astype(np.int8)
        return event_pixels, ranks, polarity

    def _refractory(self, pixels, ranks, times):
        """Drop events within the refractory period of the pixel's previous event.

        A pixel's k-th crossing can only be kept after its earlier ones were decided, so
        the loop runs over crossing numbers (a handful), each step vectorised over pixels.
        """
        keep = np.zeros(pixels.shape[0], dtype=bool)
        period = self.emulator.refractory_us
        for rank in range(1, int(ranks.max()) + 1):
            sel = np.flatnonzero(ranks == rank)
            ok = times[sel] - self.last_event[pixels[sel]] >= period
            keep[sel[ok]] = True
            self.last_event[pixels[sel[ok]]] = times[sel[ok]]
        return keep

    def _add_noise(self, pixels, polarity, times, t_us):
        rate = self.emulator.noise_rate_hz * (t_us - self.t) * 1e-6 * self.level.size
        n = int(self.rng.poisson(rate))
        if not n:
            return pixels, polarity, times
        noise_pixels = self.rng.integers(0, self.level.size, n)
        noise_polarity = self.rng.integers(0, 2, n).astype(np.int8)
        noise_times = self.rng.uniform(self.t, t_us, n)
        return (
            np.concatenate([pixels, noise_pixels]),
            np.concatenate([polarity, noise_polarity]),
            np.concatenate([times, noise_times]),
        )


def read_video_frames(path, sensor_size=None, max_frames=None):
    """Yield ``(gray_frame, index)`` from a video with OpenCV, as float32 in [0, 1],
    resized (area interpolation) to ``sensor_size = (width, height[, ...])`` if given."""
    import cv2  # imported here: OpenCV loads in tens of milliseconds, events need not

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise EventDataError(f"{path}: cannot open the video")
    try:
        index = 0
        while max_frames is None or index < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
            if sensor_size is not None:
                size = (int(sensor_size[0]), int(sensor_size[1]))
                if (gray.shape[1], gray.shape[0]) != size:
                    gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
            yield gray.astype(np.float32) / 255.0, index
            index += 1
    finally:
        capture.release()


def video_fps(path):
    """Frames per second in a video's header (0 when unknown)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        capture.release()


def video_to_events(path, emulator=None, *, sensor_size=None, fps=None, max_frames=None):
    """Events from any video OpenCV can decode.

    Parameters
    ----------
    path : str or Path
    emulator : EventEmulator or None
        Pixel model (default :class:`EventEmulator()`).
    sensor_size : tuple or None
        ``(width, height[, polarities])`` to resize frames to; ``None`` keeps the video's.
    fps : float or None
        Frame rate for the timestamps; default the video's own (25 when missing).
    max_frames : int or None
        Stop after this many frames.

    Returns
    -------
    events : numpy.ndarray
        Event array, time-sorted, timestamps from 0 at the first frame.
    sensor_size : tuple of int
        ``(width, height, 2)`` of the emulated sensor.
    """
    emulator = emulator or EventEmulator()
    fps = fps or video_fps(path) or 25.0
    pixels, parts = None, []
    for frame, index in read_video_frames(path, sensor_size, max_frames):
        t = index * 1e6 / fps
        if pixels is None:
            pixels = emulator.start(frame, t)
        else:
            parts.append(pixels.step(frame, t))
    if pixels is None:
        raise EventDataError(f"{path}: no frames could be decoded")
    events = np.concatenate(parts) if parts else empty_events()
    return events, (pixels.width, pixels.height, 2)


def video_to_aedat(video_path, aedat_path, emulator=None, **kwargs):
    """Emulate events from a video and write them as an AEDAT 3.1 file.

    Keyword arguments go to :func:`video_to_events`. Returns ``(events, sensor_size)``.
    """
    events, sensor = video_to_events(video_path, emulator, **kwargs)
    write_aedat31(
        Path(aedat_path), events, source=f"emulated {sensor[0]}x{sensor[1]} from {Path(video_path).name}"
    )
    return events, sensor
