"""An embedded synthetic digit set: handwritten digits seen by an emulated DVS that makes
saccades, in the DVS128 Gesture layout.

The 1,797 grey 8 x 8 images of :func:`sklearn.datasets.load_digits` (ten classes,
``digit_0`` .. ``digit_9``) are each shown once. An image is upscaled smoothly (bicubic)
to a side of ``digit_px`` pixels, drawn as a bright digit on a darker background at a
random position, with a small random rotation, and moved on the sensor as an N-MNIST
recording moves it: three straight saccades along a small triangle (side
``saccade_px``), plus a slow linear drift (up to ``drift_px``) in a random direction.
The motion lasts the whole labelled span of a sample, so every part of it holds events.
Before a sample the digit fades in and holds still; after it, it holds still, fades out
and a short pause of plain background follows, so no sample bleeds into the next.

The images are dealt out (shuffled with ``seed``) to ``n_users`` users, one trial each
(about 90 samples per user by default); the last ``test_users`` users are the test
split. Each user has its own background and contrast, and the emulator adds threshold
mismatch and background noise.

:func:`generate_synthetic_digits` writes what the DVS128 Gesture download holds, so
:func:`~nengo_actions.data.gesture.dvs128_gesture` reads it (with
``sensor_size=(s, s, 2)`` for a sensor other than 128 x 128)::

    <root>/DvsGesture/userNN_<lighting>.aedat        AEDAT 3.1, one trial per user
    <root>/DvsGesture/userNN_<lighting>_labels.csv   class,startTime_usec,endTime_usec
    <root>/DvsGesture/trials_to_train.txt            trials_to_test.txt (last users)
    <root>/gesture_mapping.csv                       action,label: digit_0,1 .. digit_9,10
    <root>/synthetic_digits.json                     sensor size, classes, settings

Label rows are in shuffled order. The folder appears atomically (built under a
temporary name and renamed) and the JSON marker is written last. The files depend on
the settings only: the same spec and emulator give the same bytes.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..io import read_json
from .emulator import EventEmulator
from .gesture_layout import TrialClock, ensure_generated, write_gesture_layout

CLASSES = tuple(f"digit_{k}" for k in range(10))
N_IMAGES = 1797  # images in sklearn.datasets.load_digits
GENERATOR_VERSION = 1
MARKER = "synthetic_digits.json"
#: The ``#Start-Time:`` of every AEDAT header (a fixed value keeps the files reproducible).
START_TIME = "2020-01-01 00:00:00 (TZ+0000)"

#: The pixel model of the synthetic digits: a little threshold mismatch, more noise than
#: the synthetic gestures have.
DEFAULT_EMULATOR = EventEmulator(threshold_sigma=0.03, noise_rate_hz=0.2)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class SyntheticDigitSpec:
    """Settings of the synthetic digit set.

    Attributes
    ----------
    sensor_size : int
        Width and height of the emulated sensor, pixels.
    n_users : int
        Users, one trial each; the images are shared out among them.
    test_users : int
        The last ``test_users`` users form the test split.
    digit_px : tuple of two numbers
        ``(smallest, largest)`` side of the drawn digit, pixels (drawn uniformly per
        sample); at most ``sensor_size``.
    sample_ms : float
        Mean duration of one sample (its labelled span, the time the digit moves), ms;
        each sample lasts 0.8 to 1.2 times this.
    fps : float
        Frame rate of the rendered video fed to the emulator.
    saccade_px : float
        Mean length of one saccade (a side of the triangle), pixels; positive.
    drift_px : float
        Largest drift over one sample, pixels (0: none).
    rotation_deg : float
        Largest rotation of a digit either way, degrees.
    n_samples : int or None
        Use only the first ``n_samples`` of the shuffled images (``None``: all 1,797).
    seed : int
    """

    sensor_size: int = 128
    n_users: int = 20
    test_users: int = 5
    digit_px: tuple = (56, 96)
    sample_ms: float = 300.0
    fps: float = 200.0
    saccade_px: float = 10.0
    drift_px: float = 10.0
    rotation_deg: float = 15.0
    n_samples: int | None = None
    seed: int = 0

    def __post_init__(self):
        if not _is_int(self.sensor_size) or self.sensor_size < 16:
            raise ValueError(f"sensor_size must be an integer >= 16; got {self.sensor_size!r}")
        if not _is_int(self.n_users) or self.n_users < 2:
            raise ValueError(f"n_users must be an integer >= 2; got {self.n_users!r}")
        if not _is_int(self.test_users) or not 0 < self.test_users < self.n_users:
            raise ValueError(f"test_users must be an integer, at least 1 and below n_users; got {self.test_users!r}")
        try:
            digit_px = tuple(self.digit_px)
        except TypeError:
            digit_px = ()
        if len(digit_px) != 2 or not all(_is_number(v) for v in digit_px):
            raise ValueError(f"digit_px must be two numbers (smallest, largest side); got {self.digit_px!r}")
        if not 4 <= digit_px[0] <= digit_px[1] <= self.sensor_size:
            raise ValueError(
                f"digit_px must satisfy 4 <= smallest <= largest <= sensor_size ({self.sensor_size}); got {digit_px}"
            )
        object.__setattr__(self, "digit_px", digit_px)
        for name in ("sample_ms", "fps", "saccade_px"):
            value = getattr(self, name)
            if not _is_number(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number; got {value!r}")
        if self.sample_ms * 0.8 * self.fps / 1e3 < 4:
            raise ValueError(
                f"sample_ms must last at least 4 frames at fps={self.fps} (0.8 * sample_ms * fps / 1000 >= 4); "
                f"got {self.sample_ms}"
            )
        for name in ("drift_px", "rotation_deg"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0; got {value!r}")
        if self.n_samples is not None and (
            not _is_int(self.n_samples) or not self.n_users <= self.n_samples <= N_IMAGES
        ):
            raise ValueError(
                f"n_samples must be None or an integer from n_users ({self.n_users}) to {N_IMAGES}; "
                f"got {self.n_samples!r}"
            )
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer; got {self.seed!r}")

    @classmethod
    def for_sensor(cls, sensor_size, **changes):
        """The default settings with the pixel lengths (``digit_px``, ``saccade_px``,
        ``drift_px``) scaled from a 128 x 128 sensor to ``sensor_size``, then
        ``changes`` applied."""
        base, scale = cls(), sensor_size / 128.0
        scaled = {
            "sensor_size": sensor_size,
            "digit_px": tuple(max(int(round(v * scale)), 4) for v in base.digit_px),
            "saccade_px": base.saccade_px * scale,
            "drift_px": base.drift_px * scale,
        }
        return cls(**{**scaled, **changes})


def load_digit_images():
    """The scikit-learn digits: images ``(1797, 8, 8)`` float64 in [0, 1] and labels
    ``(1797,)`` int64 in 0..9."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn loads slowly

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64) / 16.0
    labels = np.asarray(digits.target, dtype=np.int64)
    if images.shape != (N_IMAGES, 8, 8):
        raise ValueError(f"sklearn.datasets.load_digits gave images of shape {images.shape}, not ({N_IMAGES}, 8, 8)")
    return images, labels


def assign_images(spec, n_images=N_IMAGES):
    """Image indices per user: ``{user: int64 array}`` for users 1..n_users, each image
    (of the first ``spec.n_samples`` after a shuffle with ``spec.seed``) used once, in
    presentation order."""
    order = np.random.default_rng([spec.seed, 0]).permutation(n_images)
    if spec.n_samples is not None:
        order = order[:spec.n_samples]
    return {user: chunk for user, chunk in enumerate(np.array_split(order, spec.n_users), start=1)}


def _upscale(image, side):
    """An 8 x 8 image in [0, 1] as a smooth picture whose digit box is ``side`` pixels:
    float32 ``(n, n)`` with ``n = round(side * 10 / 8)``, the 8 x 8 box padded by one
    dark pixel each way so the digit fades to zero at the border."""
    import cv2

    padded = np.pad(image.astype(np.float32), 1)
    n = max(int(round(side * 10 / 8)), 10)
    return np.clip(cv2.resize(padded, (n, n), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _place(picture, center, angle, size):
    """``picture`` rotated by ``angle`` (radians) about its middle and put with its
    middle at ``center`` (x, y in pixels) on a dark ``(size, size)`` float64 canvas."""
    import cv2

    c, s = np.cos(angle), np.sin(angle)
    middle = (picture.shape[1] - 1) / 2.0
    rotation = np.array([[c, -s], [s, c]])
    shift = np.asarray(center, dtype=np.float64) - rotation @ np.array([middle, middle])
    matrix = np.hstack([rotation, shift[:, None]])
    placed = cv2.warpAffine(
        picture, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )
    return placed.astype(np.float64)


class _Sample:
    """One digit's drawing and motion: ``offset(u)`` is its displacement (x, y pixels)
    at motion phase ``u`` in [0, 1]."""

    def __init__(self, spec, image_index, label, n_motion, rng):
        self.image_index, self.label, self.n_motion = int(image_index), int(label), int(n_motion)
        self.side = rng.uniform(*spec.digit_px)
        self.angle = np.deg2rad(rng.uniform(-spec.rotation_deg, spec.rotation_deg))
        self.gain = rng.uniform(0.85, 1.15)  # contrast of this sample relative to the user's
        # Saccades: the corners of a triangle, starting and ending at the first one.
        side = spec.saccade_px * rng.uniform(0.7, 1.3)
        radius = side / np.sqrt(3.0)
        phase, turn = rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0])
        corners = radius * np.array(
            [[np.cos(phase + turn * k * 2 * np.pi / 3), np.sin(phase + turn * k * 2 * np.pi / 3)] for k in range(4)]
        )
        self.corners = corners - corners[0]
        heading = rng.uniform(0, 2 * np.pi)
        self.drift = spec.drift_px * rng.uniform(0.3, 1.0) * np.array([np.cos(heading), np.sin(heading)])
        # The middle of the picture, far enough from the border that the digit stays on the sensor.
        reach = self.side / 2 * (abs(np.cos(self.angle)) + abs(np.sin(self.angle)))
        travel = np.abs(self.corners).max(axis=0) + np.abs(self.drift)
        low = reach + travel
        high = spec.sensor_size - low
        anywhere = rng.uniform(np.minimum(low, high), np.maximum(low, high))
        self.center = np.where(low < high, anywhere, spec.sensor_size / 2)

    def offset(self, u):
        leg = min(int(u * 3), 2)
        along = u * 3 - leg
        return self.corners[leg] + (self.corners[leg + 1] - self.corners[leg]) * along + self.drift * u


class _DigitTrial(TrialClock):
    """One user's trial: every sample's timing, pose and motion are drawn up front (so
    the labels are known), its frames are rendered one at a time as :meth:`frames` is
    iterated."""

    settle_s = 0.2  # plain background before the first sample
    fade_s = 0.04  # the digit fades in before and out after each sample
    hold_s = 0.01  # and holds still between the fade and the motion
    pause_s = (0.05, 0.1)  # plain background after each sample

    def __init__(self, spec, images, labels, rng):
        self.spec, self.images, self.rng = spec, images, rng
        self.dt = 1e6 / spec.fps
        self.background = rng.uniform(0.05, 0.2)
        self.foreground = min(self.background * rng.uniform(2.5, 5.0), 0.95)
        self.n_settle = int(round(self.settle_s * 1e6 / self.dt))
        self.n_fade = max(int(round(self.fade_s * 1e6 / self.dt)), 1)
        self.n_hold = max(int(round(self.hold_s * 1e6 / self.dt)), 1)
        self.samples, self.pauses, self.labels = [], [], []
        frame = self.n_settle
        for index in range(len(images)):
            n_motion = max(int(round(spec.sample_ms * 1e3 * rng.uniform(0.8, 1.2) / self.dt)), 4)
            sample = _Sample(spec, index, labels[index], n_motion, rng)
            n_pause = int(round(rng.uniform(*self.pause_s) * 1e6 / self.dt))
            first = frame + self.n_fade + self.n_hold  # the labelled span: first to last motion frame
            self.labels.append(
                (sample.label + 1, int(round(self.time(first))), int(round(self.time(first + n_motion - 1))) + 1)
            )
            self.samples.append(sample)
            self.pauses.append(n_pause)
            frame += 2 * (self.n_fade + self.n_hold) + n_motion + n_pause
        self.n_frames = frame

    def frames(self):
        """Yield the trial's frames (intensity in [0, 1], float64 ``(size, size)``) in order."""
        size, still = self.spec.sensor_size, self.still()
        for _ in range(self.n_settle):
            yield still
        fade = np.linspace(0.0, 1.0, self.n_fade + 2)[1:-1]
        for sample, n_pause in zip(self.samples, self.pauses):
            picture = _upscale(self.images[sample.image_index], sample.side)
            span = min(self.foreground * sample.gain, 0.98) - self.background
            phases = np.linspace(0.0, 1.0, sample.n_motion)
            poses = [_place(picture, sample.center + sample.offset(u), sample.angle, size) for u in (0.0, 1.0)]
            for level in fade:
                yield self.background + span * level * poses[0]
            for _ in range(self.n_hold):
                yield self.background + span * poses[0]
            for u in phases:
                yield self.background + span * _place(picture, sample.center + sample.offset(u), sample.angle, size)
            for _ in range(self.n_hold):
                yield self.background + span * poses[1]
            for level in fade[::-1]:
                yield self.background + span * level * poses[1]
            for _ in range(n_pause):
                yield still


def _metadata(spec, emulator, trials):
    n_train = spec.n_users - spec.test_users
    counts = [len(trials[user].labels) for user in sorted(trials)]
    return {
        "generator_version": GENERATOR_VERSION,
        "sensor_size": [spec.sensor_size, spec.sensor_size, 2],
        "classes": list(CLASSES),
        "samples": {"train": int(sum(counts[:n_train])), "test": int(sum(counts[n_train:]))},
        "images": "sklearn.datasets.load_digits",
        "spec": asdict(spec),
        "emulator": asdict(emulator),
    }


def generate_synthetic_digits(root, spec=None, emulator=None, progress=True):
    """Write the synthetic digit set under ``root`` (see the module docstring).

    Parameters
    ----------
    root : str or Path
    spec : SyntheticDigitSpec or None
        Default ``SyntheticDigitSpec()``: 1,797 samples on a 128 x 128 sensor.
    emulator : EventEmulator or None
        The pixel model (default :data:`DEFAULT_EMULATOR`); its seed is combined with
        ``spec.seed``.
    progress : bool
        Show a progress bar (frames of the emulated video).

    Returns
    -------
    Path
        The ``DvsGesture`` folder.
    """
    spec = spec or SyntheticDigitSpec()
    emulator = emulator or DEFAULT_EMULATOR
    images, labels = load_digit_images()
    trials = {
        user: _DigitTrial(spec, images[chosen], labels[chosen], np.random.default_rng([spec.seed, user]))
        for user, chosen in assign_images(spec, len(images)).items()
    }
    return write_gesture_layout(
        root, trials, spec, emulator, CLASSES, MARKER, _metadata(spec, emulator, trials),
        desc="generating synthetic digits", progress=progress, start_time=START_TIME,
    )


def ensure_synthetic_digits(root, spec=None, emulator=None, progress=True):
    """Generate the digit set unless ``root`` already holds one made with the same
    settings.

    Returns ``(DvsGesture folder, generated)``.
    """
    return ensure_generated(generate_synthetic_digits, root, MARKER, GENERATOR_VERSION,
                            spec or SyntheticDigitSpec(), emulator or DEFAULT_EMULATOR, progress)


def synthetic_digits_metadata(root):
    """The marker JSON of a generated digit set (``None`` when ``root`` holds none)."""
    return read_json(Path(root) / MARKER)
