"""Direct spiking training: the engine's training method for LIF networks over time.

:class:`DirectEngine` is an :class:`~nengo_actions.engine.Engine` whose model is a
multi-step Keras network (:class:`~nengo_actions.networks.dvs_direct.TemporalNet`)
instead of a ``nengo_dl.Simulator``: each minibatch runs forward over all T frames with
spiking LIF neurons, and the loss on the output firing rate is backpropagated through
time with surrogate gradients (SpikingJelly's and the PLIF paper's recipe). It keeps
the engine's interface (arrays, losses, optimizer and schedule, parameter files with a
signature, optimizer state), so :func:`nengo_actions.training.train` runs the epochs,
model selection on validation, checkpoints, ``--resume``, ``history.csv`` and TensorBoard
as for every other model. The trained parameters are then run as a Nengo network
(:func:`~nengo_actions.networks.dvs_direct.build_direct_network`).

Losses, on the outputs ``o`` of shape ``(batch, T, classes)`` (spikes of the output
layer, averaged over each class's votes):

* ``"mse"``: ``mean_c (mean_t o - onehot)^2``, SpikingJelly's loss on the firing rate;
* ``"sparse_categorical_crossentropy"``: cross-entropy with the output spike counts
  ``sum_t o`` as logits.

``train.loss_steps = k > 0`` uses only the last ``k`` steps.
"""

from __future__ import annotations

import contextlib

import numpy as np

from nengo_actions.compat import tf
from nengo_actions.distribute import replicas
from nengo_actions.engine import Engine, select_device
from nengo_actions.errors import ConfigError
from nengo_actions.params import check_signature, read_params


def rate_loss(n_classes, kind="mse", last_steps=0):
    """The training loss on ``(batch, T, classes)`` outputs and ``(batch,)`` labels."""

    def loss(y, out):
        if last_steps:
            out = out[:, -last_steps:]
        if kind == "mse":
            target = tf.one_hot(tf.cast(y, tf.int32), n_classes, dtype=out.dtype)
            return tf.reduce_mean(tf.square(tf.reduce_mean(out, axis=1) - target))
        counts = tf.reduce_sum(out, axis=1)
        return tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, counts, from_logits=True))

    return loss


def numpy_rate_loss(outputs, labels, kind="mse", last_steps=0):
    """:func:`rate_loss` on ``(clips, frames, classes)`` numpy outputs."""
    outputs = np.asarray(outputs, np.float64)
    if last_steps:
        outputs = outputs[:, -last_steps:]
    labels = np.asarray(labels)
    if kind == "mse":
        return float(np.mean((outputs.mean(axis=1) - np.eye(outputs.shape[-1])[labels]) ** 2))
    counts = outputs.sum(axis=1)
    shifted = counts - counts.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


def describe_weights(model):
    return [{"name": w.name, "shape": list(w.shape)} for w in model.weights]


def load_temporal_params(net, path):
    """Load a :class:`DirectEngine` parameter file into ``net.keras_model``; raises
    :class:`~nengo_actions.errors.ParamsError` naming the file if it is another model's."""
    values, header = read_params(path)
    check_signature(path, header, net.signature, describe_weights(net.keras_model))
    tf.keras.backend.batch_set_value(zip(net.keras_model.weights, values))
    return header


class DirectEngine(Engine):
    """The engine for a :class:`~nengo_actions.networks.dvs_direct.TemporalNet`.

    Parameters are all the model's weights, batch-norm statistics included (what a
    resumed or evaluated run needs). Outputs are per frame, ``(clips, frames,
    classes)``: the output spikes of each step.
    """

    def __init__(self, net, minibatch_size=16, device="auto", seed=0, strategy=None, replicated_model=None):
        """``strategy``: a ``tf.distribute`` strategy, with ``replicated_model`` the same
        network built in its scope. That copy trains; ``net.keras_model`` predicts and is
        saved, and takes the trained weights after every epoch (the reads that gather the
        replicas' batch-norm statistics happen there, at the same point on every worker)."""
        self.built = net
        self.model = net.keras_model
        self.minibatch_size = int(minibatch_size)
        self.device = select_device(device)
        self.n_features = int(np.prod(net.frame_shape))
        self.compiled = False
        self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        self.strategy = strategy
        self.replicas = replicas(strategy)
        self._trained = self.model if strategy is None else replicated_model
        if strategy is not None:
            if self.minibatch_size % self.replicas:
                raise ConfigError(
                    f"train.minibatch_size {self.minibatch_size} does not split evenly over {self.replicas} "
                    f"replicas; make it a multiple of {self.replicas}"
                )
            tf.keras.backend.batch_set_value(zip(self._trained.weights, self.model.get_weights()))

    # -- prediction --------------------------------------------------------------------

    def predict(self, x, probes=None):
        """Output spikes per frame, ``(clips, frames, classes)``."""
        if probes:
            raise ValueError("the trained multi-step model has no Nengo probes; run its Nengo network")
        self.check_arrays(x)
        with tf.device(self.device):
            outputs = [self._forward(tf.constant(xb)).numpy()[:keep] for xb, keep in self.minibatches(x)]
        result = np.concatenate(outputs)
        return (result, {}) if probes is not None else result

    def numpy_loss(self, outputs, labels, kind, last_steps):
        return numpy_rate_loss(outputs, labels, kind, last_steps)

    # -- training ----------------------------------------------------------------------

    def _scope(self):
        return contextlib.nullcontext() if self.strategy is None else self.strategy.scope()

    def compile(self, settings, n_train):
        if self.strategy is not None and settings.last_batch != "fill" and n_train % self.minibatch_size:
            raise ConfigError(
                f"train.last_batch {settings.last_batch!r}: a short last minibatch does not split over "
                f"{self.replicas} replicas; use \"fill\" with train.distribute"
            )
        with self._scope():  # the optimizer's variables are mirrored like the model's
            self.compile_optimizer(settings, n_train)
        loss_fn = rate_loss(self.built.n_classes, settings.loss, settings.loss_steps)
        model, optimizer, mixed = self._trained, self.optimizer, self.mixed_precision
        # each replica's loss is the mean over its share of the global minibatch; the
        # gradients are summed over replicas, so 1/replicas makes them the global mean's
        scale = 1.0 / self.replicas

        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
                share = loss if self.strategy is None else loss * scale
                scaled = optimizer.get_scaled_loss(share) if mixed else share
            grads = tape.gradient(scaled, model.trainable_weights)
            if mixed:
                grads = optimizer.get_unscaled_gradients(grads)
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
            return loss

        if self.strategy is None:
            self._train_step = tf.function(step, reduce_retracing=True)
        else:
            strategy = self.strategy

            @tf.function(reduce_retracing=True)
            def distributed_step(batch):
                losses = strategy.run(step, args=batch)
                return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

            self._train_step = distributed_step
        self.compiled = True

    def fit_epoch(self, x, y, epoch, seed=0):
        """One pass in an order fixed by ``seed`` and ``epoch`` (the last batch filled
        up with the first clips of the order, or short with ``train.last_batch: "short"``);
        returns the mean training loss, each minibatch's loss weighted by its clips."""
        fill = self.settings.last_batch == "fill"
        order, batch, losses = self.epoch_order(len(x), epoch, seed, fill), self.minibatch_size, []
        # dropout masks from a seed of their own per epoch, so that a resumed run draws
        # what an uninterrupted one would
        tf.random.set_seed(int(np.random.RandomState([seed, epoch, 1]).randint(2**31)))
        if self.strategy is not None:
            losses = [float(self._train_step(self._replica_batches(x, y, order[start : start + batch])))
                      for start in range(0, len(order), batch)]
            self.model.set_weights(self._trained.get_weights())
            return float(np.mean(losses))
        with tf.device(self.device):
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                xb = tf.constant(np.asarray(x[idx], np.float32))
                yb = tf.constant(np.asarray(y[idx], np.int32))
                losses.append(float(self._train_step(xb, yb)))
        if fill:
            return float(np.mean(losses))
        sizes = [min(batch, len(order) - start) for start in range(0, len(order), batch)]
        return float(np.average(losses, weights=sizes))

    def _replica_batches(self, x, y, idx):
        """The global minibatch ``idx`` as per-replica ``(x, y)``: replica r takes the r-th
        equal share, and each worker reads only its own replicas' clips."""
        share = len(idx) // self.replicas

        def part(context):
            mine = idx[context.replica_id_in_sync_group * share :][:share]
            return tf.constant(np.asarray(x[mine], np.float32)), tf.constant(np.asarray(y[mine], np.int32))

        return self.strategy.experimental_distribute_values_from_function(part)

    # -- parameters --------------------------------------------------------------------

    def get_params(self):
        return [w.numpy() for w in self.model.weights]

    def set_params(self, values):
        tf.keras.backend.batch_set_value(zip(self.model.weights, values))
        if self._trained is not self.model:
            tf.keras.backend.batch_set_value(zip(self._trained.weights, values))

    def _describe(self):
        return describe_weights(self.model)

    def trainable_variables(self):
        return self._trained.trainable_weights

    def set_optimizer_state(self, values):
        with self._scope():
            super().set_optimizer_state(values)

    def close(self):
        pass


__all__ = ["DirectEngine", "rate_loss", "numpy_rate_loss", "load_temporal_params"]
