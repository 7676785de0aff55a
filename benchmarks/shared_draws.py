"""Our trainer replaying SpikingJelly's random draws, for whole-run parity.

``peer_nir.py train --draws DRAWS.npz`` records what a SpikingJelly run draws at random:
its initial parameters, each epoch's clip order and every dropout mask. Inside
:func:`replayed`, a run of ours (``dvs_parity``'s ``sj_exact`` recipe, the same frames)
starts from those parameters, takes the same minibatches in the same order and drops the
same units, so the two runs differ only in what the two frameworks compute, not in
what they drew. ``parity_step.py`` checks single steps; this checks whole runs.

The replay patches the trainer from outside (this module is a benchmark, the library
has no hooks for it): ``engine.direct.build_temporal`` (the initial weights),
``engine.trainer.epoch_order`` (the order) and the dropout layers' masks.
"""

from __future__ import annotations

import contextlib

import numpy as np

from parity_step import _keras_layout


class Replay:
    """What the block of :func:`replayed` yields: after a run, :meth:`drift` compares the
    trained weights with SpikingJelly's."""

    def __init__(self, z):
        self.z, self.model, self.snapshots = z, None, {}  # ours, as SpikingJelly's are named

    def kernels(self):
        """``{layer: kernel}`` of each conv and dense layer of the last replayed run's model."""
        return {name: self.model.get_layer(name).layer.get_weights()[0] for name in self._names()}

    def drift(self, after="final"):
        """``{layer: max |ours - SpikingJelly's| / max |SpikingJelly's|}`` over each conv and
        dense kernel of the last replayed run: at its end (``"final"``), after its first
        optimizer step (``"step1"``) or after an epoch (``"epoch1"``, ...)."""
        ours = self.kernels() if after == "final" else self.snapshots[after]
        theirs = self._theirs(after)
        return {name: float(np.abs(ours[name] - theirs[name]).max() / np.abs(theirs[name]).max()) for name in ours}

    def recorded(self, after):
        """Whether SpikingJelly's parameters ``after`` are in the draws file (older files
        hold only the final ones)."""
        return any(k.startswith(f"{after}/") for k in self.z.files)

    def _theirs(self, after):
        h = w = int(round((self.model.input_shape[-1] / 2) ** 0.5))  # square frames: h * w * 2 inputs
        channels = self.model.get_layer("conv0").layer.filters
        return {k: v for k, v in _keras_layout(self.z, f"{after}/", (channels, h // 32, w // 32)).items()
                if not isinstance(v, list)}

    def _names(self):
        return [l.name for l in self.model.layers if l.name.startswith(("conv", "fc"))]


@contextlib.contextmanager
def replayed(draws_path, float64=False):
    """Runs of the direct trainer inside the block replay ``draws_path``; yields a
    :class:`Replay`. With ``float64`` the trained model is built and trained in double
    precision (Keras' float type, for the draws of ``peer_nir.py train --float64``); the
    float type is float32 again after the last recorded epoch, so the Nengo network and
    the rest of the run are as usual."""
    from nengo_actions.compat import tf
    from nengo_actions.engine import direct, trainer
    from nengo_actions.networks import dvs_direct

    z = np.load(draws_path, allow_pickle=False)
    orders, labels = z["orders"], z["y_train"]
    masks = []  # per dropout layer, in the model's order: (clips over all epochs, features) bool
    while f"mask{len(masks)}" in z.files:
        shape = z[f"mask{len(masks)}_shape"]
        masks.append(np.unpackbits(z[f"mask{len(masks)}"])[: int(np.prod(shape))].reshape(shape))
    state, replay = {"epoch": None}, Replay(z)
    shared = {}  # dropout layer name -> its mask, (B, 1, F), as a variable the step reads

    def build_temporal(*args, **kwargs):
        if float64:
            tf.keras.backend.set_floatx("float64")
        net = original_build(*args, **kwargs)
        h, w, _ = net.frame_shape
        channels = net.keras_model.get_layer("conv0").layer.filters
        for name, value in _keras_layout(z, "init/", (channels, h // 32, w // 32)).items():
            net.keras_model.get_layer(name).layer.set_weights(value if isinstance(value, list) else [value])
        dropouts = [l for l in net.keras_model.layers if isinstance(l, dvs_direct.SeededDropout)]
        if len(dropouts) != len(masks):
            raise ValueError(f"{draws_path}: {len(masks)} dropout layers recorded, the model has {len(dropouts)}")
        for layer, m in zip(dropouts, masks):
            shared.setdefault(layer.name, tf.Variable(np.zeros((1, 1, 1), np.float32), shape=tf.TensorShape(None),
                                                      trainable=False))
            # SpikingJelly flattens (C, H, W), Keras (H, W, C)
            flat_chw = layer is dropouts[0]
            state[layer.name] = (m.reshape(len(m), channels, h // 32, w // 32).transpose(0, 2, 3, 1).reshape(len(m), -1)
                                 if flat_chw else m)
        return net

    def epoch_order(n, epoch, batch, seed, fill):
        if n != orders.shape[1] or fill:
            raise ValueError(f"{draws_path}: recorded for {orders.shape[1]} clips and short last batches; got {n}, fill={fill}")
        state["epoch"] = epoch
        order = orders[epoch]
        return np.concatenate([np.sort(order[i : i + batch]) for i in range(0, n, batch)])

    def set_seed(self, epoch_seed, minibatch):
        if state["epoch"] == 0 and minibatch == 1:  # the first step is done
            replay.snapshots["step1"] = replay.kernels()
        n, batch = orders.shape[1], state["batch"]
        start, size = state["epoch"] * n + minibatch * batch, min(batch, n - minibatch * batch)
        for name, variable in shared.items():
            variable.assign(state[name][start : start + size, None, :].astype(np.float32))

    def call(self, inputs, training=None):
        if not training:
            return tf.identity(inputs)
        mask = tf.reshape(tf.cast(shared[self.name], inputs.dtype), (-1, 1, inputs.shape[-1]))
        return inputs * mask / (1.0 - self.rate)

    def fit_epoch(self, x, y, epoch, seed=0):
        if not np.array_equal(np.asarray(y), labels):
            raise ValueError(f"{draws_path}: the training clips are not the ones the draws were recorded on")
        state["batch"], replay.model = self.minibatch_size, self.model
        try:
            loss = original_fit(self, x, y, epoch, seed)
            replay.snapshots[f"epoch{epoch + 1}"] = replay.kernels()
            return loss
        finally:
            if epoch == len(orders) - 1:
                tf.keras.backend.set_floatx(floatx)

    original_build, original_fit = direct.build_temporal, direct.DirectEngine.fit_epoch
    patches = [(direct, "build_temporal", build_temporal), (trainer, "epoch_order", epoch_order),
               (dvs_direct.DropoutSeed, "set", set_seed), (dvs_direct.SeededDropout, "call", call),
               (direct.DirectEngine, "fit_epoch", fit_epoch)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    floatx = tf.keras.backend.floatx()
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield replay
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
        tf.keras.backend.set_floatx(floatx)
