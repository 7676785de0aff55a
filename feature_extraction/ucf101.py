"""The UCF101 layout: split files, class index, clip lists, groups, video and frame files.

::

    <root>/UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi
    <root>/ucfTrainTestlist/classInd.txt        "<index> <Class>", index 1-based
    <root>/ucfTrainTestlist/trainlist0N.txt     "<Class>/<file>.avi <index>"
    <root>/ucfTrainTestlist/testlist0N.txt      "<Class>/<file>.avi"

Labels come from ``classInd.txt`` and the lists (never from slicing folder names), and a
split that puts one group on both sides is refused. The real files have CRLF line ends
and one case quirk (folder ``HandstandPushups``, files ``v_HandStandPushups_*``), both
handled here. Pre-extracted JPEG frames live in ``<frames_dir>/<video stem>/frame000001.jpg``
(or ``<frames_dir>/<Class>/<video stem>/...``).

Only the standard library and NumPy are used, so the trainer can read clip lists too.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from nengo_actions.config import ConfigError
from nengo_actions.splits import SplitLeakError, check_group_leak, split_by_group

#: ``v_<Class>_g<GG>_c<CC>``; the class part is compared with the folder case-insensitively.
CLIP_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")
SPLITS = (1, 2, 3)


class DatasetError(ConfigError):
    """A dataset file is missing or malformed; the message names the file (and line)."""


class GroupLeakError(DatasetError, SplitLeakError):
    """A group (``gGG``) is on both sides of a split."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One video of a split list.

    Attributes
    ----------
    clip_id : str
        ``<Class>/<video stem>``, the key used in the feature store.
    relpath : str
        ``<Class>/<file>.avi`` as written in the split list.
    label : int
        0-based class index (``classInd`` index - 1).
    group : int
        The ``gGG`` of the file name: clips of one group are cut from one long video.
    number : int
        The ``cCC`` of the file name.
    """

    clip_id: str
    relpath: str
    label: int
    group: int
    number: int

    @property
    def class_name(self):
        return self.relpath.split("/", 1)[0]

    @property
    def stem(self):
        return Path(self.relpath).stem


@dataclasses.dataclass
class Dataset:
    """The class names and the two sides of one official split."""

    class_names: list
    train: list
    test: list
    split: int = 1

    def side(self, name):
        return {"train": self.train, "test": self.test}[name]


def _lines(path):
    """Non-empty lines of a text file with CR/LF stripped, numbered from 1."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"split file not found: {path}")
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line:
            yield number, line


def read_class_index(path):
    """``classInd.txt`` -> class names in index order (``names[i]`` has label ``i``)."""
    entries = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not (parts[0].isascii() and parts[0].isdigit()):
            raise DatasetError(f"{path}, line {number}: expected '<index> <Class>', got {line!r}")
        index = int(parts[0])
        if index in entries:
            raise DatasetError(f"{path}, line {number}: index {index} appears twice")
        entries[index] = parts[1]
    if not entries:
        raise DatasetError(f"{path}: no classes")
    expected = list(range(1, len(entries) + 1))
    if sorted(entries) != expected:
        raise DatasetError(f"{path}: class indices must run 1..{len(entries)}")
    return [entries[i] for i in expected]


def parse_clip_name(relpath, where=""):
    """``"Class/v_Class_g08_c01.avi"`` -> ``(class folder, stem, group, clip number)``."""
    prefix = f"{where}: " if where else ""
    parts = relpath.replace("\\", "/").split("/")
    if len(parts) != 2:
        raise DatasetError(f"{prefix}expected '<Class>/<file>.avi', got {relpath!r}")
    folder, filename = parts
    stem = Path(filename).stem
    match = CLIP_NAME.match(stem)
    if not match:
        raise DatasetError(f"{prefix}file name {filename!r} is not v_<Class>_gGG_cCC")
    if match["cls"].lower() != folder.lower():
        raise DatasetError(f"{prefix}file {filename!r} does not belong to folder {folder!r}")
    return folder, stem, int(match["group"]), int(match["clip"])


def read_split_list(path, class_names, labelled):
    """Read a ``trainlist0N.txt`` (``labelled``) or ``testlist0N.txt`` into :class:`Clip`s.

    The label is the ``classInd`` index of the clip's folder; a train list's label column
    must agree with it.
    """
    index = {name: i for i, name in enumerate(class_names)}
    clips, seen = [], set()
    for number, line in _lines(path):
        where = f"{path}, line {number}"
        parts = line.split()
        if len(parts) not in (1, 2) or (labelled and len(parts) != 2):
            expected = "'<Class>/<file>.avi <index>'" if labelled else "'<Class>/<file>.avi'"
            raise DatasetError(f"{where}: expected {expected}, got {line!r}")
        relpath = parts[0]
        folder, stem, group, clip_number = parse_clip_name(relpath, where)
        if folder not in index:
            raise DatasetError(f"{where}: class {folder!r} is not in classInd.txt")
        label = index[folder]
        if len(parts) == 2:
            if not (parts[1].isascii() and parts[1].isdigit()) or int(parts[1]) - 1 != label:
                raise DatasetError(
                    f"{where}: label {parts[1]!r} disagrees with classInd.txt "
                    f"({folder} is {label + 1})"
                )
        clip_id = f"{folder}/{stem}"
        if clip_id in seen:
            raise DatasetError(f"{where}: {clip_id} is listed twice")
        seen.add(clip_id)
        clips.append(Clip(clip_id, relpath, label, group, clip_number))
    return clips


def split_files(splits_dir, split):
    """``(classInd, trainlist0N, testlist0N)`` paths of split ``split`` (1, 2 or 3)."""
    if split not in SPLITS:
        raise DatasetError(f"key 'data.split' must be 1, 2 or 3, got {split!r}")
    splits_dir = Path(splits_dir)
    return (
        splits_dir / "classInd.txt",
        splits_dir / f"trainlist0{split}.txt",
        splits_dir / f"testlist0{split}.txt",
    )


def read_split(splits_dir, split=1):
    """Read one official split; raise if a group is on both sides.

    Returns
    -------
    Dataset
    """
    class_file, train_file, test_file = split_files(splits_dir, split)
    for path in (class_file, train_file, test_file):
        if not path.is_file():
            raise DatasetError(f"split file not found: {path}")
    class_names = read_class_index(class_file)
    train = read_split_list(train_file, class_names, labelled=True)
    test = read_split_list(test_file, class_names, labelled=False)
    for path, clips in ((train_file, train), (test_file, test)):
        if not clips:
            raise DatasetError(f"{path}: lists no clips")
    both = sorted({c.clip_id for c in train} & {c.clip_id for c in test})
    if both:
        raise DatasetError(f"{train_file} and {test_file} share clips, e.g. {both[0]}")
    check_leak(train, test, where=f"{train_file.name} / {test_file.name}")
    return Dataset(class_names, train, test, split)


def check_leak(train, test, where=""):
    """Raise :class:`GroupLeakError` if a group is on both sides."""
    try:
        check_group_leak([c.group for c in train], [c.group for c in test], where=where)
    except SplitLeakError as e:
        raise GroupLeakError(str(e)) from None


def validation_split(clips, fraction, seed=0):
    """Carve a validation set from training clips by whole groups.

    Returns ``(train, val)`` lists of :class:`Clip`; no group is on both sides.
    """
    groups = np.array([c.group for c in clips], dtype=np.int64)
    train_mask, val_mask = split_by_group(groups, fraction, seed)
    return (
        [c for c, keep in zip(clips, train_mask) if keep],
        [c for c, keep in zip(clips, val_mask) if keep],
    )


class VideoLocator:
    """Finds a clip's video under ``videos_dir``, tolerating case differences in names.

    The real split files say ``HandstandPushups/v_HandStandPushups_g01_c01.avi``; copies
    of the dataset on case-sensitive file systems do not always agree on either case.
    """

    def __init__(self, videos_dir):
        self.videos_dir = Path(videos_dir)
        self._folders = None
        self._files = {}

    def _folder(self, name):
        if self._folders is None:
            self._folders = {
                p.name.lower(): p for p in self.videos_dir.iterdir() if p.is_dir()
            } if self.videos_dir.is_dir() else {}
        return self._folders.get(name.lower())

    def __call__(self, clip):
        """The video path; if nothing matches, the path the list names (which is missing)."""
        direct = self.videos_dir / clip.relpath
        if direct.is_file():
            return direct
        folder = self._folder(clip.class_name)
        if folder is not None:
            if folder not in self._files:
                self._files[folder] = {p.name.lower(): p for p in folder.iterdir()}
            found = self._files[folder].get(Path(clip.relpath).name.lower())
            if found is not None:
                return found
        return direct


def frame_folder(frames_dir, clip):
    """The JPEG frame folder of ``clip``: ``<frames_dir>/<stem>`` or ``<frames_dir>/<Class>/<stem>``."""
    frames_dir = Path(frames_dir)
    for candidate in (frames_dir / clip.stem, frames_dir / clip.class_name / clip.stem):
        if candidate.is_dir():
            return candidate
    return frames_dir / clip.stem


__all__ = [
    "Clip",
    "Dataset",
    "DatasetError",
    "GroupLeakError",
    "VideoLocator",
    "check_leak",
    "frame_folder",
    "parse_clip_name",
    "read_class_index",
    "read_split",
    "read_split_list",
    "split_files",
    "validation_split",
]
