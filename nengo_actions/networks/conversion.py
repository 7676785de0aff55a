"""Keras models as Nengo networks for the engine: BatchNorm folding, conv bias broadcasting, nengo_dl.Converter."""

from __future__ import annotations

import nengo
import numpy as np

from nengo_actions.networks.base import (
    BuiltNetwork,
    add_layer_probes,
    frames_to_synapse,
    rate_counterpart,
    rate_regularizer,
    unmerged_ops,
)
from nengo_actions.networks.tensor_nodes import ChannelBroadcast
from nengo_actions.neurons.types import parse_neuron_type
from nengo_actions.config.models import DVSConvConfig


def folded_weights(layer, bn=None):
    """``[kernel, bias]`` of a Conv2D or Dense ``layer`` followed by the
    BatchNormalization ``bn`` (at inference): ``kernel * gamma / sqrt(var + eps)``, bias
    ``(bias - mean) * gamma / sqrt(var + eps) + beta``; the layer's own without ``bn``."""
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
    if bn is None:
        return [kernel, bias]
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    scale = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    return [kernel * scale, (bias - bn.moving_mean.numpy()) * scale + beta]


def fold_batch_norm(model):
    """A copy of a chain-shaped Keras ``model`` with every ``Conv2D -> BatchNormalization``
    pair folded into one ``Conv2D`` and ``Dropout`` layers removed.

    The folded convolution computes what the pair computes at inference:
    ``kernel' = kernel * gamma / sqrt(var + eps)``, ``bias' = (bias - mean) * gamma /
    sqrt(var + eps) + beta``. Layers must follow one another (no branches).
    """
    from nengo_actions.compat import tf

    layers = model.layers[1:]
    inp = tf.keras.Input(model.input_shape[1:], name=model.layers[0].name)
    x, pending = inp, []
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, tf.keras.layers.Dropout):
            i += 1
            continue
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            raise ValueError(f"{model.name}: BatchNormalization {layer.name!r} does not follow a Conv2D")
        if isinstance(layer, tf.keras.layers.Conv2D) and isinstance(nxt, tf.keras.layers.BatchNormalization):
            config = layer.get_config()
            config["use_bias"] = True
            folded = tf.keras.layers.Conv2D.from_config(config)
            x = folded(x)
            pending.append((folded, folded_weights(layer, nxt)))
            i += 2
            continue
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        if layer.get_weights():
            pending.append((clone, layer.get_weights()))
        i += 1
    folded_model = tf.keras.Model(inp, x, name=f"{model.name}_folded")
    for layer, weights in pending:
        layer.set_weights([np.asarray(w, np.float32) for w in weights])
    return folded_model


def tile_conv_biases(network):
    """Broadcast each converted conv layer's biases with a :class:`ChannelBroadcast` node.

    ``nengo_dl.Converter`` adds a conv layer's per-channel biases through a relay node
    and a fixed ``nengo.Sparse`` transform that repeats them over every position. Each
    such connection whose pattern is the channels-last repetition is replaced by a
    ``ChannelBroadcast`` node between the same two objects: the same values, and the
    same trainable parameters (the biases stay on the relay's input connection).
    Returns the number of connections replaced.
    """
    replaced = 0
    for net in [network, *network.all_networks]:
        for conn in list(net.connections):
            transform, relay = conn.transform, conn.pre_obj
            if not (
                isinstance(transform, nengo.transforms.Sparse)
                and isinstance(relay, nengo.Node)
                and str(relay.label).endswith(".bias_relay")
                and conn.synapse is None
                and conn.function is None
            ):
                continue
            channels, n = relay.size_out, conn.size_out
            indices = np.asarray(transform.init.indices)
            indices = indices[np.argsort(indices[:, 0], kind="stable")]
            tiled = np.stack([np.arange(n), np.arange(n) % channels], axis=1)
            if n % channels or not np.array_equal(indices, tiled) or not np.all(np.asarray(transform.init.data) == 1):
                continue
            with net:
                broadcast = ChannelBroadcast(channels, n // channels, label=f"{relay.label}.broadcast")
                nengo.Connection(relay, broadcast, synapse=None)
                nengo.Connection(broadcast, conn.post, synapse=None)
            net.connections.remove(conn)
            replaced += 1
    return replaced


def convert(
    model,
    *,
    spiking=False,
    spiking_neuron_type="SpikingRectifiedLinear",
    scale_firing_rates=1.0,
    synapse=None,
):
    """``nengo_dl.Converter`` of a (folded) Keras model for the engine.

    Parameters
    ----------
    spiking : bool
        Swap ReLU for ``spiking_neuron_type`` (else for its rate counterpart).
    scale_firing_rates : float
        Input gain of every neuron (its output is divided by the same factor).
    synapse : nengo.synapses.Synapse or None
        Filter on every connection leaving neurons (seconds).
    """
    from nengo_actions.compat import nengo_dl, tf

    # the rate build trains through the spiking type's rate function (ReLU for
    # SpikingRectifiedLinear, LIFRate for LIF), so the spiking run computes the same
    spiking_type = parse_neuron_type(spiking_neuron_type)
    neuron = spiking_type if spiking else rate_counterpart(spiking_type)
    has_max = any(isinstance(layer, tf.keras.layers.MaxPooling2D) for layer in model.layers)
    return nengo_dl.Converter(
        model,
        swap_activations={tf.keras.activations.relu: neuron},
        scale_firing_rates=float(scale_firing_rates),
        synapse=synapse,
        max_to_avg_pool=has_max,
        inference_only=False,  # BN is folded beforehand, so the network stays trainable
        allow_fallback=False,
    )


def converted_network(converter, model, neuron_layers, *, n_classes, spiking, steps_per_frame, dt, signature,
                      description, raster_neurons=20, params_in_network=False):
    """The :class:`BuiltNetwork` of ``nengo_dl.Converter`` ``converter`` run on the Keras
    ``model``: conv biases broadcast, operators unmerged, and a rate and raster probe per
    neuron layer (``neuron_layers``: ``{keras layer: probe name}``) that became an ensemble.
    The one tail of every converted network, rate-trained or trained directly."""
    tile_conv_biases(converter.net)
    unmerged_ops(converter.net)
    built = BuiltNetwork(
        network=converter.net,
        input=converter.inputs[model.inputs[0]],
        output=converter.outputs[model.outputs[0]],
        n_classes=int(n_classes),
        spiking=bool(spiking),
        steps_per_frame=int(steps_per_frame),
        dt=dt,
        signature=dict(signature),
        description=description,
        params_in_network=params_in_network,
    )
    for layer, name in neuron_layers.items():
        target = converter.layers[layer]
        ensemble = getattr(target, "ensemble", target)
        if isinstance(ensemble, nengo.Ensemble):
            add_layer_probes(built, name, ensemble, raster_neurons)
    return built


def built_from_keras(folded, conv: DVSConvConfig, n_classes, *, spiking=False, steps_per_frame=1, dt=0.001,
                     raster_neurons=20, description="", seed=0):
    """A :class:`BuiltNetwork` converted from a BN-folded Keras model, with its weights.

    ``conv`` is the ``model.dvs_conv`` section (neuron type, firing-rate scale, synapse
    in frames, rate regularisation). Each ReLU layer becomes a probed layer.
    """
    from nengo_actions.compat import tf

    spiking = bool(spiking)
    converter = convert(
        folded,
        spiking=spiking,
        spiking_neuron_type=conv.spiking_neuron_type,
        scale_firing_rates=conv.scale_firing_rates,
        synapse=frames_to_synapse(conv.synapse, steps_per_frame, dt) if spiking else None,
    )
    # a fixed seed: the spiking neurons' initial voltages are the same in every build
    # of this network (also after Simulator.freeze_params), not drawn from build order
    converter.net.seed = int(seed)
    layers = {layer: layer.name.replace("spike_", "") for layer in folded.layers
              if isinstance(layer, tf.keras.layers.Activation)}
    built = converted_network(
        converter, folded, layers, n_classes=n_classes, spiking=spiking, steps_per_frame=steps_per_frame, dt=dt,
        signature={"model": folded.name}, description=description, raster_neurons=raster_neurons,
    )
    built.keras_model = folded
    if conv.rate_regularization > 0:
        for probed in built.layers:
            built.loss_terms.append((probed.rate_probe, rate_regularizer(conv.rate_target), conv.rate_regularization))
    return built


__all__ = [
    "fold_batch_norm",
    "folded_weights",
    "convert",
    "built_from_keras",
    "converted_network",
    "tile_conv_biases",
]
