"""The EnsembleArray classifier: many small 1-d ensembles between a trainable input
transform and a linear readout.

The seed's UCF101 model (87.98% per-step accuracy on split 1): 10,000 ensembles of 50
``SpikingRectifiedLinear`` neurons, each ensemble representing one dimension of a
zero-initialised trainable projection of the 512-d frame features, and a Glorot
initialised readout from the 10,000 decoded values to the classes.

All ensembles are held in one ``nengo.Ensemble`` (``n_ensembles * n_neurons`` neurons):
ensemble ``g`` is the block of neurons ``g * n_neurons ... (g + 1) * n_neurons - 1``, fed
by dimension ``g`` of :attr:`EnsembleArrayClassifier.ensemble_input` through its 1-d
encoders and decoded into dimension ``g`` of :attr:`~EnsembleArrayClassifier.
ensemble_output` with its own least-squares decoders. This computes exactly what
``nengo.networks.EnsembleArray(n_neurons, n_ensembles)`` computes (a test checks it with
Nengo's reference simulator) but builds in seconds instead of minutes at 500,000
neurons, because Nengo builds and solves decoders for one object instead of 10,000.
"""

from __future__ import annotations

import nengo
import numpy as np

from nengo_actions.networks.base import (
    BuildArgs,
    BuiltNetwork,
    add_layer_probes,
    feature_io,
    neuron_type_from_config,
    rate_counterpart,
    rate_regularizer,
)
from nengo_actions.config.models import EnsembleArrayConfig


def solve_decoders(neuron_type, gain, bias, encoders, n_neurons, eval_points, reg=0.1, chunk=256):
    """Least-squares decoders of each block of ``n_neurons`` neurons for its 1-d value.

    The same regularised solution as ``nengo.solvers.LstsqL2(reg)`` applied to each
    ensemble of an ``EnsembleArray``: ``(A^T A + m (reg max A)^2 I) d = A^T x``, with
    ``A`` the block's rates at the ``m`` evaluation points ``x``.

    Parameters
    ----------
    gain, bias, encoders : (n_ensembles * n_neurons,) arrays
        Encoders are +1 or -1 (1-d ensembles).
    eval_points : (m,) array
        Represented values the decoders are fitted on, in [-1, 1].

    Returns
    -------
    (n_ensembles * n_neurons,) array
        Each neuron's decoder for its own ensemble's value.
    """
    x = np.asarray(eval_points, dtype=np.float64).reshape(-1)
    m = len(x)
    total = len(gain)
    n_groups = total // n_neurons
    decoders = np.empty(total)
    for start in range(0, n_groups, chunk):
        stop = min(n_groups, start + chunk)
        sl = slice(start * n_neurons, stop * n_neurons)
        proj = x[:, None] * np.asarray(encoders[sl], dtype=np.float64)[None, :]
        rates = neuron_type.rates(proj, gain[sl], bias[sl])  # (m, groups * n)
        A = rates.reshape(m, stop - start, n_neurons).transpose(1, 0, 2)  # (g, m, n)
        sigma = reg * A.max(axis=(1, 2))
        At = A.transpose(0, 2, 1)
        G = At @ A  # batched matmul (BLAS); einsum here is ~50x slower
        G[:, np.arange(n_neurons), np.arange(n_neurons)] += (m * sigma**2)[:, None]
        b = At @ x[:, None]
        decoders[sl] = np.linalg.solve(G, b)[..., 0].reshape(-1)
    return decoders


class EnsembleArrayClassifier(nengo.Network):
    """Frame features -> ``n_ensembles`` 1-d ensembles -> class scores.

    Parameters
    ----------
    n_features : int
        Size of each frame's feature vector (the seed: 512).
    n_classes : int
        Number of classes (UCF101: 101).
    n_ensembles : int
        Number of 1-d ensembles (the seed: 10,000).
    n_neurons : int
        Neurons per ensemble (the seed: 50).
    neuron_type : nengo.neurons.NeuronType
        The seed: ``SpikingRectifiedLinear``.
    max_rates, intercepts : nengo.dists.Distribution
        Tuning of each neuron (Hz at the edge of the represented range; where it starts
        firing). The seed used Nengo's defaults (``Uniform(200, 400)``, ``Uniform(-1,
        0.9)``).
    input_synapses : sequence of (Synapse or None)
        One trainable, zero-initialised projection from :attr:`input` to the ensembles
        per entry, each through its synapse. ``(None,)`` is the seed's single
        projection; adding a low-pass entry lets the ensembles see how the features
        change over time (current minus recent), not only the current frame.
    readout_synapse : Synapse or None
        Synapse between the decoded ensemble values and :attr:`output`.
    eval_points : int
        Evaluation points for the decoders of each ensemble.
    seed : int
        Seeds neuron tuning, decoders and the readout's initial weights.

    Attributes
    ----------
    input : nengo.Node
        Frame features, shape ``(n_features,)``.
    ensemble_input, ensemble_output : nengo.Node
        The value each ensemble represents, and its decoded estimate, ``(n_ensembles,)``.
    neurons : nengo.Ensemble
        All ``n_ensembles * n_neurons`` neurons.
    output : nengo.Node
        Class scores (logits), shape ``(n_classes,)``.
    """

    def __init__(
        self,
        n_features,
        n_classes,
        n_ensembles=10000,
        n_neurons=50,
        neuron_type=None,
        max_rates=None,
        intercepts=None,
        input_synapses=(None,),
        readout_synapse=None,
        eval_points=750,
        label=None,
        seed=None,
        add_to_container=None,
    ):
        super().__init__(label=label, seed=seed, add_to_container=add_to_container)
        neuron_type = neuron_type if neuron_type is not None else nengo.SpikingRectifiedLinear()
        max_rates = max_rates if max_rates is not None else nengo.dists.Uniform(200, 400)
        intercepts = intercepts if intercepts is not None else nengo.dists.Uniform(-1.0, 0.9)
        rng = np.random.RandomState(seed)
        total = n_ensembles * n_neurons
        rates = max_rates.sample(total, rng=rng)
        icpts = intercepts.sample(total, rng=rng)
        encoders = rng.choice([-1.0, 1.0], size=total)
        gain, bias = neuron_type.gain_bias(rates, icpts)
        points = rng.uniform(-1, 1, size=eval_points)
        decoders = solve_decoders(neuron_type, gain, bias, encoders, n_neurons, points)
        self.n_ensembles, self.n_neurons_per_ensemble = n_ensembles, n_neurons
        self.gain, self.bias, self.encoders, self.decoders = gain, bias, encoders, decoders
        self.eval_points = points

        index = np.arange(total)
        group = index // n_neurons
        with self:
            self.input = nengo.Node(size_in=n_features, label="input")
            self.ensemble_input = nengo.Node(size_in=n_ensembles, label="ensemble_input")
            self.input_connections = []
            for synapse in input_synapses:
                self.input_connections.append(
                    nengo.Connection(
                        self.input,
                        self.ensemble_input,
                        transform=nengo.transforms.Dense(
                            (n_ensembles, n_features),
                            init=nengo.dists.Choice([np.zeros(n_features)]),
                        ),
                        synapse=synapse,
                    )
                )
            self.neurons = nengo.Ensemble(
                total,
                1,
                neuron_type=neuron_type,
                gain=gain,
                bias=bias,
                label="ensembles",
            )
            self.encoding = nengo.Connection(
                self.ensemble_input,
                self.neurons.neurons,
                transform=nengo.transforms.Sparse(
                    (total, n_ensembles), indices=np.stack([index, group], axis=1), init=encoders
                ),
                synapse=None,
            )
            self.ensemble_output = nengo.Node(size_in=n_ensembles, label="ensemble_output")
            self.decoding = nengo.Connection(
                self.neurons.neurons,
                self.ensemble_output,
                transform=nengo.transforms.Sparse(
                    (n_ensembles, total), indices=np.stack([group, index], axis=1), init=decoders
                ),
                synapse=None,
            )
            self.output = nengo.Node(size_in=n_classes, label="output")
            limit = np.sqrt(6.0 / (n_ensembles + n_classes))
            self.readout = nengo.Connection(
                self.ensemble_output,
                self.output,
                transform=nengo.transforms.Dense(
                    (n_classes, n_ensembles), init=nengo.dists.Uniform(-limit, limit)
                ),
                synapse=readout_synapse,
            )


def build_ensemble_array(ea: EnsembleArrayConfig, args: BuildArgs):
    """Build the EnsembleArray classifier from the ``model.ensemble_array`` settings.

    ``args.spiking=False`` swaps a spiking neuron type for its rate counterpart (for
    rate evaluation); the trained parameters are the same.
    """
    from nengo_actions.compat import nengo_dl

    n_features, n_classes, seed = args.n_features, args.n_classes, args.seed
    low, high = ea.max_rates
    amplitude = ea.amplitude if ea.amplitude is not None else 1.0 / high
    neuron_type = neuron_type_from_config(ea.neuron_type, amplitude)
    configured = type(neuron_type).__name__
    if args.spiking is False and neuron_type.spiking:
        neuron_type = rate_counterpart(neuron_type)
    synapses = [args.synapse(tau) for tau in ea.input_synapses]
    with nengo.Network(seed=seed, label="ensemble_array") as net:
        nengo_dl.configure_settings(stateful=False, trainable=None)
        clf = EnsembleArrayClassifier(
            n_features,
            n_classes,
            n_ensembles=ea.n_ensembles,
            n_neurons=ea.n_neurons,
            neuron_type=neuron_type,
            max_rates=nengo.dists.Uniform(low, high),
            intercepts=nengo.dists.Uniform(*ea.intercepts),
            input_synapses=synapses,
            readout_synapse=args.synapse(ea.readout_synapse),
            seed=seed + 1,  # not the outer network's seed: object seeds would collide
        )
        # Encoders are +-1 by construction and the decoders are the least-squares
        # solution; training moves the input projection, biases and readout.
        net.config[clf.encoding].trainable = False
        net.config[clf.decoding].trainable = not ea.fixed_decoders
        features, feed, probe = feature_io(n_features, clf.input, clf.output)
    built = BuiltNetwork(
        network=net,
        input=features,
        output=probe,
        n_classes=n_classes,
        spiking=bool(neuron_type.spiking),
        steps_per_frame=args.steps_per_frame,
        dt=args.dt,
        description=(
            f"EnsembleArray: {ea.n_ensembles} ensembles x {ea.n_neurons} "
            f"{configured} neurons ({ea.n_ensembles * ea.n_neurons:,} "
            f"neurons) on {n_features}-d features, {len(synapses)} input projection(s)"
        ),
    )
    built.classifier = clf
    built.instrumentation.add(feed)
    layer = add_layer_probes(built, "ensembles", clf.neurons, args.raster_neurons)
    if ea.rate_regularization > 0:
        built.loss_terms.append((layer.rate_probe, rate_regularizer(ea.rate_target), ea.rate_regularization))
    return built
