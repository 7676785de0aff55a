"""The training losses, each as a Keras loss and as its NumPy twin.

The NumPy twins score validation outputs (``val_loss``) without a second pass through
TensorFlow, so each must compute what its Keras loss computes.

* :func:`clip_loss`: outputs of a Nengo network trained by NengoDL, per simulation step;
  the loss is averaged over the frames.
* :func:`rate_loss`: spikes of a directly trained network, per frame; the loss is on the
  output firing rate over the frames (SpikingJelly's recipe): ``"mse"`` is
  ``mean_c (mean_t o - onehot)^2``, and cross-entropy takes the spike counts
  ``sum_t o`` as logits.

``last_steps = k > 0`` (``train.loss_steps``) uses only the last ``k`` frames.
"""

from __future__ import annotations

import numpy as np

from nengo_actions.compat import tf


def clip_loss(n_classes, kind="sparse_categorical_crossentropy", last_steps=0):
    """A Keras loss on per-step outputs, averaged over the last ``last_steps`` frames.

    ``y_pred`` arrives as ``(batch, steps, classes * frames_per_step)`` and ``y_true`` as
    ``(batch, steps, frames_per_step)``; both are unpacked to one row per frame first.
    ``last_steps=0`` averages over every frame (the seed's training target).
    """

    def loss(y_true, y_pred):
        batch = tf.shape(y_pred)[0]
        y_pred = tf.reshape(y_pred, (batch, -1, n_classes))
        y_true = tf.reshape(tf.cast(y_true, tf.int32), (batch, -1))
        if last_steps:
            y_pred, y_true = y_pred[:, -last_steps:], y_true[:, -last_steps:]
        if kind == "mse":
            target = tf.one_hot(y_true, n_classes, dtype=y_pred.dtype)
            return tf.reduce_mean(tf.square(y_pred - target), axis=[1, 2])
        per_step = tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        return tf.reduce_mean(per_step, axis=1)

    return loss


def numpy_clip_loss(outputs, labels, kind="sparse_categorical_crossentropy", last_steps=0):
    """:func:`clip_loss` on ``(clips, frames, classes)`` numpy outputs."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if last_steps:
        outputs = outputs[:, -last_steps:]
    n, steps, c = outputs.shape
    labels = np.broadcast_to(np.asarray(labels)[:, None], (n, steps))
    if kind == "mse":
        return float(np.mean((outputs - np.eye(c)[labels]) ** 2))
    return numpy_cross_entropy(outputs, labels)


def rate_loss(n_classes, kind="mse", last_steps=0):
    """A Keras loss on ``(batch, T, classes)`` output spikes and ``(batch,)`` labels."""

    def loss(y, out):
        if last_steps:
            out = out[:, -last_steps:]
        if kind == "mse":
            target = tf.one_hot(tf.cast(y, tf.int32), n_classes, dtype=out.dtype)
            return tf.reduce_mean(tf.square(tf.reduce_mean(out, axis=1) - target))
        counts = tf.reduce_sum(out, axis=1)
        return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, counts, from_logits=True))

    return loss


def numpy_rate_loss(outputs, labels, kind="mse", last_steps=0):
    """:func:`rate_loss` on ``(clips, frames, classes)`` numpy outputs."""
    outputs = np.asarray(outputs, np.float64)
    if last_steps:
        outputs = outputs[:, -last_steps:]
    labels = np.asarray(labels)
    if kind == "mse":
        return float(np.mean((outputs.mean(axis=1) - np.eye(outputs.shape[-1])[labels]) ** 2))
    return numpy_cross_entropy(outputs.sum(axis=1), labels)


def numpy_cross_entropy(logits, labels):
    """The mean of ``-log softmax(logits)[label]`` over every row of ``logits``
    (``(..., classes)``, float64) and its label (``labels``: the leading shape)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-np.mean(np.take_along_axis(logp, labels[..., None], axis=-1)))


__all__ = ["clip_loss", "numpy_clip_loss", "rate_loss", "numpy_rate_loss", "numpy_cross_entropy"]
