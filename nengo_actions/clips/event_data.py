"""Framed DVS event samples as :class:`~nengo_actions.clips.feature_data.ClipData` for the engine.

The event datasets of :mod:`nengo_actions.data` (DVS128 Gesture, SL-Animals-DVS, the
embedded synthetic gestures) are opened and cached by
:func:`nengo_actions.data.prepare.open_event_splits`, framed with the config's
``events.frames`` settings, and flattened to what a per-frame converted network reads:

* ``x`` of shape ``(samples, T, H * W * 2)`` float32: frame ``t`` of a sample is its
  channels-last ``(H, W, 2)`` count image flattened in C order (row, column, polarity);
* ``y`` of shape ``(samples,)``, the class index.

Validation is carved out of the training side by whole units, so model selection never
sees the test side and no unit is on two sides: the **user** for DVS128 Gesture and the
synthetic set (the same person never in training and validation), the **recording** for
SL-Animals (one signer per recording). For SL-Animals the train/test sides are fold
``events.sl_animals.fold`` of the cross-validation over recordings
(``events.sl_animals.n_folds``, ``fold_seed``, ``reduced``).

Training samples are framed with the training transform (``events.frames.crop_us``, a
random crop in time when ``random_crop``: one crop per sample, drawn once with the
config's seed); validation and test samples with the test transform
(``test_n_frames``, ``test_crop_us``).

Streamed (``data.stream``, see :mod:`nengo_actions.clips.streaming`), each side is framed once
into an integer count cache beside the sample cache (``<cache>/<dataset>-frames/``) and
``x`` is a :class:`~nengo_actions.clips.rows.LazyClips` over it: the same values, read a
minibatch at a time. A killed cache build continues where it stopped.

NumPy only: importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nengo_actions.config import registry
from nengo_actions.data import load_arrays
from nengo_actions.data.frame_cache import cached_frames
from nengo_actions.data.prepare import frame_transforms, open_event_splits
from nengo_actions.clips.feature_data import ClipData, DataError
from nengo_actions.io import write_text_atomic
from nengo_actions.clips.metrics import evaluate_as_configured
from nengo_actions.config.schema import Config, EvaluateConfig
from nengo_actions.splits import carve_validation, check_group_leak
from nengo_actions.clips.streaming import event_clips, stream_wanted


def is_event_dataset(cfg: Config):
    """Whether ``cfg`` trains on DVS event frames (rather than clip features)."""
    return cfg.data.dataset in registry.events_datasets()


def split_units(dataset, name):
    """Per sample, the unit a validation split keeps whole: the recording or the user, as
    dataset ``name`` registered (:attr:`~nengo_actions.config.registry.DatasetType.split_unit`)."""
    units = dataset.recordings if registry.DATASETS[name].split_unit == "recording" else dataset.groups
    return np.asarray(units).astype(str)


def frames_to_features(frames):
    """``(samples, T, H, W, 2)`` channels-last frames -> ``(samples, T, H*W*2)`` float32."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 5:
        raise ValueError(f"frames must be (samples, T, H, W, P), got shape {frames.shape}")
    return frames.reshape(frames.shape[0], frames.shape[1], -1)


def _load(dataset, transform, channels, desc, progress):
    if len(dataset) == 0:
        raise DataError(f"{dataset.name}: the split holds no samples")
    x, y = load_arrays(dataset.with_transform(transform), progress=progress, desc=desc)
    if channels == "first":  # (N, T, P, H, W) -> (N, T, H, W, P)
        x = np.moveaxis(x, 2, -1)
    return frames_to_features(x), y


def input_bytes(sides):
    """Bytes of float32 frames of ``{side: (dataset, transform)}``."""
    total = 0
    for dataset, transform in sides.values():
        shape = transform.transforms[-1].output_shape()
        total += len(dataset) * int(np.prod([v or 0 for v in shape])) * 4
    return total


def frames_cache_dir(dataset):
    """Where the frame caches of streamed event data go: beside the sample cache,
    ``<sample cache>-frames``."""
    directory = dataset.cache.directory
    return directory.with_name(directory.name + "-frames")


def _cached(key, dataset, transform, channels, cache_dir, desc, progress):
    """The frames of ``dataset`` from the count cache in ``cache_dir``; ``key`` holds the
    settings the transform does not show (the seed, whether crops are random)."""
    if len(dataset) == 0:
        raise DataError(f"{dataset.name}: the split holds no samples")
    role = desc.split()[1]  # "training", "validation", "test"
    frames = cached_frames(dataset, transform, cache_dir, role, {**key, "role": role}, progress=progress, desc=desc)
    return event_clips(frames, channels_first=channels == "first"), dataset.labels


def load_event_data(cfg: Config, progress=True, log=print, stream=None) -> ClipData:
    """Open, frame and split the configured event dataset; see the module docstring.

    ``stream``: keep the frames on disk as integer counts
    (:mod:`nengo_actions.data.frame_cache`), read a minibatch at a time, instead of
    in memory; ``None`` decides by ``data.stream`` (:func:`~nengo_actions.clips.streaming.stream_wanted`).

    Returns
    -------
    ClipData
        ``metadata`` holds ``frame_shape`` (``[H, W, 2]``), ``dataset``,
        ``split_unit`` and, for a cross-validated dataset (SL-Animals), ``fold`` and
        ``n_folds``.
    """
    name = cfg.data.dataset
    splits = open_event_splits(cfg, progress=progress)
    train_set, test_set = splits["train"], splits["test"]
    units_train, units_test = split_units(train_set, name), split_units(test_set, name)
    where = f"{cfg.source} ({name})"
    check_group_leak(units_train, units_test, where=where)
    train_mask, val_mask = carve_validation(units_train, cfg.data.val_fraction, cfg.seed, where)
    sensor = train_set.sensor_size
    frames = cfg.events.frames
    train_tf, test_tf = frame_transforms(frames, sensor, rng=np.random.default_rng(cfg.seed))
    channels = frames.channels
    fit_set = train_set.subset(np.flatnonzero(train_mask))
    val_set = train_set.subset(np.flatnonzero(val_mask))
    sides = {"train": (fit_set, train_tf), "val": (val_set, test_tf), "test": (test_set, test_tf)}
    if stream is None:
        stream = stream_wanted(cfg.data, input_bytes(sides))
    load = _load
    if stream:  # integer count caches on disk, read a minibatch at a time
        cache_dir = frames_cache_dir(train_set)
        log(f"streaming event frames from {cache_dir}")
        key = {"seed": cfg.seed, "random_crop": frames.random_crop}

        def load(dataset, transform, channels, desc, progress):
            return _cached(key, dataset, transform, channels, cache_dir, desc, progress)

    x_train, y_train = load(fit_set, train_tf, channels, "framing training samples", progress)
    if val_mask.any():
        x_val, y_val = load(val_set, test_tf, channels, "framing validation samples", progress)
    else:
        x_val = np.zeros((0,) + x_train.shape[1:], np.float32)
        y_val = np.zeros(0, np.int64)
    x_test, y_test = load(test_set, test_tf, channels, "framing test samples", progress)
    if x_test.shape[2] != x_train.shape[2]:
        raise DataError(f"{where}: test frames have {x_test.shape[2]} values, training frames {x_train.shape[2]}")
    shape = list(test_tf.transforms[-1].output_shape()[1:])
    if channels == "first":
        shape = shape[1:] + shape[:1]
    entry = registry.DATASETS[name]
    metadata = {"dataset": name, "frame_shape": shape, "split_unit": entry.split_unit}
    if entry.folds is not None:
        folds = registry.lookup(cfg, entry.folds)
        metadata.update(fold=folds.fold, n_folds=folds.n_folds)
    return ClipData(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        groups_train=units_train[train_mask],
        groups_val=units_train[val_mask],
        groups_test=units_test,
        class_names=list(train_set.classes),
        store_dir=train_set.cache.directory,
        metadata=metadata,
    )


class PerEpochTestAccuracy:
    """The DVS128 Gesture "accuracy-A" figure: the test accuracy after every epoch.

    The PLIF paper reports two figures that must not be mixed: accuracy-B, the test
    accuracy of the epoch selected on validation (the engine's ``test_clip_accuracy``),
    and accuracy-A, the best test accuracy over all epochs (a selection on the test
    set, reported only beside accuracy-B). Called by the engine after each epoch
    (``on_epoch_end``), it scores the rate network on the test samples and keeps the
    figures in ``<out_dir>/test_per_epoch.csv`` (rewritten atomically), which a resumed
    run reads back.
    """

    FILE = "test_per_epoch.csv"

    def __init__(self, engine, x_test, y_test, ev: EvaluateConfig, out_dir, resume=False):
        self.engine, self.x, self.y, self.ev = engine, x_test, y_test, ev
        self.path = Path(out_dir) / self.FILE
        self.rows = []
        if resume and self.path.exists():
            lines = self.path.read_text().splitlines()[1:]
            self.rows = [(int(a), float(b)) for a, b in (line.split(",") for line in lines if line)]

    def __call__(self, epoch, row=None):
        m = evaluate_as_configured(self.engine.predict(self.x), self.y, self.engine.n_classes, self.ev)
        self.rows = [r for r in self.rows if r[0] < epoch] + [(int(epoch), float(m["clip_accuracy"]))]
        write_text_atomic(self.path, "epoch,test_clip_accuracy\n" + "".join(f"{e},{a:.6f}\n" for e, a in self.rows))

    def metrics(self):
        """``test_clip_accuracy_max_over_epochs`` (accuracy-A) and its epoch."""
        if not self.rows:
            return {}
        epoch, acc = max(self.rows, key=lambda r: (r[1], -r[0]))
        return {"test_clip_accuracy_max_over_epochs": acc, "test_max_over_epochs_epoch": epoch}


def per_epoch_test_tracker(cfg: Config, engine, data, ev: EvaluateConfig, out_dir, resume=False):
    """A :class:`PerEpochTestAccuracy` scoring with ``ev`` (the ``evaluate`` section) for
    event datasets, else ``None``."""
    if not is_event_dataset(cfg):
        return None
    return PerEpochTestAccuracy(engine, data.x_test, data.y_test, ev, out_dir, resume)


__all__ = [
    "PerEpochTestAccuracy",
    "is_event_dataset",
    "load_event_data",
    "frames_to_features",
    "split_units",
    "per_epoch_test_tracker",
]
