"""The non-spiking reference: a ``keras_lmu.LMU`` layer, run inside NengoDL.

keras-lmu's layers cannot be converted into a temporal Nengo model (they fall back to
TensorNodes), so the baseline runs the whole clip as one step: a ``nengo_dl.TensorNode``
receives the clip flattened to ``(n_frames * n_features,)`` and returns class scores for
every frame, ``(n_frames * n_classes,)``. The engine packs and unpacks clips
(``frames_per_input = n_frames``), so training, model selection, metrics and reports are
the same as for the native Nengo networks.
"""

from __future__ import annotations

import nengo
import numpy as np

from nengo_actions.networks.base import BuiltNetwork


def keras_lmu_layer(n_frames, n_features, n_classes, order=2, units=800, theta=28, memory_d=1, hidden="rnn", seed=0):
    """A Keras layer ``(batch, n_frames * n_features) -> (batch, n_frames * n_classes)``.

    Parameters
    ----------
    order, theta, memory_d : int, float, int
        The LMU memory (``theta`` in frames).
    units : int
        Hidden units: a ``SimpleRNNCell`` (``hidden="rnn"``, tanh, recurrent) or a
        ``Dense`` ReLU layer (``hidden="dense"``, feed-forward like the spiking LMU).
    """
    from nengo_actions.compat import tf

    import keras_lmu

    if hidden not in ("rnn", "dense"):
        raise ValueError(f"hidden must be 'rnn' or 'dense', got {hidden!r}")

    class KerasLMUClassifier(tf.keras.layers.Layer):
        """keras_lmu.LMU over the frames of a flattened clip, then a per-frame readout."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            init = tf.keras.initializers.GlorotUniform(seed=seed)
            if hidden == "rnn":
                cell = tf.keras.layers.SimpleRNNCell(units, kernel_initializer=init)
            else:
                cell = tf.keras.layers.Dense(units, activation="relu", kernel_initializer=init)
            self.lmu = keras_lmu.LMU(
                memory_d=memory_d,
                order=order,
                theta=float(theta),
                hidden_cell=cell,
                input_to_hidden=True,
                kernel_initializer=init,
                return_sequences=True,
            )
            self.readout = tf.keras.layers.Dense(n_classes, kernel_initializer=init)

        def call(self, inputs):
            x = tf.reshape(inputs, (-1, n_frames, n_features))
            y = self.readout(self.lmu(x))
            return tf.reshape(y, (-1, n_frames * n_classes))

    return KerasLMUClassifier(name="keras_lmu")


def build_keras_lmu(
    model_cfg,
    *,
    n_features,
    n_classes,
    n_frames,
    spiking=None,
    steps_per_frame=1,
    dt=0.001,
    seed=0,
    raster_neurons=20,
):
    """Build the keras-lmu baseline from ``model.keras_lmu`` (no neurons, not spiking)."""
    from nengo_actions.compat import nengo_dl

    del spiking, raster_neurons
    if steps_per_frame != 1:
        raise ValueError("the keras-lmu baseline sees a whole clip per step (steps_per_frame=1)")
    cfg = model_cfg["keras_lmu"]
    theta = cfg["theta"] if cfg["theta"] is not None else n_frames
    layer = keras_lmu_layer(
        n_frames, n_features, n_classes, order=cfg["order"], units=cfg["units"], theta=theta,
        memory_d=cfg["memory_d"], hidden=cfg["hidden"], seed=seed,
    )
    with nengo.Network(seed=seed, label="keras_lmu") as net:
        nengo_dl.configure_settings(stateful=False, trainable=None)
        inp = nengo.Node(np.zeros(n_frames * n_features), label="features")
        out = nengo_dl.Layer(layer)(
            inp, shape_in=(n_frames * n_features,), shape_out=(n_frames * n_classes,)
        )
        probe = nengo.Probe(out, synapse=None, label="output")
    return BuiltNetwork(
        network=net,
        input=inp,
        output=probe,
        n_classes=n_classes,
        spiking=False,
        frames_per_input=n_frames,
        dt=dt,
        signature={
            "model": "keras_lmu",
            "n_features": int(n_features),
            "n_classes": int(n_classes),
            "n_frames": int(n_frames),
            **{k: cfg[k] for k in ("order", "units", "memory_d", "hidden")},
        },
        description=(
            f"keras-lmu LMU: order {cfg['order']}, {cfg['memory_d']} memor"
            f"{'y' if cfg['memory_d'] == 1 else 'ies'}, theta {theta} frames, {cfg['units']} "
            f"{'SimpleRNN' if cfg['hidden'] == 'rnn' else 'Dense ReLU'} units (non-spiking reference)"
        ),
    )
