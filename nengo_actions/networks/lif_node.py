"""The discrete-time LIF neuron of SpikingJelly and the PLIF paper, in Keras and in Nengo.

One neuron model in three forms that compute the same thing step for step:

* :class:`DiscreteLIF`, a ``nengo.neurons.NeuronType`` (numpy ``step`` for Nengo's
  reference simulator and the GUI), with a native NengoDL builder
  (:class:`DiscreteLIFBuilder`, registered in ``SimNeuronsBuilder.TF_NEURON_IMPL``);
* :class:`LIF`, a Keras layer over ``(batch, steps, ...)`` inputs for direct training:
  spikes in the forward pass, the ATan surrogate gradient in the backward pass;
* a ``nengo_dl.Converter`` rule (registered for :class:`LIF`) that turns the layer into
  an ensemble of :class:`DiscreteLIF` neurons with the layer's (trained) time constant.

The dynamics, per simulation step, with input current ``J``, voltage ``v`` (rest and
reset at 0) and time constant ``tau`` in steps (SpikingJelly's ``LIFNode`` with
``decay_input=True``, ``v_reset=0``)::

    v <- v + (J - v) / tau
    s  = 1 if v >= threshold else 0
    v <- v * (1 - s)                     (hard reset)

The model has no ``dt``: one step is one step, whatever the simulator's ``dt``. A spike
is an output of ``amplitude / dt`` in Nengo (Nengo's convention: a spike integrates to
``amplitude``), so ``amplitude = dt`` makes one spike the value 1, as in Keras.

PLIF (Fang et al. 2021): with ``trainable_tau``, ``1 / tau = sigmoid(w)`` with one
trained ``w`` per layer, initialised so that ``tau`` starts at ``tau``.
"""

from __future__ import annotations

import math

import nengo
import numpy as np
from nengo.dists import Choice
from nengo.params import NumberParam

from nengo_actions.compat import nengo_dl, tf

#: Voltage at rest and after a spike.
V_RESET = 0.0


class DiscreteLIF(nengo.neurons.NeuronType):
    """Discrete-time leaky integrate-and-fire neurons with hard reset (see the module).

    Parameters
    ----------
    tau : float
        Membrane time constant, simulation steps (>= 1).
    threshold : float
        Voltage at which a neuron spikes.
    amplitude : float
        Output of a spike times ``dt``.
    """

    state = {"voltage": Choice([V_RESET])}
    spiking = True
    negative = False

    tau = NumberParam("tau", low=1)
    threshold = NumberParam("threshold", low=0, low_open=True)
    amplitude = NumberParam("amplitude", low=0, low_open=True)

    def __init__(self, tau=2.0, threshold=1.0, amplitude=1.0, initial_state=None):
        super().__init__(initial_state)
        self.tau = tau
        self.threshold = threshold
        self.amplitude = amplitude

    def rates(self, x, gain, bias):
        """Steady firing rate (spikes per step / 0.001 s) of constant inputs."""
        J = self.current(x, gain, bias)
        out = np.zeros_like(J, dtype=float)
        above = J > self.threshold
        steps = np.ceil(np.log1p(-self.threshold / J[above]) / math.log1p(-1 / self.tau))
        out[above] = self.amplitude / (np.maximum(steps, 1) * 0.001)
        return out

    def step(self, dt, J, output, voltage):
        voltage += (J - voltage) / self.tau
        spiked = voltage >= self.threshold
        output[...] = spiked * (self.amplitude / dt)
        voltage[spiked] = V_RESET


class DiscreteLIFBuilder(nengo_dl.neuron_builders.TFNeuronBuilder):
    """NengoDL's TensorFlow step of :class:`DiscreteLIF` (batched, inside the graph)."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        neurons, sizes = [op.neurons for op in self.ops], [op.J.shape[0] for op in self.ops]
        self.tau = signals.op_constant(neurons, sizes, "tau", signals.dtype)
        self.threshold = signals.op_constant(neurons, sizes, "threshold", signals.dtype)

    def step(self, J, dt, voltage):
        voltage = voltage + (J - voltage) / self.tau
        spiked = tf.cast(voltage >= self.threshold, J.dtype)
        return spiked * self.alpha, voltage * (1 - spiked)


nengo_dl.neuron_builders.SimNeuronsBuilder.TF_NEURON_IMPL[DiscreteLIF] = DiscreteLIFBuilder


def atan_surrogate(alpha):
    """Heaviside step ``x >= 0`` whose gradient is SpikingJelly's ``surrogate.ATan``:
    ``alpha / 2 / (1 + (pi / 2 * alpha * x)^2)``."""

    @tf.custom_gradient
    def spike(x):
        def grad(dy):
            return dy * (alpha / 2) / (1 + tf.square(math.pi / 2 * alpha * x))

        return tf.cast(x >= 0, x.dtype), grad

    return spike


class LIF(tf.keras.layers.Layer):
    """LIF neurons over time: ``(batch, steps, ...) -> (batch, steps, ...)`` spikes (0/1).

    Parameters
    ----------
    tau : float
        Initial membrane time constant, steps (> 1 when trained).
    threshold : float
    trainable_tau : bool
        PLIF: learn one time constant for the layer.
    surrogate_alpha : float
        Sharpness of the ATan surrogate gradient.
    detach_reset : bool
        Leave the reset out of the gradient (SpikingJelly's ``detach_reset``).
    temporal : bool
        Inputs have a time axis (else each call is one step from rest).
    dt : float
        Seconds per step of the Nengo network converted from this layer.

    The per-frame model that ``nengo_dl.Converter`` reads has ``temporal=False``; the
    converted ensemble carries the voltage from step to step.
    """

    def __init__(self, tau=2.0, threshold=1.0, trainable_tau=False, surrogate_alpha=2.0, detach_reset=True, temporal=True, dt=0.001, **kwargs):
        super().__init__(**kwargs)
        self.tau_init, self.threshold = float(tau), float(threshold)
        self.trainable_tau, self.surrogate_alpha = bool(trainable_tau), float(surrogate_alpha)
        self.detach_reset, self.temporal, self.dt = bool(detach_reset), bool(temporal), float(dt)
        if self.trainable_tau and self.tau_init <= 1:
            raise ValueError(f"{self.name}: a trained tau starts above 1 step, got {tau}")
        self._spike = atan_surrogate(self.surrogate_alpha)

    def build(self, input_shape):
        if self.trainable_tau:
            w0 = -math.log(self.tau_init - 1.0)  # sigmoid(w0) = 1 / tau
            self.w = self.add_weight(name="w", shape=(), initializer=tf.keras.initializers.Constant(w0), trainable=True)
        super().build(input_shape)

    def decay(self):
        """``1 / tau`` as a tensor."""
        if self.trainable_tau:
            return tf.sigmoid(self.w)
        return tf.constant(1.0 / self.tau_init)

    def tau(self):
        """The time constant, steps (a float)."""
        return float(1.0 / self.decay().numpy())

    def call(self, x):
        k = tf.cast(self.decay(), x.dtype)
        if not self.temporal:
            return self._spike(x * k - self.threshold)
        if x.shape[1] is None:  # symbolic shapes while a model is built
            return self._scan(x, k)
        return self._sequence(x, k)

    def _scan(self, x, k):
        def step(carry, x_t):
            v = carry[0] + (x_t - carry[0]) * k
            s = self._spike(v - self.threshold)
            return v * (1 - s), s

        perm = [1, 0] + list(range(2, x.shape.rank))
        v = tf.zeros_like(x[:, 0])
        _, spikes = tf.scan(step, tf.transpose(x, perm), initializer=(v, v))
        return tf.transpose(spikes, perm)

    def _sequence(self, x, k):
        """The T steps, with backpropagation through time written out: one fused
        expression per step and direction instead of the autodiff graph of every
        step's ops (4-5x faster on the CPU; the gradients are the same)."""
        threshold, alpha, detach = self.threshold, self.surrogate_alpha, self.detach_reset

        def surrogate(u):
            return (alpha / 2) / (1 + tf.square(math.pi / 2 * alpha * u))

        @tf.custom_gradient
        def run(x, k):
            steps = x.shape[1]
            v = tf.zeros_like(x[:, 0])
            charged, spikes = [], []
            for t in range(steps):
                h = v + (x[:, t] - v) * k
                s = tf.cast(h >= threshold, x.dtype)
                charged.append(h)
                spikes.append(s)
                v = h * (1 - s)
            out = tf.stack(spikes, axis=1)
            # the backward pass keeps only the voltages and the stacked output: the
            # per-step spikes and the voltages before each step are read or recomputed
            # from them (the same values), which holds two fewer copies of the layer's
            # activity over T in memory
            del spikes

            def grad(g_spikes):
                g_v, g_x, g_k = tf.zeros_like(x[:, 0]), [None] * steps, tf.zeros((), x.dtype)
                for t in reversed(range(steps)):
                    h, s = charged[t], out[:, t]
                    before = charged[t - 1] * (1 - out[:, t - 1]) if t else tf.zeros_like(h)
                    ds = surrogate(h - threshold)
                    g_h = g_spikes[:, t] * ds + g_v * (1 - s)
                    if not detach:  # v = h (1 - s(h))
                        g_h -= g_v * h * ds
                    g_x[t] = g_h * k
                    g_k += tf.reduce_sum(g_h * (x[:, t] - before))
                    g_v = g_h * (1 - k)
                return tf.stack(g_x, axis=1), g_k

            return out, grad

        return run(x, k)

    def get_config(self):
        config = super().get_config()
        config.update(
            tau=self.tau_init, threshold=self.threshold, trainable_tau=self.trainable_tau,
            surrogate_alpha=self.surrogate_alpha, detach_reset=self.detach_reset, temporal=self.temporal, dt=self.dt,
        )
        return config


@nengo_dl.Converter.register(LIF)
class ConvertLIF(nengo_dl.converter.LayerConverter):
    """A :class:`LIF` layer as an ensemble of :class:`DiscreteLIF` neurons (spike = 1)."""

    def convert(self, node_id):
        neurons = DiscreteLIF(tau=self.layer.tau(), threshold=self.layer.threshold, amplitude=self.layer.dt)
        output = self.add_nengo_obj(node_id, activation=neurons)
        self.add_connection(node_id, output)
        return output


__all__ = ["DiscreteLIF", "DiscreteLIFBuilder", "LIF", "ConvertLIF", "atan_surrogate"]
