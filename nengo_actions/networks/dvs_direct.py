"""DVS conv SNNs trained directly with spikes, run as Nengo networks by NengoDL.

The recipe of SpikingJelly's DVS128 Gesture example and the PLIF paper: the network runs
over the T frames of a sample with LIF neurons (:class:`~nengo_actions.networks.lif_node.LIF`)
in the forward pass, surrogate gradients flow back through time, batch normalisation
uses the statistics of the batch's B x T frames, and the loss is on the output firing
rate. Training happens on a multi-step Keras model (:func:`temporal_model`, inputs
``(batch, T, H * W * 2)``, outputs ``(batch, T, classes)``, the frames of a sample held
for one step each), in :class:`~nengo_actions.engine.direct.DirectEngine`.

What is evaluated and reported is the Nengo network (:func:`build_direct_network`):
the same layers as a per-frame Keras model (:func:`frame_model`), batch
normalisation folded into the convolutions, converted by ``nengo_dl.Converter`` with
two rules registered here and in :mod:`~nengo_actions.networks.lif_node`:

* each LIF layer becomes an ensemble of :class:`~nengo_actions.networks.lif_node.DiscreteLIF`
  neurons with the layer's (trained) time constant, one spike an output of 1;
* max pooling (:class:`SpikeMaxPool2D`) becomes a
  :class:`~nengo_actions.networks.tensor_nodes.MaxPool2D` node: the maximum over spikes,
  as trained (no average-pooling replacement).

Connections have no synapses (the membrane is the only state), so at one simulation
step per frame the Nengo network computes what the trained model computes, step for
step; with ``k`` steps per frame each frame drives the neurons ``k`` times.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nengo_actions.compat import nengo_dl, tf
from nengo_actions.networks.base import model_sections, model_signature
from nengo_actions.networks.conversion import converted_network, folded_weights
from nengo_actions.networks.dvs_conv import _frame_shape, voting
from nengo_actions.networks.lif_node import LIF
from nengo_actions.networks.stages import Stage, gesture_stages, sl_animals_stages, stages_of, summary  # noqa: F401 (re-exported)
from nengo_actions.networks.nir_layers import EulerNeurons
from nengo_actions.networks.tensor_nodes import MaxPool2D
from nengo_actions.params import describe, read_checked
from nengo_actions.config.models import DVSConvConfig, ModelConfig

L = tf.keras.layers


class DropoutSeed:
    """The seed of every :class:`SeededDropout` mask of one model: ``value``, ``(2,)``
    int64, which the trainer sets before each minibatch (``set(epoch_seed, minibatch)``).

    A plain holder, not a Keras weight, so parameter files do not carry it."""

    def __init__(self):
        self.value = tf.Variable(tf.zeros(2, tf.int64), trainable=False, name="dropout_seed")

    def set(self, *seed):
        self.value.assign(np.asarray(seed, np.int64))


class SeededDropout(L.Dropout):
    """Keras' ``Dropout`` (same rate, noise shape and ``1 / (1 - rate)`` scaling) with masks
    drawn statelessly from ``source.value`` folded with this layer's ``seed`` and, under
    ``tf.distribute``, the replica.

    Why not Keras' own draw: its seeded masks come from stateful ops whose seeds are fixed
    when the training step is traced, so a step draws the same sequence of masks in every
    epoch, and reseeding them with ``tf.random.set_seed`` clears TensorFlow's kernel cache,
    which instantiates the step again (seconds, every epoch) and still leaves a resumed
    run with other masks than an uninterrupted one. Here a minibatch's masks are a function
    of the seed the trainer sets, the same in a resumed run, new in every epoch."""

    def __init__(self, rate, noise_shape, seed, source: DropoutSeed, **kwargs):
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)
        self.source = source

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return tf.identity(inputs)
        seed = tf.random.experimental.stateless_fold_in(self.source.value, self.seed)
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
        shape = self._get_noise_shape(inputs)
        keep = tf.random.stateless_uniform(shape, seed, dtype=tf.float32) >= self.rate
        return inputs * tf.cast(keep, inputs.dtype) * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)


def dropout_seed(model):
    """The :class:`DropoutSeed` that ``model``'s dropout layers share (``None`` without dropout)."""
    return next((layer.source for layer in model.layers if isinstance(layer, SeededDropout)), None)


class SpikeMaxPool2D(L.MaxPooling2D):
    """Max pooling in the per-frame model, converted to a :class:`MaxPool2D` node."""


@nengo_dl.Converter.register(SpikeMaxPool2D)
class ConvertSpikeMaxPool(nengo_dl.converter.LayerConverter):
    """:class:`SpikeMaxPool2D` as a :class:`MaxPool2D` node (square, stride = size)."""

    unsupported_args = [("padding", "valid"), ("data_format", "channels_last")]

    def convert(self, node_id):
        pool, strides = self.layer.pool_size, self.layer.strides
        if pool[0] != pool[1] or tuple(strides) != tuple(pool):
            raise ValueError(f"{self.layer.name}: only square pooling with stride = size converts")
        h, w, c = self.input_shape(node_id)
        node = MaxPool2D(h, w, c, pool[0], label=f"{self.layer.name}.{node_id}")
        self.add_connection(node_id, node)
        return node


class UnbiasedBatchNorm(L.BatchNormalization):
    """Keras' ``BatchNormalization`` whose moving variance always takes the unbiased
    batch variance (``n / (n - 1)`` times the biased one), as PyTorch's ``BatchNorm``
    does. Keras' fused kernel (float32 convolutions) already does; its plain path (the
    dense layers, and every layer of a float64 model) takes the biased variance, which
    for a dense layer's B x T = 128 samples is 0.8% less. Its decay, ``1 - momentum``, is a
    float64 number (Keras makes a float32 constant of it, 1e-9 off in a float64 model)."""

    def call(self, inputs, training=None, mask=None):
        self._samples = None  # the fused kernel corrects the variance itself
        if not self.fused:
            samples = tf.size(inputs) // tf.shape(inputs)[-1]
            if self.synchronized:  # the statistics of the global minibatch, over every replica
                samples *= tf.distribute.get_replica_context().num_replicas_in_sync
            self._samples = tf.cast(samples, self._param_dtype)
        return super().call(inputs, training=training, mask=mask)

    def _assign_moving_average(self, variable, value, momentum, inputs_size):
        if variable is self.moving_variance and getattr(self, "_samples", None) is not None:
            value = value * self._samples / (self._samples - 1)
        return super()._assign_moving_average(variable, value, np.float64(momentum), inputs_size)


def _batch_norm(conv: DVSConvConfig, **kwargs):
    # PyTorch's defaults (momentum 0.1, eps 1e-5), as SpikingJelly trains
    kind = UnbiasedBatchNorm if conv.batch_norm_variance == "unbiased" else L.BatchNormalization
    return kind(momentum=0.9, epsilon=1e-5, **kwargs)


def _lif(stage, conv: DVSConvConfig, **kwargs):
    return LIF(
        tau=conv.lif_tau, threshold=conv.threshold, trainable_tau=conv.plif,
        surrogate_alpha=conv.surrogate_alpha, detach_reset=conv.detach_reset, name=stage.name, **kwargs,
    )


def _weight_layer(stage, **kwargs):
    if stage.kind == "conv":
        return L.Conv2D(int(stage.size), 3, padding=stage.padding, **kwargs)
    return L.Dense(int(stage.size), **kwargs)


def _pool(stage, per_frame):
    if stage.pool == "max":
        return SpikeMaxPool2D(int(stage.size), name=stage.name) if per_frame else L.MaxPooling2D(int(stage.size), name=stage.name)
    return L.AveragePooling2D(int(stage.size), name=stage.name)


def _initializers(kind, fan_in, seed):
    if kind == "torch":  # kaiming_uniform(a=sqrt(5)) for weights, U(+-1/sqrt(fan_in)) for biases
        limit = 1.0 / np.sqrt(fan_in)
        return {"kernel_initializer": tf.keras.initializers.RandomUniform(-limit, limit, seed=seed),
                "bias_initializer": tf.keras.initializers.RandomUniform(-limit, limit, seed=seed + 10_000)}
    return {"kernel_initializer": tf.keras.initializers.HeUniform(seed=seed)}


def temporal_model(stages, frame_shape, conv: DVSConvConfig, seed=0, name="dvs_direct"):
    """The multi-step Keras model that is trained.

    ``(batch, T, H * W * 2) -> (batch, T, classes)``: per step, the output neurons'
    spikes (0/1, averaged over each class's votes). Convolutions, pooling and dense
    layers run on all B x T frames at once; LIF layers step through T.
    """
    TD = L.TimeDistributed
    # built in a tf.distribute scope of several replicas, batch normalisation takes the
    # global minibatch's statistics (PyTorch's SyncBatchNorm), as one process would
    synchronized = tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1
    inp = tf.keras.Input((None, int(np.prod(frame_shape))), name="frames")
    x = TD(L.Reshape(tuple(frame_shape)), name="image")(inp)
    dropout_seed = DropoutSeed()
    for i, s in enumerate(stages):
        if s.kind in ("conv", "dense"):
            init = _initializers(conv.init, x.shape[-1] * (9 if s.kind == "conv" else 1), seed + i)
            x = TD(_weight_layer(s, use_bias=not s.batch_norm, **init), name=s.name)(x)
            if s.batch_norm:
                x = TD(_batch_norm(conv, synchronized=synchronized), name=f"bn_{s.name}")(x)
        elif s.kind == "lif":
            x = _lif(s, conv)(x)
        elif s.kind == "pool":
            x = TD(_pool(s, per_frame=False), name=s.name)(x)
        elif s.kind == "flatten":
            x = TD(L.Flatten(), name=s.name)(x)
        elif s.kind == "dropout":  # one mask for all steps of a sample
            x = SeededDropout(float(s.size), (None, 1, x.shape[-1]), seed + i, dropout_seed, name=s.name)(x)
        elif s.kind == "vote":
            votes = int(s.size)
            x = TD(L.Reshape((x.shape[-1], 1)), name=f"{s.name}_groups")(x)
            x = TD(L.AveragePooling1D(votes), name=s.name)(x)
            x = TD(L.Flatten(), name=f"{s.name}_scores")(x)
    return tf.keras.Model(inp, x, name=name)


def frame_model(stages, frame_shape, temporal, conv: DVSConvConfig, dt=0.001):
    """The per-frame Keras model that ``nengo_dl.Converter`` reads, with the weights of
    ``temporal`` and its batch normalisation folded into the convolutions
    and dense layers (``kernel * gamma / sqrt(var + eps)``, bias ``(bias - mean) * gamma /
    sqrt(var + eps) + beta``).

    ``(batch, H * W * 2) -> (batch, classes)``; dropout is left out (the identity at
    inference), LIF layers carry their trained time constants.
    """
    inp = tf.keras.Input((int(np.prod(frame_shape)),), name="frame")
    x = L.Reshape(tuple(frame_shape), name="image")(inp)
    weights = []
    for s in stages:
        if s.kind in ("conv", "dense"):
            layer = _weight_layer(s, name=s.name)
            x = layer(x)
            bn = temporal.get_layer(f"bn_{s.name}").layer if s.batch_norm else None
            weights.append((layer, folded_weights(temporal.get_layer(s.name).layer, bn)))
        elif s.kind == "lif":
            trained = conv.replace(lif_tau=temporal.get_layer(s.name).tau(), plif=False)
            x = _lif(s, trained, temporal=False, dt=dt)(x)
        elif s.kind == "pool":
            x = _pool(s, per_frame=True)(x)
        elif s.kind == "flatten":
            x = L.Flatten(name=s.name)(x)
        elif s.kind == "vote":
            x = voting(tf, x.shape[-1] // int(s.size), int(s.size), name=s.name)(x)
    model = tf.keras.Model(inp, x, name=f"{temporal.name}_frame")
    for layer, values in weights:
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    return model


@dataclasses.dataclass
class TemporalNet:
    """What :class:`~nengo_actions.engine.direct.DirectEngine` trains: the multi-step
    Keras model, the stages it was built from and what its parameter files hold."""

    keras_model: object
    stages: list
    frame_shape: tuple
    n_classes: int
    signature: dict
    description: str
    conv: DVSConvConfig  # model.dvs_conv: the LIF neurons


def _describe(kind, stages, conv: DVSConvConfig):
    return (
        f"{kind}: {summary(stages, 'PLIF' if conv.plif else 'LIF')}; trained directly with spikes (tau {conv.lif_tau:g} steps"
        f"{', learned per layer' if conv.plif else ''}, threshold {conv.threshold:g}, ATan surrogate), "
        "run as a Nengo network converted by nengo_dl.Converter (BN folded), one frame per step"
    )


def build_temporal(kind, model_cfg: ModelConfig, *, n_features, n_classes, seed=0):
    """The :class:`TemporalNet` of ``model.<kind>`` (a type registered with ``stages``:
    ``dvs_gesture_net``, ``sl_animals_net`` or a plugin's), with the LIF neurons of
    ``model.dvs_conv``."""
    net, conv = model_sections(kind, model_cfg)
    shape = _frame_shape(n_features, net.frame_shape)
    stages = stages_of(kind, net, n_classes)
    tf.keras.utils.set_random_seed(seed)
    keras_model = temporal_model(stages, shape, conv, seed=seed, name=f"{kind}_direct")
    signature = model_signature(kind, model_cfg, n_features, n_classes)
    return TemporalNet(keras_model, stages, shape, int(n_classes), signature, _describe(kind, stages, conv), conv)


def load_temporal_params(net, path):
    """Load a :class:`~nengo_actions.engine.direct.DirectEngine` parameter file into
    ``net.keras_model``; raises :class:`~nengo_actions.errors.ParamsError` naming the file
    if it is another model's."""
    values, header = read_checked(path, net.signature, describe(net.keras_model.weights))
    tf.keras.backend.batch_set_value(zip(net.keras_model.weights, values))
    return header


def build_direct_network(kind, model_cfg: ModelConfig, *, n_features, n_classes, params_path, spiking=True,
                         steps_per_frame=1, dt=0.001, seed=0, raster_neurons=20):
    """The Nengo network of a directly trained model, with the parameters of
    ``params_path`` (a :class:`~nengo_actions.engine.direct.DirectEngine` file) built in.

    The network is trained as it runs, with spiking LIF neurons: it has no rate form, so
    ``spiking=False`` is refused rather than ignored.

    Returns a :class:`BuiltNetwork` with ``params_in_network`` set (nothing to load).
    """
    if not spiking:
        raise ValueError(f"{kind}: a directly trained network runs with its spiking LIF neurons; it has no rate form")
    net = build_temporal(kind, model_cfg, n_features=n_features, n_classes=n_classes, seed=seed)
    load_temporal_params(net, params_path)
    return convert_temporal(net, steps_per_frame=steps_per_frame, dt=dt, raster_neurons=raster_neurons)


def convert_temporal(net, *, steps_per_frame=1, dt=0.001, raster_neurons=20):
    """The Nengo :class:`BuiltNetwork` of a :class:`TemporalNet` (its current weights)."""
    per_frame = frame_model(net.stages, net.frame_shape, net.keras_model, net.conv, dt=dt)
    return convert_frame_model(
        per_frame, n_classes=net.n_classes, signature=net.signature, description=net.description,
        steps_per_frame=steps_per_frame, dt=dt, raster_neurons=raster_neurons,
    )


def convert_frame_model(per_frame, *, n_classes, signature, description, steps_per_frame=1, dt=0.001, raster_neurons=20):
    """The Nengo :class:`BuiltNetwork` of a per-frame Keras model whose neurons are
    :class:`LIF` or :class:`~nengo_actions.networks.nir_layers.EulerNeurons` layers:
    converted by ``nengo_dl.Converter``, conv biases broadcast, operators unmerged, a
    rate and raster probe per neuron layer (named after the layer)."""
    converter = nengo_dl.Converter(per_frame, inference_only=True, allow_fallback=False)
    layers = {layer: layer.name.replace("lif_", "") for layer in per_frame.layers if isinstance(layer, (LIF, EulerNeurons))}
    return converted_network(
        converter, per_frame, layers, n_classes=n_classes, spiking=True, steps_per_frame=steps_per_frame, dt=dt,
        signature=signature, description=description, raster_neurons=raster_neurons, params_in_network=True,
    )


__all__ = [
    "DropoutSeed",
    "SeededDropout",
    "dropout_seed",
    "SpikeMaxPool2D",
    "Stage",
    "gesture_stages",
    "sl_animals_stages",
    "temporal_model",
    "frame_model",
    "TemporalNet",
    "build_temporal",
    "load_temporal_params",
    "build_direct_network",
    "convert_temporal",
    "convert_frame_model",
    "stages_of",
]
