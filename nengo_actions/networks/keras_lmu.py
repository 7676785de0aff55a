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

from nengo_actions.networks.base import BuildArgs, BuiltNetwork
from nengo_actions.config.models import KerasLMUConfig


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


def build_keras_lmu(lmu: KerasLMUConfig, args: BuildArgs):
    """Build the keras-lmu baseline from ``model.keras_lmu`` (no neurons, not spiking)."""
    from nengo_actions.compat import nengo_dl

    if args.steps_per_frame != 1:
        raise ValueError("the keras-lmu baseline sees a whole clip per step (steps_per_frame=1)")
    n_frames, n_features, n_classes = args.n_frames, args.n_features, args.n_classes
    theta = lmu.theta if lmu.theta is not None else n_frames
    layer = keras_lmu_layer(
        n_frames, n_features, n_classes, order=lmu.order, units=lmu.units, theta=theta,
        memory_d=lmu.memory_d, hidden=lmu.hidden, seed=args.seed,
    )
    with nengo.Network(seed=args.seed, label="keras_lmu") as net:
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
        dt=args.dt,
        description=(
            f"keras-lmu LMU: order {lmu.order}, {lmu.memory_d} memor"
            f"{'y' if lmu.memory_d == 1 else 'ies'}, theta {theta} frames, {lmu.units} "
            f"{'SimpleRNN' if lmu.hidden == 'rnn' else 'Dense ReLU'} units (non-spiking reference)"
        ),
    )
