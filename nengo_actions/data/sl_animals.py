"""SL-Animals-DVS: 59 AEDAT 2.0 recordings of one person signing 19 animals each.

Layout (``root``; the folder names of the download and of the STBP seed are both found)::

    recordings/  or allusers_aedat/                user00_indoor.aedat ... (AEDAT 2.0)
    tags/        or tags_updated_19_08_2020/       user00_indoor.csv: class,startTime_ev,endTime_ev
    SL-Animals-DVS_gestures_definitions.csv        class,class Def: 1,cat ... 19,zebra

Tag rows give each sign's class (1..19) and its span as **event indices** into the
recording: a sample is ``events[start:end]`` (end exclusive, as the seed's
``tonic.slicers.slice_events_at_indices``), label ``class - 1``. 59 x 19 = 1,121 samples.

Lighting groups come from the name suffix: ``_imse`` S1, ``_dc`` S2, ``_indoor`` S3 (the
hardest), ``_sunlight`` S4; the "reduced" set leaves out S3 (42 recordings). The
protocol is 4-fold cross-validation over recordings (a person is never in both train
and test): :func:`kfold_recordings` gives the same folds as scikit-learn's
``KFold(n_splits, shuffle=True, random_state=seed)`` over the sorted recording names,
which the STBP seed used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .aedat import read_aedat
from .cache import file_fingerprint
from .dataset import EventDataset, SliceCache
from .events import DVS128_SENSOR, DatasetError

CLASSES = (
    "cat", "dog", "camel", "cow", "sheep", "goat", "wolf", "squirrel", "mouse", "dolphin",
    "shark", "lion", "monkey", "snake", "spider", "butterfly", "bird", "duck", "zebra",
)
GROUPS = {"imse": "S1", "dc": "S2", "indoor": "S3", "sunlight": "S4"}
TAGS_HEADER = ("class", "startTime_ev", "endTime_ev")
DEFINITIONS = "SL-Animals-DVS_gestures_definitions.csv"
RECORDING_DIRS = ("recordings", "allusers_aedat")
TAG_DIRS = ("tags", "tags_updated_19_08_2020")


def recording_group(name):
    """``"user25_imse"`` -> ``"S1"`` (lighting set from the name's suffix)."""
    suffix = Path(name).stem.rsplit("_", 1)[-1]
    if suffix not in GROUPS:
        raise DatasetError(
            f"{name}: cannot tell the lighting set from the name; expected a suffix "
            f"{', '.join('_' + s for s in GROUPS)}"
        )
    return GROUPS[suffix]


def find_layout(root, recordings_dir=None, tags_dir=None):
    """``(recordings folder, tags folder)`` under ``root``."""
    root = Path(root)

    def pick(given, candidates, what, pattern):
        if given is not None:
            path = Path(given) if Path(given).is_absolute() else root / given
            if not path.is_dir():
                raise DatasetError(f"{path}: SL-Animals {what} folder is missing")
            return path
        for name in candidates:
            if (root / name).is_dir():
                return root / name
        if any(root.glob(pattern)):
            return root
        raise DatasetError(
            f"{root}: no SL-Animals {what} folder ({' or '.join(candidates)}) with {pattern} files"
        )

    return (
        pick(recordings_dir, RECORDING_DIRS, "recordings", "*.aedat"),
        pick(tags_dir, TAG_DIRS, "tags", "*.csv"),
    )


def read_definitions(path):
    """Class names from ``SL-Animals-DVS_gestures_definitions.csv`` (``class,class Def``
    header, rows ``1,cat`` ...), ordered by class number."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: class definitions file is missing")
    names = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            label, name = line.split(",", 1)
            names[int(label)] = name.strip()
        except ValueError:
            raise DatasetError(f"{path}: line {number}: expected 'class,name', got {line!r}") from None
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DatasetError(f"{path}: classes must be numbered 1..{len(names)}; got {sorted(names)}")
    return tuple(names[k] for k in range(1, len(names) + 1))


def read_tags_csv(path, n_classes):
    """Rows of a tag file: int64 ``(rows, 3)`` of class (1-based), start and end event
    index, in file order.

    Raises
    ------
    DatasetError
        Naming the file and line for a wrong header, a malformed row, a class outside
        1..n_classes, or ``end <= start``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: tag file is missing")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header = tuple(cell.strip() for cell in lines[0].split(",")) if lines else ()
    if header != TAGS_HEADER:
        raise DatasetError(
            f"{path}: line 1 must be the header '{','.join(TAGS_HEADER)}'; got "
            f"{lines[0] if lines else 'an empty file'!r}"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            label, start, end = (int(float(cell)) for cell in line.split(","))
        except (ValueError, OverflowError):  # not a number; NaN or infinity
            raise DatasetError(f"{path}: line {number}: expected three integers, got {line!r}") from None
        if not 1 <= label <= n_classes:
            raise DatasetError(f"{path}: line {number}: class {label} outside 1..{n_classes}")
        if not 0 <= start < end:
            raise DatasetError(f"{path}: line {number}: event span {start}..{end} is empty or negative")
        if end >= 2**63:
            raise DatasetError(f"{path}: line {number}: event index {end} does not fit 64 bits")
        rows.append((label, start, end))
    if not rows:
        raise DatasetError(f"{path}: no tag rows")
    return np.array(rows, dtype=np.int64)


def kfold_recordings(names, n_folds=4, seed=0):
    """Folds over recordings: a list of ``(train_names, test_names)``.

    Shuffles the indices of ``names`` with ``numpy.random.RandomState(seed)`` and cuts
    them into ``n_folds`` consecutive parts (the first ``len % n_folds`` one longer);
    fold ``k`` tests on part ``k``. This is scikit-learn's ``KFold(n_folds,
    shuffle=True, random_state=seed)``; both lists keep the order of ``names``.
    """
    names = list(names)
    if not 2 <= n_folds <= len(names):
        raise DatasetError(f"cannot make {n_folds} folds from {len(names)} recordings")
    order = np.arange(len(names))
    np.random.RandomState(seed).shuffle(order)
    sizes = np.full(n_folds, len(names) // n_folds)
    sizes[: len(names) % n_folds] += 1
    folds, start = [], 0
    for size in sizes:
        test = np.zeros(len(names), dtype=bool)
        test[order[start:start + size]] = True
        folds.append(([n for n, t in zip(names, test) if not t], [n for n, t in zip(names, test) if t]))
        start += size
    return folds


def sl_animals(
    root,
    *,
    recordings=None,
    reduced=False,
    cache_dir=None,
    transform=None,
    recordings_dir=None,
    tags_dir=None,
    definitions=None,
    allow_truncated=False,
    progress=True,
    name="sl_animals",
):
    """Slice (once) and return SL-Animals-DVS samples.

    Parameters
    ----------
    root : str or Path
        Dataset folder (see the module docstring).
    recordings : list of str or None
        Recording names to use; default every ``*.aedat`` in the recordings folder.
    reduced : bool
        Leave out the S3 (``_indoor``) recordings.
    cache_dir : str or Path or None
        Sample cache; default ``<root>/cache/<name>``.
    transform : callable or None
    recordings_dir, tags_dir, definitions : str or Path or None
        Override the folder and file names found under ``root``.
    allow_truncated : bool
        Passed to :func:`~nengo_actions.data.aedat.read_aedat`.
    progress : bool

    Returns
    -------
    EventDataset
        Samples in recording order, then tag-row order; ``group`` is the lighting set
        (S1-S4) and ``recording`` the recording name (the cross-validation unit).
    """
    root = Path(root)
    rec_dir, tag_dir = find_layout(root, recordings_dir, tags_dir)
    definitions = Path(definitions) if definitions else root / DEFINITIONS
    classes = read_definitions(definitions) if definitions.is_file() else CLASSES
    if recordings is None:
        recordings = sorted(p.stem for p in rec_dir.glob("*.aedat"))
        if not recordings:
            raise DatasetError(f"{rec_dir}: no .aedat recordings")
    recordings = [r for r in recordings if not (reduced and recording_group(r) == "S3")]
    cache = SliceCache(cache_dir or root / "cache" / name)
    iterator = recordings
    if progress:
        from tqdm import tqdm

        iterator = tqdm(recordings, desc=name, unit="recording")
    samples = []
    for recording in iterator:
        group = recording_group(recording)
        aedat_path, tags_path = rec_dir / f"{recording}.aedat", tag_dir / f"{recording}.csv"
        if not aedat_path.is_file():
            raise DatasetError(f"{aedat_path}: recording is missing")
        if not tags_path.is_file():
            raise DatasetError(f"{tags_path}: tag file of recording {recording} is missing")
        key = {
            "recording": file_fingerprint(aedat_path),
            "tags": file_fingerprint(tags_path),
            "allow_truncated": bool(allow_truncated),
            "n_classes": len(classes),
        }
        entries = cache.load(recording, key)
        if entries is None:
            tags = read_tags_csv(tags_path, len(classes))
            events = read_aedat(aedat_path, allow_truncated=allow_truncated)
            n = events.shape[0]
            for row, (label, start, end) in enumerate(tags.tolist()):
                if end > n:
                    raise DatasetError(
                        f"{tags_path}: line {row + 2}: class {label} spans events {start}..{end} "
                        f"but {aedat_path.name} holds {n} events"
                    )
            entries = cache.store(
                recording,
                key,
                [
                    {
                        "id": f"{recording}_{row:02d}",
                        "events": events[start:end],
                        "label": int(label) - 1,
                        "recording": recording,
                        "group": group,
                        "start_event": int(start),
                        "end_event": int(end),
                    }
                    for row, (label, start, end) in enumerate(tags.tolist())
                ],
            )
        samples.extend(entries)
    return EventDataset(
        name=name, classes=classes, sensor_size=DVS128_SENSOR, samples=samples,
        cache=cache, transform=transform,
    )


def fold_split(dataset, fold, n_folds=4, seed=0):
    """``(train, test)`` datasets of cross-validation fold ``fold`` (0-based) over the
    dataset's recordings."""
    names = sorted(set(dataset.recordings.tolist()))
    if not 0 <= fold < n_folds:
        raise DatasetError(f"fold must be 0..{n_folds - 1}; got {fold}")
    train_names, test_names = kfold_recordings(names, n_folds, seed)[fold]
    recordings = dataset.recordings
    train = np.flatnonzero(np.isin(recordings, train_names))
    test = np.flatnonzero(np.isin(recordings, test_names))
    return (
        dataset.subset(train, f"{dataset.name}/fold{fold}-train"),
        dataset.subset(test, f"{dataset.name}/fold{fold}-test"),
    )
