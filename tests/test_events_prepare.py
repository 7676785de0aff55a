"""The synthetic gesture set, the prepare command, other formats and import cost."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nengo_actions.config import ConfigError, load_config
from nengo_actions.data import (
    SyntheticGestureSpec,
    generate_synthetic_gestures,
    read_aedat,
    read_events,
    read_nmnist,
    to_frames,
)
from nengo_actions.data.gesture import read_labels_csv, read_trial_list
from nengo_actions.data.prepare import format_summary, frame_transforms, open_event_splits, prepare_events

REPO = Path(__file__).resolve().parents[1]
FORMATS = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "event_formats"
TINY = SyntheticGestureSpec(sensor_size=16, n_classes=4, n_users=3, test_users=1, repeats=2, gesture_ms=300.0, fps=60.0)


def test_synthetic_set_has_the_real_layout(tmp_path):
    folder = generate_synthetic_gestures(tmp_path, TINY, progress=False)
    assert read_trial_list(folder / "trials_to_train.txt") == ["user01_natural", "user02_led"]
    assert read_trial_list(folder / "trials_to_test.txt") == ["user03_fluorescent"]
    meta = json.loads((tmp_path / "synthetic_gestures.json").read_text())
    assert meta["sensor_size"] == [16, 16, 2] and len(meta["classes"]) == 4
    for trial in ("user01_natural", "user02_led", "user03_fluorescent"):
        labels = read_labels_csv(folder / f"{trial}_labels.csv", 4)
        assert sorted(labels[:, 0].tolist()) == [1, 1, 2, 2, 3, 3, 4, 4]  # each class twice
        events = read_aedat(folder / f"{trial}.aedat")
        assert events["x"].max() < 16 and events["y"].max() < 16
        for _, start, end in labels.tolist():
            inside = events[(events["t"] >= start) & (events["t"] < end)]
            assert inside.shape[0] > 100  # the motion makes events
    assert not list(tmp_path.glob(".*tmp-*"))


def test_synthetic_classes_differ_in_motion(tmp_path):
    """Swipe right vs left: ON events lead (to the right, resp. left) of OFF events."""
    generate_synthetic_gestures(tmp_path, TINY, progress=False)
    cfg = load_config(
        REPO / "configs" / "dvs_synthetic_events.json",
        [f"data.root={tmp_path}", "data.generate=false"] + [f"events.synthetic.{k}={v}" for k, v in TINY.__dict__.items()],
    )
    splits = open_event_splits(cfg, progress=False)
    train = splits["train"]
    for i in range(len(train)):
        events, label = train[i]
        if label not in (0, 1):
            continue
        on, off = events[events["p"] == 1], events[events["p"] == 0]
        lead = on["x"].mean() - off["x"].mean()
        assert lead > 0 if label == 0 else lead < 0


def test_prepare_command_on_synthetic_set(tmp_path):
    overrides = [f"data.root={tmp_path}"] + [f"events.synthetic.{k}={v}" for k, v in TINY.__dict__.items()]
    args = [sys.executable, str(REPO / "scripts" / "prepare_events.py"), "-c", str(REPO / "configs" / "dvs_synthetic_events.json")]
    for item in overrides:
        args += ["--set", item]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "synthetic_gestures: sensor 16x16, 4 classes" in result.stdout
    assert "train         16       2" in result.stdout and "test           8       1" in result.stdout
    assert "8x16x16x2" in result.stdout
    assert "swipe_right" in result.stdout
    cfg = load_config(REPO / "configs" / "dvs_synthetic_events.json", overrides)
    summary = prepare_events(cfg, progress=False)  # reuses the generated set and cache
    assert summary["splits"]["train"]["per_class"] == {"swipe_right": 4, "swipe_left": 4, "swipe_up": 4, "swipe_down": 4}
    assert "events/sample" in format_summary(summary)
    bad = subprocess.run(
        args[:4] + ["--set", "data.root=" + str(tmp_path / "none"), "--set", "data.generate=false"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert bad.returncode == 2 and "holds no synthetic gesture set" in bad.stderr


def test_config_checks_and_transforms(tmp_path):
    cfg = load_config(REPO / "configs" / "sl_animals_events.json", [f"data.root={tmp_path}"])
    train, test = frame_transforms(cfg.events.frames, (128, 128, 2), rng=np.random.default_rng(0))
    t = np.arange(0, 3_000_000, 1000)
    from nengo_actions.data import make_events

    events = make_events(t % 128, (t // 128) % 128, t % 2, t)
    assert train(events).shape == (50, 128, 128, 2)
    assert test(events).shape == (60, 128, 128, 2)
    with pytest.raises(ConfigError, match="key 'events.frames.mode' must be one of sum, or, sum_norm"):
        load_config(REPO / "configs" / "sl_animals_events.json", ["events.frames.mode=max"])
    with pytest.raises(ConfigError, match="not an event dataset"):
        open_event_splits(load_config(REPO / "configs" / "config.json"))


def test_import_loads_numpy_only():
    code = (
        "import sys, nengo_actions.data;"
        "bad = [m for m in ('tensorflow', 'nengo', 'nengo_dl', 'torch', 'torchvision', 'keras', 'cv2', 'tonic') if m in sys.modules];"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_nmnist_sample():
    events = read_events(FORMATS / "sample_nmnist.bin")
    assert events.shape == (4325,)
    assert events["x"].max() <= 33 and events["y"].max() <= 33
    assert events["t"].min() == 654 and events["t"].max() == 311175
    assert np.bincount(events["p"]).tolist() == [2180, 2145]  # OFF, ON
    tonic_io = pytest.importorskip("tonic.io")
    theirs = tonic_io.read_mnist_file(str(FORMATS / "sample_nmnist.bin"), dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)]))
    assert all(np.array_equal(events[k], theirs[k]) for k in "xypt")
    assert np.array_equal(read_nmnist(FORMATS / "sample_nmnist.bin"), events)


def test_prophesee_and_aedat4_samples():
    pytest.importorskip("expelliarmus")
    dat = read_events(FORMATS / "dat_sample.dat")
    reference = np.load(FORMATS / "dat_sample.npy", allow_pickle=False)
    assert dat.shape == (4407,) and all(np.array_equal(dat[k], reference[k]) for k in "xypt")
    evt2 = read_events(FORMATS / "evt2_sample.raw")
    assert evt2.shape == (521252,) and evt2["x"].max() < 640 and evt2["y"].max() < 480
    pytest.importorskip("aedat")
    events = read_events(FORMATS / "sample.aedat4")
    assert events.shape == (111954,)
    assert events["t"].min() == 1605537493718345 and events["t"].max() == 1605537494308262
    assert to_frames(events, (320, 240, 2), 4).sum() == 111954


def test_the_config_sections_and_the_records_they_make_stay_in_step():
    """``events.synthetic`` is copied whole into a SyntheticGestureSpec and ``events.emulator``
    into an EventEmulator, so each field of one must be a field of the other."""
    from dataclasses import fields

    from nengo_actions.data.prepare import emulator_from_config, synthetic_spec_from_config
    from nengo_actions.data.emulator import EventEmulator
    from nengo_actions.data.synthetic_gestures import DEFAULT_EMULATOR
    from nengo_actions.config.events import EmulatorConfig, SyntheticGesturesConfig

    def defaults(cls, leave_out=()):
        return [(f.name, f.default) for f in fields(cls) if f.name not in leave_out]

    assert defaults(SyntheticGesturesConfig) == defaults(SyntheticGestureSpec)
    assert synthetic_spec_from_config(SyntheticGesturesConfig()) == SyntheticGestureSpec()
    # the emulator's seed is not a setting (the generator combines it with events.synthetic.seed);
    # the config's defaults are those the synthetic sets are made with, not the bare emulator's
    assert [name for name, _ in defaults(EmulatorConfig)] == [name for name, _ in defaults(EventEmulator, ("seed",))]
    assert emulator_from_config(EmulatorConfig()) == DEFAULT_EMULATOR
