"""The embedded synthetic action set: classes that differ only by motion.

A striped, high-contrast object moves over a smooth, low-contrast background. Each
class is one motion: a direction of travel, a sense of rotation, growth or shrinkage,
or a speed. The start of
every motion is drawn at random so that the object's position, orientation and size in
any single frame have (nearly) the same distribution in every class: one frame does not
give the class, the change over time does. Appearance (background texture, colours,
object shape) is drawn per *group* and shared by all classes of that group, as clips of
one UCF101 group share a scene, so a model cannot learn the class from appearance and
test groups look unlike training groups.

The set is written in the UCF101 layout as real XVID ``.avi`` files::

    <root>/UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi
    <root>/ucfTrainTestlist/classInd.txt, trainlist01.txt, testlist01.txt  (CRLF)
    <root>/synthetic_actions.json   (the generator's parameters; written last)

Generation is deterministic: the pixels of a clip depend only on ``seed``, its class,
group and clip number (and the frame size and length).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from nengo_actions.io import atomic_path, write_json_atomic, writing
from nengo_actions.config.schema import SyntheticActionsConfig

from .progress import Progress
from .ucf101 import DatasetError

MARKER = "synthetic_actions.json"
FORMAT_VERSION = 1

#: Class name -> motion: (dx, dy) travel as a fraction of the frame, rotation in degrees
#: (positive is clockwise on screen), and the log of the size change, over the clip.
MOTIONS = {
    "MoveLeft": dict(dx=-0.4),
    "MoveRight": dict(dx=0.4),
    "MoveUp": dict(dy=-0.4),
    "MoveDown": dict(dy=0.4),
    "RotateClockwise": dict(rotate=100.0),
    "RotateCounterclockwise": dict(rotate=-100.0),
    "Grow": dict(log_scale=math.log(1.8)),
    "Shrink": dict(log_scale=-math.log(1.8)),
    "MoveRightSlow": dict(dx=0.18),
    "MoveLeftSlow": dict(dx=-0.18),
}
CLASS_NAMES = tuple(MOTIONS)

# Ranges every frame's object state stays in, whatever the class: centre (fraction of
# the frame), orientation (degrees) and log size.
CENTRE_RANGE = (0.22, 0.78)
ANGLE_RANGE = (-80.0, 80.0)
LOG_SCALE_RANGE = (math.log(0.6), math.log(1.35))
OBJECT_SIZE = 0.7  # object length at scale 1, as a fraction of the frame width
NOISE_STD = 4.0  # per-pixel camera noise, in 8-bit levels
SHAPES = ("ellipse", "rectangle", "triangle", "arrow", "cross", "diamond")


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """What to generate (``data.synthetic`` in the config).

    Parameters
    ----------
    n_classes : int
        The first ``n_classes`` of :data:`CLASS_NAMES` (2 .. 10).
    n_groups : int
        Groups ``g01 .. gNN``; every class has clips in every group.
    clips_per_group : int
        Clips per class and group (``c01 .. cCC``).
    n_frames : int
        Frames per clip.
    size : (int, int)
        Frame ``(height, width)`` in pixels (even numbers, as XVID needs).
    fps : int
        Frame rate written into the files.
    test_groups : list of int
        Groups of the test side of split 1; the others are training groups.
    seed : int
        Seed of the generator.
    """

    n_classes: int = 8
    n_groups: int = 10
    clips_per_group: int = 3
    n_frames: int = 32
    size: tuple = (64, 64)
    fps: int = 25
    test_groups: tuple = (1, 2, 3)
    seed: int = 0

    @classmethod
    def from_config(cls, synthetic: SyntheticActionsConfig):
        """The spec of the config section ``data.synthetic``."""
        return cls(**{f.name: getattr(synthetic, f.name) for f in dataclasses.fields(cls)})

    def __post_init__(self):
        where = "data.synthetic"
        if not 2 <= self.n_classes <= len(CLASS_NAMES):
            raise DatasetError(f"key '{where}.n_classes' must be 2..{len(CLASS_NAMES)}, got {self.n_classes}")
        if len(self.size) != 2 or any(s < 16 or s % 2 for s in self.size):
            raise DatasetError(f"key '{where}.size' must be [height, width], even, >= 16; got {list(self.size)}")
        if self.n_frames < 2 or self.clips_per_group < 1 or self.fps < 1:
            raise DatasetError(f"'{where}': n_frames >= 2, clips_per_group >= 1 and fps >= 1 are needed")
        bad = [g for g in self.test_groups if not 1 <= g <= self.n_groups]
        if bad or not self.test_groups or len(set(self.test_groups)) >= self.n_groups:
            raise DatasetError(
                f"key '{where}.test_groups' must name some, not all, of groups 1..{self.n_groups}; "
                f"got {list(self.test_groups)}"
            )

    @property
    def class_names(self):
        return list(CLASS_NAMES[: self.n_classes])

    def to_json(self):
        d = dataclasses.asdict(self)
        d["size"], d["test_groups"] = list(self.size), list(self.test_groups)
        d["format_version"] = FORMAT_VERSION
        return d


# ---------------------------------------------------------------------------------------
# Appearance


@dataclasses.dataclass(frozen=True)
class Appearance:
    """What a group's clips look like."""

    background: np.ndarray  # (2H, 2W, 3) float32 texture; clips crop a random window
    sprite: np.ndarray  # (S, S, 3) float32 object texture
    alpha: np.ndarray  # (S, S) float32 object mask
    aspect: float


def _smooth_noise(rng, shape, cells):
    """Low-frequency noise in [0, 1]: random values on a coarse grid, resized smoothly."""
    coarse = rng.random((cells, cells, shape[2]), dtype=np.float32)
    smooth = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return smooth.reshape(shape).clip(0, 1)


def _colour(rng, low, high):
    return rng.uniform(low, high, size=3).astype(np.float32)


def group_appearance(spec, group):
    """The appearance of group ``group``, drawn from ``(seed, group)`` alone."""
    rng = np.random.default_rng([spec.seed, 1, group])
    h, w = spec.size
    # a smooth, low-contrast background and a high-contrast object: whatever the colours,
    # edge energy then marks where the object is
    base = _colour(rng, 70, 190)
    accent = np.clip(base + rng.uniform(-35, 35, size=3), 0, 255).astype(np.float32)
    noise = _smooth_noise(rng, (2 * h, 2 * w, 1), int(rng.integers(3, 7)))
    fine = _smooth_noise(rng, (2 * h, 2 * w, 1), int(rng.integers(10, 20)))
    mix = 0.8 * noise + 0.2 * fine
    background = base * (1 - mix) + accent * mix

    s = 64  # sprite resolution; the object is warped into the frame from here
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    aspect = float(rng.uniform(1.6, 2.2))  # length / width: rotation changes the outline
    alpha = np.zeros((s, s), np.float32)
    half_l, half_w = s * 0.48, s * 0.48 / aspect
    c = s / 2
    if shape == "ellipse":
        cv2.ellipse(alpha, (int(c), int(c)), (int(half_l), int(half_w)), 0, 0, 360, 1.0, -1)
    elif shape == "rectangle":
        cv2.rectangle(alpha, (int(c - half_l), int(c - half_w)), (int(c + half_l), int(c + half_w)), 1.0, -1)
    elif shape == "triangle":
        pts = np.array([[c - half_l, c - half_w], [c - half_l, c + half_w], [c + half_l, c]], np.int32)
        cv2.fillConvexPoly(alpha, pts, 1.0)
    elif shape == "arrow":
        pts = np.array(
            [[c - half_l, c - half_w / 2], [c + 0.2 * half_l, c - half_w / 2], [c + 0.2 * half_l, c - half_w],
             [c + half_l, c], [c + 0.2 * half_l, c + half_w], [c + 0.2 * half_l, c + half_w / 2],
             [c - half_l, c + half_w / 2]], np.int32)
        cv2.fillPoly(alpha, [pts], 1.0)
    elif shape == "cross":
        cv2.rectangle(alpha, (int(c - half_l), int(c - half_w / 2)), (int(c + half_l), int(c + half_w / 2)), 1.0, -1)
        cv2.rectangle(alpha, (int(c + 0.2 * half_l), int(c - half_w)), (int(c + 0.45 * half_l), int(c + half_w)), 1.0, -1)
    else:  # diamond, pointed along its length
        pts = np.array([[c - half_l, c], [c + 0.3 * half_l, c - half_w], [c + half_l, c], [c + 0.3 * half_l, c + half_w]], np.int32)
        cv2.fillConvexPoly(alpha, pts, 1.0)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)

    # striped texture across the object's length, so rotation also turns the stripes
    light, dark = _colour(rng, 200, 255), _colour(rng, 0, 50)
    period = float(rng.uniform(18, 30))
    x = np.arange(s, dtype=np.float32)
    stripes = np.clip(0.5 + 1.5 * np.sin(2 * np.pi * x / period + rng.uniform(0, 2 * np.pi)), 0, 1)
    sprite = dark * (1 - stripes[:, None]) + light * stripes[:, None]
    # one end brighter than the other: turning the object then moves bright and dark
    # ends in opposite directions, which coarse features pick up
    ramp = np.linspace(0.55, 1.2, s, dtype=np.float32)
    if rng.random() < 0.5:
        ramp = ramp[::-1]
    sprite = np.clip(sprite * ramp[:, None], 0, 255)
    sprite = np.broadcast_to(sprite[None], (s, s, 3)).astype(np.float32)
    return Appearance(background.astype(np.float32), sprite, alpha, aspect)


# ---------------------------------------------------------------------------------------
# Motion


def _start_and_end(rng, delta, low, high):
    """A start drawn so that start and start + delta both lie in [low, high]."""
    lo, hi = (low, high - delta) if delta >= 0 else (low - delta, high)
    start = rng.uniform(lo, hi)
    return start, start + delta


def clip_trajectory(spec, class_name, rng):
    """Object state per frame: centre x, y (fractions), angle (degrees), log size.

    Returns a ``(n_frames, 4)`` float64 array. Every state lies within the shared
    ranges, whatever the class; only the change from frame to frame tells the class.
    """
    motion = MOTIONS[class_name]
    x0, x1 = _start_and_end(rng, motion.get("dx", 0.0), *CENTRE_RANGE)
    y0, y1 = _start_and_end(rng, motion.get("dy", 0.0), *CENTRE_RANGE)
    a0, a1 = _start_and_end(rng, motion.get("rotate", 0.0), *ANGLE_RANGE)
    s0, s1 = _start_and_end(rng, motion.get("log_scale", 0.0), *LOG_SCALE_RANGE)
    t = np.linspace(0.0, 1.0, spec.n_frames)[:, None]
    start, end = np.array([x0, y0, a0, s0]), np.array([x1, y1, a1, s1])
    # a slight random ease keeps the speed from being identical in every clip
    ease = rng.uniform(-0.15, 0.15)
    t = t + ease * t * (1 - t)
    return start + (end - start) * t


def render_clip(spec, appearance, trajectory, rng):
    """Frames ``(n_frames, H, W, 3)`` ``uint8`` RGB of one clip."""
    h, w = spec.size
    oy, ox = int(rng.integers(0, h)), int(rng.integers(0, w))
    background = appearance.background[oy:oy + h, ox:ox + w]
    s = appearance.sprite.shape[0]
    gain = rng.uniform(0.85, 1.15)
    frames = np.empty((len(trajectory), h, w, 3), np.uint8)
    for i, (cx, cy, angle, log_scale) in enumerate(trajectory):
        zoom = OBJECT_SIZE * w * math.exp(log_scale) / s
        # cv2's positive angle turns counter-clockwise on screen
        m = cv2.getRotationMatrix2D((s / 2, s / 2), -angle, zoom)
        m[:, 2] += (cx * w - s / 2, cy * h - s / 2)
        obj = cv2.warpAffine(appearance.sprite, m, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(appearance.alpha, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        frame = background * (1 - mask) + obj * mask
        frame = frame * gain + rng.normal(0.0, NOISE_STD, size=frame.shape)
        frames[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def write_video(path, frames, fps):
    """Write RGB ``uint8`` frames as an XVID ``.avi`` (through a temporary file)."""
    path = Path(path)
    h, w = frames.shape[1:3]
    with atomic_path(path, suffix=".avi") as tmp:  # OpenCV picks the container from the name
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"XVID"), fps, (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write XVID video {tmp}")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()


def clip_frames(spec, class_index, group, number, appearance=None):
    """The frames of clip ``v_<Class>_g<group>_c<number>`` (before video encoding)."""
    rng = np.random.default_rng([spec.seed, 2, class_index, group, number])
    trajectory = clip_trajectory(spec, CLASS_NAMES[class_index], rng)
    appearance = appearance if appearance is not None else group_appearance(spec, group)
    return render_clip(spec, appearance, trajectory, rng)


def _write_lines(path, lines):
    """Text with CRLF line ends, as the real UCF101 split files."""
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode("ascii"))


def generate(root, spec, progress=True):
    """Write the synthetic set into ``root`` (replacing one made earlier by this function).

    Returns the number of clips written.
    """
    root = Path(root)
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".generating-{os.getpid()}"
        try:
            return _generate(root, staging, spec, progress)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _generate(root, staging, spec, progress):
    shutil.rmtree(staging, ignore_errors=True)
    videos, lists = staging / "UCF-101", staging / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    names = spec.class_names
    train, test = [], []
    jobs = [(c, g, k) for c in range(len(names)) for g in range(1, spec.n_groups + 1)
            for k in range(1, spec.clips_per_group + 1)]
    appearances = {g: group_appearance(spec, g) for g in range(1, spec.n_groups + 1)}
    bar = Progress(len(jobs), f"generating synthetic actions in {root}", "clip", progress)
    for c, g, k in jobs:
        name = names[c]
        frames = clip_frames(spec, c, g, k, appearances[g])
        relpath = f"{name}/v_{name}_g{g:02d}_c{k:02d}.avi"
        (videos / name).mkdir(parents=True, exist_ok=True)
        write_video(videos / relpath, frames, spec.fps)
        if g in spec.test_groups:
            test.append(relpath)
        else:
            train.append(f"{relpath} {c + 1}")
        bar.update()
    bar.close()
    _write_lines(lists / "classInd.txt", [f"{i + 1} {n}" for i, n in enumerate(names)])
    _write_lines(lists / "trainlist01.txt", train)
    _write_lines(lists / "testlist01.txt", test)
    for sub in ("UCF-101", "ucfTrainTestlist"):
        shutil.rmtree(root / sub, ignore_errors=True)
        os.replace(staging / sub, root / sub)
    marker = dict(spec.to_json(), generated=time.strftime("%Y-%m-%dT%H:%M:%S"), clips=len(jobs))
    write_json_atomic(root / MARKER, marker)
    return len(jobs)


def existing_spec(root):
    """The parameters the set in ``root`` was generated with, or ``None``."""
    path = Path(root) / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return {k: v for k, v in data.items() if k not in ("generated", "clips")}


def ensure_synthetic(root, spec, generate_missing=True, progress=True):
    """Make sure ``root`` holds the synthetic set of ``spec``; generate it if allowed.

    Returns ``True`` when it was (re)generated. A folder that holds a UCF101 layout not
    made by the generator is never overwritten.
    """
    root = Path(root)
    found = existing_spec(root)
    if found == spec.to_json():
        return False
    if found is None and ((root / "UCF-101").exists() or (root / "ucfTrainTestlist").exists()):
        raise DatasetError(
            f"{root} holds a UCF101 layout that the synthetic generator did not write "
            f"(no {MARKER}); set data.root to another folder or data.dataset to 'ucf101'"
        )
    if not generate_missing:
        what = "is missing" if found is None else "was generated with other data.synthetic settings"
        raise DatasetError(f"the synthetic action set in {root} {what}; set data.generate to true")
    generate(root, spec, progress=progress)
    return True
