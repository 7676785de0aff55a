"""Event datasets from a config: open (slicing and caching once), frame, summarise.

The config keys are ``data.dataset`` (an event dataset of :mod:`nengo_actions.config.registry`,
whose reader is one of the ``open_*`` functions here), ``data.root``, ``data.generate``
(make the synthetic set when it is missing) and the ``events`` section
(:class:`~nengo_actions.config.events.EventsConfig`).
"""

from __future__ import annotations

import numpy as np

from ..config import registry
from ..config import ConfigError, resolve_path
from ..config.events import EmulatorConfig, EventFramesConfig, SyntheticGesturesConfig
from ..config.schema import Config
from .emulator import EventEmulator
from .events import DVS128_SENSOR
from .transforms import Compose, CropTime, RandomCropTime, ToFrames
from .gesture import dvs128_gesture
from .sl_animals import fold_split, sl_animals
from .synthetic_gestures import SyntheticGestureSpec, ensure_synthetic_gestures, synthetic_metadata

def check_events_config(cfg: Config):
    """Raise :class:`ConfigError` naming the file and key when ``data.dataset`` is not an
    event dataset (the ``events`` values are checked when the config is made)."""
    dataset, names = cfg.data.dataset, registry.events_datasets()
    if dataset not in names:
        raise ConfigError(
            f"{cfg.source}: key 'data.dataset' is {dataset!r}, not an event dataset; use one of {', '.join(names)}"
        )


def _build(kind, values, key, where):
    try:
        return kind(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: key '{key}': {e}") from None


def emulator_from_config(emulator: EmulatorConfig, where="config"):
    """The :class:`EventEmulator` of ``events.emulator``; errors name ``where``."""
    return _build(EventEmulator, emulator.to_dict(), "events.emulator", where)


def synthetic_spec_from_config(synthetic: SyntheticGesturesConfig, where="config"):
    """The :class:`SyntheticGestureSpec` of ``events.synthetic``; errors name ``where``."""
    return _build(SyntheticGestureSpec, synthetic.to_dict(), "events.synthetic", where)


def open_event_splits(cfg: Config, progress=True):
    """The configured dataset's ``{"train": EventDataset, "test": EventDataset}``, from
    its registered reader (:class:`~nengo_actions.config.registry.DatasetType`).

    Slices and caches recordings on first use (in ``events.cache_dir``, default
    ``<data.root>/cache``, one folder per dataset).
    """
    check_events_config(cfg)
    dataset, events = cfg.data.dataset, cfg.events
    root = resolve_path(cfg.data.root)
    cache_root = resolve_path(events.cache_dir) if events.cache_dir else root / "cache"
    reader = registry.load_function(registry.DATASETS[dataset].reader)
    return reader(cfg, root, cache_root / dataset, allow_truncated=events.allow_truncated, progress=progress)


def open_sl_animals(cfg: Config, root, cache_dir, **reader):
    """SL-Animals-DVS: fold ``events.sl_animals.fold`` of the cross-validation over
    recordings."""
    options = cfg.events.sl_animals
    full = sl_animals(root, reduced=options.reduced, cache_dir=cache_dir, recordings_dir=options.recordings_dir,
                      tags_dir=options.tags_dir, **reader)
    train, test = fold_split(full, options.fold, options.n_folds, options.fold_seed)
    return {"train": train, "test": test}


def open_dvs128_gesture(cfg: Config, root, cache_dir, sensor_size=DVS128_SENSOR, **reader):
    """DVS128 Gesture (or any tree in its layout): its official train and test trials."""
    return {
        split: dvs128_gesture(root, split, cache_dir=cache_dir, sensor_size=sensor_size,
                              keep_invalid=cfg.events.keep_invalid, name=cfg.data.dataset, **reader)
        for split in ("train", "test")
    }


def open_synthetic_gestures(cfg: Config, root, cache_dir, **reader):
    """The embedded synthetic gestures in the DVS128 Gesture layout, generated first when
    ``data.generate`` and missing or made with other settings."""
    where, events = cfg.source, cfg.events
    if cfg.data.generate:
        ensure_synthetic_gestures(
            root, synthetic_spec_from_config(events.synthetic, where),
            emulator_from_config(events.emulator, where), reader["progress"],
        )
    meta = synthetic_metadata(root)
    if meta is None:
        raise ConfigError(
            f"{where}: key 'data.root' ({root}) holds no synthetic gesture set; set data.generate=true to make one"
        )
    return open_dvs128_gesture(cfg, root, cache_dir, sensor_size=tuple(meta["sensor_size"]), **reader)


def frame_transforms(frames: EventFramesConfig, sensor_size, rng=None, seed=0):
    """``(train_transform, test_transform)`` of ``events.frames``: crop in time, then
    :class:`ToFrames`.

    Training crops are ``crop_us`` long, from the start or (with ``random_crop``) at a
    random time drawn from ``rng`` (default: a generator seeded with ``seed``); test
    samples use ``test_crop_us`` and ``test_n_frames`` (a longer window) when set.
    """
    common = dict(
        sensor_size=tuple(sensor_size),
        split_by=frames.split_by,
        time_window=frames.time_window_us if frames.split_by == "window" else None,
        remainder=frames.remainder,
        mode=frames.mode,
        downsample=frames.downsample,
        channels=frames.channels,
    )
    train_steps = [ToFrames(n_frames=frames.n_frames, **common)]
    if frames.crop_us > 0:
        crop = (
            RandomCropTime(frames.crop_us, rng=rng or np.random.default_rng(seed))
            if frames.random_crop
            else CropTime(frames.crop_us)
        )
        train_steps.insert(0, crop)
    test_steps = [ToFrames(n_frames=frames.test_n_frames or frames.n_frames, **common)]
    if frames.test_crop_us > 0:
        test_steps.insert(0, CropTime(frames.test_crop_us))
    return Compose(tuple(train_steps)), Compose(tuple(test_steps))


def _stats(values):
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def summarize(splits, transforms=None):
    """Counts per split and class, events per sample and time span (ms) per split.

    ``transforms`` (``{split: transform}``) adds each split's frame shape, taken from
    its first sample.
    """
    summary = {"splits": {}}
    for split, dataset in splits.items():
        counts = np.bincount(dataset.labels, minlength=len(dataset.classes)) if len(dataset) else []
        entry = {
            "samples": len(dataset),
            "per_class": {name: int(n) for name, n in zip(dataset.classes, counts)},
            "groups": len(set(dataset.groups.tolist())),
        }
        if len(dataset):
            entry["events_per_sample"] = _stats([s["n_events"] for s in dataset.samples])
            entry["span_ms"] = _stats([(s["t_last"] - s["t_first"]) / 1e3 for s in dataset.samples])
            if transforms and split in transforms:
                entry["frame_shape"] = list(transforms[split](dataset.events(0)).shape)
        summary["splits"][split] = entry
        summary["name"] = dataset.name.split("/")[0]
        summary["classes"] = list(dataset.classes)
        summary["sensor_size"] = list(dataset.sensor_size)
        summary["cache"] = str(dataset.cache.directory)
    return summary


def prepare_events(cfg: Config, progress=True):
    """Slice and cache the configured event dataset; return its :func:`summarize` dict."""
    splits = open_event_splits(cfg, progress)
    sensor = next(iter(splits.values())).sensor_size
    train, test = frame_transforms(cfg.events.frames, sensor, seed=cfg.seed)
    return summarize(splits, {"train": train, "test": test})


def format_summary(summary):
    """The summary as a plain-text table."""
    splits = summary["splits"]
    names = list(splits)
    lines = [
        f"{summary['name']}: sensor {summary['sensor_size'][0]}x{summary['sensor_size'][1]}, "
        f"{len(summary['classes'])} classes, cache {summary['cache']}",
        "",
        f"{'split':<8}{'samples':>8}{'groups':>8}  {'events/sample mean [min-max]':<30}"
        f"{'span ms mean [min-max]':<28}frames",
    ]
    for split in names:
        s = splits[split]
        ev, span = s.get("events_per_sample"), s.get("span_ms")
        ev_text = f"{ev['mean']:.0f} [{ev['min']:.0f}-{ev['max']:.0f}]" if ev else "-"
        span_text = f"{span['mean']:.0f} [{span['min']:.0f}-{span['max']:.0f}]" if span else "-"
        shape = "x".join(str(v) for v in s.get("frame_shape", [])) or "-"
        lines.append(f"{split:<8}{s['samples']:>8}{s['groups']:>8}  {ev_text:<30}{span_text:<28}{shape}")
    lines += ["", f"{'class':<28}" + "".join(f"{split:>8}" for split in names)]
    for i, name in enumerate(summary["classes"]):
        lines.append(
            f"{i:>2} {name:<25}" + "".join(f"{splits[split]['per_class'].get(name, 0):>8}" for split in names)
        )
    return "\n".join(lines)
