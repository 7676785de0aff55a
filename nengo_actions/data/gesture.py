"""DVS128 Gesture (IBM): the download layout, sliced into gestures and cached.

Layout (``root`` is the folder holding ``DvsGesture/``, or ``DvsGesture/`` itself)::

    DvsGesture/user01_fluorescent.aedat          AEDAT 3.1, one trial
    DvsGesture/user01_fluorescent_labels.csv     class,startTime_usec,endTime_usec
    DvsGesture/trials_to_train.txt               user01 .. user23 trial file names
    DvsGesture/trials_to_test.txt                user24 .. user29
    gesture_mapping.csv (optional)               action,label: class names

Each label row is one sample: the events with ``start <= t < end`` (as SpikingJelly
slices them), label ``class - 1``. Rows are not in time order in the real files and a
class can occur twice in a trial; every row is kept, and sample ids are
``<trial>_<row>`` with ``row`` the 0-based row in the file. On the real data this gives
1,176 training and 288 test samples over 11 classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .aedat import read_aedat
from .cache import file_fingerprint
from .dataset import EventDataset, SliceCache
from .events import DVS128_SENSOR, DatasetError, is_time_sorted

CLASSES = (
    "hand_clapping",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other_gestures",
)
LABELS_HEADER = ("class", "startTime_usec", "endTime_usec")
SPLITS = ("train", "test")


def find_gesture_folder(root):
    """The ``DvsGesture`` folder under ``root`` (or ``root`` itself)."""
    root = Path(root)
    for folder in (root / "DvsGesture", root):
        if (folder / "trials_to_train.txt").is_file() or (folder / "trials_to_test.txt").is_file():
            return folder
    raise DatasetError(
        f"{root}: no DVS128 Gesture folder: expected {root / 'DvsGesture' / 'trials_to_train.txt'} "
        "(the extracted DvsGesture.tar.gz)"
    )


def read_trial_list(path):
    """Trial names (file stems) listed in ``trials_to_train.txt`` / ``trials_to_test.txt``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: trial list is missing")
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line:
            names.append(line[:-len(".aedat")] if line.endswith(".aedat") else line)
    if not names:
        raise DatasetError(f"{path}: trial list is empty")
    return names


def read_labels_csv(path, n_classes=len(CLASSES)):
    """Rows of a ``<trial>_labels.csv``: int64 array ``(rows, 3)`` of class (1-based),
    start and end (µs), in file order.

    Raises
    ------
    DatasetError
        Naming the file and line for a wrong header, a malformed row, a class outside
        1..n_classes or ``end <= start``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: label file is missing")
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    if not lines or tuple(cell.strip() for cell in lines[0].split(",")) != LABELS_HEADER:
        raise DatasetError(
            f"{path}: line 1 must be the header '{','.join(LABELS_HEADER)}'; got "
            f"{lines[0] if lines else 'an empty file'!r}"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        cells = line.split(",")
        try:
            if len(cells) != 3:
                raise ValueError
            label, start, end = (int(cell) for cell in cells)
        except ValueError:
            raise DatasetError(f"{path}: line {number}: expected three integers, got {line!r}") from None
        if not 1 <= label <= n_classes:
            raise DatasetError(f"{path}: line {number}: class {label} outside 1..{n_classes}")
        if end <= start:
            raise DatasetError(f"{path}: line {number}: end {end} is not after start {start}")
        if not -2**63 <= start < end < 2**63:
            raise DatasetError(f"{path}: line {number}: times {start}..{end} do not fit 64-bit microseconds")
        rows.append((label, start, end))
    if not rows:
        raise DatasetError(f"{path}: no label rows")
    return np.array(rows, dtype=np.int64)


def read_class_names(folder, default=CLASSES):
    """Class names from ``gesture_mapping.csv`` (``action,label``) beside or inside the
    ``DvsGesture`` folder; ``default`` when there is none."""
    folder = Path(folder)
    for path in (folder / "gesture_mapping.csv", folder.parent / "gesture_mapping.csv"):
        if not path.is_file():
            continue
        names = {}
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()[1:], start=2):
            if not line.strip():
                continue
            try:
                name, label = line.rsplit(",", 1)
                names[int(label)] = name.strip()
            except ValueError:
                raise DatasetError(f"{path}: line {number}: expected 'action,label', got {line!r}") from None
        if sorted(names) != list(range(1, len(names) + 1)):
            raise DatasetError(f"{path}: labels must be 1..{len(names)}; got {sorted(names)}")
        return tuple(names[k] for k in range(1, len(names) + 1))
    return tuple(default)


def slice_by_labels(events, labels, labels_path="labels"):
    """Cut a trial's events into one sample per label row (``start <= t < end``).

    Returns a list of event arrays, in row order.

    Raises
    ------
    DatasetError
        When a row's span holds no events because it lies past the end (or before the
        start) of the recording; the message names the label file and line.
    """
    t = events["t"]
    if t.shape[0] == 0:
        raise DatasetError(f"{labels_path}: the recording has no events to slice")
    first, last = int(t.min()), int(t.max())
    sorted_t = is_time_sorted(events)
    pieces = []
    for row, (label, start, end) in enumerate(labels.tolist()):
        if sorted_t:
            a, b = np.searchsorted(t, [start, end], side="left")
            piece = events[a:b]
        else:
            piece = events[(t >= start) & (t < end)]
        if piece.shape[0] == 0:
            where = "past the end of" if start > last else "before the start of" if end <= first else "inside"
            raise DatasetError(
                f"{labels_path}: line {row + 2}: class {label} span {start}..{end} µs lies "
                f"{where} the recording (events from {first} to {last} µs) and holds no events"
            )
        pieces.append(piece)
    return pieces


def user_of(trial):
    """``"user07_led"`` -> 7 (the split unit: a user's trials share a person)."""
    head = trial.split("_", 1)[0]
    digits = head[4:] if head.startswith("user") else ""
    return int(digits) if digits.isascii() and digits.isdigit() else trial


def dvs128_gesture(
    root,
    split="train",
    *,
    cache_dir=None,
    transform=None,
    sensor_size=DVS128_SENSOR,
    classes=None,
    allow_truncated=False,
    keep_invalid=False,
    progress=True,
    name="dvs128_gesture",
):
    """Slice (once) and return one split of a DVS128 Gesture layout.

    Parameters
    ----------
    root : str or Path
        The folder holding ``DvsGesture/`` (or that folder).
    split : str
        ``"train"`` or ``"test"``.
    cache_dir : str or Path or None
        Sample cache; default ``<root>/cache/<name>``.
    transform : callable or None
        Applied to each sample's events by ``dataset[i]``.
    sensor_size : tuple
        ``(width, height, 2)``.
    classes : tuple or None
        Class names; default from ``gesture_mapping.csv``, else the 11 DVS128 Gesture names.
    allow_truncated, keep_invalid : bool
        Passed to :func:`~nengo_actions.data.aedat.read_aedat`.
    progress : bool
        Show a progress bar while slicing.

    Returns
    -------
    EventDataset
        Samples in trial-list order, then label-file row order; ``group`` is the user.
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    folder = find_gesture_folder(root)
    trials = read_trial_list(folder / f"trials_to_{split}.txt")
    classes = tuple(classes) if classes else read_class_names(folder)
    cache = SliceCache(cache_dir or Path(root) / "cache" / name)
    iterator = trials
    if progress:
        from tqdm import tqdm

        iterator = tqdm(trials, desc=f"{name} {split}", unit="trial")
    samples = []
    for trial in iterator:
        aedat_path = folder / f"{trial}.aedat"
        labels_path = folder / f"{trial}_labels.csv"
        if not aedat_path.is_file():
            raise DatasetError(f"{aedat_path}: recording listed in trials_to_{split}.txt is missing")
        if not labels_path.is_file():
            raise DatasetError(f"{labels_path}: label file of trial {trial} is missing")
        key = {
            "recording": file_fingerprint(aedat_path),
            "labels": file_fingerprint(labels_path),
            "keep_invalid": bool(keep_invalid),
            "allow_truncated": bool(allow_truncated),
            "n_classes": len(classes),
        }
        entries = cache.load(trial, key)
        if entries is None:
            labels = read_labels_csv(labels_path, len(classes))
            events = read_aedat(aedat_path, allow_truncated=allow_truncated, keep_invalid=keep_invalid)
            pieces = slice_by_labels(events, labels, labels_path)
            entries = cache.store(
                trial,
                key,
                [
                    {
                        "id": f"{trial}_{row:02d}",
                        "events": piece,
                        "label": int(label) - 1,
                        "recording": trial,
                        "group": user_of(trial),
                        "start_us": int(start),
                        "end_us": int(end),
                    }
                    for row, (piece, (label, start, end)) in enumerate(zip(pieces, labels.tolist()))
                ],
            )
        samples.extend(entries)
    return EventDataset(
        name=f"{name}/{split}", classes=classes, sensor_size=tuple(sensor_size),
        samples=samples, cache=cache, transform=transform,
    )
