"""Data sets at their real size, in their real layouts, for dry runs of memory and time.

The events and features are synthetic (each class has its own spatial pattern, so a
network can learn something), but the files, their structure and their sizes are those
of the real downloads, so every reader, cache and training step runs on real-sized data:

* :func:`write_dvs128_gesture`: ``DvsGesture/`` with the 122 trials of DVS128 Gesture
  (users 1-23 for training, 98 trials; users 24-29 for testing, 24 trials; lighting
  conditions ``fluorescent``, ``fluorescent_led``, ``lab``, ``led``, ``natural``), each an
  AEDAT 3.1 file with 12 gestures (the 11 classes, one of them twice) and its
  ``_labels.csv`` (rows out of time order, as in the real files), ``trials_to_train.txt``,
  ``trials_to_test.txt`` and ``gesture_mapping.csv``: 1,176 + 288 gestures of
  ``events_per_gesture`` events on the 128 x 128 sensor;
* :func:`write_sl_animals`: 59 AEDAT 2.0 recordings (10 ``_imse``, 25 ``_dc``, 17
  ``_indoor``, 7 ``_sunlight``) of 19 signs each, tag files with event indices, and the
  class definitions file; sign lengths 0.9-9.5 s (mean 4.4 s) at ``events_per_second``;
* :func:`write_ucf101_store`: the feature store of UCF101 split 1 (9,537 training and
  3,783 test clips over 101 classes and 25 groups, 13,320 in all) as
  :mod:`nengo_actions.store` writes it.

Each writer returns the folder it wrote and skips a layout that is already complete
(a ``full_size.json`` marker, written last). NumPy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nengo_actions.store import save_split

from ..io import read_json, write_json_atomic
from .aedat_write import write_aedat2, write_aedat31
from .events import make_events
from .gesture import CLASSES as GESTURE_CLASSES
from .sl_animals import CLASSES as ANIMAL_CLASSES

LIGHTING = ("fluorescent", "fluorescent_led", "lab", "led", "natural")
MARKER = "full_size.json"
#: SL-Animals recordings per lighting set (suffix, count): 59 in all.
ANIMAL_SETS = (("imse", 10), ("dc", 25), ("indoor", 17), ("sunlight", 7))
#: UCF101 split 1: clips per side, classes, groups.
UCF101_TRAIN, UCF101_TEST, UCF101_CLASSES, UCF101_GROUPS = 9537, 3783, 101, 25


def _done(root, spec):
    marker = read_json(Path(root) / MARKER)
    return marker is not None and marker == spec


def _progress(total, desc, progress):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="file")


def _pattern_events(rng, label, n_classes, n, t0, t1, size=128):
    """``n`` events in ``[t0, t1)`` (µs) of a blob circling at a class-specific place."""
    t = np.sort(rng.integers(t0, t1, n))
    phase = 2 * np.pi * label / n_classes
    turn = (t - t0) / max(t1 - t0, 1) * 2 * np.pi * (1 + label % 3) * (1 if label % 2 else -1)
    cx = size / 2 + size * 0.25 * np.cos(phase) + size * 0.12 * np.cos(turn)
    cy = size / 2 + size * 0.25 * np.sin(phase) + size * 0.12 * np.sin(turn)
    x = np.clip(np.rint(cx + rng.normal(0, size / 16, n)), 0, size - 1)
    y = np.clip(np.rint(cy + rng.normal(0, size / 16, n)), 0, size - 1)
    return make_events(x, y, rng.integers(0, 2, n), t)


def _noise(rng, n, t0, t1, size=128):
    t = np.sort(rng.integers(t0, max(t1, t0 + 1), n))
    return make_events(rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n), t)


def gesture_trials():
    """``{"train": [trial names], "test": [...]}``: 98 and 24 trials."""
    train = [f"user{u:02d}_{light}" for u in range(1, 24) for light in LIGHTING[: 5 if u <= 6 else 4]]
    test = [f"user{u:02d}_{light}" for u in range(24, 30) for light in LIGHTING[:4]]
    return {"train": train, "test": test}


def write_dvs128_gesture(root, events_per_gesture=20000, seed=0, progress=True):
    """The DVS128 Gesture layout at full size under ``root`` (see the module docstring)."""
    root = Path(root)
    spec = {"layout": "dvs128_gesture", "events_per_gesture": int(events_per_gesture), "seed": int(seed)}
    folder = root / "DvsGesture"
    if _done(root, spec):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    trials = gesture_trials()
    bar = _progress(sum(map(len, trials.values())), "writing DVS128 Gesture trials", progress)
    n_classes = len(GESTURE_CLASSES)
    for number, name in enumerate(trials["train"] + trials["test"]):
        rng = np.random.default_rng([seed, number])
        labels = list(range(1, n_classes + 1)) + [int(rng.integers(1, n_classes + 1))]
        rng.shuffle(labels)
        pieces, rows, t = [], [], 1_000_000
        for label in labels:
            length = int(rng.uniform(4e6, 8e6))
            pieces.append(_noise(rng, 200, t - 500_000, t))
            pieces.append(_pattern_events(rng, label - 1, n_classes, events_per_gesture, t, t + length))
            rows.append((label, t, t + length))
            t += length + 500_000
        write_aedat31(folder / f"{name}.aedat", np.concatenate(pieces), start_time="2017-01-01 00:00:00 (TZ+0000)")
        order = rng.permutation(len(rows))  # out of time order, as in the real label files
        text = "class,startTime_usec,endTime_usec\n" + "".join("{},{},{}\n".format(*rows[i]) for i in order)
        (folder / f"{name}_labels.csv").write_text(text)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for split, names in trials.items():
        (folder / f"trials_to_{split}.txt").write_text("".join(f"{n}.aedat\n" for n in names))
    (root / "gesture_mapping.csv").write_text(
        "action,label\n" + "".join(f"{c},{i + 1}\n" for i, c in enumerate(GESTURE_CLASSES))
    )
    write_json_atomic(root / MARKER, spec)
    return folder


def animal_recordings():
    """The 59 recording names, ``user01_imse`` ... ``user59_sunlight``."""
    names, number = [], 1
    for suffix, count in ANIMAL_SETS:
        for _ in range(count):
            names.append(f"user{number:02d}_{suffix}")
            number += 1
    return names


def write_sl_animals(root, events_per_second=10000, seed=0, progress=True):
    """The SL-Animals-DVS layout at full size under ``root`` (see the module docstring)."""
    root = Path(root)
    spec = {"layout": "sl_animals", "events_per_second": int(events_per_second), "seed": int(seed)}
    if _done(root, spec):
        return root
    (root / MARKER).unlink(missing_ok=True)
    recordings, tags = root / "recordings", root / "tags"
    recordings.mkdir(parents=True, exist_ok=True)
    tags.mkdir(parents=True, exist_ok=True)
    names = animal_recordings()
    bar = _progress(len(names), "writing SL-Animals recordings", progress)
    n_classes = len(ANIMAL_CLASSES)
    for number, name in enumerate(names):
        rng = np.random.default_rng([seed, 1000 + number])
        pieces, rows, t, count = [], [], 500_000, 0
        for label in range(n_classes):  # all 19 signs, in order
            gap = _noise(rng, 300, t - 300_000, t)
            pieces.append(gap)
            count += len(gap)
            length = int(rng.triangular(0.9e6, 2.8e6, 9.5e6))
            n = int(events_per_second * length / 1e6)
            sign = _pattern_events(rng, label, n_classes, n, t, t + length)
            pieces.append(sign)
            rows.append((label + 1, count, count + n))
            count += n
            t += length + 300_000
        write_aedat2(recordings / f"{name}.aedat", np.concatenate(pieces))
        (tags / f"{name}.csv").write_text(
            "class,startTime_ev,endTime_ev\n" + "".join("{},{},{}\n".format(*r) for r in rows)
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    (root / "SL-Animals-DVS_gestures_definitions.csv").write_text(
        "class,class Def\n" + "".join(f"{i + 1},{c}\n" for i, c in enumerate(ANIMAL_CLASSES))
    )
    write_json_atomic(root / MARKER, spec)
    return root


def write_ucf101_store(store_dir, n_features=512, n_frames=28, dtype="float16", seed=0, progress=True):
    """The UCF101 split-1 feature store at full size in ``store_dir``.

    Clip ``i`` of class ``c`` and group ``g`` is ``class_mean[c] + noise``, frame by frame,
    named ``<Class>/v_<Class>_g<GG>_c<CC>`` as the real clip ids.
    """
    store_dir = Path(store_dir)
    spec = {"layout": "ucf101_store", "n_features": int(n_features), "n_frames": int(n_frames), "dtype": dtype, "seed": int(seed)}
    if _done(store_dir, spec):
        return store_dir
    (store_dir / MARKER).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1, (UCF101_CLASSES, n_features)).astype(np.float32)
    classes = [f"Class{c:03d}" for c in range(UCF101_CLASSES)]
    bar = _progress(2, "writing UCF101 feature store", progress)
    for split, n, groups in (("train", UCF101_TRAIN, range(8, 26)), ("test", UCF101_TEST, range(1, 8))):
        labels = np.arange(n) % UCF101_CLASSES
        group = np.asarray(list(groups))[(np.arange(n) // UCF101_CLASSES) % len(groups)]
        features = np.empty((n, n_frames, n_features), np.dtype(dtype))
        for start in range(0, n, 512):
            stop = min(n, start + 512)
            noise = rng.normal(0, 1.5, (stop - start, n_frames, n_features)).astype(np.float32)
            features[start:stop] = means[labels[start:stop], None, :] + noise
        ids = [f"{classes[c]}/v_{classes[c]}_g{g:02d}_c{i:02d}" for i, (c, g) in enumerate(zip(labels, group))]
        metadata = {"class_names": classes, "generator": "nengo_actions.data.full_size", "n_frames": n_frames}
        save_split(store_dir / f"{split}.npz", features, labels, ids, group, metadata)
        del features
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    write_json_atomic(store_dir / MARKER, spec)
    return store_dir


__all__ = ["write_dvs128_gesture", "write_sl_animals", "write_ucf101_store", "gesture_trials", "animal_recordings"]
