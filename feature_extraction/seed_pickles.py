"""The seed project's four feature pickles: export always, import only when allowed.

The seed stored ``train_data`` / ``test_data`` as ``(clips, 28, 512)`` float64 arrays and
``train_labels`` / ``test_labels`` as ``(clips, 28, 1)`` integer arrays (the label
repeated at every step), each pickled on its own. Writing pickles is harmless; reading
them runs whatever code the file names, so :func:`import_seed_pickles` refuses unless the
config sets ``allow_pickle: true``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from nengo_actions.config import SEED_PICKLES, ConfigError, resolve_path, settings
from nengo_actions.io import write_bytes_atomic
from nengo_actions.config.schema import Config
from nengo_actions.store import load_split, save_split, split_path

from nengo_actions.config import paths
from .ucf101 import read_class_index, split_files
from .summary import Summary


def _dump(obj, path):
    write_bytes_atomic(path, lambda f: pickle.dump(obj, f, protocol=4))


def export_seed_pickles(store_dir, out_dir):
    """Write ``{train,test}_{data,labels}.pickle`` in the seed's layout from a store.

    Returns a dict ``name -> path``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for side in ("train", "test"):
        split = load_split(split_path(store_dir, side))
        steps = split.features.shape[1]
        data = np.asarray(split.features, dtype=np.float64)
        labels = np.repeat(split.labels.astype(np.int64)[:, None, None], steps, axis=1)
        for name, array in ((f"{side}_data", data), (f"{side}_labels", labels)):
            path = out_dir / f"{name}.pickle"
            _dump(array, path)
            written[name] = path
    return written


def _load_pickle(path, key, allow_pickle):
    if allow_pickle is not True:  # unpickling runs code the file names
        raise ConfigError(f"key 'features.seed_pickles.{key}': {path} is a pickle; set allow_pickle: true to read it")
    with open(path, "rb") as f:
        try:
            return pickle.load(f)
        except Exception as e:
            raise ConfigError(f"key 'features.seed_pickles.{key}': cannot unpickle {path}: {e}") from None


def _labels_per_clip(labels, path, n):
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[2] == 1:
        labels = labels[:, :, 0]
    if labels.ndim == 2:
        if not (labels == labels[:, :1]).all():
            raise ConfigError(f"{path}: labels change within a clip")
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n:
        raise ConfigError(f"{path}: expected {n} labels (clips, steps, 1), got shape {np.shape(labels)}")
    return labels.astype(np.int64)


def import_seed_pickles(cfg: Config):
    """Read the seed's pickles (``features.seed_pickles``) into the feature store.

    Groups are not in the pickles, so every clip becomes its own group (the validation
    split is then by clip; a warning in the metadata says so). Class names come from the
    configured ``classInd.txt`` when it exists.

    Returns an extraction :class:`~feature_extraction.extract.Summary`.
    """
    locations = cfg.features.seed_pickles
    if not cfg.allow_pickle:
        raise ConfigError(
            f"{cfg.source}: key 'features.seed_pickles' names pickle files; "
            "unpickling can run code stored in the file, so it is refused unless the config "
            "sets allow_pickle: true (do so only for files you trust)"
        )
    missing = [k for k in SEED_PICKLES if k not in locations]
    if missing:
        raise ConfigError(f"key 'features.seed_pickles' lacks {', '.join(missing)}")
    files = {}
    for key in SEED_PICKLES:
        path = resolve_path(locations[key])
        if not path.is_file():
            raise ConfigError(f"key 'features.seed_pickles.{key}': file not found: {path}")
        files[key] = path
    store = paths.store_dir(cfg)
    arrays = {}
    for side in ("train", "test"):
        data = np.asarray(_load_pickle(files[f"{side}_data"], f"{side}_data", cfg.allow_pickle))
        if data.ndim != 3:
            raise ConfigError(f"{files[f'{side}_data']}: expected (clips, steps, dim), got shape {data.shape}")
        labels_file = files[f"{side}_labels"]
        labels = _labels_per_clip(_load_pickle(labels_file, f"{side}_labels", cfg.allow_pickle), labels_file, len(data))
        arrays[side] = (data, labels)
    n_classes = int(max(labels.max() for _, labels in arrays.values())) + 1
    class_file = split_files(paths.splits_dir(cfg.data), cfg.data.split)[0]
    class_names = read_class_index(class_file) if class_file.is_file() else []
    if len(class_names) < n_classes:
        class_names = [f"class_{i:03d}" for i in range(n_classes)]
    warning = ("the seed's pickles hold no groups: every clip is its own group, so a "
               "validation split is by clip and may share source videos with training")
    dtype = np.dtype(cfg.features.dtype)
    summary = Summary(store, note=f"imported the seed's pickles ({', '.join(str(p) for p in files.values())})",
                      warnings=[warning])
    offset = 0
    for side, (data, labels) in arrays.items():
        n, steps, dim = data.shape
        metadata = {
            "split": side,
            "official_split": cfg.data.split,
            "dataset": cfg.data.dataset,
            "class_names": class_names,
            "backbone": "seed_pickles",
            "output": "seed_head",
            "pool_grid": 1,
            "weights": None,
            "weights_sha256": None,
            "random_init": False,
            "sampling": {"policy": "first", "n_frames": steps, "short_clips": "pad"},
            "feature_dim": dim,
            "steps": steps,
            "dtype": dtype.name,
            "warnings": [warning],
            "config": settings(cfg),
            "clips_skipped": {},
            "clips_failed": {},
            "clips_padded": {},
            "source": {k: str(v) for k, v in files.items() if k.startswith(side)},
        }
        save_split(
            split_path(store, side), data.astype(dtype), labels,
            [f"seed/{side}/{i:06d}" for i in range(n)], np.arange(offset + 1, offset + n + 1), metadata,
        )
        offset += n
        summary.sides[side] = n
        summary.clips_done += n
        summary.shape, summary.dtype = (steps, dim), dtype.name
    summary.clips_total = summary.clips_done
    summary.complete = True
    return summary
