"""The one engine: NengoDL training, model selection, checkpoints and prediction.

Every model (EnsembleArray, LMU, keras-lmu baseline, converted Keras networks) is a
:class:`~nengo_actions.networks.BuiltNetwork`: a Nengo network, its input node and output
probe. :class:`Engine` wraps a ``nengo_dl.Simulator`` around one and works on clip arrays:

* inputs ``x`` of shape ``(clips, frames, features)``, labels ``y`` of shape ``(clips,)``;
* outputs of shape ``(clips, frames, classes)`` (class scores per frame).

The epochs are run by :func:`nengo_actions.training.train`; parameter files are
:mod:`nengo_actions.params`.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from nengo_actions.compat import nengo_dl, tf
import nengo_actions.neurons  # noqa: F401,E402  (native builders: AdaptiveLIF, AdaptiveLIFRate, Izhikevich)
from nengo_actions.metrics import frame_outputs
from nengo_actions.networks.constant_inputs import fold_constant_inputs
from nengo_actions.errors import ConfigError, DataError, ParamsError
from nengo_actions.io import save_npz_atomic
from nengo_actions.params import PARAMS_FORMAT, check_signature, read_params
from nengo_actions.streaming import fit_epoch as fit_epoch_in_chunks

def select_device(name="auto"):
    """``"auto"``: the first GPU TensorFlow sees, else the CPU; or ``"cpu"``/``"gpu"``."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "gpu" and not gpus:
        raise DataError("train.device is 'gpu' but TensorFlow sees no GPU; use 'auto' or 'cpu'")
    if name == "cpu" or (name == "auto" and not gpus):
        return "/cpu:0"
    return "/gpu:0"


# ---------------------------------------------------------------------------------------
# Losses


def clip_loss(n_classes, kind="sparse_categorical_crossentropy", last_steps=0):
    """A Keras loss on per-step outputs, averaged over the last ``last_steps`` frames.

    ``y_pred`` arrives as ``(batch, steps, classes * frames_per_step)`` and ``y_true`` as
    ``(batch, steps, frames_per_step)``; both are unpacked to one row per frame first.
    ``last_steps=0`` averages over every frame (the seed's training target).
    """

    def loss(y_true, y_pred):
        batch = tf.shape(y_pred)[0]
        y_pred = tf.reshape(y_pred, (batch, -1, n_classes))
        y_true = tf.reshape(tf.cast(y_true, tf.int32), (batch, -1))
        if last_steps:
            y_pred, y_true = y_pred[:, -last_steps:], y_true[:, -last_steps:]
        if kind == "mse":
            target = tf.one_hot(y_true, n_classes, dtype=y_pred.dtype)
            return tf.reduce_mean(tf.square(y_pred - target), axis=[1, 2])
        per_step = tf.keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        return tf.reduce_mean(per_step, axis=1)

    return loss


def numpy_clip_loss(outputs, labels, kind="sparse_categorical_crossentropy", last_steps=0):
    """The same loss as :func:`clip_loss` on ``(clips, frames, classes)`` numpy outputs."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if last_steps:
        outputs = outputs[:, -last_steps:]
    n, steps, c = outputs.shape
    labels = np.broadcast_to(np.asarray(labels)[:, None], (n, steps))
    if kind == "mse":
        target = np.eye(c)[labels]
        return float(np.mean((outputs - target) ** 2))
    shifted = outputs - outputs.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-np.mean(np.take_along_axis(logp, labels[..., None], axis=-1)))


def mixed_precision(setting, device):
    """Whether to train with mixed precision: ``train.mixed_precision`` on ``device``.

    TensorFlow's automatic mixed precision rewrites the graph's GPU kernels
    (convolutions, matrix products) to float16 while parameters stay float32; on the
    CPU it does nothing, so ``"on"`` without a GPU is an error.
    """
    on_gpu = device.startswith("/gpu")
    if setting == "on" and not on_gpu:
        raise DataError("train.mixed_precision is 'on' but training runs on the CPU; use 'auto' or 'off'")
    return setting == "on" or (setting == "auto" and on_gpu)


def make_optimizer(settings, steps_per_epoch, mixed=False):
    """The optimizer with its learning-rate schedule, from the ``train`` settings.

    With ``mixed``, it is wrapped in Keras' ``LossScaleOptimizer`` (dynamic loss
    scaling, so that float16 gradients do not underflow).
    """
    optimizer = _optimizer(settings, steps_per_epoch)
    return tf.keras.mixed_precision.LossScaleOptimizer(optimizer) if mixed else optimizer


class EpochCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
    """``lr * (1 + cos(pi * epoch / epochs)) / 2``, constant within an epoch (PyTorch's
    ``CosineAnnealingLR`` stepped once per epoch); Keras' schedules change every step."""

    def __init__(self, learning_rate, steps_per_epoch, epochs):
        self.learning_rate, self.steps_per_epoch, self.epochs = float(learning_rate), int(steps_per_epoch), int(epochs)

    def __call__(self, step):
        epoch = tf.math.floordiv(tf.cast(step, tf.float32), float(max(1, self.steps_per_epoch)))
        return self.learning_rate * 0.5 * (1.0 + tf.math.cos(np.pi * epoch / float(max(1, self.epochs))))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs}


def _optimizer(settings, steps_per_epoch):
    lr = settings.learning_rate
    if settings.schedule == "cosine":
        lr = tf.keras.optimizers.schedules.CosineDecay(lr, max(1, steps_per_epoch * settings.epochs))
    elif settings.schedule == "cosine_epoch":
        lr = EpochCosine(lr, steps_per_epoch, settings.epochs)
    elif settings.schedule == "step":
        lr = tf.keras.optimizers.schedules.ExponentialDecay(
            lr, max(1, steps_per_epoch * settings.step_epochs), settings.step_factor, staircase=True
        )
    kind = settings.optimizer
    decay = settings.weight_decay
    if kind == "adam" and decay:
        return tf.keras.optimizers.AdamW(lr, weight_decay=decay, epsilon=settings.adam_epsilon)
    if kind == "adam":
        return tf.keras.optimizers.Adam(lr, epsilon=settings.adam_epsilon)
    if kind == "sgd":
        return tf.keras.optimizers.SGD(lr, momentum=0.9)
    if kind == "rmsprop":
        return tf.keras.optimizers.RMSprop(lr)
    raise ValueError(f"unknown optimizer {kind!r}")


# ---------------------------------------------------------------------------------------
# The engine


class Engine:
    """A ``nengo_dl.Simulator`` around a built network, fed with clip arrays.

    Parameters
    ----------
    built : BuiltNetwork
        The network, its input node and output probe.
    minibatch_size : int
        Clips per batch (the simulator is built for it; smaller sets are padded).
    device : str
        ``"auto"``, ``"cpu"`` or ``"gpu"``.
    seed : int
        The simulator's seed.
    """

    def __init__(self, built, minibatch_size=32, device="auto", seed=0):
        self.built = built
        self.minibatch_size = int(minibatch_size)
        self.device = select_device(device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*No GPU support detected.*")
            self.sim = nengo_dl.Simulator(
                built.network,
                minibatch_size=self.minibatch_size,
                device=self.device,
                progress_bar=False,
                seed=seed,
            )
        self.n_features = built.input.size_out // built.frames_per_input
        self.compiled = False

    # -- arrays ------------------------------------------------------------------------

    def check_arrays(self, x, y=None, where="data"):
        """Raise :class:`DataError` if ``x``/``y`` do not fit the network."""
        if np.ndim(x) != 3:
            raise DataError(f"{where}: features must be (clips, frames, features), got shape {np.shape(x)}")
        if len(x) == 0:
            raise DataError(f"{where}: no clips")
        if x.shape[2] != self.n_features:
            raise DataError(
                f"{where}: features have {x.shape[2]} values per frame, but the model "
                f"was built for {self.n_features}"
            )
        if self.built.frames_per_input > 1 and x.shape[1] != self.built.frames_per_input:
            raise DataError(
                f"{where}: clips have {x.shape[1]} frames, but the model was built for "
                f"{self.built.frames_per_input}"
            )
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(x):
                raise DataError(f"{where}: {len(y)} labels for {len(x)} clips")
            bad = (y < 0) | (y >= self.built.n_classes)
            if bad.any():
                raise DataError(
                    f"{where}: labels must be in 0..{self.built.n_classes - 1}; found "
                    f"{sorted(set(np.asarray(y)[bad].tolist()))[:5]}"
                )

    def _pack(self, x):
        """Clip features -> the simulator's input, ``(clips, steps, input size)``."""
        x = np.asarray(x, dtype=np.float32)
        k, fpi = self.built.steps_per_frame, self.built.frames_per_input
        if k > 1:
            x = np.repeat(x, k, axis=1)
        if fpi > 1:
            x = x.reshape(len(x), x.shape[1] // fpi, fpi * x.shape[2])
        return x

    def _targets(self, y, n_frames):
        k, fpi = self.built.steps_per_frame, self.built.frames_per_input
        steps = n_frames * k
        t = np.repeat(np.asarray(y, dtype=np.float32)[:, None], steps, axis=1)
        return t.reshape(len(y), steps // fpi, fpi)

    def _unpack(self, out, n_frames):
        out = np.asarray(out)
        out = out.reshape(len(out), n_frames * self.built.steps_per_frame, self.built.n_classes)
        return frame_outputs(out, self.built.steps_per_frame)

    def epoch_order(self, n, epoch, seed=0, fill=True):
        """The clips of one epoch: a permutation fixed by ``seed`` and ``epoch``, filled
        up to whole minibatches with its first clips (unless ``fill`` is false)."""
        order = np.random.RandomState([seed, epoch]).permutation(n)
        return np.concatenate([order, order[: (-n) % self.minibatch_size]]) if fill else order

    def minibatches(self, x):
        """``(batch, keep)`` for each minibatch of ``x``: a full minibatch (float32, the
        last one padded with zeros) and how many of its clips are real."""
        batch = self.minibatch_size
        for start in range(0, len(x), batch):
            xb = np.asarray(x[start : start + batch], np.float32)
            keep = len(xb)
            if keep < batch:
                xb = np.concatenate([xb, np.zeros((batch - keep,) + xb.shape[1:], np.float32)])
            yield xb, keep

    def numpy_loss(self, outputs, labels, kind, last_steps):
        """The training loss on predicted ``(clips, frames, classes)`` outputs."""
        return numpy_clip_loss(outputs, labels, kind, last_steps)

    # -- prediction --------------------------------------------------------------------

    def predict(self, x, probes=None):
        """Outputs per frame, ``(clips, frames, classes)``, and any extra ``probes``.

        Each frame is held for ``built.steps_per_frame`` steps and the outputs of its
        steps are averaged. With ``probes`` (a list), returns ``(outputs, {probe: data})``
        with probe data per step, ``(clips, steps, size)``.
        """
        self.check_arrays(x)
        n_frames = x.shape[1]
        outputs, extra = [], {p: [] for p in probes or ()}
        # one minibatch per call: Keras' predict sets up a dataset pipeline on every
        # call, which took a quarter of a DVS net's spiking batch
        for xb, keep in self.minibatches(x):
            data = self.sim.predict_on_batch({self.built.input: self._pack(xb)})
            outputs.append(self._unpack(data[self.built.output][:keep], n_frames))
            for p in extra:
                extra[p].append(data[p][:keep])
        result = np.concatenate(outputs)
        if probes is not None:
            return result, {p: np.concatenate(v) for p, v in extra.items()}
        return result

    # -- training ----------------------------------------------------------------------

    def compile_optimizer(self, settings, n_train):
        """Set the optimizer and its schedule (a ``TrainConfig``) for ``n_train`` clips
        an epoch, with mixed precision where the settings and the device ask for it."""
        self.settings = settings
        self.mixed_precision = mixed_precision(settings.mixed_precision, self.device)
        if self.mixed_precision:
            # a process-wide grappler option, read when the graph is traced
            tf.config.optimizer.set_experimental_options({"auto_mixed_precision": True})
        steps_per_epoch = math.ceil(n_train / self.minibatch_size)
        self.optimizer = make_optimizer(settings, steps_per_epoch, self.mixed_precision)

    def compile(self, settings, n_train):
        """Set optimizer, schedule and losses from the ``train`` settings."""
        if settings.last_batch != "fill":
            raise ConfigError(
                f"train.last_batch {settings.last_batch!r} is for directly trained models: NengoDL's simulator "
                "runs every minibatch at train.minibatch_size; use \"fill\""
            )
        self.compile_optimizer(settings, n_train)
        loss = {self.built.output: clip_loss(self.built.n_classes, settings.loss, settings.loss_steps)}
        weights = {self.built.output: 1.0}
        for probe, fn, weight in self.built.loss_terms:
            loss[probe] = fn
            weights[probe] = float(weight)
        self.sim.compile(optimizer=self.optimizer, loss=loss, loss_weights=weights)
        self.compiled = True

    def fit_epoch(self, x, y, epoch, seed=0):
        """One pass over the training clips in an order fixed by ``seed`` and ``epoch``.

        The last batch is filled up with the first clips of the order, so every clip
        is seen once per epoch. Returns the mean training loss.
        """
        return fit_epoch_in_chunks(self, x, y, epoch, seed)

    def learning_rate(self):
        lr = self.optimizer.learning_rate
        if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
            return float(lr(self.optimizer.iterations))
        return float(tf.keras.backend.get_value(lr))

    # -- parameters --------------------------------------------------------------------

    def get_params(self):
        return [w.numpy() for w in self.sim.keras_model.trainable_weights]

    def set_params(self, values):
        tf.keras.backend.batch_set_value(zip(self.sim.keras_model.trainable_weights, values))

    def _describe(self):
        return [
            {"name": w.name, "shape": list(w.shape)} for w in self.sim.keras_model.trainable_weights
        ]

    def save_params(self, path, extra=None):
        """Write the trainable parameters and the network signature (atomically)."""
        arrays = {f"param_{i}": v for i, v in enumerate(self.get_params())}
        header = {"format": PARAMS_FORMAT, "signature": self.built.signature, "params": self._describe()}
        header.update(extra or {})
        arrays["header"] = np.asarray(json.dumps(header))
        save_npz_atomic(path, **arrays)
        return Path(path)

    def load_params(self, path):
        """Load parameters saved by :meth:`save_params`; :class:`ParamsError` if they
        are unreadable or belong to a different model."""
        values, header = read_params(path)
        check_signature(path, header, self.built.signature, self._describe())
        self.set_params(values)
        return header

    def optimizer_state(self):
        if not self.optimizer.variables:
            return []
        return [np.asarray(v.numpy()) for v in self.optimizer.variables]

    def trainable_variables(self):
        return self.sim.keras_model.trainable_weights

    def set_optimizer_state(self, values):
        if not values:
            return
        self.optimizer.build(self.trainable_variables())
        variables = self.optimizer.variables
        if len(variables) != len(values):
            raise ParamsError(f"optimizer state has {len(values)} arrays, expected {len(variables)}")
        for var, value in zip(variables, values):
            var.assign(value)

    def close(self):
        self.sim.close()

    @classmethod
    def for_inference(cls, built, params_path, minibatch_size=32, device="auto", seed=0):
        """An engine that only predicts, with the parameters of ``params_path`` built in.

        The parameters are checked and loaded as by :meth:`load_params`, written into
        the network's objects (``Simulator.freeze_params``), constant inputs such as
        layer biases folded into the neurons' biases
        (:func:`~nengo_actions.networks.constant_inputs.fold_constant_inputs`), and the
        network rebuilt with NengoDL's ``inference_only`` setting, which leaves out what
        training needs. ``built`` is changed in place; the returned engine cannot be
        trained or load parameters. A network built with its parameters
        (``built.params_in_network``) is only folded and rebuilt.
        """
        loader = cls(built, minibatch_size=minibatch_size, device=device, seed=seed)
        try:
            if not built.params_in_network:
                loader.load_params(params_path)
            loader.sim.freeze_params(built.network)
            # the seeds the objects were built with: removing objects below would
            # otherwise shift every later seed drawn from the network's seed
            seeds = loader.sim.model.seeds
            for obj in (*built.network.all_ensembles, *built.network.all_nodes, *built.network.all_connections):
                if obj.seed is None:
                    obj.seed = seeds[obj]
        finally:
            loader.close()
        fold_constant_inputs(built.network, inputs=(built.input,))
        with built.network:
            nengo_dl.configure_settings(inference_only=True)
        return cls(built, minibatch_size=minibatch_size, device=device, seed=seed)
