"""Frames of a clip: OpenCV decoding, JPEG frame folders, sampling and resizing.

Frames are ``uint8`` arrays of shape ``(frames, height, width, 3)`` in RGB order.
Normalisation (ImageNet mean and std) happens on the batch inside the backbone, so the
decoder hands over compact ``uint8`` data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from nengo_actions.config.schema import FRAME_POLICIES as POLICIES
from nengo_actions.config.schema import SHORT_CLIPS


class VideoReadError(RuntimeError):
    """A video or frame folder is missing or cannot be decoded; the message says why."""


class ShortClipError(RuntimeError):
    """A clip has fewer frames than the sampler needs and short clips are skipped."""


@dataclasses.dataclass(frozen=True)
class FrameSampler:
    """Which frames of a clip become feature steps.

    Parameters
    ----------
    policy : str
        ``"first"``: frames ``0 .. n_frames-1`` (the seed used frames 1..28);
        ``"uniform"``: one frame at the centre of each of ``n_frames`` equal segments;
        ``"all"``: every frame (``n_frames`` is ignored).
    n_frames : int
        Steps per clip for ``"first"`` and ``"uniform"``.
    short_clips : str
        For clips with fewer than ``n_frames`` frames: ``"pad"`` repeats the last frame,
        ``"skip"`` leaves the clip out (:class:`ShortClipError`).
    """

    policy: str = "first"
    n_frames: int = 28
    short_clips: str = "pad"

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.short_clips not in SHORT_CLIPS:
            raise ValueError(f"short_clips must be one of {SHORT_CLIPS}, got {self.short_clips!r}")
        if self.policy != "all" and self.n_frames < 1:
            raise ValueError(f"n_frames must be at least 1, got {self.n_frames}")

    @property
    def frames_needed(self):
        """How many leading frames the decoder must read (``None``: all of them)."""
        return self.n_frames if self.policy == "first" else None

    def __call__(self, n_available):
        """Indices (``int64``, shape ``(steps,)``) into a clip of ``n_available`` frames.

        For ``"first"`` the decoder may stop early, so ``n_available`` is then
        ``min(n_frames, clip length)``.
        """
        if n_available < 1:
            raise VideoReadError("no frames decoded")
        if self.policy == "all":
            return np.arange(n_available, dtype=np.int64)
        n = self.n_frames
        if n_available < n:
            if self.short_clips == "skip":
                raise ShortClipError(
                    f"short clip: {n_available} frames < frames.n_frames={n} "
                    "(frames.short_clips='skip')"
                )
            tail = np.full(n - n_available, n_available - 1, dtype=np.int64)
            return np.concatenate([np.arange(n_available, dtype=np.int64), tail])
        if self.policy == "first":
            return np.arange(n, dtype=np.int64)
        # centres of n equal segments, so both ends get the same margin
        return ((np.arange(n) + 0.5) * n_available / n).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Resize:
    """Resize frames to ``(height, width)`` (aspect ratio not kept, as the seed did).

    ``INTER_AREA`` when shrinking (it averages like an anti-aliased resize),
    ``INTER_LINEAR`` when enlarging.
    """

    height: int
    width: int

    def __call__(self, frames):
        frames = np.asarray(frames)
        if frames.shape[1:3] == (self.height, self.width):
            return frames
        shrink = frames.shape[1] * frames.shape[2] > self.height * self.width
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        out = np.empty((len(frames), self.height, self.width, frames.shape[3]), dtype=frames.dtype)
        for i, frame in enumerate(frames):
            out[i] = cv2.resize(frame, (self.width, self.height), interpolation=interpolation)
        return out


class DamagedVideoError(VideoReadError):
    """The container announces more frames than can be decoded (a cut download, a bad sector).

    ``frames`` holds what could be decoded, ``decoded`` and ``announced`` the two counts.
    """

    def __init__(self, path, decoded, announced, frames):
        super().__init__(
            f"damaged: decoded {decoded} of the {announced} frames the container of {path} announces"
        )
        self.decoded, self.announced, self.frames = decoded, announced, frames


def _count_frames(path):
    """Frames that can be decoded from ``path`` (``grab`` skips the colour conversion)."""
    capture = cv2.VideoCapture(str(path))
    try:
        n = 0
        while capture.grab():
            n += 1
        return n
    finally:
        capture.release()


def _last_frame_decodes(capture, announced):
    """Whether the last announced frame can be read: one seek instead of decoding the rest."""
    capture.set(cv2.CAP_PROP_POS_FRAMES, announced - 1)
    ok, _ = capture.read()
    return ok


def decode_video(path, max_frames=None):
    """Decode a video with OpenCV and check it against the frame count its container announces.

    Parameters
    ----------
    path : str or Path
    max_frames : int or None
        Stop after this many frames. The file is still checked to the end: its last
        announced frame must decode.

    Returns
    -------
    numpy.ndarray
        ``(frames, height, width, 3)`` ``uint8`` RGB.

    Raises
    ------
    VideoReadError
        The file is missing or nothing can be decoded.
    DamagedVideoError
        Fewer frames decode than the container announces; the error holds the frames read.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"missing: {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoReadError(f"undecodable: OpenCV cannot open {path}")
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames = []
        ended = False
        while max_frames is None or len(frames) < max_frames:
            ok, frame = capture.read()
            if not ok:
                ended = True
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        # a container that announces no count (announced <= 0) cannot be checked
        short = announced > 0 and (
            len(frames) < announced if ended
            else len(frames) < announced and not _last_frame_decodes(capture, announced)
        )
    finally:
        capture.release()
    if not frames:
        raise VideoReadError(f"undecodable: no frames could be decoded from {path}")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoReadError(f"undecodable: frame sizes change within {path}: {sorted(shapes)}")
    if short:
        decoded = len(frames) if ended else _count_frames(path)
        raise DamagedVideoError(path, decoded, announced, np.stack(frames))
    return np.stack(frames)


def read_frame_folder(folder, max_frames=None):
    """Read pre-extracted JPEG frames ``frame000001.jpg, frame000002.jpg, ...``.

    Returns ``(frames, height, width, 3)`` ``uint8`` RGB in frame-number order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoReadError(f"missing: frame folder {folder} does not exist")
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
        key=lambda p: (len(p.stem), p.stem),
    )
    if max_frames is not None:
        files = files[:max_frames]
    if not files:
        raise VideoReadError(f"undecodable: no frame images in {folder}")
    frames = []
    for path in files:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise VideoReadError(f"undecodable: cannot read image {path}")
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoReadError(f"undecodable: frame sizes differ within {folder}")
    return np.stack(frames)


def load_clip(source, sampler, resize=None, from_folder=False, allow_short_reads=False):
    """Decode, sample and resize one clip.

    Parameters
    ----------
    source : Path
        A video file, or a JPEG frame folder when ``from_folder``.
    sampler : FrameSampler
    resize : Resize or None
    allow_short_reads : bool
        Use the frames of a damaged video (:class:`DamagedVideoError`) instead of raising.

    Returns
    -------
    frames : numpy.ndarray
        ``(steps, height, width, 3)`` ``uint8`` RGB.
    n_available : int
        Frames read from the source (for ``"first"``, at most ``n_frames``).
    damage : str
        ``""``, or the message of the damage that ``allow_short_reads`` let through.
    """
    read = read_frame_folder if from_folder else decode_video
    damage = ""
    try:
        decoded = read(source, max_frames=sampler.frames_needed)
    except DamagedVideoError as e:
        if not allow_short_reads:
            raise
        decoded, damage = e.frames, str(e)
    indices = sampler(len(decoded))
    frames = decoded[indices]
    if resize is not None:
        frames = resize(frames)
    return np.ascontiguousarray(frames), len(decoded), damage
