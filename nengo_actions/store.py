"""The per-clip feature store: one uncompressed ``.npz`` file per split.

``<store_dir>/<split>.npz`` holds

=============  =========================  ==============================================
key            shape, dtype               meaning
=============  =========================  ==============================================
``features``   (clips, steps, dim) f2/f4  one feature vector per sampled frame
``labels``     (clips,) int64             0-based class index (``classInd`` index - 1)
``clip_ids``   (clips,) unicode           ``<Class>/<video stem>``
``groups``     (clips,) int64             UCF101 group (the ``gGG`` of the file name)
``metadata``   () unicode                 JSON: backbone, weights hash, sampling,
                                          class names, resolved config, warnings
=============  =========================  ==============================================

Everything loads with ``allow_pickle=False``. The archive is stored uncompressed, so
``load_split(..., mmap=True)`` maps ``features`` straight from the file without reading
it into memory (NumPy ignores ``mmap_mode`` for ``.npz``, so the member's offset inside
the zip is located here). This module needs only NumPy: both the extractor and the
NengoDL side use it.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from nengo_actions.errors import StoreError, cause
from nengo_actions.io import ARCHIVE_ERRORS, save_npz_atomic

ARRAY_KEYS = ("features", "labels", "clip_ids", "groups")


@dataclasses.dataclass
class FeatureSplit:
    """One split of the feature store."""

    features: np.ndarray  # (clips, steps, dim)
    labels: np.ndarray  # (clips,)
    clip_ids: np.ndarray  # (clips,)
    groups: np.ndarray  # (clips,)
    metadata: dict

    def __len__(self):
        return len(self.labels)

    @property
    def class_names(self):
        return list(self.metadata.get("class_names", []))

    def subset(self, index):
        """The clips at ``index`` (a boolean mask or integer indices)."""
        return FeatureSplit(
            np.asarray(self.features[index]),
            self.labels[index],
            self.clip_ids[index],
            self.groups[index],
            self.metadata,
        )


def split_path(store_dir, split):
    return Path(store_dir) / f"{split}.npz"


def save_split(path, features, labels, clip_ids, groups, metadata):
    """Write one split atomically (temporary file, then rename)."""
    path = Path(path)
    features = np.asarray(features)
    n = len(features)
    arrays = {
        "features": features,
        "labels": np.asarray(labels, dtype=np.int64).reshape(n),
        "clip_ids": np.asarray(clip_ids, dtype=str).reshape(n),
        "groups": np.asarray(groups, dtype=np.int64).reshape(n),
        "metadata": np.asarray(json.dumps(metadata, sort_keys=True)),
    }
    if features.ndim != 3:
        raise StoreError(f"{path}: features must be (clips, steps, dim), got {features.shape}")
    return save_npz_atomic(path, **arrays)


def _mmap_member(path, name):
    """Memory-map an uncompressed ``.npy`` member of a zip archive."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with zf.open(info) as member:
            version = np.lib.format.read_magic(member)
            shape, fortran, dtype = np.lib.format._read_array_header(member, version)
            header_len = member.tell()
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), dtype="<u2")
    offset = info.header_offset + 30 + int(name_len) + int(extra_len) + header_len
    order = "F" if fortran else "C"
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order=order)


def load_split(path, mmap=False):
    """Read one split written by :func:`save_split`.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file (or a store folder plus ``split_path``).
    mmap : bool
        Map ``features`` from the file instead of reading it into memory.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"feature store file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (*ARRAY_KEYS, "metadata") if k not in data.files]
            if missing:
                raise StoreError(f"{path}: not a feature store file (missing {missing})")
            arrays = {k: data[k] for k in ARRAY_KEYS if not (mmap and k == "features")}
            metadata = json.loads(str(data["metadata"]))
            if not isinstance(metadata, dict):
                raise StoreError(f"{path}: 'metadata' is not a JSON object")
        if mmap:
            arrays["features"] = _mmap_member(path, "features")
            if arrays["features"] is None:  # compressed by another tool: read it
                with np.load(path, allow_pickle=False) as data:
                    arrays["features"] = data["features"]
    except StoreError:
        raise
    except ARCHIVE_ERRORS as e:
        raise StoreError(f"{path}: cannot read feature store file: {cause(e)}") from None
    n = len(arrays["labels"])
    for key in ARRAY_KEYS:
        if len(arrays[key]) != n:
            raise StoreError(f"{path}: '{key}' has {len(arrays[key])} rows, labels {n}")
    return FeatureSplit(metadata=metadata, **arrays)
