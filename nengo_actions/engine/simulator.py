"""The NengoDL trainer: a ``nengo_dl.Simulator`` around a Nengo network.

Every model trained with rate neurons (EnsembleArray, LMU, keras-lmu baseline, the
converted DVS nets) is a :class:`~nengo_actions.networks.BuiltNetwork`: a Nengo network,
its input node and output probe. :class:`Engine` implements the trainer interface
(:class:`nengo_actions.engine.trainer.Trainer`) on it; spiking evaluation runs the same network
rebuilt with spiking neurons through :meth:`Engine.for_inference`.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from nengo_actions.compat import nengo_dl, tf
import nengo_actions.neurons.tf_builders  # noqa: F401,E402  (native builders: AdaptiveLIF, AdaptiveLIFRate, Izhikevich)
from nengo_actions import params
from nengo_actions.engine import trainer
from nengo_actions.errors import ConfigError
from nengo_actions.engine.losses import clip_loss, numpy_clip_loss
from nengo_actions.clips.metrics import frame_outputs
from nengo_actions.networks import build_model
from nengo_actions.networks.base import layer_probes, layer_readings
from nengo_actions.networks.constant_inputs import fold_constant_inputs
from nengo_actions.clips.streaming import fit_epoch as fit_epoch_in_chunks


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

    evaluated_as = "rate"

    def __init__(self, built, minibatch_size=32, device="auto", seed=0):
        self.built = built
        self.minibatch_size = int(minibatch_size)
        self.device = trainer.select_device(device)
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

    @classmethod
    def for_model(cls, model_type, cfg, data, settings):
        """The engine of ``model_type``'s Nengo network with rate neurons (spiking types
        train through their rate function, with the same parameters)."""
        built = cls.nengo_builder(model_type, cfg, data)(spiking=False)
        return cls(built, settings.minibatch_size, settings.device, cfg.seed)

    @staticmethod
    def nengo_builder(model_type, cfg, data, params_path=None):
        """``build(spiking, steps_per_frame=...)`` of ``model_type``'s Nengo network;
        ``params_path`` is not built in (:meth:`for_inference` loads it)."""
        ev = cfg.evaluate
        return functools.partial(
            build_model, model_type, cfg.model, data.n_features, data.n_classes, data.n_frames,
            dt=ev.dt, seed=cfg.seed, raster_neurons=ev.raster_neurons,
        )

    @property
    def network(self):
        return self.built

    @property
    def n_classes(self):
        return self.built.n_classes

    @property
    def signature(self):
        return self.built.signature

    @property
    def description(self):
        return self.built.description

    def nengo_network(self, build):
        """The network trained: its figures are those of the trained parameters."""
        return self.built

    # -- arrays ------------------------------------------------------------------------

    def check_arrays(self, x, y=None, where="data"):
        """Raise :class:`DataError` if ``x``/``y`` do not fit the network."""
        trainer.check_arrays(x, y, where, n_features=self.n_features, n_classes=self.built.n_classes,
                             frames_per_input=self.built.frames_per_input)

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

    def epoch_order(self, n, epoch, seed=0):
        """The clips of one epoch (:func:`nengo_actions.engine.trainer.epoch_order`), filled up
        to whole minibatches: the simulator runs every minibatch at its full size."""
        return trainer.epoch_order(n, epoch, self.minibatch_size, seed)

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
        for xb, keep in trainer.minibatches(x, self.minibatch_size):
            data = self.sim.predict_on_batch({self.built.input: self._pack(xb)})
            outputs.append(self._unpack(data[self.built.output][:keep], n_frames))
            for p in extra:
                extra[p].append(data[p][:keep])
        result = np.concatenate(outputs)
        if probes is not None:
            return result, {p: np.concatenate(v) for p, v in extra.items()}
        return result

    def predict_layer_rates(self, x):
        """Outputs per frame and the mean firing rate (Hz) of each of the network's layers."""
        outputs, extra = self.predict(x, layer_probes(self.built))
        rates, _ = layer_readings(self.built, extra)
        return outputs, rates

    # -- training ----------------------------------------------------------------------

    def compile(self, settings, n_train):
        """Set optimizer, schedule and losses from the ``train`` settings."""
        if settings.last_batch != "fill":
            raise ConfigError(
                f"train.last_batch {settings.last_batch!r} is for directly trained models: NengoDL's simulator "
                "runs every minibatch at train.minibatch_size; use \"fill\""
            )
        self.settings = settings
        self.optimizer, self.mixed_precision = trainer.compile_optimizer(settings, n_train, self.minibatch_size, self.device)
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
        is seen once per epoch. Returns the mean training loss
        (:func:`nengo_actions.clips.streaming.fit_epoch`: clips read from disk go in chunks).
        """
        return fit_epoch_in_chunks(self, x, y, epoch, seed)

    def fit_chunk(self, x, y):
        """Train on the clips ``x`` (whole minibatches, in their order) in one call of
        NengoDL's ``fit``; returns its loss."""
        xb = self._pack(x)
        targets = {self.built.output: self._targets(y, np.shape(x)[1])}
        for probe, _, _ in self.built.loss_terms:
            targets[probe] = np.zeros((len(xb), xb.shape[1], 1), np.float32)
        history = self.sim.fit({self.built.input: xb}, targets, epochs=1, shuffle=False, verbose=0)
        return float(history.history["loss"][-1])

    def learning_rate(self):
        return trainer.learning_rate(self.optimizer)

    # -- parameters --------------------------------------------------------------------

    def trainable_variables(self):
        return self.sim.keras_model.trainable_weights

    def get_params(self):
        return [w.numpy() for w in self.trainable_variables()]

    def set_params(self, values):
        tf.keras.backend.batch_set_value(zip(self.trainable_variables(), values))

    def describe_params(self):
        return params.describe(self.trainable_variables())

    def save_params(self, path, extra=None):
        """Write the trainable parameters and the network signature (atomically)."""
        return params.save_params(path, self, extra)

    def load_params(self, path):
        """Load parameters saved by :meth:`save_params`; :class:`ParamsError` if they
        are unreadable or belong to a different model."""
        return params.load_params(path, self)

    def optimizer_state(self):
        return trainer.optimizer_state(self.optimizer)

    def set_optimizer_state(self, values):
        trainer.set_optimizer_state(self.optimizer, self.trainable_variables(), values)

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
