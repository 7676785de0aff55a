"""An embedded synthetic gesture set, emulated from rendered video, in the DVS128 Gesture
layout.

Ten classes of motion of a bright shape on a darker background, told apart by the
direction of motion (which a DVS shows as ON events on the leading edge and OFF events on
the trailing edge): swipes right / left / up / down of a disk, a bar rotating clockwise /
counter-clockwise, a ring expanding / contracting, and a disk circling clockwise /
counter-clockwise (``n_classes`` takes the first ones in this order). Each sample varies position, size, speed, contrast and timing; each "user"
has its own lighting (contrast), and the emulator adds threshold mismatch and background
noise.

:func:`generate_synthetic_gestures` writes what the real download holds, so the real
reader path (:class:`~nengo_actions.data.gesture.DVS128Gesture`) is what reads it::

    <root>/DvsGesture/userNN_<lighting>.aedat        AEDAT 3.1, one trial per user
    <root>/DvsGesture/userNN_<lighting>_labels.csv   class,startTime_usec,endTime_usec
    <root>/DvsGesture/trials_to_train.txt            trials_to_test.txt (last users)
    <root>/gesture_mapping.csv                       action,label
    <root>/synthetic_gestures.json                   sensor size, classes, settings

The label rows are written in shuffled order and each class occurs ``repeats`` times per
trial, the two quirks of the real label files. The folder appears atomically: it is
built under a temporary name and renamed, and the JSON marker is written last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io import read_json
from .emulator import EventEmulator
from .gesture_layout import TrialClock, ensure_generated, write_gesture_layout

CLASSES = (
    "swipe_right",
    "swipe_left",
    "swipe_up",
    "swipe_down",
    "rotate_clockwise",
    "rotate_counter_clockwise",
    "expand",
    "contract",
    "circle_clockwise",
    "circle_counter_clockwise",
)
GENERATOR_VERSION = 1
MARKER = "synthetic_gestures.json"


@dataclass(frozen=True)
class SyntheticGestureSpec:
    """Settings of the synthetic gesture set (``events.synthetic`` in a config).

    Attributes
    ----------
    sensor_size : int
        Width and height of the emulated sensor, pixels.
    n_classes : int
        How many of :data:`CLASSES` to use (2..10), in order.
    n_users : int
        Users, one trial each.
    test_users : int
        The last ``test_users`` users form the test split.
    repeats : int
        Occurrences of each class per trial.
    gesture_ms : float
        Mean duration of one gesture (its labelled span), ms.
    fps : float
        Frame rate of the rendered video fed to the emulator.
    seed : int
    """

    sensor_size: int = 32
    n_classes: int = 10
    n_users: int = 16
    test_users: int = 4
    repeats: int = 3
    gesture_ms: float = 800.0
    fps: float = 100.0
    seed: int = 0

    def __post_init__(self):
        if not 2 <= self.n_classes <= len(CLASSES):
            raise ValueError(f"n_classes must be 2..{len(CLASSES)}; got {self.n_classes}")
        if not 0 < self.test_users < self.n_users:
            raise ValueError("test_users must be at least 1 and fewer than n_users")
        if self.sensor_size < 16 or self.repeats < 1 or self.gesture_ms <= 0 or self.fps <= 0:
            raise ValueError("sensor_size >= 16, repeats >= 1, gesture_ms > 0 and fps > 0 required")


def _soft(distance, softness=0.6):
    """Coverage of a pixel at signed distance ``distance`` (px) from an edge."""
    return 1.0 / (1.0 + np.exp(np.clip(distance / softness, -40, 40)))


def _render(name, n_frames, size, rng):
    """Coverage in [0, 1] of the moving shape, shape ``(n_frames, size, size)``, for the
    motion part and the static first/last poses."""
    u = np.linspace(0.0, 1.0, n_frames)[:, None, None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    yy, xx = yy[None] + 0.5, xx[None] + 0.5
    s = float(size)
    center = s / 2 + rng.uniform(-0.08, 0.08, 2) * s
    if name.startswith("swipe"):
        radius = s * rng.uniform(0.10, 0.15)
        travel = (0.2 + 0.6 * u) * s + rng.uniform(-0.05, 0.05) * s
        across = rng.uniform(0.3, 0.7) * s
        along = {"swipe_right": travel, "swipe_left": s - travel, "swipe_down": travel, "swipe_up": s - travel}[name]
        if name in ("swipe_right", "swipe_left"):
            cx, cy = along, across
        else:
            cx, cy = across, along
        return _soft(np.hypot(xx - cx, yy - cy) - radius)
    if name.startswith("circle"):
        radius = s * rng.uniform(0.09, 0.13)
        orbit = s * rng.uniform(0.22, 0.30)
        sign = 1.0 if name == "circle_clockwise" else -1.0  # y points down: +angle is clockwise
        angle = rng.uniform(0, 2 * np.pi) + sign * 2 * np.pi * u * rng.uniform(0.85, 1.0)
        cx = center[0] + orbit * np.cos(angle)
        cy = center[1] + orbit * np.sin(angle)
        return _soft(np.hypot(xx - cx, yy - cy) - radius)
    if name.startswith("rotate"):
        half_length = s * rng.uniform(0.30, 0.40)
        half_width = s * rng.uniform(0.05, 0.08)
        sign = 1.0 if name == "rotate_clockwise" else -1.0
        angle = rng.uniform(0, np.pi) + sign * np.pi * u * rng.uniform(0.7, 0.9)
        dx, dy = xx - center[0], yy - center[1]
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = -dx * np.sin(angle) + dy * np.cos(angle)
        return _soft(np.maximum(np.abs(along) - half_length, np.abs(across) - half_width))
    if name in ("expand", "contract"):
        small, large = s * rng.uniform(0.08, 0.12), s * rng.uniform(0.38, 0.45)
        grow = u if name == "expand" else 1.0 - u
        radius = small + (large - small) * grow
        thickness = s * rng.uniform(0.05, 0.07)
        return _soft(np.abs(np.hypot(xx - center[0], yy - center[1]) - radius) - thickness)
    raise ValueError(f"unknown synthetic gesture {name!r}")


class _Trial(TrialClock):
    """One user's trial: its timing is drawn up front (so the labels are known), its
    frames are rendered one gesture at a time as :meth:`frames` is iterated."""

    settle_s = 0.3  # static scene before the first gesture
    fade_s = 0.1  # the shape fades in before and out after each gesture

    def __init__(self, spec, classes, rng):
        self.spec, self.classes, self.rng = spec, classes, rng
        self.dt = 1e6 / spec.fps
        self.background = rng.uniform(0.08, 0.2)
        self.foreground = min(self.background * rng.uniform(3.5, 6.0), 0.95)
        order = np.repeat(np.arange(len(classes)), spec.repeats)
        rng.shuffle(order)
        self.n_settle = int(self.settle_s * 1e6 / self.dt)
        self.n_fade = int(self.fade_s * 1e6 / self.dt)
        self.clips, self.labels = [], []
        frame = self.n_settle
        for label in order:
            n_motion = max(int(spec.gesture_ms * 1e3 * rng.uniform(0.8, 1.2) / self.dt), 8)
            n_pause = int(rng.uniform(0.15, 0.3) * 1e6 / self.dt)
            self.clips.append((int(label), n_motion, n_pause))
            first = frame + self.n_fade  # the labelled span: first to last motion frame
            self.labels.append(
                (int(label) + 1, int(round(self.time(first))), int(round(self.time(first + n_motion - 1))) + 1)
            )
            frame += 2 * self.n_fade + n_motion + n_pause
        self.n_frames = frame

    def frames(self):
        """Yield the trial's frames (intensity, ``(size, size)``) in order."""
        size, still = self.spec.sensor_size, self.still()
        for _ in range(self.n_settle):
            yield still
        fade = np.linspace(0.0, 1.0, self.n_fade + 2)[1:-1, None, None]
        span = self.foreground - self.background
        for label, n_motion, n_pause in self.clips:
            cover = _render(self.classes[label], n_motion, size, self.rng)
            clip = np.concatenate([fade * cover[0], cover, fade[::-1] * cover[-1]])
            yield from self.background + span * clip
            for _ in range(n_pause):
                yield still


#: The pixel model of the synthetic set: a little threshold mismatch and noise.
DEFAULT_EMULATOR = EventEmulator(threshold_sigma=0.03, noise_rate_hz=0.2)


def generate_synthetic_gestures(root, spec=None, emulator=None, progress=True):
    """Write the synthetic set under ``root`` (see the module docstring).

    ``emulator`` sets the pixel model (its seed is combined with the user number).
    Returns the ``DvsGesture`` folder.
    """
    spec = spec or SyntheticGestureSpec()
    emulator = emulator or DEFAULT_EMULATOR
    classes = CLASSES[:spec.n_classes]
    trials = {
        user: _Trial(spec, classes, np.random.default_rng([spec.seed, user])) for user in range(1, spec.n_users + 1)
    }
    metadata = {
        "generator_version": GENERATOR_VERSION,
        "sensor_size": [spec.sensor_size, spec.sensor_size, 2],
        "classes": list(classes),
        "spec": asdict(spec),
        "emulator": asdict(emulator),
    }
    return write_gesture_layout(
        root, trials, spec, emulator, classes, MARKER, metadata, desc="generating synthetic gestures", progress=progress
    )


def ensure_synthetic_gestures(root, spec=None, emulator=None, progress=True):
    """Generate the set unless ``root`` already holds one made with the same settings.

    Returns ``(DvsGesture folder, generated)``.
    """
    return ensure_generated(generate_synthetic_gestures, root, MARKER, GENERATOR_VERSION,
                            spec or SyntheticGestureSpec(), emulator or DEFAULT_EMULATOR, progress)


def synthetic_metadata(root):
    """The marker JSON of a generated set (``None`` when ``root`` holds none)."""
    return read_json(Path(root) / MARKER)
