"""Nodes that run as a Python function in Nengo and as one TensorFlow op in NengoDL.

Both replace a Nengo transform whose general NengoDL implementation is costly on the
converted conv nets' layers of 10^5 neurons, while the network stays a plain Nengo
network (Nengo's reference simulator and the GUI run them as ordinary nodes):

* :class:`MeanRate`: a population's mean firing rate. As a ``(1, n)`` dense transform,
  NengoDL transposes the whole ``(minibatch, n)`` output every step (about 15% of a
  spiking run of the DVS128 Gesture network).
* :class:`ChannelBroadcast`: a conv layer's per-channel biases repeated over every
  position. ``nengo_dl.Converter`` builds it as a fixed ``nengo.Sparse`` transform, which
  NengoDL runs as a sparse matrix product with transposes in and out, forward and
  backward (about a quarter of a spiking run and of a training step); here it is
  ``tf.tile``, whose gradient is a sum.
* :class:`MaxPool2D`: 2-d max pooling of a channels-last map (of spikes), which Nengo
  has no transform for (``nengo_dl.Converter`` can only replace it by average pooling).
"""

from __future__ import annotations

import nengo
import numpy as np
from nengo.builder.operator import Reset
from nengo.builder.signal import Signal


class MeanRate(nengo.Node):
    """``(n,) -> (1,)``: the mean of the input, times ``scale``.

    Parameters
    ----------
    n : int
        Input size (the population's neurons).
    scale : float
        Factor on the mean (``1 / amplitude`` gives Hz).
    """

    def __init__(self, n, scale=1.0, label=None):
        self.scale = float(scale)
        super().__init__(output=self._mean, size_in=int(n), size_out=1, label=label)

    def _mean(self, t, x):
        return np.mean(x, keepdims=True) * self.scale

    def tensor_func(self, tf, x):  # (minibatch, n) -> (minibatch, 1)
        return tf.reduce_mean(x, axis=-1, keepdims=True) * self.scale


class ChannelBroadcast(nengo.Node):
    """``(channels,) -> (positions * channels,)``: the input repeated ``positions``
    times, i.e. one value per channel over a channels-last feature map."""

    def __init__(self, channels, positions, label=None):
        self.positions = int(positions)
        super().__init__(output=self._tile, size_in=int(channels), size_out=int(channels) * self.positions, label=label)

    def _tile(self, t, x):
        return np.tile(x, self.positions)

    def tensor_func(self, tf, x):  # (minibatch, channels) -> (minibatch, positions * channels)
        return tf.tile(x, (1, self.positions))


class MaxPool2D(nengo.Node):
    """``(H * W * C,) -> (H // p * W // p * C,)``: the maximum of each ``p x p`` window of a
    flattened channels-last ``(H, W, C)`` map ("valid" pooling: a last odd row or column
    is dropped, as Keras' ``MaxPooling2D`` does)."""

    def __init__(self, height, width, channels, pool=2, label=None):
        self.shape, self.pool = (int(height), int(width), int(channels)), int(pool)
        h, w = self.shape[0] // self.pool, self.shape[1] // self.pool
        super().__init__(output=self._pool, size_in=int(np.prod(self.shape)), size_out=h * w * self.shape[2], label=label)

    def _pool(self, t, x):
        (H, W, C), p = self.shape, self.pool
        x = np.reshape(x, self.shape)[: H // p * p, : W // p * p]
        return x.reshape(H // p, p, W // p, p, C).max(axis=(1, 3)).ravel()

    def tensor_func(self, tf, x):  # (minibatch, H * W * C) -> (minibatch, size_out)
        x = tf.reshape(x, (-1,) + self.shape)
        x = tf.nn.max_pool2d(x, self.pool, self.pool, "VALID")
        return tf.reshape(x, (-1, self.size_out))


def _register_nengo_dl_builders():
    try:
        from nengo_actions.compat import nengo_dl, tf
    except ImportError:  # plain Nengo: the nodes run as Python functions
        return

    def build(model, node):
        sig_in = Signal(shape=(node.size_in,), name=f"{node}.in")
        sig_out = Signal(shape=(node.size_out,), name=f"{node}.out")
        model.add_op(Reset(sig_in))
        model.sig[node]["in"], model.sig[node]["out"] = sig_in, sig_out
        model.params[node] = None
        model.add_op(nengo_dl.tensor_node.SimTensorNode(lambda x: node.tensor_func(tf, x), None, sig_in, sig_out, None))

    for kind in (MeanRate, ChannelBroadcast, MaxPool2D):
        nengo_dl.builder.NengoBuilder.register(kind)(build)


_register_nengo_dl_builders()

__all__ = ["MeanRate", "ChannelBroadcast", "MaxPool2D"]
