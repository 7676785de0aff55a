"""UCF101 split files: the real lists, labels, groups, the leak check, file lookup."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from feature_extraction import ucf101
from feature_extraction.ucf101 import DatasetError, GroupLeakError
from nengo_actions.config import ConfigError
from nengo_actions.splits import SplitLeakError

FIXTURES = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "ucf101"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "classInd.txt").exists(), reason="no UCF101 fixtures")


@pytest.fixture(scope="module")
def real_split():
    return ucf101.read_split(FIXTURES, 1)


@needs_fixtures
def test_real_split_1_counts_classes_and_labels(real_split):
    assert len(real_split.class_names) == 101
    assert real_split.class_names[0] == "ApplyEyeMakeup"
    assert real_split.class_names[36] == "HandstandPushups"  # index 37, 1-based
    assert real_split.class_names[-1] == "YoYo"
    assert len(real_split.train) == 9537 and len(real_split.test) == 3783
    # labels are classInd index - 1, read from the train list's own label column too
    first = real_split.train[0]
    assert first.clip_id == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01"
    assert (first.label, first.group, first.number) == (0, 8, 1)
    # CRLF is stripped everywhere
    assert not any("\r" in c.relpath or "\r" in c.clip_id for c in real_split.train + real_split.test)
    labels = np.array([c.label for c in real_split.test])
    assert labels.min() == 0 and labels.max() == 100 and len(np.unique(labels)) == 101


@needs_fixtures
def test_real_split_1_tests_groups_1_to_7_without_leak(real_split):
    train_groups = {c.group for c in real_split.train}
    test_groups = {c.group for c in real_split.test}
    assert test_groups == set(range(1, 8))
    assert train_groups == set(range(8, 26))
    ucf101.check_leak(real_split.train, real_split.test)  # does not raise


@needs_fixtures
def test_handstand_case_quirk_keeps_the_folder_class(real_split):
    quirky = [c for c in real_split.train if c.relpath.startswith("HandstandPushups/")]
    assert quirky and all("v_HandStandPushups_" in c.relpath for c in quirky)
    assert {c.label for c in quirky} == {36}
    assert quirky[0].class_name == "HandstandPushups"


@needs_fixtures
def test_test_list_labels_come_from_classInd_not_from_names(real_split, tmp_path):
    # renumber the classes: labels must follow classInd, whatever the folder names
    names = list(reversed(real_split.class_names))
    (tmp_path / "classInd.txt").write_text("".join(f"{i + 1} {n}\r\n" for i, n in enumerate(names)))
    test = ucf101.read_split_list(FIXTURES / "testlist01.txt", names, labelled=False)
    assert test[0].class_name == "ApplyEyeMakeup" and test[0].label == 100


def write_lists(folder, train, test, classes=("Walk", "Run")):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classInd.txt").write_bytes("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes)).encode())
    (folder / "trainlist01.txt").write_bytes("".join(f"{line}\r\n" for line in train).encode())
    (folder / "testlist01.txt").write_bytes("".join(f"{line}\r\n" for line in test).encode())
    return folder


def test_a_group_on_both_sides_fails_loudly(tmp_path):
    folder = write_lists(
        tmp_path,
        ["Walk/v_Walk_g02_c01.avi 1", "Run/v_Run_g03_c01.avi 2"],
        ["Walk/v_Walk_g01_c01.avi", "Run/v_Run_g03_c02.avi"],
    )
    with pytest.raises(GroupLeakError, match=r"groups \[3\].*leaks") as e:
        ucf101.read_split(folder, 1)
    assert "trainlist01.txt" in str(e.value)
    # one error for both callers: the config error (exit 2) and the splits module's
    assert isinstance(e.value, ConfigError) and isinstance(e.value, SplitLeakError)


def test_missing_split_file_is_named(tmp_path):
    folder = write_lists(tmp_path, ["Walk/v_Walk_g02_c01.avi 1"], ["Walk/v_Walk_g01_c01.avi"])
    (folder / "testlist01.txt").unlink()
    with pytest.raises(DatasetError, match="split file not found: .*testlist01.txt"):
        ucf101.read_split(folder, 1)
    with pytest.raises(DatasetError, match="trainlist02.txt"):
        ucf101.read_split(folder, 2)
    with pytest.raises(DatasetError, match="data.split"):
        ucf101.read_split(folder, 4)


@pytest.mark.parametrize(
    "train_line, message",
    [
        ("Walk/v_Walk_g02_c01.avi 2", r"line 1: label '2' disagrees with classInd.txt \(Walk is 1\)"),
        ("Jump/v_Jump_g02_c01.avi 1", "line 1: class 'Jump' is not in classInd.txt"),
        ("Walk/v_Run_g02_c01.avi 1", "does not belong to folder 'Walk'"),
        ("Walk/walking.avi 1", "is not v_<Class>_gGG_cCC"),
        ("Walk/v_Walk_g02_c01.avi", r"line 1: expected '<Class>/<file>.avi <index>'"),
    ],
)
def test_malformed_list_lines_name_file_and_line(tmp_path, train_line, message):
    folder = write_lists(tmp_path, [train_line], ["Walk/v_Walk_g01_c01.avi"])
    with pytest.raises(DatasetError, match=message) as e:
        ucf101.read_split(folder, 1)
    assert "trainlist01.txt" in str(e.value)


def test_class_index_must_be_complete(tmp_path):
    (tmp_path / "classInd.txt").write_text("1 Walk\n3 Run\n")
    with pytest.raises(DatasetError, match="indices must run 1..2"):
        ucf101.read_class_index(tmp_path / "classInd.txt")


def test_validation_split_by_whole_groups():
    clips = [ucf101.Clip(f"A/v_A_g{g:02d}_c{k:02d}", f"A/v_A_g{g:02d}_c{k:02d}.avi", 0, g, k)
             for g in range(8, 26) for k in range(1, 5)]
    train, val = ucf101.validation_split(clips, 0.2, seed=3)
    assert len(train) + len(val) == len(clips)
    assert not {c.group for c in train} & {c.group for c in val}
    assert 0.15 <= len(val) / len(clips) <= 0.3
    assert ucf101.validation_split(clips, 0.2, seed=3) == (train, val)


def test_video_locator_tolerates_case(tmp_path):
    (tmp_path / "handstandpushups").mkdir()
    video = tmp_path / "handstandpushups" / "v_HandstandPushups_g01_c01.avi"
    video.write_bytes(b"x")
    clip = ucf101.Clip("HandstandPushups/v_HandStandPushups_g01_c01",
                       "HandstandPushups/v_HandStandPushups_g01_c01.avi", 36, 1, 1)
    assert ucf101.VideoLocator(tmp_path)(clip) == video
    missing = ucf101.Clip("Walk/v_Walk_g01_c01", "Walk/v_Walk_g01_c01.avi", 0, 1, 1)
    assert ucf101.VideoLocator(tmp_path)(missing) == tmp_path / "Walk/v_Walk_g01_c01.avi"


def test_frame_folder_flat_or_by_class(tmp_path):
    clip = ucf101.Clip("Walk/v_Walk_g01_c01", "Walk/v_Walk_g01_c01.avi", 0, 1, 1)
    (tmp_path / "v_Walk_g01_c01").mkdir()
    assert ucf101.frame_folder(tmp_path, clip) == tmp_path / "v_Walk_g01_c01"
    shutil.rmtree(tmp_path / "v_Walk_g01_c01")
    (tmp_path / "Walk" / "v_Walk_g01_c01").mkdir(parents=True)
    assert ucf101.frame_folder(tmp_path, clip) == tmp_path / "Walk" / "v_Walk_g01_c01"
