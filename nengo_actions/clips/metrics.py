"""Accuracy of per-step network outputs, per clip and per step.

A network gives class scores at every simulation step (after :func:`frame_outputs`, at
every frame): ``outputs`` has shape ``(clips, frames, classes)``. The headline figure is
**per-clip accuracy**, one answer per clip:

* ``"last"``: the scores at the last frame (what a streaming classifier would say when
  the clip ends);
* ``"mean"``: the scores averaged over the last ``k`` frames;
* ``"vote"``: the class most frames pick (ties go to the higher mean score).

For comparison with the seed, :func:`step_accuracy` is its figure: the fraction of all
(clip, frame) pairs classified correctly (Keras' accuracy over every step).

NumPy only; no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from nengo_actions.config.schema import CLIP_METHODS


def frame_outputs(outputs, steps_per_frame=1):
    """Average each frame's ``steps_per_frame`` steps: ``(clips, frames, classes)``."""
    outputs = np.asarray(outputs)
    if steps_per_frame == 1:
        return outputs
    n, steps, c = outputs.shape
    if steps % steps_per_frame:
        raise ValueError(f"{steps} steps is not a whole number of {steps_per_frame}-step frames")
    return outputs.reshape(n, steps // steps_per_frame, steps_per_frame, c).mean(axis=2)


def clip_scores(outputs, method="last", last_k=5):
    """One score vector per clip, ``(clips, classes)``; see the module docstring."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 3:
        raise ValueError(f"outputs must be (clips, frames, classes), got {outputs.shape}")
    if method == "last":
        return outputs[:, -1]
    if method == "mean":
        return outputs[:, -max(1, int(last_k)):].mean(axis=1)
    if method == "vote":
        n, steps, c = outputs.shape
        votes = np.zeros((n, c))
        np.add.at(votes, (np.repeat(np.arange(n), steps), outputs.argmax(-1).ravel()), 1)
        # Ties go to the class with the higher mean score: squash it into (0, 1).
        mean = outputs.mean(axis=1)
        ranks = mean.argsort(axis=1).argsort(axis=1)
        return votes + (ranks + 1) / (c + 1)
    raise ValueError(f"clip method must be one of {', '.join(CLIP_METHODS)}, got {method!r}")


def accuracy(predictions, labels):
    """Fraction of ``predictions == labels``."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set")
    return float(np.mean(predictions == labels))


def top_k_accuracy(scores, labels, k=5):
    """Fraction of clips whose label is among the ``k`` highest scores."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    k = min(int(k), scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def step_accuracy(outputs, labels):
    """The seed's figure: accuracy over every (clip, frame) pair."""
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    return float(np.mean(outputs.argmax(-1) == labels[:, None]))


def accuracy_per_step(outputs, labels):
    """Accuracy at each frame, ``(frames,)``: how the answer improves over the clip."""
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    return (outputs.argmax(-1) == labels[:, None]).mean(axis=0)


def confusion_matrix(labels, predictions, n_classes):
    """Counts ``(n_classes, n_classes)``: row = true class, column = predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def per_class_accuracy(confusion):
    """Recall of each class, ``(n_classes,)``; NaN for classes with no clips."""
    confusion = np.asarray(confusion, dtype=np.float64)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / totals, np.nan)


def evaluate_outputs(outputs, labels, n_classes, method="last", last_k=5, top_k=5):
    """Every figure for one set of outputs.

    Returns
    -------
    dict
        ``clip_accuracy`` (with ``method``), ``clip_accuracy_last``, ``clip_accuracy_mean``,
        ``clip_accuracy_vote``, ``top{k}_accuracy``, ``step_accuracy`` (floats) and
        ``confusion``, ``per_class_accuracy``, ``accuracy_per_step``, ``predictions``
        (arrays).
    """
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("cannot evaluate an empty set of clips")
    if len(outputs) != len(labels):
        raise ValueError(f"{len(outputs)} outputs for {len(labels)} labels")
    result = {}
    for m in CLIP_METHODS:
        result[f"clip_accuracy_{m}"] = accuracy(clip_scores(outputs, m, last_k).argmax(-1), labels)
    scores = clip_scores(outputs, method, last_k)
    predictions = scores.argmax(-1)
    confusion = confusion_matrix(labels, predictions, n_classes)
    result.update(
        clip_accuracy=result[f"clip_accuracy_{method}"],
        **{f"top{top_k}_accuracy": top_k_accuracy(scores, labels, top_k)},
        step_accuracy=step_accuracy(outputs, labels),
        confusion=confusion,
        per_class_accuracy=per_class_accuracy(confusion),
        accuracy_per_step=accuracy_per_step(outputs, labels),
        predictions=predictions,
    )
    return result


def evaluate_as_configured(outputs, labels, n_classes, evaluate):
    """:func:`evaluate_outputs` with the clip method, ``last_k`` and ``top_k`` of a
    config's ``evaluate`` section."""
    return evaluate_outputs(outputs, labels, n_classes, evaluate.clip_method, evaluate.last_k, evaluate.top_k)


