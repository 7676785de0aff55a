"""Per-clip and per-step metrics against values worked out by hand."""

import numpy as np
import pytest

from nengo_actions.clips import metrics as M

# 3 clips, 4 frames, 3 classes. Labels 0, 1, 2.
OUT = np.array(
    [
        # clip 0: frames pick 1, 1, 0, 0 -> last: 0, votes tie 2-2
        [[0.0, 1.0, 0.0], [0.1, 0.9, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0]],
        # clip 1: frames pick 1, 1, 1, 2 -> last: 2, vote: 1
        [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.6, 0.4], [0.0, 0.4, 0.6]],
        # clip 2: frames pick 2, 0, 0, 0 -> last: 0, vote: 0
        [[0.0, 0.0, 1.0], [0.9, 0.0, 0.1], [0.8, 0.0, 0.2], [0.6, 0.0, 0.4]],
    ]
)
LABELS = np.array([0, 1, 2])


def test_clip_answers_by_method():
    assert M.clip_scores(OUT, "last").argmax(-1).tolist() == [0, 2, 0]
    # mean of the last 2 frames: clip0 [.75,.25,0] -> 0; clip1 [0,.5,.5] -> 1 (first of
    # the tie); clip2 [.7,0,.3] -> 0
    assert M.clip_scores(OUT, "mean", last_k=2).argmax(-1).tolist() == [0, 1, 0]
    mean2 = M.clip_scores(OUT, "mean", last_k=2)
    np.testing.assert_allclose(mean2[0], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(mean2[2], [0.7, 0.0, 0.3])
    # votes: clip 0 ties 2-2 between classes 0 and 1; mean scores 0.4 vs 0.6 -> class 1
    assert M.clip_scores(OUT, "vote").argmax(-1).tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="clip method"):
        M.clip_scores(OUT, "median")


def test_accuracies_by_hand():
    r = M.evaluate_outputs(OUT, LABELS, 3, method="last", last_k=2, top_k=2)
    assert r["clip_accuracy"] == pytest.approx(1 / 3)  # only clip 0 right
    assert r["clip_accuracy_vote"] == pytest.approx(1 / 3)  # only clip 1 right
    # per-step: clip0 frames right 2/4, clip1 3/4, clip2 1/4 -> 6/12
    assert r["step_accuracy"] == pytest.approx(0.5)
    np.testing.assert_allclose(r["accuracy_per_step"], [2 / 3, 1 / 3, 2 / 3, 1 / 3])
    # top-2 of the last frame: clip0 {0,1} ok, clip1 {2,1} ok, clip2 {0,2} ok
    assert r["top2_accuracy"] == 1.0
    conf = r["confusion"]
    assert conf.tolist() == [[1, 0, 0], [0, 0, 1], [1, 0, 0]]
    np.testing.assert_allclose(r["per_class_accuracy"], [1.0, 0.0, 0.0])


def test_per_class_accuracy_of_an_absent_class_is_nan():
    conf = M.confusion_matrix([0, 0, 1], [0, 1, 1], 3)
    acc = M.per_class_accuracy(conf)
    assert acc[0] == 0.5 and acc[1] == 1.0 and np.isnan(acc[2])


def test_top_k_counts_the_label_among_the_best_k():
    scores = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4]])
    assert M.top_k_accuracy(scores, np.array([1, 0]), k=1) == 0.5
    # ties keep the lower class index first: row 1's best two are classes 2 and 0
    assert M.top_k_accuracy(scores, np.array([2, 0]), k=2) == 1.0
    assert M.top_k_accuracy(scores, np.array([2, 1]), k=2) == 0.5


def test_frame_outputs_average_each_frames_steps():
    steps = np.arange(2 * 6 * 1, dtype=float).reshape(2, 6, 1)
    frames = M.frame_outputs(steps, 3)
    assert frames.shape == (2, 2, 1)
    assert frames[0, :, 0].tolist() == [1.0, 4.0] and frames[1, :, 0].tolist() == [7.0, 10.0]
    with pytest.raises(ValueError, match="whole number"):
        M.frame_outputs(steps, 4)


def test_empty_or_mismatched_sets_are_errors():
    with pytest.raises(ValueError, match="empty"):
        M.evaluate_outputs(np.zeros((0, 2, 3)), np.zeros(0, int), 3)
    with pytest.raises(ValueError, match="labels"):
        M.evaluate_outputs(OUT, LABELS[:2], 3)
