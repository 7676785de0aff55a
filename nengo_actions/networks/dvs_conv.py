"""Convolutional SNNs for DVS frames: Keras networks converted to Nengo by NengoDL.

Two architectures from the event-vision literature, written as Keras models and turned
into Nengo networks by ``nengo_dl.Converter``:

* :func:`gesture_net`: the DVS128 Gesture network of the PLIF paper and SpikingJelly,
  ``{conv3x3 c - BN - spiking - maxpool 2} x depth - dropout - dense 512 - spiking -
  dropout - dense 10 x classes - spiking - voting`` (the mean of each group of ``votes``
  output neurons is one class score);
* :func:`sl_animals_net`: the SL-Animals-DVS STBP network, ``conv 2->20 3x3 - spiking -
  avgpool 2 - conv 20->50 3x3 - spiking - avgpool 2 - dense 200 - spiking - dense 19 -
  spiking``.

The Nengo network is **per frame**: its input node receives one flattened channels-last
frame ``(H * W * 2,)`` per simulation step (:mod:`nengo_actions.clips.event_data`), and a sample
of T frames is presented over T x ``steps_per_frame`` steps; the class scores of each
step come from the output probe, and the engine averages a frame's steps.

Conversion for the engine (the NengoDL Keras-to-SNN recipe):

* BatchNormalization is folded into the convolution before it (:func:`~.conversion.fold_batch_norm`:
  ``kernel * gamma / sqrt(var + eps)``, bias shifted), since the Converter handles it
  only as a frozen, inference-only layer;
* max pooling becomes average pooling (``pool="max"`` is converted with
  ``max_to_avg_pool=True``: NengoDL cannot take a maximum over spikes); the engine then
  trains the average-pooled network it runs;
* dropout is left out of the converted network (it is the identity at inference);
* the same network is built with ``RectifiedLinear`` neurons for rate training and with
  spiking neurons (``model.dvs_conv.spiking_neuron_type``) swapped in for evaluation;
  ``scale_firing_rates`` multiplies every neuron's input and divides its output, so the
  rate network computes the same function while the spiking one fires faster (less
  quantisation noise); a lowpass synapse (``model.dvs_conv.synapse``, frames) filters
  the spikes between layers;
* each neuron layer gets a mean-rate probe, and ``rate_regularization`` adds the loss
  ``((mean rate / rate_target) - 1)^2`` on it to the training loss, so the layers fire
  at a useful rate when spiking.
"""

from __future__ import annotations

import math

import numpy as np

from nengo_actions.errors import ConfigError
from nengo_actions.networks.base import BuildArgs, BuiltNetwork
from nengo_actions.networks.conversion import built_from_keras, fold_batch_norm
from nengo_actions.networks.stages import gesture_stages, sl_animals_stages, stages_of, summary
from nengo_actions.config.models import POOLS, DVSConvConfig, GestureNetConfig, SLAnimalsNetConfig


def _frame_shape(n_features, frame_shape):
    """``(H, W, 2)`` of a flattened frame: ``frame_shape`` or a square two-channel one."""
    if frame_shape:
        shape = tuple(int(v) for v in frame_shape)
        if int(np.prod(shape)) != n_features:
            raise ValueError(f"frame_shape {list(shape)} holds {int(np.prod(shape))} values, inputs have {n_features}")
        return shape
    side = math.isqrt(n_features // 2)
    if side * side * 2 != n_features:
        raise ValueError(
            f"inputs of {n_features} values are not square two-polarity frames; set the "
            "model's frame_shape to [H, W, 2]"
        )
    return (side, side, 2)


def _pool_layer(tf, pool, name):
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    kind = tf.keras.layers.MaxPooling2D if pool == "max" else tf.keras.layers.AveragePooling2D
    return kind(2, name=name)


def voting(tf, n_classes, votes, name="voting"):
    """Keras layers ``(batch, n_classes * votes) -> (batch, n_classes)``: the mean of
    each consecutive group of ``votes`` values (SpikingJelly's ``VotingLayer``)."""
    # one channel along n_classes * votes positions: channels-last pooling, which the
    # CPU convolution in NengoDL runs without transposing
    reshape = tf.keras.layers.Reshape((n_classes * votes, 1), name=f"{name}_groups")
    pool = tf.keras.layers.AveragePooling1D(votes, name=name)
    flatten = tf.keras.layers.Flatten(name=f"{name}_scores")
    return lambda x: flatten(pool(reshape(x)))


def rate_model(stages, frame_shape, seed=0, name="dvs_net"):
    """The rate-trained Keras model of a stage list (:mod:`~nengo_actions.networks.stages`).

    ``(batch, H * W * 2) -> (batch, classes)``: one frame in; ReLU activations named
    ``spike_*`` mark the layers that spike after conversion. The k-th convolution or dense
    layer starts from HeUniform with seed ``seed + k``; batch normalisation follows a
    convolution only (:func:`~.conversion.fold_batch_norm` folds it there).
    """
    from nengo_actions.compat import tf

    L = tf.keras.layers
    inp = tf.keras.Input((int(np.prod(frame_shape)),), name="frame")
    x = L.Reshape(tuple(frame_shape), name="image")(inp)
    weighted = 0
    for s in stages:
        if s.kind in ("conv", "dense"):
            init = tf.keras.initializers.HeUniform(seed=seed + weighted)
            if s.kind == "conv":
                x = L.Conv2D(int(s.size), 3, padding=s.padding, use_bias=not s.batch_norm, kernel_initializer=init, name=s.name)(x)
            elif s.batch_norm:
                raise ValueError(f"{name}: batch normalisation after the dense layer {s.name!r} cannot be folded "
                                 "into it for conversion (the rate route folds it into convolutions only)")
            else:
                x = L.Dense(int(s.size), kernel_initializer=init, name=s.name)(x)
            if s.batch_norm:
                x = L.BatchNormalization(name=f"bn{weighted}")(x)
            weighted += 1
        elif s.kind == "lif":
            x = L.Activation("relu", name="spike_" + s.name.removeprefix("lif_"))(x)
        elif s.kind == "pool":
            x = _pool_layer(tf, s.pool, s.name)(x)
        elif s.kind == "flatten":
            x = L.Flatten(name=s.name)(x)
        elif s.kind == "dropout":
            x = L.Dropout(float(s.size), name=s.name)(x)
        elif s.kind == "vote":
            x = voting(tf, x.shape[-1] // int(s.size), int(s.size), name=s.name)(x)
    return tf.keras.Model(inp, x, name=name)


def gesture_net(
    frame_shape,
    n_classes,
    channels=128,
    depth=5,
    dense=512,
    votes=10,
    pool="max",
    batch_norm=True,
    dropout=0.5,
    seed=0,
):
    """The PLIF / SpikingJelly DVS128 Gesture network as a rate-trained Keras model
    (:func:`rate_model` of :func:`~.stages.gesture_stages`).

    Parameters
    ----------
    frame_shape : tuple
        ``(H, W, 2)``; the model's input is one flattened frame, ``(H * W * 2,)``.
    channels, depth : int
        Channels of each 3x3 convolution and the number of conv blocks (the paper: 128, 5).
    dense : int
        Units of the hidden dense layer (512).
    votes : int
        Output neurons per class, averaged by the voting layer (10; 1 disables voting).
    pool : str
        ``"max"`` (the paper) or ``"avg"``.

    Returns
    -------
    tf.keras.Model
        ``(batch, H * W * 2) -> (batch, n_classes)``; ReLU marks the spiking layers.
    """
    net = GestureNetConfig(channels=channels, depth=depth, dense=dense, votes=votes, pool=pool, batch_norm=batch_norm,
                           dropout=dropout)
    return rate_model(gesture_stages(net, n_classes), frame_shape, seed, name="dvs_gesture_net")


def sl_animals_net(frame_shape, n_classes, channels=(20, 50), dense=200, pool="avg", dropout=0.0, seed=0):
    """The SL-Animals-DVS STBP network as a rate-trained Keras model (:func:`rate_model`
    of :func:`~.stages.sl_animals_stages`): ``conv 2->channels[0] 3x3 - spiking - pool 2 -
    conv ->channels[1] 3x3 - spiking - pool 2 - dense - spiking - dense n_classes -
    spiking``, convolutions unpadded ("valid") as in the STBP code."""
    net = SLAnimalsNetConfig(channels=tuple(channels), dense=dense, pool=pool, dropout=dropout)
    return rate_model(sl_animals_stages(net, n_classes), frame_shape, seed, name="sl_animals_net")


def _built(keras_model, what, pool, conv: DVSConvConfig, shape, args: BuildArgs):
    description = (
        f"{keras_model.name}: {what}; Keras model converted by nengo_dl.Converter "
        f"(BN folded, {'max pooling as average pooling, ' if pool == 'max' else ''}"
        f"firing rates x{conv.scale_firing_rates:g}), one {shape[0]}x{shape[1]}x{shape[2]} frame per step"
    )
    return built_from_keras(
        fold_batch_norm(keras_model), conv, args.n_classes, spiking=args.spiking,
        steps_per_frame=args.steps_per_frame, dt=args.dt, raster_neurons=args.raster_neurons,
        description=description, seed=args.seed,
    )


def _rate_route_stages(stages, key):
    """``stages``, refused with ``key`` named when a dense layer has batch norm: the
    rate route folds batch norm into convolutions only."""
    if any(s.kind == "dense" and s.batch_norm for s in stages):
        raise ConfigError(
            f"{key}: the rate-trained route (model.dvs_conv.method \"rate\") folds batch normalisation into "
            "convolutions only; leave it off the dense layers, or train directly (method \"direct\")"
        )
    return stages


def build_gesture_net(net: GestureNetConfig, conv: DVSConvConfig, args: BuildArgs) -> BuiltNetwork:
    """Build ``model.dvs_gesture_net`` (with ``model.dvs_conv``) for the engine."""
    shape, n_classes = _frame_shape(args.n_features, net.frame_shape), args.n_classes
    stages = _rate_route_stages(gesture_stages(net, n_classes), "model.dvs_gesture_net.dense_batch_norm")
    keras_model = rate_model(stages, shape, args.seed, name="dvs_gesture_net")
    what = (
        f"{{conv3x3 {net.channels}{' - BN' if net.batch_norm else ''} - spiking - {net.pool}pool 2}}"
        f" x {net.depth} - dense {net.dense} - spiking - dense {n_classes}x{net.votes} - spiking"
        + (f" - voting over {net.votes}" if net.votes > 1 else "")
    )
    return _built(keras_model, what, net.pool, conv, shape, args)


def build_sl_animals_net(net: SLAnimalsNetConfig, conv: DVSConvConfig, args: BuildArgs) -> BuiltNetwork:
    """Build ``model.sl_animals_net`` (with ``model.dvs_conv``) for the engine."""
    shape, n_classes = _frame_shape(args.n_features, net.frame_shape), args.n_classes
    keras_model = rate_model(sl_animals_stages(net, n_classes), shape, args.seed, name="sl_animals_net")
    what = (
        f"conv 2->{net.channels[0]} 3x3 - spiking - {net.pool}pool 2 - conv ->{net.channels[1]} 3x3 - "
        f"spiking - {net.pool}pool 2 - dense {net.dense} - spiking - dense {n_classes} - spiking"
    )
    return _built(keras_model, what, net.pool, conv, shape, args)


def build_staged_net(net, conv: DVSConvConfig, args: BuildArgs) -> BuiltNetwork:
    """Build the rate-trained form of an event model registered with ``stages`` (a
    plugin's): its ``model.<name>`` section (with a ``frame_shape`` setting) and
    ``model.dvs_conv``. Its directly trained form needs no builder of its own: the direct
    route reads the same stage list."""
    shape = _frame_shape(args.n_features, net.frame_shape)
    stages = _rate_route_stages(stages_of(args.model_type, net, args.n_classes), f"model.{args.model_type}")
    keras_model = rate_model(stages, shape, args.seed, name=args.model_type)
    pool = "max" if any(s.kind == "pool" and s.pool == "max" for s in stages) else "avg"
    return _built(keras_model, summary(stages, "spiking"), pool, conv, shape, args)


__all__ = [
    "build_staged_net",
    "rate_model",
    "gesture_net",
    "sl_animals_net",
    "voting",
    "build_gesture_net",
    "build_sl_animals_net",
]
