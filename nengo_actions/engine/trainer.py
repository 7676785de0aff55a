"""The trainer interface, and what its implementations share as plain functions.

A trainer trains one model on clip arrays and predicts with it:

* inputs ``x`` of shape ``(clips, frames, features)``, labels ``y`` of shape ``(clips,)``;
* outputs of shape ``(clips, frames, classes)``, one score vector per frame.

:class:`Trainer` writes the interface down; :func:`nengo_actions.engine.training.train` runs
the epochs of any trainer, and :mod:`nengo_actions.experiment` evaluates it. Two classes
implement it, neither derived from the other:

* :class:`nengo_actions.engine.simulator.Engine`: a ``nengo_dl.Simulator`` around the Nengo
  network (every feature model, and the DVS nets trained with rate neurons);
* :class:`nengo_actions.engine.direct.DirectEngine`: a multi-step Keras model trained
  by backpropagation through time with spiking LIF neurons; its Nengo network is built
  from the trained parameters.

The registry says which one a model type uses (:meth:`nengo_actions.config.registry.ModelType.trainer_for`).
What both do the same way is a function here: the device, mixed precision, the optimizer
and its schedule, the optimizer's state, the epoch's order, minibatches and the checks on
input arrays. Losses are :mod:`nengo_actions.engine.losses`; parameter files and checkpoints
:mod:`nengo_actions.params`.
"""

from __future__ import annotations

import math
import typing

import numpy as np

from nengo_actions.compat import tf
from nengo_actions.errors import DataError, ParamsError


@typing.runtime_checkable
class Trainer(typing.Protocol):
    """What :func:`~nengo_actions.engine.training.train` and :mod:`~nengo_actions.experiment` use.

    Attributes
    ----------
    minibatch_size : int
        Clips per training and prediction batch.
    n_classes : int
    signature : dict
        The model type and the settings that shape the network; parameter files hold it.
    description : str
        One line on the model, for the log.
    evaluated_as : str
        What its predictions are called in the log: ``"rate"`` (the Nengo network with rate
        neurons) or ``"trained model"`` (the model that trains, before its conversion).
    network : BuiltNetwork or None
        The Nengo network that trains; ``None`` where the Nengo network is built from the
        trained parameters (:meth:`nengo_network`).
    """

    minibatch_size: int
    n_classes: int
    signature: dict
    description: str
    evaluated_as: str
    network: object

    @classmethod
    def for_model(cls, model_type, cfg, data, settings) -> Trainer:
        """The untrained trainer of ``model_type`` in ``cfg`` for ``data`` (its sizes), with
        the model's ``train`` ``settings`` (minibatch size, device, distribution)."""

    @staticmethod
    def nengo_builder(model_type, cfg, data, params_path=None):
        """``build(spiking, steps_per_frame=...) -> BuiltNetwork``: the Nengo network of
        ``model_type`` that spiking evaluation runs, with the parameters of
        ``params_path`` where they are built in."""

    def nengo_network(self, build):
        """The Nengo network of the trained parameters, whose neurons, synapses and
        operations are reported (``build`` from :meth:`nengo_builder`)."""

    def check_arrays(self, x, y=None, where="data"):
        """Raise :class:`~nengo_actions.errors.DataError` if ``x``/``y`` do not fit."""

    def compile(self, settings, n_train):
        """Set the optimizer, its schedule and the loss from the ``train`` settings, for
        ``n_train`` clips an epoch."""

    def fit_epoch(self, x, y, epoch, seed=0) -> float:
        """One pass over the clips in the order :func:`epoch_order` gives; the mean loss."""

    def learning_rate(self) -> float:
        """The optimizer's learning rate at its current step."""

    def predict(self, x, probes=None):
        """Outputs per frame; with ``probes`` (a list), ``(outputs, {probe: data})``."""

    def predict_layer_rates(self, x):
        """``(outputs, {layer: mean firing rate in Hz})`` of the network that trains."""

    def numpy_loss(self, outputs, labels, kind, last_steps) -> float:
        """The training loss on predicted outputs, in NumPy."""

    def trainable_variables(self) -> list:
        """The variables the optimizer updates."""

    def get_params(self) -> list:
        """The parameter arrays a parameter file holds."""

    def set_params(self, values):
        """Set the parameters from arrays in the order of :meth:`get_params`."""

    def describe_params(self) -> list:
        """``{"name", "shape"}`` of each parameter array (:func:`nengo_actions.params.describe`)."""

    def save_params(self, path, extra=None):
        """Write the parameters and the signature to ``path``; ``extra`` joins the header."""

    def load_params(self, path) -> dict:
        """Load a parameter file checked against this model; returns its header."""

    def optimizer_state(self) -> list:
        """The optimizer's variables as arrays (empty before its first step)."""

    def set_optimizer_state(self, values):
        """Restore :meth:`optimizer_state`."""

    def close(self):
        """Free what the trainer holds."""


# ---------------------------------------------------------------------------------------
# Device and optimizer


def select_device(name="auto"):
    """``"auto"``: the first GPU TensorFlow sees, else the CPU; or ``"cpu"``/``"gpu"``."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "gpu" and not gpus:
        raise DataError("train.device is 'gpu' but TensorFlow sees no GPU; use 'auto' or 'cpu'")
    if name == "cpu" or (name == "auto" and not gpus):
        return "/cpu:0"
    return "/gpu:0"


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


def compile_optimizer(settings, n_train, minibatch_size, device):
    """``(optimizer, mixed)``: the optimizer of the ``train`` settings for ``n_train``
    clips an epoch, and whether it trains with mixed precision on ``device``."""
    mixed = mixed_precision(settings.mixed_precision, device)
    if mixed:
        # a process-wide grappler option, read when the graph is traced
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision": True})
    steps_per_epoch = math.ceil(n_train / minibatch_size)
    return make_optimizer(settings, steps_per_epoch, mixed), mixed


class EpochCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
    """``lr * (1 + cos(pi * epoch / epochs)) / 2``, constant within an epoch (PyTorch's
    ``CosineAnnealingLR`` stepped once per epoch); Keras' schedules change every step."""

    def __init__(self, learning_rate, steps_per_epoch, epochs):
        self.learning_rate, self.steps_per_epoch, self.epochs = float(learning_rate), int(steps_per_epoch), int(epochs)

    def __call__(self, step):
        # in Keras' float type: a float64 model then steps with a float64 rate
        epoch = tf.math.floordiv(tf.cast(step, tf.keras.backend.floatx()), float(max(1, self.steps_per_epoch)))
        return self.learning_rate * 0.5 * (1.0 + tf.math.cos(np.pi * epoch / float(max(1, self.epochs))))

    def get_config(self):
        return {"learning_rate": self.learning_rate, "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs}


class _TorchEpsilon:
    """Adam's update with epsilon added to the bias-corrected ``sqrt(v)``, as
    ``torch.optim.Adam`` does. Keras adds it before the correction; scaling it by
    ``sqrt(1 - beta_2^t)`` for Keras' own update gives PyTorch's exactly, so Keras' code
    (and its sparse and AdamW paths) stays the one that runs.

    The betas are kept as float64 numbers: Keras casts them with ``tf.cast``, which turns
    a Python float into a float32 constant first, so a float64 model's bias corrections
    were float32's (2e-8 of a weight per step off PyTorch's). A float32 model gets the
    same float32 betas as before."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.beta_1, self.beta_2 = np.float64(self.beta_1), np.float64(self.beta_2)

    def update_step(self, gradient, variable):
        epsilon = self.epsilon
        step = tf.cast(self.iterations + 1, variable.dtype)
        self.epsilon = epsilon * tf.sqrt(1 - tf.pow(tf.cast(self.beta_2, variable.dtype), step))
        try:
            super().update_step(gradient, variable)
        finally:
            self.epsilon = epsilon


class TorchAdam(_TorchEpsilon, tf.keras.optimizers.Adam):
    """``tf.keras.optimizers.Adam`` with ``torch.optim.Adam``'s epsilon."""


class TorchAdamW(_TorchEpsilon, tf.keras.optimizers.AdamW):
    """``tf.keras.optimizers.AdamW`` with ``torch.optim.AdamW``'s epsilon."""


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
    if kind == "adam":
        torch_form = settings.adam_epsilon_form == "torch"
        if decay:
            adamw = TorchAdamW if torch_form else tf.keras.optimizers.AdamW
            return adamw(lr, weight_decay=decay, epsilon=settings.adam_epsilon)
        return (TorchAdam if torch_form else tf.keras.optimizers.Adam)(lr, epsilon=settings.adam_epsilon)
    if kind == "sgd":
        return tf.keras.optimizers.SGD(lr, momentum=0.9)
    if kind == "rmsprop":
        return tf.keras.optimizers.RMSprop(lr)
    raise ValueError(f"unknown optimizer {kind!r}")


def learning_rate(optimizer):
    """The learning rate of ``optimizer`` at its current step."""
    lr = optimizer.learning_rate
    if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
        return float(lr(optimizer.iterations))
    return float(tf.keras.backend.get_value(lr))


def optimizer_state(optimizer):
    """The variables of ``optimizer`` as arrays (none before it is built)."""
    if not optimizer.variables:
        return []
    return [np.asarray(v.numpy()) for v in optimizer.variables]


def set_optimizer_state(optimizer, variables, values):
    """Build ``optimizer`` for ``variables`` and set its state to ``values``
    (:func:`optimizer_state`); :class:`ParamsError` when the counts differ."""
    if not values:
        return
    optimizer.build(variables)
    state = optimizer.variables
    if len(state) != len(values):
        raise ParamsError(f"optimizer state has {len(values)} arrays, expected {len(state)}")
    for var, value in zip(state, values):
        var.assign(value)


# ---------------------------------------------------------------------------------------
# Clips


def epoch_order(n, epoch, minibatch_size, seed=0, fill=True):
    """The clips of one epoch: a permutation fixed by ``seed`` and ``epoch``, filled up
    to whole minibatches with its first clips (unless ``fill`` is false)."""
    order = np.random.RandomState([seed, epoch]).permutation(n)
    return np.concatenate([order, order[: (-n) % minibatch_size]]) if fill else order


def minibatches(x, minibatch_size):
    """``(batch, keep)`` for each minibatch of ``x``: a full minibatch (float32, the last
    one padded with zeros) and how many of its clips are real."""
    for start in range(0, len(x), minibatch_size):
        xb = np.asarray(x[start : start + minibatch_size], np.float32)
        keep = len(xb)
        if keep < minibatch_size:
            xb = np.concatenate([xb, np.zeros((minibatch_size - keep,) + xb.shape[1:], np.float32)])
        yield xb, keep


def check_arrays(x, y, where, *, n_features, n_classes, frames_per_input=1):
    """Raise :class:`DataError` unless ``x`` holds clips of ``n_features`` values a frame
    (of ``frames_per_input`` frames when a model takes whole clips) and ``y`` one label in
    ``0..n_classes - 1`` per clip (``y`` may be ``None``)."""
    if np.ndim(x) != 3:
        raise DataError(f"{where}: features must be (clips, frames, features), got shape {np.shape(x)}")
    if len(x) == 0:
        raise DataError(f"{where}: no clips")
    if x.shape[2] != n_features:
        raise DataError(
            f"{where}: features have {x.shape[2]} values per frame, but the model "
            f"was built for {n_features}"
        )
    if frames_per_input > 1 and x.shape[1] != frames_per_input:
        raise DataError(f"{where}: clips have {x.shape[1]} frames, but the model was built for {frames_per_input}")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(x):
            raise DataError(f"{where}: {len(y)} labels for {len(x)} clips")
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            raise DataError(
                f"{where}: labels must be in 0..{n_classes - 1}; found "
                f"{sorted(set(np.asarray(y)[bad].tolist()))[:5]}"
            )


__all__ = [
    "Trainer",
    "select_device",
    "mixed_precision",
    "make_optimizer",
    "compile_optimizer",
    "EpochCosine",
    "learning_rate",
    "optimizer_state",
    "set_optimizer_state",
    "epoch_order",
    "minibatches",
    "check_arrays",
]
