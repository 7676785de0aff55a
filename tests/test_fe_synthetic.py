"""The embedded synthetic action set: layout, XVID files, determinism, motion-only classes."""

import json

import cv2
import numpy as np
import pytest

from feature_extraction import synthetic, ucf101
from feature_extraction.frames import decode_video
from feature_extraction.synthetic import SyntheticSpec, ensure_synthetic, generate
from feature_extraction.ucf101 import DatasetError
from nengo_actions.config import override
from nengo_actions.config.schema import SyntheticActionsConfig

SPEC = SyntheticSpec(n_classes=4, n_groups=3, clips_per_group=2, n_frames=10, size=(32, 32), test_groups=(1,))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    assert generate(root, SPEC, progress=False) == 4 * 3 * 2
    return root


def test_ucf101_layout_with_crlf_lists(generated):
    lists = generated / "ucfTrainTestlist"
    raw = (lists / "trainlist01.txt").read_bytes()
    assert raw.count(b"\r\n") == 16 and raw.count(b"\n") == 16
    assert (lists / "classInd.txt").read_bytes().startswith(b"1 MoveLeft\r\n2 MoveRight\r\n")
    assert b" " not in (lists / "testlist01.txt").read_bytes()  # no label column
    dataset = ucf101.read_split(lists, 1)
    assert dataset.class_names == ["MoveLeft", "MoveRight", "MoveUp", "MoveDown"]
    assert {c.group for c in dataset.test} == {1} and {c.group for c in dataset.train} == {2, 3}
    assert len(dataset.train) == 16 and len(dataset.test) == 8
    for clip in dataset.train + dataset.test:
        assert (generated / "UCF-101" / clip.relpath).is_file()
    assert json.loads((generated / synthetic.MARKER).read_text())["n_classes"] == 4


def avi_video_fourcc(path):
    """biCompression of the first video stream's BITMAPINFOHEADER (the codec FourCC)."""
    head = path.read_bytes()[:8192]
    assert head[:4] == b"RIFF" and head[8:12] == b"AVI "
    strh = head.index(b"strh")
    assert head[strh + 8:strh + 12] == b"vids"
    strf = head.index(b"strf", strh)
    return head[strf + 8 + 16:strf + 8 + 20]


def test_videos_are_xvid_and_decode_to_the_rendered_frames(generated):
    path = generated / "UCF-101/MoveUp/v_MoveUp_g02_c01.avi"
    assert avi_video_fourcc(path) == b"XVID"  # as in the real UCF101 files
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 10
    decoded = decode_video(path)
    rendered = synthetic.clip_frames(SPEC, 2, 2, 1)
    assert decoded.shape == rendered.shape == (10, 32, 32, 3)
    mse = ((decoded.astype(float) - rendered) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 25  # PSNR in dB: a lossy codec, the same picture


def test_generation_is_deterministic(tmp_path, generated):
    a = synthetic.clip_frames(SPEC, 1, 3, 2)
    assert np.array_equal(a, synthetic.clip_frames(SPEC, 1, 3, 2))
    assert not np.array_equal(a, synthetic.clip_frames(SPEC, 1, 3, 1))
    other_seed = SyntheticSpec(**{**SPEC.__dict__, "seed": 1})
    assert not np.array_equal(a, synthetic.clip_frames(other_seed, 1, 3, 2))
    generate(tmp_path, SPEC, progress=False)
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        assert (tmp_path / "ucfTrainTestlist" / name).read_bytes() == (generated / "ucfTrainTestlist" / name).read_bytes()
    clip = "UCF-101/MoveDown/v_MoveDown_g01_c02.avi"
    assert np.array_equal(decode_video(tmp_path / clip), decode_video(generated / clip))


def test_every_class_visits_the_same_states_and_differs_in_motion():
    """Per-frame object states share one range in every class; the change tells the class."""
    spec = SyntheticSpec(n_classes=10, n_frames=16)
    rng = np.random.default_rng(0)
    states = {name: np.stack([synthetic.clip_trajectory(spec, name, rng) for _ in range(300)])
              for name in synthetic.CLASS_NAMES}
    for name, s in states.items():
        assert s[..., 0].min() >= synthetic.CENTRE_RANGE[0] - 1e-9 and s[..., 0].max() <= synthetic.CENTRE_RANGE[1] + 1e-9
        assert s[..., 2].min() >= synthetic.ANGLE_RANGE[0] - 1e-9 and s[..., 2].max() <= synthetic.ANGLE_RANGE[1] + 1e-9
    # the mid-clip position of a left and a right mover: overlapping distributions
    left, right = states["MoveLeft"][:, 8, 0], states["MoveRight"][:, 8, 0]
    assert abs(left.mean() - right.mean()) < 0.05
    # the motion separates them perfectly
    assert (np.diff(states["MoveLeft"][..., 0], axis=1) < 0).all()
    assert (np.diff(states["MoveRight"][..., 0], axis=1) > 0).all()
    assert (np.diff(states["RotateClockwise"][..., 2], axis=1) > 0).all()
    assert (np.diff(states["Shrink"][..., 3], axis=1) < 0).all()
    travel = lambda name: np.abs(states[name][:, -1, 0] - states[name][:, 0, 0]).mean()  # noqa: E731
    assert travel("MoveRight") > 2 * travel("MoveRightSlow")


def test_appearance_is_per_group_not_per_class():
    a = synthetic.clip_frames(SPEC, 0, 2, 1).astype(float)
    b = synthetic.clip_frames(SPEC, 3, 2, 1).astype(float)
    c = synthetic.clip_frames(SPEC, 0, 3, 1).astype(float)
    colour = lambda frames: np.median(frames.reshape(-1, 3), axis=0)  # noqa: E731  (the background)
    assert np.abs(colour(a) - colour(b)).max() < np.abs(colour(a) - colour(c)).max()


def test_ensure_synthetic_generates_once_and_never_overwrites_other_data(tmp_path):
    root = tmp_path / "data"
    assert ensure_synthetic(root, SPEC, progress=False) is True
    assert ensure_synthetic(root, SPEC, progress=False) is False
    changed = SyntheticSpec(**{**SPEC.__dict__, "clips_per_group": 1})
    with pytest.raises(DatasetError, match="other data.synthetic settings; set data.generate"):
        ensure_synthetic(root, changed, generate_missing=False)
    assert ensure_synthetic(root, changed, progress=False) is True
    assert len(list((root / "UCF-101" / "MoveLeft").glob("*.avi"))) == 3
    foreign = tmp_path / "ucf"
    (foreign / "UCF-101").mkdir(parents=True)
    with pytest.raises(DatasetError, match="did not write"):
        ensure_synthetic(foreign, SPEC)
    with pytest.raises(DatasetError, match="is missing; set data.generate"):
        ensure_synthetic(tmp_path / "empty", SPEC, generate_missing=False)


def test_spec_validation_names_the_key():
    with pytest.raises(DatasetError, match="data.synthetic.n_classes"):
        SyntheticSpec(n_classes=11)
    with pytest.raises(DatasetError, match="data.synthetic.test_groups"):
        SyntheticSpec(n_groups=3, test_groups=(1, 2, 3))
    with pytest.raises(DatasetError, match="data.synthetic.size"):
        SyntheticSpec(size=(33, 32))
    section = override(SyntheticActionsConfig(), {"n_classes": 3, "size": [48, 64], "test_groups": [2]}, "test")
    spec = SyntheticSpec.from_config(section)
    assert spec.size == (48, 64) and spec.test_groups == (2,)
    assert spec.n_classes == 3 and spec.n_groups == section.n_groups
