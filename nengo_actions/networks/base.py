"""What every network builder shares: what it is asked for and what it returns, the
parameter-file signature, layer probes, neuron helpers, synapses in frames and NengoDL
settings (see :mod:`nengo_actions.networks`)."""

from __future__ import annotations

import dataclasses
import inspect

import nengo
import numpy as np

from nengo_actions.config import registry
from nengo_actions.networks.tensor_nodes import MeanRate
from nengo_actions.neurons.types import parse_neuron_type


@dataclasses.dataclass(frozen=True)
class BuildArgs:
    """What every builder is asked for besides its config sections and registered options.

    A registered builder is called as ``builder(*sections, args, **options)``: the
    ``model.*`` sections its :class:`~nengo_actions.config.registry.ModelType` names in
    ``sections`` (in that order), this record, and the entry's ``options``.

    Attributes
    ----------
    n_features, n_classes, n_frames : int
        Values per frame, number of classes, frames per clip.
    spiking : bool or None
        ``True``: spiking neurons; ``False``: their rate counterparts (same parameters);
        ``None``: the neuron types the config names.
    steps_per_frame : int
        Simulation steps each frame is held for.
    dt : float
        Seconds per simulation step.
    seed : int
        Seed of the network (tuning, initial weights).
    raster_neurons : int
        Neurons per layer whose spikes are recorded for rasters (0: none).
    model_type : str or None
        The registered type being built (a builder shared by several types reads its
        registry entry through it).
    """

    n_features: int
    n_classes: int
    n_frames: int
    spiking: bool = None
    steps_per_frame: int = 1
    dt: float = 0.001
    seed: int = 0
    raster_neurons: int = 20
    model_type: str = None

    def synapse(self, tau_frames):
        """:func:`frames_to_synapse` at this build's steps per frame and ``dt``."""
        return frames_to_synapse(tau_frames, self.steps_per_frame, self.dt)


def model_sections(model_type, model_cfg):
    """The sections of ``model_cfg`` (a :class:`~nengo_actions.config.models.ModelConfig`)
    that ``model_type``'s builder takes, in its registered order."""
    return tuple(registry.lookup(model_cfg, name) for name in registry.MODELS[model_type].sections)


def model_signature(model_type, model_cfg, n_features, n_classes):
    """What a network's parameters depend on, stored in and checked against parameter
    files: the model type, the data's sizes, the registered options and the settings
    of the sections the builder takes. Neither ``spiking`` nor ``steps_per_frame`` is in
    it: a spiking evaluation loads the parameters of the rate network it was trained as.
    """
    entry = registry.MODELS[model_type]
    return {
        "model": model_type,
        "n_features": int(n_features),
        "n_classes": int(n_classes),
        **entry.options,
        **{name: section.to_dict() for name, section in zip(entry.sections, model_sections(model_type, model_cfg))},
    }


@dataclasses.dataclass
class Layer:
    """A neuron population of a network, for firing rates, rasters and energy.

    ``rate_probe`` records the population's mean firing rate (Hz, one value per step);
    ``raster_probe`` the output of its first few neurons.
    """

    name: str
    ensemble: object  # nengo.Ensemble
    rate_probe: object = None  # nengo.Probe on a 1-d node
    raster_probe: object = None  # nengo.Probe on ensemble.neurons[:n]
    amplitude: float = 1.0

    @property
    def n_neurons(self):
        return self.ensemble.n_neurons


@dataclasses.dataclass
class BuiltNetwork:
    """A network ready for the engine.

    Attributes
    ----------
    network : nengo.Network
    input : nengo.Node
        Receives one feature vector per step, shape ``(n_features,)``.
    output : nengo.Probe
        Class scores (logits) per step, shape ``(n_classes,)``.
    layers : list of Layer
        Neuron populations (empty for networks without neurons).
    spiking : bool
        Whether the network's neurons emit spikes.
    steps_per_frame : int
        Simulation steps each frame is held for.
    frames_per_input : int
        Frames packed into one simulation step (1, except for models that see the
        whole clip at once, such as the keras-lmu baseline).
    instrumentation : set
        Probes' helper nodes and connections that are not part of the model (left out
        of synapse counts).
    signature : dict
        What the parameters depend on (:func:`model_signature`); stored beside saved
        parameters so that a parameter file cannot be loaded into another model.
    loss_terms : list of (probe, loss_fn, weight)
        Extra training losses, e.g. firing-rate regularisation.
    params_in_network : bool
        The trained parameters are already the network's (nothing to load).
    """

    network: object
    input: object
    output: object
    n_classes: int
    layers: list = dataclasses.field(default_factory=list)
    spiking: bool = False
    steps_per_frame: int = 1
    frames_per_input: int = 1
    dt: float = 0.001
    instrumentation: set = dataclasses.field(default_factory=set)
    signature: dict = dataclasses.field(default_factory=dict)
    loss_terms: list = dataclasses.field(default_factory=list)
    description: str = ""
    params_in_network: bool = False


def feature_io(n_features, target, source):
    """The feature input and the class output of a feature model, made in the current
    network: ``(node, feed, probe)``, the input node (one feature vector per step) and its
    connection into ``target``, and the probe on ``source``. The feed is not a synapse of
    the model: builders put it in :attr:`BuiltNetwork.instrumentation`."""
    features = nengo.Node(np.zeros(n_features), label="features")
    feed = nengo.Connection(features, target, synapse=None)
    probe = nengo.Probe(source, synapse=None, label="output")
    return features, feed, probe


def frames_to_synapse(tau_frames, steps_per_frame=1, dt=0.001):
    """A lowpass synapse with a time constant given in frames, or ``None``.

    ``tau_frames`` frames last ``tau_frames * steps_per_frame * dt`` seconds.
    """
    if tau_frames is None or tau_frames <= 0:
        return None

    return nengo.Lowpass(float(tau_frames) * steps_per_frame * dt)


def frame_delay(steps_per_frame=1):
    """A synapse that delays its input by one frame (``steps_per_frame`` steps)."""
    if steps_per_frame == 1:
        return 0  # Nengo's synapse=0: a one-step delay
    return nengo.LinearFilter([1.0], [1.0] + [0.0] * steps_per_frame, analog=False)


def neuron_type_from_config(text, amplitude=None):
    """Parse a config neuron type and set its amplitude unless the string sets one.

    ``amplitude`` scales the neurons' output (spikes count ``amplitude / dt``); choosing
    ``1 / rate`` keeps a layer's output near 1 while its neurons fire at ``rate`` Hz.
    """
    neuron_type = parse_neuron_type(text)
    if amplitude is None or (isinstance(text, str) and "amplitude" in text):
        return neuron_type
    params = inspect.signature(type(neuron_type).__init__).parameters
    if "amplitude" not in params:
        return neuron_type
    kwargs = {
        name: getattr(neuron_type, name)
        for name in params
        if name != "self" and hasattr(neuron_type, name)
    }
    kwargs["amplitude"] = float(amplitude)
    return type(neuron_type)(**kwargs)


def neuron_amplitude(neuron_type):
    """The neurons' output scale (1 for types without an amplitude)."""
    return float(getattr(neuron_type, "amplitude", 1.0))


def rate_counterpart(neuron_type):
    """The rate neuron type a spiking type trains through (same amplitude)."""
    amplitude = neuron_amplitude(neuron_type)
    if isinstance(neuron_type, nengo.AdaptiveLIF):
        return nengo.AdaptiveLIFRate(
            tau_n=neuron_type.tau_n,
            inc_n=neuron_type.inc_n,
            tau_rc=neuron_type.tau_rc,
            tau_ref=neuron_type.tau_ref,
            amplitude=amplitude,
        )
    if isinstance(neuron_type, nengo.SpikingRectifiedLinear):
        return nengo.RectifiedLinear(amplitude=amplitude)
    if isinstance(neuron_type, nengo.LIF):
        return nengo.LIFRate(
            tau_rc=neuron_type.tau_rc, tau_ref=neuron_type.tau_ref, amplitude=amplitude
        )
    base = getattr(neuron_type, "base_type", None)  # RegularSpiking(...) and friends
    if base is not None:
        return base
    return neuron_type


def add_layer_probes(built, name, ensemble, raster_neurons=20):
    """Add a mean-rate probe and a raster probe for ``ensemble`` (inside its network)."""
    amplitude = neuron_amplitude(ensemble.neuron_type)
    with built.network:
        rate_node = MeanRate(ensemble.n_neurons, 1.0 / amplitude, label=f"{name}_mean_rate")
        rate_conn = nengo.Connection(ensemble.neurons, rate_node, transform=None, synapse=None)
        rate_probe = nengo.Probe(rate_node, synapse=None)
        raster_probe = None
        if raster_neurons:
            raster_probe = nengo.Probe(
                ensemble.neurons[: min(raster_neurons, ensemble.n_neurons)], synapse=None
            )
    try:
        import nengo_dl  # noqa: F401  (already imported through compat by the caller)

        built.network.config[rate_conn].trainable = False
    except (AttributeError, ImportError, nengo.exceptions.ConfigError):
        pass
    built.instrumentation.update({rate_node, rate_conn})
    layer = Layer(name, ensemble, rate_probe, raster_probe, amplitude)
    built.layers.append(layer)
    return layer


def layer_probes(built):
    """The rate probes of ``built``'s layers, then their raster probes."""
    probes = [layer.rate_probe for layer in built.layers]
    probes += [layer.raster_probe for layer in built.layers if layer.raster_probe is not None]
    return probes


def layer_readings(built, extra, raster_clip=0):
    """Mean rates (Hz) and one clip's spike counts per layer from probe data (``extra``:
    ``{probe: (clips, steps, size)}`` of :func:`layer_probes`)."""
    rates, raster = {}, {}
    for layer in built.layers:
        rates[layer.name] = float(np.mean(extra[layer.rate_probe]))
        if layer.raster_probe is not None:
            values = extra[layer.raster_probe][raster_clip]
            raster[layer.name] = np.rint(values * built.dt / layer.amplitude).astype(np.int32)
    return rates, raster


def unmerged_ops(network):
    """Have NengoDL build every operator of ``network`` on its own.

    NengoDL's default planner merges operators of the same kind into one TensorFlow op,
    and its signal sorter lays signals out for those merges; each step then gathers the
    operators' inputs from and scatters their outputs into merged arrays. On this
    project's networks, whose operators are few and large, that costs more than it
    saves: unmerged, with signals in build order, the converted DVS128 Gesture network
    trains and runs spiking 3-4x faster, the seed-size EnsembleArray runs spiking 2x
    faster (benchmarks/README.md), and the main job ran in 2 min 11 s instead of 2 min
    54 s. The computation is the same, but the trainable parameters are laid out
    differently, so every simulator that saves or loads a network's parameters must be
    built with the same setting: :func:`build_model` applies it to every network it
    returns.
    """
    from nengo_actions.compat import nengo_dl

    optimizer = nengo_dl.graph_optimizer
    with network:
        nengo_dl.configure_settings(planner=optimizer.noop_planner, sorter=optimizer.noop_order_signals)


def rate_regularizer(target_hz):
    """A loss on a mean-rate probe: ``((mean rate / target) - 1)^2``.

    It keeps a layer's mean firing rate near ``target_hz``: high enough that spikes
    carry the signal, low enough to bound synaptic operations.
    """
    from nengo_actions.compat import tf

    target = float(target_hz)

    def loss(y_true, y_pred):
        del y_true
        mean_rate = tf.reduce_mean(y_pred, axis=[1, 2])
        return tf.square(mean_rate / target - 1.0)

    return loss
