"""The Keras trainer: direct spiking training of LIF networks through time.

:class:`DirectEngine` implements the trainer interface
(:class:`nengo_actions.engine.trainer.Trainer`) on a multi-step Keras network
(:class:`~nengo_actions.networks.dvs_direct.TemporalNet`) instead of a
``nengo_dl.Simulator``: each minibatch runs forward over all T frames with spiking LIF
neurons, and the loss on the output firing rate (:func:`nengo_actions.engine.losses.rate_loss`)
is backpropagated through time with surrogate gradients (SpikingJelly's and the PLIF
paper's recipe). :func:`nengo_actions.engine.training.train` runs its epochs, model selection
on validation, checkpoints, ``--resume``, ``history.csv`` and TensorBoard as for every
other model. The trained parameters are then run as a Nengo network
(:func:`~nengo_actions.networks.dvs_direct.build_direct_network`).
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from nengo_actions import params

from nengo_actions.engine import distribute

from nengo_actions.engine import trainer
from nengo_actions.compat import tf
from nengo_actions.errors import ConfigError
from nengo_actions.engine.losses import numpy_rate_loss, rate_loss
from nengo_actions.networks.dvs_direct import build_direct_network, build_temporal, dropout_seed


class DirectEngine:
    """The trainer of a :class:`~nengo_actions.networks.dvs_direct.TemporalNet`.

    Parameters are all the model's weights, batch-norm statistics included (what a
    resumed or evaluated run needs). Outputs are per frame, ``(clips, frames,
    classes)``: the output spikes of each step.
    """

    evaluated_as = "trained model"
    network = None  # the Nengo network is built from the trained parameters (nengo_network)

    def __init__(self, net, minibatch_size=16, device="auto", seed=0, strategy=None, replicated_model=None):
        """``strategy``: a ``tf.distribute`` strategy, with ``replicated_model`` the same
        network built in its scope. That copy trains; ``net.keras_model`` predicts and is
        saved, and takes the trained weights after every epoch (the reads that gather the
        replicas' batch-norm statistics happen there, at the same point on every worker)."""
        self.net = net
        self.model = net.keras_model
        self.minibatch_size = int(minibatch_size)
        self.device = trainer.select_device(device)
        self.n_features = int(np.prod(net.frame_shape))
        self.n_classes, self.signature, self.description = net.n_classes, net.signature, net.description
        self.compiled = False
        self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        self.strategy = strategy
        self.replicas = distribute.replicas(strategy)
        self._trained = self.model if strategy is None else replicated_model
        if strategy is not None:
            if self.minibatch_size % self.replicas:
                raise ConfigError(
                    f"train.minibatch_size {self.minibatch_size} does not split evenly over {self.replicas} "
                    f"replicas; make it a multiple of {self.replicas}"
                )
            tf.keras.backend.batch_set_value(zip(self._trained.weights, self.model.get_weights()))

    @classmethod
    def for_model(cls, model_type, cfg, data, settings):
        """The trainer of ``model_type``'s multi-step model, on ``train.distribute``'s
        strategy (where there is one, a second copy built in its scope trains)."""
        build = functools.partial(
            build_temporal, model_type, cfg.model, n_features=data.n_features, n_classes=data.n_classes, seed=cfg.seed
        )
        net, strategy, replicated = build(), distribute.strategy(settings.distribute), None
        if strategy is not None:  # the copy that trains, its variables one per replica
            with strategy.scope():
                replicated = build().keras_model
        return cls(net, settings.minibatch_size, settings.device, cfg.seed, strategy, replicated)

    @staticmethod
    def nengo_builder(model_type, cfg, data, params_path=None):
        """``build(spiking, steps_per_frame=...)``: the Nengo network converted from the
        multi-step model with the parameters of ``params_path`` built in."""
        ev = cfg.evaluate
        return functools.partial(
            build_direct_network, model_type, cfg.model, n_features=data.n_features, n_classes=data.n_classes,
            params_path=params_path, dt=ev.dt, seed=cfg.seed, raster_neurons=ev.raster_neurons,
        )

    def nengo_network(self, build):
        """The Nengo network of the trained parameters at one step per frame."""
        return build(spiking=True, steps_per_frame=1)

    # -- prediction --------------------------------------------------------------------

    def check_arrays(self, x, y=None, where="data"):
        trainer.check_arrays(x, y, where, n_features=self.n_features, n_classes=self.n_classes)

    def predict(self, x, probes=None):
        """Output spikes per frame, ``(clips, frames, classes)``."""
        if probes:
            raise ValueError("the trained multi-step model has no Nengo probes; run its Nengo network")
        self.check_arrays(x)
        with tf.device(self.device):
            outputs = [self._forward(tf.constant(xb)).numpy()[:keep]
                       for xb, keep in trainer.minibatches(x, self.minibatch_size)]
        result = np.concatenate(outputs)
        return (result, {}) if probes is not None else result

    def predict_layer_rates(self, x):
        """Output spikes per frame; the multi-step model has no Nengo layers to read."""
        return self.predict(x), {}

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
        self.settings = settings
        with self._scope():  # the optimizer's variables are mirrored like the model's
            self.optimizer, self.mixed_precision = trainer.compile_optimizer(
                settings, n_train, self.minibatch_size, self.device
            )
        loss_fn = rate_loss(self.n_classes, settings.loss, settings.loss_steps)
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
        batch, losses = self.minibatch_size, []
        order = trainer.epoch_order(len(x), epoch, batch, seed, fill)
        # dropout masks from a seed of their own per epoch and minibatch, so that a
        # resumed run draws what an uninterrupted one would
        epoch_seed = int(np.random.RandomState([seed, epoch, 1]).randint(2**31))
        source = dropout_seed(self._trained)

        def draw(start):
            if source is not None:
                source.set(epoch_seed, start // batch)
            return order[start : start + batch]

        if self.strategy is not None:
            losses = [float(self._train_step(self._replica_batches(x, y, draw(start))))
                      for start in range(0, len(order), batch)]
            self.model.set_weights(self._trained.get_weights())
            return float(np.mean(losses))
        with tf.device(self.device):
            for start in range(0, len(order), batch):
                idx = draw(start)
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

    def learning_rate(self):
        return trainer.learning_rate(self.optimizer)

    # -- parameters --------------------------------------------------------------------

    def trainable_variables(self):
        return self._trained.trainable_weights

    def get_params(self):
        return [w.numpy() for w in self.model.weights]

    def set_params(self, values):
        tf.keras.backend.batch_set_value(zip(self.model.weights, values))
        if self._trained is not self.model:
            tf.keras.backend.batch_set_value(zip(self._trained.weights, values))

    def describe_params(self):
        return params.describe(self.model.weights)

    def save_params(self, path, extra=None):
        """Write all the model's weights and the network signature (atomically)."""
        return params.save_params(path, self, extra)

    def load_params(self, path):
        """Load parameters saved by :meth:`save_params` into the model (and its trained
        copy); :class:`ParamsError` if they are another model's."""
        return params.load_params(path, self)

    def optimizer_state(self):
        return trainer.optimizer_state(self.optimizer)

    def set_optimizer_state(self, values):
        with self._scope():
            trainer.set_optimizer_state(self.optimizer, self.trainable_variables(), values)

    def close(self):
        pass


__all__ = ["DirectEngine"]
