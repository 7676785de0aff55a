"""DVS128 Gesture and SL-Animals layouts: slicing, caching, folds, bad input."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nengo_actions.data import (
    DatasetError,
    dvs128_gesture,
    fold_split,
    kfold_recordings,
    make_events,
    sl_animals,
    write_aedat2,
    write_aedat31,
)
from nengo_actions.data.gesture import CLASSES as GESTURE_CLASSES
from nengo_actions.data.gesture import read_labels_csv
from nengo_actions.data.sl_animals import read_definitions, recording_group

SHARED = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures")))
REAL_LABELS = SHARED / "dvs128_gesture" / "user01_natural_labels.csv"
DEFINITIONS = SHARED / "sl_animals" / "SL-Animals-DVS_gestures_definitions.csv"
FILELIST = SHARED / "sl_animals" / "filelist.txt"


def uniform_events(t_start, t_stop, n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t_start, t_stop, n))
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n), t)


@pytest.fixture
def gesture_root(tmp_path):
    """A two-trial DVS128 Gesture layout around the real user01_natural label file."""
    folder = tmp_path / "DvsGesture"
    folder.mkdir()
    labels = read_labels_csv(REAL_LABELS)
    events = uniform_events(50_000_000, 180_000_000, 40_000)
    write_aedat31(folder / "user01_natural.aedat", events, packet_events=1000)
    shutil.copy(REAL_LABELS, folder / "user01_natural_labels.csv")
    other = uniform_events(0, 3_000_000, 3000, seed=1)
    write_aedat31(folder / "user24_led.aedat", other)
    (folder / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,1000,2000000\n11,2000000,2900000\n")
    (folder / "trials_to_train.txt").write_text("user01_natural.aedat\n\n")
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return tmp_path, events, labels


def test_real_label_file_quirks():
    labels = read_labels_csv(REAL_LABELS)
    assert labels.shape == (12, 3)
    assert labels[:, 0].tolist() == [1, 2, 3, 5, 4, 6, 7, 8, 8, 9, 10, 11]  # 5 before 4, 8 twice
    assert labels[0].tolist() == [1, 53036986, 59508469]


def test_gesture_slicing_and_class_order(gesture_root):
    root, events, labels = gesture_root
    train = dvs128_gesture(root, "train", progress=False)
    assert len(train) == 12
    assert train.classes == GESTURE_CLASSES and len(train.classes) == 11
    assert train.labels.tolist() == [c - 1 for c in labels[:, 0]]
    assert train.ids[0] == "user01_natural_00" and train.groups.tolist() == [1] * 12
    for i, (label, start, end) in enumerate(labels.tolist()):
        piece, y = train[i]
        expected = events[(events["t"] >= start) & (events["t"] < end)]
        assert y == label - 1 and np.array_equal(piece, expected)
    test = dvs128_gesture(root, "test", progress=False)
    assert test.labels.tolist() == [2, 10] and test.groups.tolist() == [24, 24]


def test_gesture_cache_is_reused_and_refreshed(gesture_root):
    root, _, _ = gesture_root
    first = dvs128_gesture(root, "train", progress=False)
    cache = first.cache.directory
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len([n for n in stamps if n.endswith(".npz")]) == 12
    again = dvs128_gesture(root, "train", progress=False)
    assert again.samples == first.samples
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps  # nothing rewritten
    # A killed run: a temp file and a sample without its manifest -> cleaned and re-sliced.
    (cache / ".user01_natural_03.npz.tmp-999999-abcd").write_bytes(b"half")
    (cache / "user01_natural.json").unlink()
    again = dvs128_gesture(root, "train", progress=False)
    assert again.samples == first.samples
    assert not list(cache.glob(".*tmp-*"))
    # A changed label file makes the cache stale.
    labels = root / "DvsGesture" / "user01_natural_labels.csv"
    labels.write_text("class,startTime_usec,endTime_usec\n2,60000000,61000000\n")
    assert dvs128_gesture(root, "train", progress=False).labels.tolist() == [1]


def test_gesture_bad_input_leaves_cache_clean(gesture_root, tmp_path):
    root, _, _ = gesture_root
    labels = root / "DvsGesture" / "user24_led_labels.csv"
    labels.write_text("class,startTime_usec,endTime_usec\n3,1000,2000000\n4,5000000,6000000\n")
    with pytest.raises(DatasetError, match=r"user24_led_labels\.csv: line 3: class 4 span .* past the end"):
        dvs128_gesture(root, "test", progress=False)
    cache = root / "cache" / "dvs128_gesture"
    assert not list(cache.glob("user24*"))
    labels.write_text("class,start,end\n3,1000,2000000\n")
    with pytest.raises(DatasetError, match=r"user24_led_labels\.csv: line 1 must be the header"):
        dvs128_gesture(root, "test", progress=False)
    labels.write_text("class,startTime_usec,endTime_usec\n12,1000,2000\n")
    with pytest.raises(DatasetError, match=r"line 2: class 12 outside 1\.\.11"):
        dvs128_gesture(root, "test", progress=False)
    (root / "DvsGesture" / "trials_to_test.txt").unlink()
    with pytest.raises(DatasetError, match=r"trials_to_test\.txt: trial list is missing"):
        dvs128_gesture(root, "test", progress=False)
    with pytest.raises(DatasetError, match="no DVS128 Gesture folder"):
        dvs128_gesture(tmp_path / "nowhere", "train", progress=False)


# ---------------------------------------------------------------------- SL-Animals


def make_sl_layout(root, names, n_classes=19, per_sign=40):
    """Recordings in AEDAT 2.0 with tag files: sign k spans events [k * per_sign + 5,
    (k + 1) * per_sign)."""
    (root / "allusers_aedat").mkdir(parents=True)
    (root / "tags_updated_19_08_2020").mkdir()
    shutil.copy(DEFINITIONS, root / DEFINITIONS.name)
    truth = {}
    for i, name in enumerate(names):
        events = uniform_events(0, 10_000_000, n_classes * per_sign, seed=i)
        write_aedat2(root / "allusers_aedat" / f"{name}.aedat", events)
        rows = [(k + 1, k * per_sign + 5, (k + 1) * per_sign) for k in range(n_classes)]
        rows = rows[::-1]  # tag rows in any order
        (root / "tags_updated_19_08_2020" / f"{name}.csv").write_text(
            "class,startTime_ev,endTime_ev\n" + "".join(f"{c},{a},{b}\n" for c, a, b in rows)
        )
        truth[name] = (events, rows)
    return truth


def test_sl_animals_slicing_groups_and_reduced_set(tmp_path):
    names = ["user00_indoor", "user18_sunlight", "user25_imse", "user35_dc", "user36_dc"]
    truth = make_sl_layout(tmp_path, names)
    data = sl_animals(tmp_path, progress=False)
    assert len(data) == 5 * 19
    assert data.classes == read_definitions(DEFINITIONS)
    assert data.classes[0] == "cat" and data.classes[18] == "zebra" and len(data.classes) == 19
    assert sorted(set(data.groups.tolist())) == ["S1", "S2", "S3", "S4"]
    for i, entry in enumerate(data.samples):
        events, rows = truth[entry["recording"]]
        label, start, end = rows[i % 19]
        piece, y = data[i]
        assert y == label - 1 and np.array_equal(piece, events[start:end])
    reduced = sl_animals(tmp_path, reduced=True, progress=False)
    assert len(reduced) == 4 * 19 and "S3" not in set(reduced.groups.tolist())
    train, test = fold_split(data, 0, n_folds=4, seed=0)
    assert len(train) + len(test) == len(data)
    assert not set(train.recordings.tolist()) & set(test.recordings.tolist())


def test_sl_animals_bad_tags(tmp_path):
    make_sl_layout(tmp_path, ["user25_imse"], per_sign=10)
    tags = tmp_path / "tags_updated_19_08_2020" / "user25_imse.csv"
    tags.write_text("class,startTime_ev,endTime_ev\n1,0,150\n2,150,999\n")
    with pytest.raises(DatasetError, match=r"user25_imse\.csv: line 3: class 2 spans events 150\.\.999 but user25_imse\.aedat holds 190 events"):
        sl_animals(tmp_path, progress=False)
    assert not list((tmp_path / "cache" / "sl_animals").glob("user25*"))
    tags.write_text("class,startTime_ev,endTime_ev\n1,50,40\n")
    with pytest.raises(DatasetError, match=r"line 2: event span 50\.\.40 is empty"):
        sl_animals(tmp_path, progress=False)
    with pytest.raises(DatasetError, match="cannot tell the lighting set"):
        recording_group("user99_moonlight")


def test_folds_equal_scikit_learn_kfold():
    """Fold test sets for the 59 real recording names: scikit-learn 1.x
    KFold(4, shuffle=True, random_state=0) over filelist.txt (as the STBP seed)."""
    names = FILELIST.read_text().split()
    assert len(names) == 59
    expected = [
        [2, 4, 10, 11, 22, 26, 28, 30, 33, 34, 35, 40, 41, 43, 46],
        [5, 7, 14, 15, 18, 27, 29, 31, 32, 37, 42, 48, 49, 55, 56],
        [1, 8, 12, 13, 16, 17, 20, 25, 38, 45, 50, 51, 52, 57, 58],
        [0, 3, 6, 9, 19, 21, 23, 24, 36, 39, 44, 47, 53, 54],
    ]
    folds = kfold_recordings(names, 4, seed=0)
    for (train, test), indices in zip(folds, expected):
        assert test == [names[i] for i in indices]
        assert sorted(train + test) == sorted(names)
    reduced = [n for n in names if recording_group(n) != "S3"]
    assert len(reduced) == 42
    assert kfold_recordings(reduced, 4, 0)[0][1] == [reduced[i] for i in [4, 10, 11, 25, 27, 28, 29, 30, 31, 36, 37]]
    sklearn = pytest.importorskip("sklearn.model_selection")
    for (_, test), (_, index) in zip(folds, sklearn.KFold(4, shuffle=True, random_state=0).split(names)):
        assert test == [names[i] for i in index]


def test_sample_counts_on_full_size_name_lists():
    """59 recordings x 19 signs = 1,121 samples; reduced: 42 x 19."""
    names = FILELIST.read_text().split()
    groups = [recording_group(n) for n in names]
    assert {g: groups.count(g) for g in sorted(set(groups))} == {"S1": 10, "S2": 25, "S3": 17, "S4": 7}
    assert len(names) * 19 == 1121


def test_cache_files_are_complete_npz(gesture_root):
    root, _, _ = gesture_root
    data = dvs128_gesture(root, "test", progress=False)
    for entry in data.samples:
        with np.load(data.cache.directory / entry["file"], allow_pickle=False) as archive:
            assert set(archive.files) == {"events", "label"}
    assert os.path.isfile(data.cache.manifest_path("user24_led"))


def test_sl_animals_from_config(tmp_path):
    """The config path: fold 1 of 4 over recordings, the reduced set, frames of 50 x 30 ms."""
    from nengo_actions.config import load_config
    from nengo_actions.data.prepare import frame_transforms, open_event_splits

    names = [f"user{i:02d}_{s}" for i, s in enumerate(["indoor", "sunlight", "imse", "dc", "dc", "imse", "sunlight", "dc"])]
    make_sl_layout(tmp_path, names)
    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(
        repo / "configs" / "sl_animals_events.json",
        [f"data.root={tmp_path}", "events.sl_animals.fold=1", "events.sl_animals.reduced=true"],
    )
    splits = open_event_splits(cfg, progress=False)
    kept = [n for n in names if not n.endswith("_indoor")]
    _, test_names = kfold_recordings(kept, 4, 0)[1]
    assert sorted(set(splits["test"].recordings.tolist())) == sorted(test_names)
    assert len(splits["train"]) + len(splits["test"]) == 19 * len(kept)
    train_transform, _ = frame_transforms(cfg.events.frames, splits["train"].sensor_size)
    assert train_transform(splits["train"].events(0)).shape == (50, 128, 128, 2)
