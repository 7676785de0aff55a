"""Native TensorFlow builders for the Nengo neuron types NengoDL lacks.

NengoDL 3.6 has TensorFlow implementations for LIF, LIFRate, (Spiking)RectifiedLinear and
the rate-to-spike wrappers, but simulates `nengo.AdaptiveLIF`, `nengo.AdaptiveLIFRate` and
`nengo.Izhikevich` by calling each type's numpy ``step`` from inside the TensorFlow graph,
one minibatch item at a time and with no gradients. This module gives those three types
TensorFlow builders, registered in ``SimNeuronsBuilder.TF_NEURON_IMPL``, so that they run
inside the graph, batched, and train with ``Simulator.fit``.

The spiking dynamics follow Nengo 3.2 step for step (state variables, reset rules, the
order of updates, ``dt``), so a NengoDL simulation reproduces ``nengo.Simulator`` exactly in
``float64`` and up to float32 rounding at the default ``dtype``.

Training follows NengoDL's convention for spiking types: the forward pass during
``fit`` uses a differentiable rate approximation, the spiking dynamics are used
everywhere else.

- `nengo.AdaptiveLIFRate` is differentiable as it stands, through time and through its
  adaptation state.
- `nengo.AdaptiveLIF` trains as `nengo.AdaptiveLIFRate` with the same parameters: the
  output is the LIF rate of ``J - n`` (the SoftLIF rate when NengoDL's ``lif_smoothing``
  is configured, as for LIF) and the adaptation ``n`` keeps evolving by the same rule,
  while voltage and refractory time are held, as NengoDL does for LIF.
- `nengo.Izhikevich` has no closed-form rate. It trains through its measured
  steady-state firing-rate curve: the Nengo step function simulated at the simulator's
  ``dt`` over a grid of constant input currents (see `izhikevich_rate_curve`), linearly
  interpolated, so the rate it trains on is the rate its spiking version fires at.

Registration happens when this module is imported (and is idempotent through
`register`). The training engine imports this module before it builds any
``nengo_dl.Simulator``; any other code that builds a NengoDL simulator with these neuron
types should do the same::

    import nengo_actions.neurons.tf_builders  # noqa: F401 (registers the builders)

`unregister` restores NengoDL's Python fallback (used by the benchmark to compare).
"""

from __future__ import annotations

import functools

import nengo
import numpy as np

from nengo_actions.compat import nengo_dl, tf

# after the compat import, which configures TensorFlow's logging before it loads
from tensorflow.python.framework import smart_cond as _smart_cond  # noqa: E402

_nb = nengo_dl.neuron_builders

__all__ = [
    "AdaptiveLIFRateBuilder",
    "AdaptiveLIFBuilder",
    "IzhikevichBuilder",
    "BUILDERS",
    "register",
    "unregister",
    "is_registered",
    "izhikevich_rate_curve",
]


class _RateTrainedBuilder(_nb.TFNeuronBuilder):
    """A TF neuron builder whose training pass may also update some neuron states.

    NengoDL's `TFNeuronBuilder` holds every state constant while training a spiking
    type. Subclasses here implement ``training_update(J, dt, **state)`` returning
    ``(rate_output, {state_name: new_value})``; states left out of the dict are held.
    """

    spiking = True

    def training_update(self, J, dt, **state):
        raise NotImplementedError("Subclasses must implement training_update")

    def build_step(self, signals, **step_kwargs):
        J = signals.gather(self.J_data)
        state = {name: signals.gather(data) for name, data in self.state_data.items()}

        spiking = tuple(tf.nest.flatten(self.step(J, signals.dt, **state)))
        if len(spiking) != 1 + len(state):
            raise ValueError(
                f"{type(self).__name__}.step returned {len(spiking)} tensors; expected "
                f"the output and one tensor per state ({', '.join(state)})"
            )

        def training():
            rate, updated = self.training_update(J, signals.dt, **state)
            return (rate,) + tuple(updated.get(name, v) for name, v in state.items())

        if self.config.inference_only:
            out = spiking
        else:
            out = tf.nest.flatten(
                _smart_cond.smart_cond(
                    self.config.training,
                    true_fn=training,
                    # as in NengoDL: the spiking branch's gradients (which may hold nans
                    # from the spike-time solve) must not leak through the cond
                    false_fn=lambda: tuple(tf.stop_gradient(x) for x in spiking),
                )
            )

        signals.scatter(self.output_data, out[0])
        for data, value in zip(self.state_data.values(), out[1:]):
            signals.scatter(data, value)


def _per_neuron_constant(builder, signals, attr):
    return signals.op_constant(
        [op.neurons for op in builder.ops],
        [op.J.shape[0] for op in builder.ops],
        attr,
        signals.dtype,
    )


class AdaptiveLIFRateBuilder(_nb.LIFRateBuilder):
    """Builds `nengo.AdaptiveLIFRate` operators.

    Per step (Nengo 3.2): ``output = LIFRate(J - n)``, then
    ``n += (dt / tau_n) * (inc_n * output - n)``. Differentiable through ``n``.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.tau_n = _per_neuron_constant(self, signals, "tau_n")
        self.inc_n = _per_neuron_constant(self, signals, "inc_n")

    def step(self, J, dt, adaptation):
        output = super().step(J - adaptation, dt)
        adaptation = adaptation + (dt / self.tau_n) * (self.inc_n * output - adaptation)
        return output, adaptation


class AdaptiveLIFBuilder(_RateTrainedBuilder, _nb.LIFBuilder):
    """Builds `nengo.AdaptiveLIF` operators.

    Per step (Nengo 3.2): the LIF step on ``J - n`` (voltage, refractory time, spike),
    then ``n += (dt / tau_n) * (inc_n * output - n)`` with ``output`` the spike train
    (``amplitude / dt`` on a spike). Trains as `nengo.AdaptiveLIFRate`.
    """

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        self.tau_n = _per_neuron_constant(self, signals, "tau_n")
        self.inc_n = _per_neuron_constant(self, signals, "inc_n")

    def _adapt(self, adaptation, output, dt):
        return adaptation + (dt / self.tau_n) * (self.inc_n * output - adaptation)

    def step(self, J, dt, voltage, refractory_time, adaptation):
        # Nengo's LIF step, in Nengo's order, so that the refractory_time state holds
        # the same values as in nengo.Simulator (NengoDL's LIFBuilder stores it one dt
        # earlier, which gives the same spikes but a different probed state)
        J = J - adaptation
        refractory_time = refractory_time - dt
        delta_t = tf.clip_by_value(dt - refractory_time, self.zero, dt)
        voltage = voltage - (J - voltage) * tf.math.expm1(-delta_t / self.tau_rc)

        spiked = voltage > self.one
        spikes = tf.cast(spiked, J.dtype) * self.alpha
        # the spike time within the step; only used where spiked (elsewhere it may be
        # nan, which the spiking branch's stop_gradient keeps out of training)
        t_spike = dt + self.tau_rc * tf.math.log1p(
            -(voltage - self.one) / (J - self.one)
        )
        voltage = tf.where(spiked, self.zeros, tf.maximum(voltage, self.min_voltage))
        refractory_time = tf.where(spiked, self.tau_ref + t_spike, refractory_time)
        return spikes, voltage, refractory_time, self._adapt(adaptation, spikes, dt)

    def training_update(self, J, dt, voltage, refractory_time, adaptation):
        rate = _nb.LIFBuilder.training_step(self, J - adaptation, dt)
        return rate, {"adaptation": self._adapt(adaptation, rate, dt)}


# Izhikevich clips its input current from below (nengo.Izhikevich.step)
IZHIKEVICH_MIN_CURRENT = -30.0


@functools.lru_cache(maxsize=32)
def izhikevich_rate_curve(
    tau_recovery=0.02,
    coupling=0.2,
    reset_voltage=-65.0,
    reset_recovery=8.0,
    dt=0.001,
    n_points=2049,
    settle_time=0.2,
    sim_time=2.0,
):
    """Steady-state firing rate of `nengo.Izhikevich` neurons against input current.

    Runs ``nengo.Izhikevich.step`` (float64, numpy) at the given ``dt`` for neurons
    with constant input currents on a uniform grid from -30 (where Nengo clips the
    current) up to the smallest current found that fires on every step (rate
    ``1 / dt``), and counts spikes after a settling period.

    Parameters
    ----------
    tau_recovery, coupling, reset_voltage, reset_recovery : float
        The `nengo.Izhikevich` parameters.
    dt : float
        Simulator time step, in seconds. The discrete-time rate depends on it.
    n_points : int
        Number of grid currents.
    settle_time, sim_time : float
        Seconds simulated before counting spikes, and seconds over which they are
        counted (the rate resolution is ``1 / sim_time`` Hz).

    Returns
    -------
    current0 : float
        The first grid current (-30).
    d_current : float
        Grid spacing.
    rates : ``(n_points,)`` ndarray
        Firing rate in Hz at each grid current, made non-decreasing; currents above
        the grid fire at ``rates[-1]`` (which is ``1 / dt`` unless no such current
        was found up to 1e6).
    """
    neuron = nengo.Izhikevich(
        tau_recovery=tau_recovery,
        coupling=coupling,
        reset_voltage=reset_voltage,
        reset_recovery=reset_recovery,
    )

    def measure(J, settle, duration):
        state = {
            "output": np.zeros_like(J),
            "voltage": np.zeros_like(J),
            "recovery": np.zeros_like(J),
        }
        for _ in range(int(round(settle / dt))):
            neuron.step(dt, J, **state)
        steps = int(round(duration / dt))
        spikes = np.zeros_like(J)
        for _ in range(steps):
            neuron.step(dt, J, **state)
            spikes += state["output"] > 0
        return spikes / (steps * dt)

    max_rate = 1.0 / dt
    current_max = 64.0
    while current_max < 1e6:
        if measure(np.array([current_max]), 0.05, 0.1)[0] >= max_rate:
            break
        current_max *= 2

    current = np.linspace(IZHIKEVICH_MIN_CURRENT, current_max, n_points)
    rates = measure(current, settle_time, sim_time)
    # the discrete-time curve is monotone up to counting noise; a monotone table keeps
    # gradients non-negative
    rates = np.maximum.accumulate(rates)
    return float(current[0]), float(current[1] - current[0]), rates


class IzhikevichBuilder(_RateTrainedBuilder):
    """Builds `nengo.Izhikevich` operators.

    Per step (Nengo 3.2): ``J = max(J, -30)``; ``v += 1000 * (0.04 v^2 + 5 v + 140 - u +
    J) * dt``; a spike (output ``1 / dt``) where ``v >= 30``, resetting ``v`` to
    ``reset_voltage``; then ``u += 1000 * tau_recovery * (coupling * v - u) * dt`` with
    the reset ``v``, plus ``reset_recovery`` where it spiked. Trains through
    `izhikevich_rate_curve`, interpolated linearly.
    """

    PARAMS = ("tau_recovery", "coupling", "reset_voltage", "reset_recovery")

    def build_pre(self, signals, config):
        super().build_pre(signals, config)
        for name in self.PARAMS:
            setattr(self, name, _per_neuron_constant(self, signals, name))

        dtype = signals.dtype
        self.min_current = tf.constant(IZHIKEVICH_MIN_CURRENT, dtype)
        self.threshold = tf.constant(30.0, dtype)

        # one rate curve per distinct parameter set in this merged group; each neuron
        # reads its own through an index offset into the concatenated curves
        curve_of, curves, neuron_curve = {}, [], []
        for op in self.ops:
            key = tuple(float(getattr(op.neurons, name)) for name in self.PARAMS)
            if key not in curve_of:
                curve_of[key] = len(curves)
                curves.append(izhikevich_rate_curve(*key, dt=float(signals.dt_val)))
            neuron_curve.append(np.full(op.J.shape[0], curve_of[key]))
        neuron_curve = np.concatenate(neuron_curve)
        current0 = curves[0][0]  # the same for all: the current clip
        spacing = np.array([c[1] for c in curves])
        self.curve_points = curves[0][2].shape[0]
        self.curve_rates = tf.constant(np.concatenate([c[2] for c in curves]), dtype)
        self.curve_current0 = tf.constant(current0, dtype)
        if len(curves) == 1:
            self.curve_spacing = tf.constant(spacing[0], dtype)
            self.curve_offset = None
        else:
            self.curve_spacing = tf.constant(spacing[neuron_curve][None, :], dtype)
            self.curve_offset = tf.constant(
                (neuron_curve * self.curve_points)[None, :], tf.int32
            )

    def step(self, J, dt, voltage, recovery):
        J = tf.maximum(J, self.min_current)
        dV = (0.04 * voltage**2 + 5 * voltage + 140 - recovery + J) * 1000
        voltage = voltage + dV * dt

        spiked = voltage >= self.threshold
        output = tf.cast(spiked, J.dtype) * self.alpha
        voltage = tf.where(spiked, tf.zeros_like(voltage) + self.reset_voltage, voltage)

        dU = (self.tau_recovery * (self.coupling * voltage - recovery)) * 1000
        recovery = recovery + dU * dt
        recovery = tf.where(spiked, recovery + self.reset_recovery, recovery)
        return output, voltage, recovery

    def rate(self, J):
        """Interpolated steady-state rate (Hz) for currents ``J``; differentiable."""
        position = (J - self.curve_current0) / self.curve_spacing
        position = tf.clip_by_value(position, 0.0, self.curve_points - 1.0)
        lower = tf.minimum(tf.floor(position), self.curve_points - 2.0)
        frac = position - lower
        index = tf.cast(lower, tf.int32)
        if self.curve_offset is not None:
            index += self.curve_offset
        low_rate = tf.gather(self.curve_rates, index)
        high_rate = tf.gather(self.curve_rates, index + 1)
        return low_rate + frac * (high_rate - low_rate)

    def training_update(self, J, dt, voltage, recovery):
        return self.rate(J), {}


BUILDERS = {
    nengo.AdaptiveLIFRate: AdaptiveLIFRateBuilder,
    nengo.AdaptiveLIF: AdaptiveLIFBuilder,
    nengo.Izhikevich: IzhikevichBuilder,
}


def register():
    """Add the builders to NengoDL's neuron table (idempotent)."""
    _nb.SimNeuronsBuilder.TF_NEURON_IMPL.update(BUILDERS)


def unregister():
    """Remove the builders, so NengoDL falls back to its Python implementation."""
    table = _nb.SimNeuronsBuilder.TF_NEURON_IMPL
    for neuron_type, builder in BUILDERS.items():
        if table.get(neuron_type) is builder:
            del table[neuron_type]


def is_registered():
    """True if every builder here is the one NengoDL will use for its type."""
    table = _nb.SimNeuronsBuilder.TF_NEURON_IMPL
    return all(table.get(t) is b for t, b in BUILDERS.items())


register()
