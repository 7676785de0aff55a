"""Frames: decoding real UCF101 clips, JPEG folders, sampling policies, padding, resizing."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from feature_extraction.frames import (
    FrameSampler,
    Resize,
    ShortClipError,
    VideoReadError,
    decode_video,
    load_clip,
    read_frame_folder,
)

FIXTURES = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "ucf101"
EYE_MAKEUP = FIXTURES / "test.avi"  # v_ApplyEyeMakeup_g01_c01
BASKETBALL = FIXTURES / "v_Basketball_g01_c01.avi"
needs_clips = pytest.mark.skipif(not EYE_MAKEUP.exists(), reason="no UCF101 clips in the fixtures")


@needs_clips
def test_decode_real_clips_frame_counts_and_first_frame():
    frames = decode_video(EYE_MAKEUP)
    assert frames.shape == (164, 240, 320, 3) and frames.dtype == np.uint8
    # the mean of frame 1 recorded for this clip by an independent FFmpeg decode
    assert frames[0].mean() == pytest.approx(87.11957465277777, abs=1e-9)
    assert frames[1].mean() == pytest.approx(87.23327, abs=0.05)
    # RGB order: OpenCV's own BGR frame reversed
    capture = cv2.VideoCapture(str(EYE_MAKEUP))
    ok, bgr = capture.read()
    capture.release()
    assert ok and np.array_equal(frames[0], bgr[:, :, ::-1])
    assert len(decode_video(BASKETBALL)) == 141


@needs_clips
def test_decode_stops_early_for_the_first_policy():
    frames = decode_video(EYE_MAKEUP, max_frames=28)
    assert frames.shape[0] == 28
    clip, available, _ = load_clip(EYE_MAKEUP, FrameSampler("first", 28), Resize(224, 224))
    assert clip.shape == (28, 224, 224, 3) and available == 28


@needs_clips
def test_uniform_sampling_of_a_real_clip_picks_segment_centres():
    full = decode_video(BASKETBALL)
    clip, available, _ = load_clip(BASKETBALL, FrameSampler("uniform", 10))
    assert available == 141
    expected = [int((i + 0.5) * 141 / 10) for i in range(10)]
    assert expected[0] == 7 and expected[-1] == 133
    assert np.array_equal(clip, full[expected])


def test_sampler_first_uniform_all():
    assert FrameSampler("first", 4)(10).tolist() == [0, 1, 2, 3]
    assert FrameSampler("uniform", 4)(10).tolist() == [1, 3, 6, 8]
    assert FrameSampler("uniform", 3)(3).tolist() == [0, 1, 2]
    assert FrameSampler("all", 4)(6).tolist() == [0, 1, 2, 3, 4, 5]
    assert FrameSampler("first", 28).frames_needed == 28
    assert FrameSampler("uniform", 28).frames_needed is None


def test_short_clips_are_padded_with_the_last_frame_or_skipped():
    assert FrameSampler("first", 6, "pad")(4).tolist() == [0, 1, 2, 3, 3, 3]
    assert FrameSampler("uniform", 5, "pad")(2).tolist() == [0, 1, 1, 1, 1]
    with pytest.raises(ShortClipError, match="4 frames < frames.n_frames=6"):
        FrameSampler("first", 6, "skip")(4)
    with pytest.raises(VideoReadError, match="no frames"):
        FrameSampler("first", 6)(0)
    with pytest.raises(ValueError, match="policy"):
        FrameSampler("random", 6)


def write_video(path, frames, fps=25):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), fps, frames.shape[2:0:-1])
    for frame in frames:
        writer.write(frame[:, :, ::-1])
    writer.release()


def test_padding_through_load_clip(tmp_path):
    frames = np.repeat(np.linspace(20, 230, 5).astype(np.uint8)[:, None, None, None], 32, 1)
    frames = np.repeat(np.repeat(frames, 32, 2), 3, 3)
    write_video(tmp_path / "short.avi", frames)
    clip, available, _ = load_clip(tmp_path / "short.avi", FrameSampler("first", 8, "pad"))
    assert available == 5 and clip.shape == (8, 32, 32, 3)
    # padded steps repeat the last decoded frame
    assert all(np.array_equal(clip[i], clip[4]) for i in range(5, 8))
    assert np.allclose(clip.reshape(8, -1).mean(1)[:5], np.linspace(20, 230, 5), atol=4)
    with pytest.raises(ShortClipError):
        load_clip(tmp_path / "short.avi", FrameSampler("uniform", 8, "skip"))


def test_missing_and_undecodable_videos_say_why(tmp_path):
    with pytest.raises(VideoReadError, match="missing: .*nope.avi does not exist"):
        decode_video(tmp_path / "nope.avi")
    (tmp_path / "junk.avi").write_bytes(b"RIFF this is not a video" * 100)
    with pytest.raises(VideoReadError, match="undecodable"):
        decode_video(tmp_path / "junk.avi")


@needs_clips
def test_jpeg_frame_folder_in_frame_number_order(tmp_path):
    frames = decode_video(EYE_MAKEUP, max_frames=12)
    folder = tmp_path / "v_ApplyEyeMakeup_g01_c01"
    folder.mkdir()
    for i, frame in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"frame{i:06d}.jpg"), frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    read = read_frame_folder(folder)
    assert read.shape == frames.shape
    # order: frame000010 after frame000009; JPEG changes pixels only slightly
    errors = np.abs(read.astype(int) - frames.astype(int)).reshape(12, -1).mean(1)
    assert errors.max() < 3
    assert read_frame_folder(folder, max_frames=3).shape[0] == 3
    with pytest.raises(VideoReadError, match="missing: frame folder"):
        read_frame_folder(tmp_path / "absent")


def test_resize_shape_and_values():
    frames = np.full((3, 240, 320, 3), 77, np.uint8)
    frames[:, :, 160:] = 200
    out = Resize(112, 112)(frames)
    assert out.shape == (3, 112, 112, 3)
    assert np.all(out[:, :, :50] == 77) and np.all(out[:, :, 62:] == 200)
    assert Resize(240, 320)(frames) is frames or np.array_equal(Resize(240, 320)(frames), frames)
    small = Resize(64, 48)(frames[:, :24, :32])
    assert small.shape == (3, 64, 48, 3)
