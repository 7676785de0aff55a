"""Per-frame layers for NIR graphs: NIR's spiking neurons (``LIF``, ``IF``, ``CubaLIF``) as
discrete-time Nengo neurons, and sum pooling.

NIR describes neurons in continuous time; the frameworks that exchange it (SpikingJelly,
snnTorch, Lava-DL) run them with forward Euler at a fixed ``dt`` (``1e-4`` s by their
exporters' convention). Per step, with input ``J``, voltage ``v`` and, for ``CubaLIF``,
a synaptic current ``i``::

    LIF      v <- v + (r * J + v_leak - v) / tau            tau = tau_nir / dt
    IF       v <- v + r * dt * J
    CubaLIF  i <- i + (w_in * J - i) / tau_syn              tau_syn = tau_syn_nir / dt
             v <- v + (r * i + v_leak - v) / tau_mem        tau_mem = tau_mem_nir / dt
    spike    s = 1 if v >= v_threshold; then v <- v_reset

:class:`EulerLIF` holds all three (an ``IF`` is ``leak = 0``, ``tau = 1``,
``r = r_nir * dt``), every parameter per neuron or shared. It writes the LIF update in
the same order as :class:`~nengo_actions.networks.lif_node.DiscreteLIF`, so a network
exported by this project and imported again runs bit for bit as the original.
:class:`EulerCubaLIF` adds the synaptic current.

Keras side: :class:`EulerNeurons` is a per-frame layer that only carries the parameters
(its ``call`` passes the input current through, since a per-frame Keras model has no
state); the ``nengo_dl.Converter`` rule registered here turns it into an ensemble of
these neurons, as :class:`~nengo_actions.networks.lif_node.ConvertLIF` does for trained
LIF layers. One spike is the value 1 (``amplitude = dt``). :class:`SumPooling2D` is NIR's
``SumPool2d``, converted like NengoDL converts average pooling but with a kernel of ones.
"""

from __future__ import annotations

import nengo
import numpy as np
from nengo.dists import Choice
from nengo.params import NdarrayParam, NumberParam

from nengo_actions.compat import nengo_dl, tf

#: Per-neuron parameters, in the order of :class:`EulerLIF`'s constructor.
LIF_PARAMS = ("tau", "r", "v_leak", "leak", "threshold", "v_reset")


class EulerLIF(nengo.neurons.NeuronType):
    """NIR's ``LIF`` and ``IF`` under forward Euler (see the module). Every parameter is a
    scalar or an array with one value per neuron; ``tau`` is in steps."""

    state = {"voltage": Choice([0.0])}
    spiking = True
    negative = False

    tau = NdarrayParam("tau", shape=("*",))
    r = NdarrayParam("r", shape=("*",))
    v_leak = NdarrayParam("v_leak", shape=("*",))
    leak = NdarrayParam("leak", shape=("*",))
    threshold = NdarrayParam("threshold", shape=("*",))
    v_reset = NdarrayParam("v_reset", shape=("*",))
    amplitude = NumberParam("amplitude", low=0, low_open=True)

    def __init__(self, tau=2.0, r=1.0, v_leak=0.0, leak=1.0, threshold=1.0, v_reset=0.0, amplitude=1.0,
                 initial_state=None):
        super().__init__(initial_state)
        for name, value in zip(LIF_PARAMS, (tau, r, v_leak, leak, threshold, v_reset)):
            setattr(self, name, np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel())
        if np.any(self.tau <= 0):
            raise ValueError("tau must be positive")
        self.amplitude = amplitude

    def max_rates_intercepts(self, gain, bias):
        """Rates at ``x = 1`` and zero intercepts: these networks set gains and biases
        themselves, and nengo's default search would simulate 101 inputs per neuron."""
        return self.rates(1.0, gain, bias).reshape(np.shape(gain)), np.zeros_like(gain)

    def rates(self, x, gain, bias, dt=0.001, steps=200):
        """Firing rates (Hz at ``dt``) of constant inputs, counted over ``steps`` steps."""
        J = self.current(x, gain, bias)
        state = {name: np.zeros_like(J, dtype=float) for name in self.state}
        out, count = np.zeros_like(J, dtype=float), np.zeros_like(J, dtype=float)
        for _ in range(steps):
            self.step(dt, J, out, **state)
            count += out * dt / self.amplitude
        return count * self.amplitude / (steps * dt)

    def _charge(self, dt, J, voltage, state):
        voltage += (self.r * J + self.v_leak - self.leak * voltage) / self.tau

    def step(self, dt, J, output, voltage, **state):
        self._charge(dt, J, voltage, state)
        spiked = voltage >= self.threshold
        output[...] = spiked * (self.amplitude / dt)
        voltage[...] = np.where(spiked, self.v_reset, voltage)


class EulerCubaLIF(EulerLIF):
    """NIR's ``CubaLIF``: :class:`EulerLIF` driven by a synaptic current (see the module)."""

    state = {"voltage": Choice([0.0]), "current": Choice([0.0])}

    tau_syn = NdarrayParam("tau_syn", shape=("*",))
    w_in = NdarrayParam("w_in", shape=("*",))

    def __init__(self, tau_syn=2.0, w_in=1.0, **kwargs):
        super().__init__(**kwargs)
        self.tau_syn = np.atleast_1d(np.asarray(tau_syn, dtype=np.float64)).ravel()
        self.w_in = np.atleast_1d(np.asarray(w_in, dtype=np.float64)).ravel()

    def _charge(self, dt, J, voltage, state):
        current = state["current"]
        current += (self.w_in * J - current) / self.tau_syn
        super()._charge(dt, current, voltage, state)


def _per_neuron(ops, name, dtype):
    """One constant for the merged ``ops``: a scalar when every value is the same, else a
    ``(1, neurons)`` row (arrays of one value are broadcast over their op's neurons)."""
    values = [np.broadcast_to(getattr(op.neurons, name), (op.J.shape[0],)) for op in ops]
    flat = np.concatenate(values)
    if np.all(flat == flat[0]):
        return tf.constant(flat[0], dtype=dtype)
    return tf.constant(flat[None, :], dtype=dtype)


class EulerLIFBuilder(nengo_dl.neuron_builders.TFNeuronBuilder):
    """NengoDL's TensorFlow step of :class:`EulerLIF`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        for name in LIF_PARAMS:
            setattr(self, name, _per_neuron(self.ops, name, signals.dtype))

    def _fire(self, voltage, dtype):
        spiked = voltage >= self.threshold
        return tf.cast(spiked, dtype) * self.alpha, tf.where(spiked, self.v_reset + tf.zeros_like(voltage), voltage)

    def step(self, J, dt, voltage):
        voltage = voltage + (self.r * J + self.v_leak - self.leak * voltage) / self.tau
        return self._fire(voltage, J.dtype)


class EulerCubaLIFBuilder(EulerLIFBuilder):
    """NengoDL's TensorFlow step of :class:`EulerCubaLIF`."""

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.tau_syn = _per_neuron(self.ops, "tau_syn", signals.dtype)
        self.w_in = _per_neuron(self.ops, "w_in", signals.dtype)

    def step(self, J, dt, voltage, current):
        current = current + (self.w_in * J - current) / self.tau_syn
        voltage = voltage + (self.r * current + self.v_leak - self.leak * voltage) / self.tau
        spikes, voltage = self._fire(voltage, J.dtype)
        return spikes, voltage, current


nengo_dl.neuron_builders.SimNeuronsBuilder.TF_NEURON_IMPL[EulerLIF] = EulerLIFBuilder
nengo_dl.neuron_builders.SimNeuronsBuilder.TF_NEURON_IMPL[EulerCubaLIF] = EulerCubaLIFBuilder


class EulerNeurons(tf.keras.layers.Layer):
    """A layer of :class:`EulerLIF` (or, with ``tau_syn``, :class:`EulerCubaLIF`) neurons
    in a per-frame Keras model, for ``nengo_dl.Converter``.

    ``params`` maps the names of the neuron type's constructor to scalars or arrays in
    the layer's flattened channels-last order. ``call`` passes the input current through:
    the model only describes the layers for conversion.
    """

    def __init__(self, params, dt=0.001, **kwargs):
        super().__init__(**kwargs)
        self.params, self.dt = dict(params), float(dt)

    def neuron_type(self):
        kind = EulerCubaLIF if "tau_syn" in self.params else EulerLIF
        return kind(amplitude=self.dt, **self.params)

    def call(self, x):
        # a tensor of its own: the converter keys layers by their output tensors
        return tf.identity(x)


@nengo_dl.Converter.register(EulerNeurons)
class ConvertEulerNeurons(nengo_dl.converter.LayerConverter):
    """An :class:`EulerNeurons` layer as an ensemble of its neurons (spike = 1)."""

    def convert(self, node_id):
        output = self.add_nengo_obj(node_id, activation=self.layer.neuron_type())
        self.add_connection(node_id, output)
        return output


class SumPooling2D(tf.keras.layers.AveragePooling2D):
    """NIR's ``SumPool2d``: the sum of each window ("valid", channels-last)."""

    def call(self, x):
        return super().call(x) * float(np.prod(self.pool_size))


@nengo_dl.Converter.register(SumPooling2D)
class ConvertSumPooling2D(nengo_dl.converter.LayerConverter):
    """:class:`SumPooling2D` as a fixed ``nengo.Convolution`` whose kernel sums each
    channel over the window."""

    unsupported_args = [("padding", "valid"), ("data_format", "channels_last")]

    def convert(self, node_id):
        output = self.add_nengo_obj(node_id)
        channels = self.output_shape(node_id)[-1]
        size = tuple(self.layer.pool_size)
        kernel = np.broadcast_to(np.eye(channels), size + (channels, channels))
        pool = nengo.Convolution(
            n_filters=channels, input_shape=self.input_shape(node_id), padding="valid",
            strides=tuple(self.layer.strides), kernel_size=size, init=np.array(kernel), channels_last=True,
        )
        self.add_connection(node_id, output, transform=pool)
        return output


__all__ = [
    "SumPooling2D",
    "ConvertSumPooling2D","EulerLIF", "EulerCubaLIF", "EulerLIFBuilder", "EulerCubaLIFBuilder", "EulerNeurons", "ConvertEulerNeurons"]
