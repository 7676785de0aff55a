"""Clip features for the train command: find the store, extract it when missing, check it.

The store holds the official train and test sides of a split
(:mod:`nengo_actions.store`); a validation split is carved out of training by group
(:func:`nengo_actions.splits.split_by_group`), so model selection never sees the test set.
When the store is missing, the extraction runs as its own process (the command a user
would type), so PyTorch and TensorFlow never share a process.

NumPy and the standard library only: this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np

# the store folder names (standard library only: neither torch nor OpenCV)
from nengo_actions.config.paths import store_dir
from nengo_actions.errors import DataError, ExtractionError
from nengo_actions.config.schema import Config
from nengo_actions.splits import carve_validation, check_group_leak
from nengo_actions.store import StoreError, load_split, split_path
from nengo_actions.clips.streaming import standardized as standardize_clips
from nengo_actions.clips.streaming import store_clips, store_input_bytes, stream_wanted

#: The extraction command (run as its own process: PyTorch never shares one with TensorFlow).
EXTRACT_COMMAND = (sys.executable, "-m", "feature_extraction")


def store_complete(folder) -> bool:
    return split_path(folder, "train").exists() and split_path(folder, "test").exists()


def extraction_command(cfg: Config, overrides=()):
    """The argv that extracts the features of ``cfg`` (as a user would type it)."""
    argv = [*EXTRACT_COMMAND, "-c", str(cfg.source)]
    for text in overrides:
        argv += ["--set", text]
    return argv


def ensure_features(cfg: Config, overrides=(), log=print):
    """Run the extraction process unless the store of ``cfg`` is complete.

    Its output is streamed as it comes. Raises :class:`ExtractionError` when the process
    fails or the store is still incomplete afterwards.
    """
    folder = store_dir(cfg)
    if store_complete(folder):
        return folder
    argv = extraction_command(cfg, overrides)
    missing = [name for name in ("train", "test") if not split_path(folder, name).exists()]
    log(f"feature store {folder} has no {' and no '.join(f'{n}.npz' for n in missing)}; "
        f"extracting: {' '.join(argv[1:])}")
    errors = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        for line in proc.stdout:
            log(line.rstrip("\n"))
            if line.startswith("error: "):
                errors.append(line[len("error: "):].strip())
        rc = proc.wait()
    if rc != 0:
        reason = errors[-1] if errors else f"see its output above ({' '.join(argv)})"
        raise ExtractionError(
            f"feature store {folder} has no {' and no '.join(f'{n}.npz' for n in missing)}, and the "
            f"extraction that makes it failed (exit status {rc}): {reason}"
        )
    if not store_complete(folder):
        raise ExtractionError(f"feature extraction finished but {folder} has no train.npz and test.npz")
    return folder


@dataclasses.dataclass
class ClipData:
    """Train / validation / test clips, ``x`` as ``(clips, frames, features)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    groups_train: np.ndarray
    groups_val: np.ndarray
    groups_test: np.ndarray
    class_names: list
    store_dir: Path
    metadata: dict

    @property
    def n_classes(self):
        return len(self.class_names)

    @property
    def n_frames(self):
        return self.x_train.shape[1]

    @property
    def n_features(self):
        return self.x_train.shape[2]

    def standardized(self):
        """A copy with every feature scaled to zero mean and unit variance over the
        training clips' frames (validation and test use the training statistics)."""
        return standardize_clips(self)

    def summary(self):
        return (
            f"{len(self.y_train)} training, {len(self.y_val)} validation and {len(self.y_test)} "
            f"test clips; {self.n_frames} frames x {self.n_features} features; {self.n_classes} classes"
        )


def first_non_finite(features, chunk=256):
    """The row of the first clip holding a NaN or an infinity, or ``None``; read ``chunk``
    clips at a time, so a memory-mapped store is checked in bounded memory."""
    for start in range(0, len(features), chunk):
        block = np.asarray(features[start : start + chunk])
        bad = ~np.isfinite(block.reshape(len(block), -1)).all(axis=1)
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def load_clip_data(cfg: Config, mmap=None, folder=None) -> ClipData:
    """Load the store of ``cfg``, carve validation from training by group, check it all.

    ``mmap``: keep the features in the store files and read them a minibatch at a time
    (:func:`nengo_actions.clips.streaming.store_clips`); ``None`` decides by ``data.stream``.

    Raises :class:`DataError` (naming the file) for an empty split, clips of different
    shapes on the two sides, a clip with values that are not finite (naming it), labels
    outside the class list, or a group on both sides.
    """
    folder = Path(folder) if folder is not None else store_dir(cfg)
    splits = {}
    if mmap is None:
        mmap = stream_wanted(cfg.data, sum(store_input_bytes(split_path(folder, name)) for name in ("train", "test")))
    for name in ("train", "test"):
        path = split_path(folder, name)
        try:
            splits[name] = load_split(path, mmap=mmap)
        except StoreError as e:
            raise DataError(str(e)) from None
        if len(splits[name]) == 0:
            raise DataError(f"{path}: the {name} split holds no clips")
        if splits[name].features.ndim != 3:
            raise DataError(f"{path}: features must be (clips, frames, features)")
        bad = first_non_finite(splits[name].features)
        if bad is not None:
            raise DataError(f"{path}: clip {splits[name].clip_ids[bad]} (row {bad}) holds values that are not "
                            "finite (NaN or infinity); extract it again")
    train, test = splits["train"], splits["test"]
    if train.features.shape[1:] != test.features.shape[1:]:
        raise DataError(
            f"{split_path(folder, 'test')}: clips are {test.features.shape[1:]} (frames, "
            f"features) but training clips are {train.features.shape[1:]}"
        )
    class_names = train.class_names or test.class_names
    if not class_names:
        top = int(max(train.labels.max(), test.labels.max()))
        class_names = [f"class {i}" for i in range(top + 1)]
    for name, split in splits.items():
        bad = (split.labels < 0) | (split.labels >= len(class_names))
        if bad.any():
            raise DataError(
                f"{split_path(folder, name)}: labels must be in 0..{len(class_names) - 1} "
                f"({len(class_names)} classes); found {sorted(set(split.labels[bad].tolist()))[:5]}"
            )
    check_group_leak(train.groups, test.groups, where=str(folder))
    train_mask, val_mask = carve_validation(train.groups, cfg.data.val_fraction, cfg.seed, split_path(folder, "train"))
    x, x_test = train.features, test.features
    if mmap:  # rows read when the engine asks for them
        lazy, lazy_test = store_clips(split_path(folder, "train")), store_clips(split_path(folder, "test"))
        if lazy is not None and lazy_test is not None:
            x, x_test = lazy, lazy_test
    return ClipData(
        x_train=x[train_mask] if isinstance(x, np.ndarray) else x.subset(train_mask),
        y_train=train.labels[train_mask],
        x_val=x[val_mask] if isinstance(x, np.ndarray) else x.subset(val_mask),
        y_val=train.labels[val_mask],
        x_test=x_test,
        y_test=test.labels,
        groups_train=train.groups[train_mask],
        groups_val=train.groups[val_mask],
        groups_test=test.groups,
        class_names=list(class_names),
        store_dir=folder,
        metadata=train.metadata,
    )
