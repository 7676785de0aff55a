"""Emulated trials written as a DVS128 Gesture folder with a settings marker: what the synthetic sets share."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..io import TEMP_MARK, read_json, write_json_atomic, writing
from .aedat_write import write_aedat31
from .events import empty_events

LIGHTING = ("natural", "led", "fluorescent")


class TrialClock:
    """What the synthetic trials share: frame timestamps and the plain background frame
    (a subclass sets ``spec``, ``dt`` in µs per frame and ``background``)."""

    def time(self, frame):
        """Timestamp (µs) of frame ``frame``; recordings do not start at t = 0."""
        return 1e6 + frame * self.dt

    def still(self):
        """The background alone, ``(size, size)``."""
        return np.full((self.spec.sensor_size,) * 2, self.background)


def _trial_name(user):
    return f"user{user:02d}_{LIGHTING[(user - 1) % len(LIGHTING)]}"


def _emulate_side_by_side(trials, emulator, spec, progress=None, chunk_frames=256):
    """Emulate all trials at once as one wide sensor (pixels are independent, and one
    array step per frame costs far less than one per trial and frame); yield each
    user's events, ``(user, events)`` in the order of ``trials``.

    ``trials`` maps user number to a trial with ``n_frames``, ``frames()`` (frames of
    shape ``(spec.sensor_size, spec.sensor_size)``) and ``time(frame)`` (µs, the same
    clock for every trial). Trials that end early hold their last (still) frame. The
    events are handed out to the users every ``chunk_frames`` frames, so the whole
    recording is never held twice.
    """
    size = spec.sensor_size
    users = list(trials)
    n_frames = max(trial.n_frames for trial in trials.values())
    streams = [trials[user].frames() for user in users]
    last = [None] * len(users)

    def wide_frame():
        for i, stream in enumerate(streams):
            frame = next(stream, None)
            if frame is not None:
                last[i] = frame
        return np.concatenate(last, axis=1)

    seed = (spec.seed * 1000 + emulator.seed) % (1 << 32)
    pixels = replace(emulator, seed=seed).start(wide_frame(), trials[users[0]].time(0))
    if progress is not None:
        progress.reset(total=n_frames)
        progress.update(1)
    per_user = [[] for _ in users]
    parts = []

    def hand_out():
        events = np.concatenate(parts)
        parts.clear()
        block = events["x"] // size
        for i, mine in enumerate(per_user):
            mine.append(events[block == i])

    for frame in range(1, n_frames):
        parts.append(pixels.step(wide_frame(), trials[users[0]].time(frame)))
        if len(parts) == chunk_frames:
            hand_out()
        if progress is not None:
            progress.update(1)
    if parts:
        hand_out()
    if progress is not None:
        progress.close()
    for i, user in enumerate(users):
        mine = np.concatenate(per_user[i]) if per_user[i] else empty_events()
        per_user[i] = None
        mine["x"] -= i * size
        yield user, mine


def write_gesture_layout(
    root, trials, spec, emulator, classes, marker, metadata, *, desc="generating", progress=True, start_time=None
):
    """Emulate ``trials`` and write them under ``root`` in the DVS128 Gesture layout.

    Parameters
    ----------
    root : Path
        Gets ``DvsGesture/`` (built under a temporary name and renamed into place),
        ``gesture_mapping.csv`` and, last, the JSON marker.
    trials : dict
        User number -> trial (see :func:`_emulate_side_by_side`); a trial also has
        ``labels`` (rows ``(class 1-based, start µs, end µs)``) and ``rng`` (which
        shuffles the rows of its label file). The last ``spec.test_users`` users form
        the test split.
    spec
        Has ``sensor_size``, ``seed`` and ``test_users``.
    emulator : EventEmulator
        The pixel model; its seed is combined with ``spec.seed``.
    classes : sequence of str
        Class names, label 1 first.
    marker : str
        File name of the JSON marker; any other ``synthetic_*.json`` marker in ``root``
        is removed first (the folder is about to change under it).
    metadata : dict
        Contents of the marker.
    desc : str
        Label of the progress bar (frames).
    start_time : str or None
        The ``#Start-Time:`` of the AEDAT headers (``None``: now).

    Returns
    -------
    Path
        The ``DvsGesture`` folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("synthetic_*.json"):
        stale.unlink()
    build = root / f".DvsGesture{TEMP_MARK}{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    users = list(trials)
    iterator = None
    if progress:
        from tqdm import tqdm

        iterator = tqdm(desc=desc, unit="frame")
    try:
        for user, events in _emulate_side_by_side(trials, emulator, spec, iterator):
            name = _trial_name(user)
            write_aedat31(
                build / f"{name}.aedat", events, source=f"DVS{spec.sensor_size} (emulated)", start_time=start_time
            )
            labels = trials[user].labels
            order = trials[user].rng.permutation(len(labels))  # rows out of order, as in the real files
            text = "class,startTime_usec,endTime_usec\n" + "".join(
                "{},{},{}\n".format(*labels[i]) for i in order
            )
            (build / f"{name}_labels.csv").write_text(text)
        n_train = len(users) - spec.test_users
        for split, chosen in (("train", users[:n_train]), ("test", users[n_train:])):
            (build / f"trials_to_{split}.txt").write_text(
                "".join(f"{_trial_name(user)}.aedat\n" for user in chosen)
            )
        target = root / "DvsGesture"
        if target.exists():
            shutil.rmtree(target)
        os.replace(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    (root / "gesture_mapping.csv").write_text(
        "action,label\n" + "".join(f"{name},{i + 1}\n" for i, name in enumerate(classes))
    )
    write_json_atomic(root / marker, metadata)
    return target


def _as_json(value):
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def is_current(root, marker, version, spec, emulator):
    """Whether ``root`` holds a complete set whose ``marker`` records ``version``,
    ``spec`` and ``emulator`` (dataclasses)."""
    meta = read_json(Path(root) / marker)
    return bool(
        meta
        and meta.get("generator_version") == version
        and meta.get("spec") == _as_json(asdict(spec))
        and meta.get("emulator") == _as_json(asdict(emulator))
        and (Path(root) / "DvsGesture" / "trials_to_train.txt").is_file()
    )


def ensure_generated(generate, root, marker, version, spec, emulator, progress):
    """``generate(root, spec, emulator, progress)`` unless ``root`` already holds a set
    made with the same settings (:func:`is_current`); a stale marker is removed first,
    so a set that is cut short is never taken for a complete one.

    Returns ``(DvsGesture folder, generated)``.
    """
    if is_current(root, marker, version, spec, emulator):
        return Path(root) / "DvsGesture", False
    with writing(root):
        (Path(root) / marker).unlink(missing_ok=True)
        return generate(root, spec, emulator, progress), True
