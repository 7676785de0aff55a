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
"""

from __future__ import annotations

import nengo
import numpy as np


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


def _register_nengo_dl_builders():
    from nengo.builder.operator import Reset
    from nengo.builder.signal import Signal

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

    for kind in (MeanRate, ChannelBroadcast):
        nengo_dl.builder.NengoBuilder.register(kind)(build)


_register_nengo_dl_builders()

__all__ = ["MeanRate", "ChannelBroadcast"]
