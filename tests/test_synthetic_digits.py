"""The synthetic digit set: the DVS128 Gesture layout, labels, motion, reproducibility."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from nengo_actions.data import (  # noqa: E402
    EventEmulator,
    SyntheticDigitSpec,
    dvs128_gesture,
    ensure_synthetic_digits,
    generate_synthetic_digits,
    read_aedat,
)
from nengo_actions.data.gesture import read_labels_csv, read_trial_list  # noqa: E402
from nengo_actions.data.synthetic_digits import N_IMAGES, assign_images, load_digit_images  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SENSOR = (32, 32, 2)
TINY = SyntheticDigitSpec(
    sensor_size=32, n_users=4, test_users=1, digit_px=(14, 22), sample_ms=200.0, fps=100.0,
    saccade_px=2.0, drift_px=2.0, n_samples=40,
)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    generate_synthetic_digits(root, TINY, progress=False)
    return root


def test_default_spec_uses_every_image_once_in_a_75_25_user_split():
    spec = SyntheticDigitSpec()
    per_user = assign_images(spec)
    assert sorted(per_user) == list(range(1, 21))
    used = np.concatenate(list(per_user.values()))
    assert sorted(used.tolist()) == list(range(N_IMAGES))
    assert {len(chosen) for chosen in per_user.values()} == {89, 90}
    test = sum(len(per_user[user]) for user in range(16, 21))
    assert test == 447 and N_IMAGES - test == 1350  # 24.9 % of the images


def test_reader_opens_the_set_with_user_splits_and_digit_labels(tiny_root):
    folder = tiny_root / "DvsGesture"
    assert read_trial_list(folder / "trials_to_train.txt") == ["user01_natural", "user02_led", "user03_fluorescent"]
    assert read_trial_list(folder / "trials_to_test.txt") == ["user04_natural"]
    meta = json.loads((tiny_root / "synthetic_digits.json").read_text())
    assert meta["sensor_size"] == [32, 32, 2] and meta["samples"] == {"train": 30, "test": 10}
    train = dvs128_gesture(tiny_root, "train", sensor_size=SENSOR, progress=False)
    test = dvs128_gesture(tiny_root, "test", sensor_size=SENSOR, progress=False)
    assert len(train) == 30 and len(test) == 10
    assert train.classes == tuple(f"digit_{k}" for k in range(10))
    assert not set(train.groups.tolist()) & set(test.groups.tolist())
    # Each user's samples, in time order, are the digits of the images dealt to that user.
    _, labels = load_digit_images()
    for data in (train, test):
        for user in sorted(set(data.groups.tolist())):
            mine = [s for s in data.samples if s["group"] == user]
            mine.sort(key=lambda s: s["start_us"])
            assert [s["label"] for s in mine] == labels[assign_images(TINY)[user]].tolist()
    rows = read_labels_csv(folder / "user01_natural_labels.csv", 10)
    assert not np.all(np.diff(rows[:, 1]) > 0)  # rows are written out of time order


def test_every_sample_moves_throughout_its_span(tiny_root):
    data = dvs128_gesture(tiny_root, "train", sensor_size=SENSOR, progress=False)
    for i, sample in enumerate(data.samples):
        events = data.events(i)
        assert events["x"].max() < 32 and events["y"].max() < 32
        counts, _ = np.histogram(events["t"], bins=4, range=(sample["start_us"], sample["end_us"]))
        assert counts.min() > 50, (sample["id"], counts)
        assert (events["p"] == 1).any() and (events["p"] == 0).any()


def test_same_settings_give_identical_files(tiny_root, tmp_path):
    generate_synthetic_digits(tmp_path, TINY, progress=False)
    names = sorted(p.name for p in (tiny_root / "DvsGesture").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "DvsGesture").iterdir())
    for name in names:
        assert (tiny_root / "DvsGesture" / name).read_bytes() == (tmp_path / "DvsGesture" / name).read_bytes()
    for name in ("gesture_mapping.csv", "synthetic_digits.json"):
        assert (tiny_root / name).read_bytes() == (tmp_path / name).read_bytes()
    other = tmp_path / "other"
    generate_synthetic_digits(other, replace(TINY, seed=1), progress=False)
    aedat = "DvsGesture/user01_natural.aedat"
    assert (other / aedat).read_bytes() != (tmp_path / aedat).read_bytes()


def test_ensure_regenerates_only_when_settings_change(tmp_path):
    folder, generated = ensure_synthetic_digits(tmp_path, TINY, progress=False)
    assert generated and folder == tmp_path / "DvsGesture"
    stamp = (folder / "user01_natural.aedat").stat().st_mtime_ns
    assert ensure_synthetic_digits(tmp_path, TINY, progress=False) == (folder, False)
    assert (folder / "user01_natural.aedat").stat().st_mtime_ns == stamp
    assert ensure_synthetic_digits(tmp_path, replace(TINY, n_samples=20), progress=False)[1]
    assert len(dvs128_gesture(tmp_path, "test", sensor_size=SENSOR, progress=False)) == 5
    noisier = EventEmulator(threshold_sigma=0.03, noise_rate_hz=2.0)
    assert ensure_synthetic_digits(tmp_path, replace(TINY, n_samples=20), noisier, progress=False)[1]
    assert not ensure_synthetic_digits(tmp_path, replace(TINY, n_samples=20), noisier, progress=False)[1]
    (tmp_path / "DvsGesture" / "trials_to_train.txt").unlink()  # an incomplete folder is remade
    assert ensure_synthetic_digits(tmp_path, replace(TINY, n_samples=20), noisier, progress=False)[1]
    assert not list(tmp_path.glob(".*tmp-*"))


def test_digits_replace_a_synthetic_gesture_set_in_the_same_root(tmp_path):
    from nengo_actions.data import SyntheticGestureSpec, ensure_synthetic_gestures

    gestures = SyntheticGestureSpec(
        sensor_size=16, n_classes=2, n_users=2, test_users=1, repeats=1, gesture_ms=200.0, fps=50.0
    )
    ensure_synthetic_gestures(tmp_path, gestures, progress=False)
    ensure_synthetic_digits(tmp_path, TINY, progress=False)
    assert not (tmp_path / "synthetic_gestures.json").exists()
    assert ensure_synthetic_gestures(tmp_path, gestures, progress=False)[1]  # remade, not taken for gestures


@pytest.mark.parametrize(
    "field, value",
    [
        ("sensor_size", 8),
        ("n_users", 1),
        ("test_users", 4),
        ("digit_px", (30, 20)),
        ("digit_px", (10, 40)),
        ("digit_px", 12),
        ("sample_ms", 0.0),
        ("fps", -1.0),
        ("saccade_px", 0.0),
        ("drift_px", -1.0),
        ("rotation_deg", -5.0),
        ("n_samples", 3),
        ("n_samples", N_IMAGES + 1),
        ("seed", 1.5),
    ],
)
def test_bad_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        replace(TINY, **{field: value})


def test_too_short_a_sample_is_refused():
    with pytest.raises(ValueError, match="sample_ms"):
        replace(TINY, sample_ms=30.0)


def test_digit_px_from_a_list_is_stored_as_a_tuple():
    assert replace(TINY, digit_px=[12, 20]).digit_px == (12, 20)


def test_script_makes_the_set(tmp_path):
    script = REPO / "scripts" / "make_synthetic_digits.py"
    args = [sys.executable, str(script), "--root", str(tmp_path), "--sensor-size", "32", "--n-users", "4"]
    args += ["--n-samples", "24", "--seed", "3"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "DvsGesture") in result.stdout and "generated" in result.stdout
    spec = json.loads((tmp_path / "synthetic_digits.json").read_text())["spec"]
    assert spec["sensor_size"] == 32 and spec["digit_px"] == [14, 24] and spec["test_users"] == 1 and spec["seed"] == 3
    assert len(dvs128_gesture(tmp_path, "train", sensor_size=SENSOR, progress=False)) == 18
    again = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert again.returncode == 0 and "already up to date" in again.stdout
    bad = subprocess.run(args[:2] + ["--sensor-size", "8"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 2 and "sensor_size" in bad.stderr


def test_a_128_pixel_set_opens_as_dvs128_gesture_from_a_config(tmp_path):
    """``data.dataset = "dvs128_gesture"`` with ``data.root`` at the generated set."""
    from nengo_actions.config import load_config
    from nengo_actions.data.prepare import frame_transforms, open_event_splits

    spec = SyntheticDigitSpec(n_users=2, test_users=1, sample_ms=150.0, fps=100.0, n_samples=12)
    ensure_synthetic_digits(tmp_path, spec, progress=False)
    cfg = load_config(REPO / "configs" / "dvs128_gesture_events.json", [f"data.root={tmp_path}"])
    splits = open_event_splits(cfg, progress=False)
    assert len(splits["train"]) == 6 and len(splits["test"]) == 6
    assert splits["train"].sensor_size == (128, 128, 2) and splits["train"].classes[9] == "digit_9"
    train_transform, _ = frame_transforms(cfg.events.frames, splits["train"].sensor_size)
    frames = train_transform(splits["train"].events(0))
    assert frames.shape == (16, 128, 128, 2) and (frames.reshape(16, -1).sum(axis=1) > 0).all()
