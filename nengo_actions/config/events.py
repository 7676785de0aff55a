"""The config sections of event data (``events.*``): framing, SL-Animals-DVS, the
synthetic gesture set and the video-to-events emulator. Standard library only.
"""

from __future__ import annotations

import dataclasses

from nengo_actions.config.section import FieldError, Section, setting

frozen = dataclasses.dataclass(frozen=True)

# DVS event data (nengo_actions.data), for the event datasets; recordings under data.root.


#: ``events.frames``' choices (nengo_actions.data.frames).
SPLIT_BY = ("number", "time", "window")
FRAME_MODES = ("sum", "or", "sum_norm")
REMAINDERS = ("last", "drop")


@frozen
class EventFramesConfig(Section):
    n_frames: int = setting(16, low=1)
    split_by: str = setting("number", choices=SPLIT_BY)  # equal counts, equal spans, windows
    time_window_us: float = setting(30000.0, above=0)  # frame length for split_by = "window"
    remainder: str = setting("last", choices=REMAINDERS)  # events past T equal parts
    mode: str = setting("sum", choices=FRAME_MODES)
    downsample: int = setting(1, low=1)  # spatial factor: frames of ceil(H/f) x ceil(W/f) pixels
    channels: str = setting("last", choices=("last", "first"))  # (T, H, W, 2) for Keras or (T, 2, H, W)
    crop_us: float = setting(0.0, low=0)  # training samples cut to this length; 0 keeps all
    random_crop: bool = setting(False)  # training crops start at a random time, else the start
    test_n_frames: int = setting(0, low=0)  # frames per test sample (a longer window); 0: n_frames
    test_crop_us: float = setting(0.0, low=0)  # test samples cut to this length; 0 keeps all


@frozen
class SLAnimalsConfig(Section):
    recordings_dir: str = setting(kind=str)  # default <data.root>/recordings or /allusers_aedat
    tags_dir: str = setting(kind=str)  # default <data.root>/tags or /tags_updated_19_08_2020
    reduced: bool = setting(False)  # leave out the S3 (indoor) recordings
    n_folds: int = setting(4, low=2)  # cross-validation over recordings
    fold: int = setting(0, low=0)
    fold_seed: int = setting(0)

    def check(self):
        if self.fold >= self.n_folds:
            raise FieldError("fold", f"must be less than events.sl_animals.n_folds ({self.n_folds}), got {self.fold}")


@frozen
class SyntheticGesturesConfig(Section):
    """The embedded event set written in the DVS128 Gesture layout."""

    sensor_size: int = setting(32, low=1)
    n_classes: int = setting(10, low=1)
    n_users: int = setting(16, low=1)
    test_users: int = setting(4, low=1)
    repeats: int = setting(3, low=1)
    gesture_ms: float = setting(800.0, above=0)
    fps: float = setting(100.0, above=0)
    seed: int = setting(0)


@frozen
class EmulatorConfig(Section):
    """Video -> events pixel model."""

    pos_threshold: float = setting(0.2, above=0)
    neg_threshold: float = setting(0.2, above=0)
    threshold_sigma: float = setting(0.03, low=0)
    refractory_us: float = setting(0.0, low=0)
    noise_rate_hz: float = setting(0.2, low=0)
    log_eps: float = setting(0.001, above=0)


@frozen
class EventsConfig(Section):
    cache_dir: str = setting(kind=str)  # sliced-sample cache; default <data.root>/cache
    allow_truncated: bool = setting(False)  # read a cut-short recording up to its last whole event
    keep_invalid: bool = setting(False)  # AEDAT 3.1: keep events flagged invalid (as SpikingJelly, tonic)
    frames: EventFramesConfig = setting(factory=EventFramesConfig)
    sl_animals: SLAnimalsConfig = setting(factory=SLAnimalsConfig)
    synthetic: SyntheticGesturesConfig = setting(factory=SyntheticGesturesConfig)
    emulator: EmulatorConfig = setting(factory=EmulatorConfig)


# ---------------------------------------------------------------------------------------
