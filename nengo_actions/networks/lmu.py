"""A Legendre Memory Unit written natively in Nengo, with rate or spiking neurons.

The memory is the LMU's linear system (Voelker, Kajić and Eliasmith, 2019): ``order``
Legendre coefficients of a sliding window of ``theta`` steps of its scalar input ``u``,

    m[t] = A m[t-1] + B u[t],

with the continuous-time ``A``, ``B`` of the delay discretised by zero-order hold at one
simulation step. ``memory_d`` such memories run side by side on ``memory_d`` trainable
projections of the input. A hidden layer of ``units`` neurons reads the memory (and,
optionally, the input and its own previous frame), and a trainable readout gives class
scores at every step.

Two variants:

* **rate** (``memory_neuron_type=None``): the memory is a linear ``nengo.Node``, the
  hidden layer rate neurons (the seed's non-spiking LMU);
* **spiking**: memory and hidden layers are ensembles of spiking neurons. The memory is
  held by an ensemble that feeds its decoded state back through ``A`` (Nengo's
  recurrent-ensemble design). With ``memory_encoding="onoff"`` each memory dimension is
  represented by pairs of neurons with encoders +1 and -1 and intercept 0, so that
  rectified-linear rates are exactly linear in the state and the analytic decoders are
  exact: the rate version of the spiking network *is* the LMU, training through rates
  loses nothing, and a ``SpikingRectifiedLinear`` neuron, which keeps the remainder of
  its voltage after each spike, passes the state on with an error that does not grow
  over time. ``memory_encoding="nengo"`` uses Nengo's default random tuning and solved
  decoders instead (the seed's design).

Firing rates scale with ``rate``: a rectified-linear neuron fires ``rate`` Hz for a unit
input and its output amplitude is ``1 / rate``, so the represented values, the training
problem and the gradients do not depend on ``rate``, while spike counts do.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

import nengo

from nengo_actions.networks.base import (
    BuildArgs,
    BuiltNetwork,
    add_layer_probes,
    feature_io,
    frame_delay,
    neuron_type_from_config,
    rate_counterpart,
    rate_regularizer,
)
from nengo_actions.config.models import LMUConfig, LMUSpikingConfig

#: Neuron types whose rate is ``amplitude * max(J, 0)``: gain sets the rate scale exactly.
_RELU_TYPES = (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)


def legendre_delay(order, theta):
    """Continuous-time ``A`` (order, order) and ``B`` (order, 1) of the Legendre memory.

    ``theta`` is the window length in the time unit of the discretisation (steps).
    """
    q = np.arange(order, dtype=np.float64)
    r = (2 * q + 1)[:, None] / theta
    j, i = np.meshgrid(q, q)
    A = np.where(i < j, -1.0, (-1.0) ** (i - j + 1)) * r
    B = ((-1.0) ** q)[:, None] * r
    return A, B


def zoh(A, B, dt=1.0):
    """Zero-order-hold discretisation: ``exp([[A, B], [0, 0]] dt)`` -> ``(Ad, Bd)``."""
    n, m = A.shape[0], B.shape[1]
    block = np.zeros((n + m, n + m))
    block[:n, :n] = A
    block[:n, n:] = B
    expm = scipy.linalg.expm(block * dt)
    return expm[:n, :n], expm[:n, n:]


def lmu_matrices(order, theta, dt=1.0):
    """Discrete ``(A, B)`` of the memory for a window of ``theta`` steps of ``dt``."""
    return zoh(*legendre_delay(order, theta), dt)


def _is_relu(neuron_type):
    base = getattr(neuron_type, "base_type", neuron_type)
    return isinstance(neuron_type, _RELU_TYPES) or isinstance(base, _RELU_TYPES)


class LMU(nengo.Network):
    """Legendre Memory Unit classifier: features per step -> class scores per step.

    Parameters
    ----------
    n_features : int
        Input size (features per frame).
    n_classes : int
        Output size.
    order : int
        Legendre coefficients per memory (the seed: 2).
    units : int
        Hidden neurons (the seed: 800).
    theta : float
        Memory window in simulation steps (the seed: 28, the frames per clip).
    memory_d : int
        Number of memories, each on its own trainable projection of the input.
    hidden_neuron_type : nengo.neurons.NeuronType
        Hidden neurons (rate: ``RectifiedLinear``; spiking: ``SpikingRectifiedLinear``).
    memory_neuron_type : nengo.neurons.NeuronType or None
        ``None``: a linear memory node; otherwise the memory ensemble's neurons.
    memory_neurons_per_dim : int
        Neurons per memory dimension and sign (``onoff``) or per dimension (``nengo``).
    memory_encoding : str
        ``"onoff"`` (exactly linear, analytic decoders) or ``"nengo"`` (random tuning).
    rate : float
        Hz per unit input of the rectified-linear neurons (amplitude ``1 / rate``).
    memory_rate : float
        The same for the memory neurons: Hz at a memory value of 1.
    input_to_hidden, hidden_to_hidden : bool
        Connections from the input and from the hidden layer's previous frame.
    frame_steps : int
        Steps per frame (the hidden layer's recurrence is delayed by one frame).
    memory_tau : float
        Time constant (in steps) of the low-pass synapse that holds the memory state
        of a neuron memory; 0 feeds the state back through a one-step delay.
    input_highpass : float
        Time constant (in steps) of a high-pass filter on the input (``x - lowpass(x)``)
        before the memory and hidden layer; 0: none.
    dt : float
        Simulation step (seconds).
    memory_synapse, readout_synapse : Synapse or None
        On memory -> hidden and hidden -> output.
    max_rates, intercepts : nengo.dists.Distribution
        Tuning of non-rectified-linear neurons (e.g. LIF).
    """

    def __init__(
        self,
        n_features,
        n_classes,
        order=2,
        units=800,
        theta=28,
        memory_d=1,
        hidden_neuron_type=None,
        memory_neuron_type=None,
        memory_neurons_per_dim=16,
        memory_encoding="onoff",
        rate=1.0,
        memory_rate=None,
        input_to_hidden=True,
        hidden_to_hidden=False,
        frame_steps=1,
        memory_tau=0.0,
        input_highpass=0.0,
        dt=0.001,
        memory_synapse=None,
        readout_synapse=None,
        max_rates=None,
        intercepts=None,
        label=None,
        seed=None,
        add_to_container=None,
    ):
        super().__init__(label=label, seed=seed, add_to_container=add_to_container)
        from nengo_actions.compat import nengo_dl

        hidden_neuron_type = hidden_neuron_type or nengo.RectifiedLinear()
        memory_rate = rate if memory_rate is None else memory_rate
        max_rates = max_rates or nengo.dists.Uniform(200, 400)
        intercepts = intercepts or nengo.dists.Uniform(-1.0, 0.9)
        A, B = lmu_matrices(order, theta)
        dims = order * memory_d
        self.A = np.kron(np.eye(memory_d), A)
        self.B = np.kron(np.eye(memory_d), B)
        self.order, self.memory_d, self.theta = order, memory_d, theta
        glorot = nengo_dl.dists.Glorot()

        with self:
            nengo_dl.configure_settings(trainable=None)
            self.input = nengo.Node(size_in=n_features, label="input")
            self.u = nengo.Node(size_in=memory_d, label="u")
            source = self.input
            if input_highpass:
                # x - lowpass(x): what changes in the features, without the static
                # appearance of the scene (fixed weights, not trained).
                source = nengo.Node(size_in=n_features, label="input_change")
                direct = nengo.Connection(self.input, source, synapse=None)
                smooth = nengo.Connection(
                    self.input, source, transform=-1.0, synapse=nengo.Lowpass(input_highpass * dt)
                )
                self.config[direct].trainable = False
                self.config[smooth].trainable = False
            self.input_change = source
            nengo.Connection(source, self.u, transform=glorot, synapse=None)

            if memory_neuron_type is None:
                self.memory = nengo.Node(size_in=dims, label="memory")
                memory_out = self.memory
                decoder_solver = {}
                self.memory_ensemble = None
            else:
                self.memory = self.memory_ensemble = self._memory_ensemble(
                    dims, memory_neuron_type, memory_neurons_per_dim, memory_encoding,
                    memory_rate, max_rates,
                )
                memory_out = self.memory
                decoder_solver = {"solver": self._memory_solver}
                self.config[self.memory].trainable = False
            # The memory's dynamics are the LMU's, not learned (as in the seed).
            if memory_tau and memory_neuron_type is not None:
                # Nengo's principle 3 for a discrete low-pass synapse h(z) = (1-a)/(z-a):
                # feeding back (A - aI)/(1-a) and B/(1-a) through h gives m[t+1] = A m[t]
                # + B u[t]. The state is then the synaptic current, which averages the
                # spikes over tau, so spike quantisation enters scaled by 1 - a instead
                # of in full (the recurrence through synapse=0).
                a = np.exp(-1.0 / memory_tau)
                synapse = nengo.Lowpass(memory_tau * dt)
                recurrent = (self.A - a * np.eye(dims)) / (1 - a)
                self.recurrence = nengo.Connection(
                    memory_out, self.memory, transform=recurrent, synapse=synapse, **decoder_solver
                )
                self.memory_input = nengo.Connection(
                    self.u, self.memory, transform=self.B / (1 - a), synapse=synapse
                )
            else:
                self.recurrence = nengo.Connection(
                    memory_out, self.memory, transform=self.A, synapse=0, **decoder_solver
                )
                self.memory_input = nengo.Connection(self.u, self.memory, transform=self.B, synapse=None)
            self.config[self.recurrence].trainable = False
            self.config[self.memory_input].trainable = False

            hidden_kw = {}
            if _is_relu(hidden_neuron_type):
                hidden_kw = dict(gain=nengo.dists.Choice([rate]), bias=nengo.dists.Choice([0.0]))
            else:
                hidden_kw = dict(max_rates=max_rates, intercepts=intercepts)
            self.hidden = nengo.Ensemble(
                units, 1, neuron_type=hidden_neuron_type, label="hidden", **hidden_kw
            )
            nengo.Connection(
                memory_out, self.hidden.neurons, transform=glorot, synapse=memory_synapse,
                **decoder_solver,
            )
            if input_to_hidden:
                nengo.Connection(source, self.hidden.neurons, transform=glorot, synapse=None)
            if hidden_to_hidden:
                nengo.Connection(
                    self.hidden.neurons,
                    self.hidden.neurons,
                    transform=glorot,
                    synapse=frame_delay(frame_steps),
                )
            self.output = nengo.Node(size_in=n_classes, label="output")
            nengo.Connection(
                self.hidden.neurons, self.output, transform=glorot, synapse=readout_synapse
            )

    def _memory_ensemble(self, dims, neuron_type, per_dim, encoding, memory_rate, max_rates):
        if encoding == "onoff":
            signs = np.tile(np.r_[np.ones(per_dim), -np.ones(per_dim)], dims)
            which = np.repeat(np.arange(dims), 2 * per_dim)
            encoders = np.zeros((len(signs), dims))
            encoders[np.arange(len(signs)), which] = signs
            if _is_relu(neuron_type):
                amplitude = float(getattr(neuron_type, "amplitude", 1.0))
                # rate = memory_rate * max(s * m_i, 0); output = amplitude * rate.
                decoders = encoders / (per_dim * amplitude * memory_rate)
                self._memory_solver = nengo.solvers.NoSolver(decoders, weights=False)
                tuning = dict(gain=nengo.dists.Choice([memory_rate]), bias=nengo.dists.Choice([0.0]))
            else:
                self._memory_solver = nengo.solvers.LstsqL2(reg=0.01)
                tuning = dict(
                    max_rates=nengo.dists.Choice([memory_rate]),
                    intercepts=nengo.dists.Choice([0.0]),
                )
            return nengo.Ensemble(
                len(signs), dims, neuron_type=neuron_type, encoders=encoders,
                normalize_encoders=False, label="memory", **tuning,
            )
        if encoding == "nengo":
            self._memory_solver = nengo.solvers.LstsqL2()
            return nengo.Ensemble(
                per_dim * dims, dims, neuron_type=neuron_type, max_rates=max_rates, label="memory"
            )
        raise ValueError(f"memory_encoding must be 'onoff' or 'nengo', got {encoding!r}")


def build_lmu(arch: LMUConfig, spiking_cfg: LMUSpikingConfig, args: BuildArgs, *, variant="lmu"):
    """Build the rate (``variant="lmu"``) or spiking (``"lmu_spiking"``) LMU.

    Architecture keys come from ``model.lmu`` (``arch``); the spiking variant's neurons,
    rates, synapses and rate regularisation from ``model.lmu_spiking``
    (``spiking_cfg``). ``args.spiking=False`` builds the spiking variant with the rate
    counterparts of its neurons (same parameters).
    """
    from nengo_actions.compat import nengo_dl

    n_features, n_classes, steps_per_frame = args.n_features, args.n_classes, args.steps_per_frame
    theta_frames = arch.theta if arch.theta is not None else args.n_frames
    kwargs = dict(
        order=arch.order,
        units=arch.units,
        theta=theta_frames * steps_per_frame,
        memory_d=arch.memory_d,
        input_to_hidden=arch.input_to_hidden,
        hidden_to_hidden=arch.hidden_to_hidden,
        frame_steps=steps_per_frame,
        input_highpass=(arch.input_highpass or 0.0) * steps_per_frame,
        dt=args.dt,
    )
    memories = f"{arch.memory_d} memor{'y' if arch.memory_d == 1 else 'ies'}"
    rate = spiking_cfg.rate
    memory_rate = spiking_cfg.memory_rate or rate
    hidden_type = neuron_type_from_config(arch.hidden_neuron_type, 1.0 / rate)
    if variant == "lmu":
        # The rate LMU: linear memory, rate neurons at unit scale.
        hidden_type = rate_counterpart(neuron_type_from_config(arch.hidden_neuron_type))
        kwargs.update(hidden_neuron_type=hidden_type, memory_neuron_type=None)
        description = (
            f"LMU (rate): order {arch.order}, {memories}, theta {theta_frames} frames, "
            f"linear memory, {arch.units} {type(hidden_type).__name__} hidden units"
        )
        is_spiking = False
    else:
        memory_type = neuron_type_from_config(arch.neuron_type, 1.0 / memory_rate)
        names = type(memory_type).__name__, type(hidden_type).__name__
        if args.spiking is False:
            hidden_type, memory_type = rate_counterpart(hidden_type), rate_counterpart(memory_type)
        kwargs.update(
            hidden_neuron_type=hidden_type,
            memory_neuron_type=memory_type,
            memory_neurons_per_dim=spiking_cfg.memory_neurons_per_dim,
            memory_encoding=spiking_cfg.memory_encoding,
            rate=rate,
            memory_rate=memory_rate,
            memory_tau=(spiking_cfg.memory_tau or 0.0) * steps_per_frame,
            memory_synapse=args.synapse(spiking_cfg.memory_synapse),
            readout_synapse=args.synapse(spiking_cfg.readout_synapse),
            max_rates=nengo.dists.Uniform(*spiking_cfg.max_rates),
        )
        is_spiking = bool(hidden_type.spiking or memory_type.spiking)
        n_memory = spiking_cfg.memory_neurons_per_dim * arch.order * arch.memory_d
        n_memory *= 2 if spiking_cfg.memory_encoding == "onoff" else 1
        description = (
            f"spiking LMU: order {arch.order}, {memories}, theta {theta_frames} frames; memory "
            f"ensemble of {n_memory} {names[0]} and hidden layer of "
            f"{arch.units} {names[1]} neurons "
            f"({spiking_cfg.memory_encoding} memory encoding, {rate:g} Hz per unit input)"
        )

    with nengo.Network(seed=args.seed, label=variant) as net:
        nengo_dl.configure_settings(stateful=False, trainable=None)
        # The subnetwork's seed derives from the outer one (an equal seed would give
        # its objects the same seeds as the outer network's probes).
        lmu = LMU(n_features, n_classes, **kwargs)
        features, feed, probe = feature_io(n_features, lmu.input, lmu.output)
    built = BuiltNetwork(
        network=net,
        input=features,
        output=probe,
        n_classes=n_classes,
        spiking=is_spiking,
        steps_per_frame=steps_per_frame,
        dt=args.dt,
        description=description,
    )
    built.lmu = lmu
    built.instrumentation.add(feed)
    if lmu.memory_ensemble is not None:
        add_layer_probes(built, "memory", lmu.memory_ensemble, args.raster_neurons)
    add_layer_probes(built, "hidden", lmu.hidden, args.raster_neurons)
    if variant == "lmu_spiking" and spiking_cfg.rate_regularization > 0:
        for layer in built.layers:
            built.loss_terms.append(
                (layer.rate_probe, rate_regularizer(spiking_cfg.rate_target), spiking_cfg.rate_regularization)
            )
    return built
