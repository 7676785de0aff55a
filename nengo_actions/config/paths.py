"""Where a config's data and feature store live, computed without PyTorch.

The train command finds its features with :func:`store_dir` before it decides whether to
run the extraction, so this module imports only the standard library and the config
modules (:mod:`nengo_actions.config`, :mod:`nengo_actions.config.schema`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nengo_actions.config import resolve_path, settings
from nengo_actions.config.schema import Config, DataConfig

#: Settings that change the extracted features; a store made with other values of any of
#: them is a different store (another folder, and resumption refuses to mix them).
FEATURE_KEYS = {
    "data": ("dataset", "split", "synthetic"),
    "frames": ("policy", "n_frames", "short_clips", "resize", "mean", "std"),
    "features": ("backbone", "weights", "output", "pool_grid", "dtype"),
}


def data_root(data: DataConfig) -> Path:
    """The dataset folder (``data.root``), absolute."""
    return resolve_path(data.root)


def videos_dir(data: DataConfig) -> Path:
    """``data.videos_dir``, or ``<root>/UCF-101``."""
    return resolve_path(data.videos_dir) if data.videos_dir else data_root(data) / "UCF-101"


def splits_dir(data: DataConfig) -> Path:
    """``data.splits_dir``, or ``<root>/ucfTrainTestlist``."""
    return resolve_path(data.splits_dir) if data.splits_dir else data_root(data) / "ucfTrainTestlist"


def frames_dir(data: DataConfig):
    """``data.frames_dir`` (pre-extracted JPEG frames), or ``None`` to decode videos."""
    return resolve_path(data.frames_dir) if data.frames_dir else None


def feature_settings(cfg: Config) -> dict:
    """The part of a config that determines the features (see :data:`FEATURE_KEYS`), as
    JSON values (lists, and ``data.synthetic`` as an object): the store's hash is taken
    over this dict, so it must not change with how the config is held in memory."""
    plain = settings(cfg)
    picked = {}
    for section, keys in FEATURE_KEYS.items():
        for key in keys:
            if section == "data" and key == "synthetic" and cfg.data.dataset != "synthetic_actions":
                continue
            picked[f"{section}.{key}"] = plain[section][key]
    picked["data.root"] = str(data_root(cfg.data))
    folder = frames_dir(cfg.data)
    picked["data.frames_dir"] = str(folder) if folder else None
    return picked


def settings_hash(cfg: Config, length=8) -> str:
    """A short, stable hash of :func:`feature_settings`."""
    text = json.dumps(feature_settings(cfg), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def store_name(cfg: Config) -> str:
    """``<backbone>-<policy><N>[-grid<G>][-seedhead]-<hash>``, e.g. ``resnet18-uniform16-grid2-1a2b3c4d``.

    The readable part says what the features are; the hash covers every other setting
    that changes them (resize, normalisation, weights file, split, synthetic data ...).
    """
    frames, features = cfg.frames, cfg.features
    sampling = frames.policy if frames.policy == "all" else f"{frames.policy}{frames.n_frames}"
    parts = [features.backbone, sampling]
    if features.pool_grid > 1:
        parts.append(f"grid{features.pool_grid}")
    if features.output == "seed_head":
        parts.append("seedhead")
    parts.append(settings_hash(cfg))
    return "-".join(parts)


def store_dir(cfg: Config) -> Path:
    """The feature store folder: ``features.store_dir``, or ``<root>/features/<store_name>``.

    ``<store_dir>/train.npz`` and ``<store_dir>/test.npz`` hold the two sides of the
    official split ``data.split`` (see :mod:`nengo_actions.store`).
    """
    if cfg.features.store_dir:
        return resolve_path(cfg.features.store_dir)
    return data_root(cfg.data) / "features" / store_name(cfg)


def store_complete(cfg: Config) -> bool:
    """Whether both ``train.npz`` and ``test.npz`` exist in :func:`store_dir`."""
    folder = store_dir(cfg)
    return (folder / "train.npz").exists() and (folder / "test.npz").exists()
