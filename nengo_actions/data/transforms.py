"""Tonic-style transforms on event arrays: crops in time, downsampling, framing, composition."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config.events import FRAME_MODES as MODES
from ..config.events import REMAINDERS
from ..config.events import SPLIT_BY as SPLITS
from .events import DVS128_SENSOR, sort_by_time
from .frames import CHANNELS, _check_choice, to_frames


@dataclass(frozen=True)
class ToFrames:
    """Transform: events -> frames with :func:`to_frames` (same parameters)."""

    sensor_size: tuple = DVS128_SENSOR
    n_frames: int | None = 16
    split_by: str = "number"
    time_window: float | None = None
    remainder: str = "last"
    mode: str = "sum"
    downsample: int = 1
    channels: str = "first"
    dtype: str = "float32"

    def __post_init__(self):
        _check_choice("split_by", self.split_by, SPLITS)
        _check_choice("mode", self.mode, MODES)
        _check_choice("channels", self.channels, CHANNELS)
        _check_choice("remainder", self.remainder, REMAINDERS)

    def output_shape(self):
        """Shape of one sample's frames (``None`` for T when it varies)."""
        width, height, polarities = self.sensor_size
        h, w = -(-height // self.downsample), -(-width // self.downsample)
        if self.channels == "first":
            return (self.n_frames, polarities, h, w)
        return (self.n_frames, h, w, polarities)

    def __call__(self, events):
        return to_frames(
            events, self.sensor_size, self.n_frames, self.split_by,
            time_window=self.time_window, remainder=self.remainder, mode=self.mode,
            downsample=self.downsample, channels=self.channels, dtype=self.dtype,
        )


@dataclass(frozen=True)
class CropTime:
    """Transform: keep events in ``[t0 + offset, t0 + offset + duration)``, where ``t0``
    is the first event's time (µs); ``duration=None`` keeps everything after the offset."""

    duration: float | None
    offset: float = 0.0

    def __call__(self, events):
        if events.shape[0] == 0:
            return events
        events = sort_by_time(events)
        start = events["t"][0] + self.offset
        stop = np.inf if self.duration is None else start + self.duration
        a, b = np.searchsorted(events["t"], [start, stop], side="left")
        return events[a:b]


@dataclass(frozen=True)
class RandomCropTime:
    """Transform: keep a ``duration`` µs window starting at a uniformly random time in
    ``[t0, t_last - duration]`` (``t0`` when the sample is shorter): a random crop in
    time for training."""

    duration: float
    rng: np.random.Generator = field(default_factory=np.random.default_rng, compare=False, repr=False)

    def __call__(self, events):
        if events.shape[0] == 0:
            return events
        events = sort_by_time(events)
        first, last = int(events["t"][0]), int(events["t"][-1])
        slack = last - first - self.duration
        offset = self.rng.uniform(0, slack) if slack > 0 else 0.0
        return CropTime(self.duration, offset)(events)


@dataclass(frozen=True)
class Downsample:
    """Transform: integer spatial downsampling, ``x // factor`` and ``y // factor``
    (the sensor becomes ``ceil(W / factor) x ceil(H / factor)``)."""

    factor: int

    def __call__(self, events):
        events = events.copy()
        events["x"] //= self.factor
        events["y"] //= self.factor
        return events


@dataclass(frozen=True)
class Compose:
    """Transform: apply ``transforms`` in order."""

    transforms: tuple

    def __call__(self, events):
        for transform in self.transforms:
            events = transform(events)
        return events
