"""Spiking-aware training over the frames with keras-spiking, converted to Nengo.

The second route to a DVS SNN (the first, :mod:`nengo_actions.networks.dvs_conv`, trains
rate neurons in the engine). Here the Keras model itself runs over time: each frame is
held for ``k`` steps of ``dt``, every layer is ``TimeDistributed``, neurons are
``keras_spiking.SpikingActivation("relu")`` (spikes in the forward pass, the ReLU's
gradient in the backward pass) and each is followed by a ``keras_spiking.Lowpass``
filter whose time constant is trained, one per layer (the PLIF paper's learnable tau:
a constraint keeps the layer's per-neuron copies equal, which is also what lets the
Converter turn it into one Nengo synapse). The trained model is converted by
``nengo_dl.Converter(temporal_model=True)`` and run by the engine with spiking neurons.

What the conversion needs, found on NengoDL 3.6 / keras-spiking 0.3:

* ``spiking_aware_training=False`` on the converted copy, ``inference_only=True``
  (trainable Lowpass layers), and the Lowpass initial levels set back to zero;
* a Lowpass tau equal over the layer (per-neuron taus are refused);
* ``SpikingActivation`` on flat ``(T, units)`` inputs: on ``(T, H, W, C)`` the converted
  neurons' voltage state keeps the spatial shape and the NengoDL build fails, so conv
  outputs are flattened before the neurons and reshaped after the filter.

Firing rates: a SpikingActivation fires ``relu(x)`` spikes per second, so inputs are
multiplied by ``input_gain`` (pre-activations of about 100 instead of about 1: about
100 Hz) and the loss sees the outputs divided by it. In the converted network the gain is
folded into the first convolution's kernel. Batch normalisation is left out of this
route; pooling is average pooling (what runs is what is trained).
"""

from __future__ import annotations

import numpy as np

from nengo_actions.networks import BuiltNetwork, add_layer_probes, unmerged_ops
from nengo_actions.networks.dvs_conv import _frame_shape, clip_accuracy, tile_conv_biases


#: Bounds of a trained time constant, seconds (Adam steps of about the learning rate
#: would otherwise push a few-ms tau below zero within an epoch).
TAU_RANGE = (0.001, 0.2)


def _shared_tau(w):
    """One time constant per layer (the mean), kept within :data:`TAU_RANGE`."""
    from nengo_actions.compat import tf

    return tf.clip_by_value(tf.ones_like(w) * tf.reduce_mean(w), *TAU_RANGE)


def temporal_gesture_net(frame_shape, n_steps, n_classes, channels=16, depth=2, dense=64, votes=10, tau=0.005, dt=0.001, spiking_aware=True, seed=0):
    """The DVS128 Gesture stack over time: ``(batch, n_steps, H*W*2) -> (batch, n_steps, n_classes)``.

    ``{conv3x3 - spiking - lowpass - avgpool 2} x depth - dense - spiking - lowpass -
    dense classes*votes - spiking - lowpass - voting``; ``tau`` (s) is the initial
    time constant of every Lowpass (trained, one per layer).
    """
    import keras_spiking

    from nengo_actions.compat import tf

    L = tf.keras.layers
    init = lambda i: tf.keras.initializers.HeUniform(seed=seed + i)  # noqa: E731

    def spiking(x, name, shape=None):
        x = keras_spiking.SpikingActivation("relu", dt=dt, spiking_aware_training=spiking_aware, name=f"spike_{name}")(x)
        x = keras_spiking.Lowpass(tau, dt=dt, tau_constraint=_shared_tau, name=f"lowpass_{name}")(x)
        return L.TimeDistributed(L.Reshape(shape), name=f"unflatten_{name}")(x) if shape else x

    inp = tf.keras.Input((n_steps, int(np.prod(frame_shape))), name="frames")
    x = L.TimeDistributed(L.Reshape(tuple(frame_shape)), name="image")(inp)
    h, w = frame_shape[:2]
    for i in range(depth):
        x = L.TimeDistributed(L.Conv2D(channels, 3, padding="same", kernel_initializer=init(i)), name=f"conv{i}")(x)
        x = L.TimeDistributed(L.Flatten(), name=f"flat{i}")(x)
        x = spiking(x, f"conv{i}", (h, w, channels))
        x = L.TimeDistributed(L.AveragePooling2D(2), name=f"pool{i}")(x)
        h, w = h // 2, w // 2
    x = L.TimeDistributed(L.Flatten(), name="flatten")(x)
    x = L.TimeDistributed(L.Dense(dense, kernel_initializer=init(depth)), name="fc0")(x)
    x = spiking(x, "fc0")
    x = L.TimeDistributed(L.Dense(n_classes * votes, kernel_initializer=init(depth + 1)), name="fc1")(x)
    x = spiking(x, "fc1")
    if votes > 1:
        x = L.TimeDistributed(L.Reshape((n_classes * votes, 1)), name="voting_groups")(x)
        x = L.TimeDistributed(L.AveragePooling1D(votes), name="voting")(x)
        x = L.TimeDistributed(L.Flatten(), name="voting_scores")(x)
    return tf.keras.Model(inp, x, name="dvs_gesture_net_temporal")


def learned_taus(model):
    """``{layer: tau (s)}`` of the Lowpass layers."""
    import keras_spiking

    return {
        layer.name.replace("lowpass_", ""): float(np.mean(layer.get_weights()[1]))
        for layer in model.layers
        if isinstance(layer, keras_spiking.Lowpass)
    }


def convert_temporal(model, frame_shape, n_steps, n_classes, cfg, input_gain, dt=0.001, seed=0, raster_neurons=20):
    """The Nengo network of a trained temporal model: a :class:`BuiltNetwork` whose
    input node takes one flattened frame per step (``input_gain`` folded in)."""
    import keras_spiking
    import nengo

    from nengo_actions.compat import nengo_dl

    copy = temporal_gesture_net(
        frame_shape, n_steps, n_classes, cfg["channels"], cfg["depth"], cfg["dense"], cfg["votes"],
        dt=dt, spiking_aware=False, seed=seed,
    )
    copy.set_weights(model.get_weights())
    for layer in copy.layers:
        if isinstance(layer, keras_spiking.Lowpass):
            level, tau = layer.get_weights()
            layer.set_weights([np.zeros_like(level), tau])
    first = copy.get_layer("conv0").layer
    kernel, bias = first.get_weights()
    first.set_weights([kernel * input_gain, bias])
    converter = nengo_dl.Converter(copy, temporal_model=True, inference_only=True, allow_fallback=False)
    tile_conv_biases(converter.net)
    unmerged_ops(converter.net)
    built = BuiltNetwork(
        network=converter.net,
        input=converter.inputs[copy.inputs[0]],
        output=converter.outputs[copy.outputs[0]],
        n_classes=n_classes,
        spiking=True,
        dt=dt,
        signature={"model": "dvs_gesture_net_temporal", **cfg},
        description="spiking-aware keras-spiking network converted with temporal_model=True",
    )
    for layer in copy.layers:
        if isinstance(layer, keras_spiking.SpikingActivation):
            target = converter.layers[layer]
            if isinstance(getattr(target, "ensemble", None), nengo.Ensemble):
                add_layer_probes(built, layer.name.replace("spike_", ""), target.ensemble, raster_neurons)
    return built


def train_spiking_aware(model_cfg, data, *, steps_per_frame=4, input_gain=100.0, tau=0.005, epochs=10, batch_size=16, learning_rate=3e-3, seed=0, log=print):
    """Train ``model.dvs_gesture_net`` (its sizes) spiking-aware in Keras, convert, evaluate.

    Each frame is held for ``steps_per_frame`` steps of 1 ms in training and in the
    Nengo run. Returns a dict: ``keras_spiking_test_accuracy``, ``nengo_spiking_test_accuracy``
    (per sample, the scores averaged over all steps), ``learned_tau_s`` per layer and
    ``firing_rate_hz`` per layer (Nengo run).
    """
    from nengo_actions.compat import tf
    from nengo_actions.engine import Engine

    cfg = {k: model_cfg["dvs_gesture_net"][k] for k in ("channels", "depth", "dense", "votes")}
    shape = _frame_shape(data.n_features, model_cfg["dvs_gesture_net"]["frame_shape"])
    k, n_steps = int(steps_per_frame), data.n_frames * int(steps_per_frame)
    tf.keras.utils.set_random_seed(seed)
    model = temporal_gesture_net(shape, n_steps, data.n_classes, cfg["channels"], cfg["depth"], cfg["dense"], cfg["votes"], tau=tau, seed=seed)
    xentropy = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(y_true, y_pred):  # every step scored; outputs are rates, scaled by the gain
        return xentropy(y_true, y_pred / input_gain)

    model.compile(tf.keras.optimizers.Adam(learning_rate), loss)

    def steps(x):
        return np.repeat(x, k, axis=1) * np.float32(input_gain)

    def targets(y):
        return np.repeat(np.asarray(y)[:, None], n_steps, axis=1)

    x_fit, y_fit = data.x_train, data.y_train
    best, best_weights = -1.0, None
    for epoch in range(epochs):
        model.fit(steps(x_fit), targets(y_fit), batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
        val = clip_accuracy(model.predict(steps(data.x_val), verbose=0), data.y_val) if len(data.y_val) else float(epoch)
        log(f"spiking-aware epoch {epoch + 1}: validation accuracy {val:.2%}, taus {learned_taus(model)}")
        if val > best:
            best, best_weights = val, model.get_weights()
    model.set_weights(best_weights)
    result = {"keras_spiking_test_accuracy": clip_accuracy(model.predict(steps(data.x_test), verbose=0), data.y_test)}
    result["learned_tau_s"] = learned_taus(model)
    built = convert_temporal(model, shape, n_steps, data.n_classes, cfg, input_gain, seed=seed)
    built.steps_per_frame = k
    engine = Engine(built, minibatch_size=batch_size, device="auto", seed=seed)
    try:
        from nengo_actions.spiking import layer_probes, layer_readings

        outputs, extra = engine.predict(data.x_test, layer_probes(built))
        rates, _ = layer_readings(built, extra)
    finally:
        engine.close()
    result["nengo_spiking_test_accuracy"] = clip_accuracy(outputs, data.y_test)
    result["firing_rate_hz"] = rates
    log(
        f"spiking-aware: Keras {result['keras_spiking_test_accuracy']:.2%}, Nengo "
        f"{result['nengo_spiking_test_accuracy']:.2%} ({k} steps per frame)"
    )
    return result


__all__ = ["temporal_gesture_net", "convert_temporal", "train_spiking_aware", "learned_taus"]
