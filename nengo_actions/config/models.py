"""The config sections of the shipped model types (``model.*``), each a frozen dataclass
with every key's default and checks (:mod:`nengo_actions.config.schema` puts them in a
whole config). Standard library only.
"""

from __future__ import annotations

import dataclasses

from nengo_actions.config.registry import ModelType, model_names, register_model, registered_sections
from nengo_actions.config.section import FieldError, Section, setting

frozen = dataclasses.dataclass(frozen=True)

# Models. Synaptic time constants are in frames (tau_seconds = frames x steps per frame x
# dt), so a network behaves the same at any number of steps per frame; null or 0 means
# no synapse.


@frozen
class EnsembleArrayConfig(Section):
    n_ensembles: int = setting(10000, low=1)
    n_neurons: int = setting(50, low=1)
    neuron_type: str = setting("SpikingRectifiedLinear")
    max_rates: tuple = setting((200.0, 400.0))
    intercepts: tuple = setting((-1.0, 0.9))
    amplitude: float = setting(kind=float)  # neuron output per spike x dt; default 1 / max_rates[1]
    # One zero-initialised trainable projection of the input per entry, through a
    # low-pass synapse of that many frames (0: none). (0,) is the seed's design.
    input_synapses: tuple = setting((0.0,))
    readout_synapse: float = setting(kind=float)
    fixed_decoders: bool = setting(False)  # keep the least-squares decoders out of training
    rate_target: float = setting(100.0)  # Hz, mean rate the regulariser pulls the neurons towards
    rate_regularization: float = setting(0.0, low=0)  # weight of ((mean rate / target) - 1)^2 in the loss


@frozen
class LMUConfig(Section):
    """Architecture of both LMU variants."""

    order: int = setting(2, low=1)
    units: int = setting(800, low=1)
    theta: float = setting(kind=float)  # memory window in frames; default: frames per clip
    memory_d: int = setting(1, low=1)  # memories, each on its own trainable projection of the input
    input_to_hidden: bool = setting(True)
    hidden_to_hidden: bool = setting(True)  # the hidden layer also sees its previous frame
    # Frames: the network sees x - lowpass(x) instead of x (what changes, without the
    # static scene); 0: the features as they are (the seed).
    input_highpass: float = setting(0.0, low=0)
    # Neurons of the spiking LMU's memory and hidden ensembles; the rate LMU ("lmu") has a
    # linear memory and the rate counterpart of hidden_neuron_type.
    neuron_type: str = setting("SpikingRectifiedLinear")
    hidden_neuron_type: str = setting("SpikingRectifiedLinear")


@frozen
class LMUSpikingConfig(Section):
    """Rates, synapses and regularisation of the spiking LMU."""

    rate: float = setting(200.0, above=0)  # Hz per unit input of the hidden neurons (amplitude 1/rate)
    memory_rate: float = setting(kind=float)  # Hz per unit of memory state; default: rate
    memory_neurons_per_dim: int = setting(16, low=1)  # per memory dimension and sign
    memory_encoding: str = setting("onoff", choices=("onoff", "nengo"))  # "onoff" is exactly linear
    # Frames: the memory state is held in a low-pass synapse of this time constant on the
    # memory ensemble's recurrence (0: a one-step delay, as the seed).
    memory_tau: float = setting(1.0, low=0)
    memory_synapse: float = setting(kind=float)  # frames, memory -> hidden
    readout_synapse: float = setting(kind=float)  # frames, hidden -> output
    max_rates: tuple = setting((200.0, 400.0))  # tuning of non-rectified-linear neuron types
    rate_target: float = setting(100.0)  # Hz, mean rate the regulariser pulls each layer towards
    rate_regularization: float = setting(0.0, low=0)  # weight of ((mean rate / target) - 1)^2 in the loss


@frozen
class KerasLMUConfig(Section):
    order: int = setting(2, low=1)
    units: int = setting(800, low=1)
    theta: float = setting(kind=float)
    memory_d: int = setting(1, low=1)
    hidden: str = setting("rnn", choices=("rnn", "dense"))  # SimpleRNNCell or feed-forward ReLU


# DVS convolutional networks (Keras, converted by nengo_dl.Converter); inputs are one
# flattened (H, W, 2) frame per step. frame_shape () = square two-polarity frames.

#: The ``pool`` of both DVS networks (networks.dvs_conv, networks.dvs_direct).
POOLS = ("max", "avg")


@frozen
class GestureNetConfig(Section):
    """The PLIF paper / SpikingJelly DVS128 Gesture network."""

    channels: int = setting(128, low=1)
    depth: int = setting(5, low=1)
    dense: int = setting(512, low=1)
    votes: int = setting(10, low=1)  # output neurons per class, averaged by the voting layer
    pool: str = setting("max", choices=POOLS)  # "max" is converted as average pooling
    batch_norm: bool = setting(True)  # folded into the convolutions for conversion
    # direct training: also batch-normalise the two dense layers (folded likewise), which
    # keeps them firing from the first step instead of silent at the start
    dense_batch_norm: bool = setting(False)
    dropout: float = setting(0.5, low=0)  # Keras model only; left out of the converted network
    frame_shape: tuple = setting(())


@frozen
class SLAnimalsNetConfig(Section):
    """The SL-Animals-DVS STBP network."""

    channels: tuple = setting((20, 50))
    dense: int = setting(200, low=1)
    pool: str = setting("avg", choices=POOLS)
    dropout: float = setting(0.0, low=0)
    frame_shape: tuple = setting(())


@frozen
class DVSConvConfig(Section):
    """Training method and neurons of both DVS networks."""

    # "direct": trained with LIF spikes over time and surrogate gradients, then run as the
    # Nengo network of the same layers (networks/dvs_direct.py); "rate": rate neurons
    # trained in NengoDL, spiking neurons swapped in (networks/dvs_conv.py)
    method: str = setting("direct", choices=("direct", "rate"))
    # direct: LIF neurons (SpikingJelly's LIFNode / ParametricLIFNode)
    lif_tau: float = setting(2.0)  # membrane time constant, simulation steps
    threshold: float = setting(1.0)
    plif: bool = setting(True)  # learn one time constant per layer (the PLIF paper)
    surrogate_alpha: float = setting(2.0)  # ATan surrogate gradient sharpness
    detach_reset: bool = setting(True)  # no gradient through the reset
    # initial weights of the convolutions and dense layers: "he_uniform" (Keras'
    # HeUniform, limit sqrt(6 / fan_in)) or "torch" (PyTorch's default for Conv2d and
    # Linear, limit 1 / sqrt(fan_in) for weights and biases, as SpikingJelly's nets start)
    init: str = setting("he_uniform", choices=("he_uniform", "torch"))
    # the batch variance that BN's moving variance (used after training) averages:
    # "keras", Keras' own (unbiased in its fused kernel, which the float32 convolutions
    # take, biased on its plain path: the dense layers, any float64 layer); "unbiased",
    # n / (n - 1) on every layer, as PyTorch's BatchNorm (SpikingJelly)
    batch_norm_variance: str = setting("keras", choices=("keras", "unbiased"))
    # rate: conversion settings
    spiking_neuron_type: str = setting("SpikingRectifiedLinear")
    scale_firing_rates: float = setting(100.0)  # neuron input gain (output divided by it)
    synapse: float = setting(0.0, low=0)  # frames, lowpass on connections from spiking neurons (0: none)
    rate_target: float = setting(100.0)  # Hz, mean rate the regulariser pulls each layer towards
    rate_regularization: float = setting(0.0, low=0)  # weight of ((mean rate / target) - 1)^2 in the loss

    def check(self):
        if self.lif_tau < 1 or (self.plif and self.lif_tau <= 1):
            raise FieldError("lif_tau", f"must be >= 1 step (> 1 with plif), got {self.lif_tau}")
        for key in ("threshold", "surrogate_alpha"):
            if getattr(self, key) <= 0:
                raise FieldError(key, f"must be > 0, got {getattr(self, key)}")


@frozen
class ModelConfig(Section):
    type: str = setting("lmu", choices=model_names)  # a name in nengo_actions.config.registry
    # More model types trained and evaluated in the same run and reported beside "type"
    # (whose figures are the unprefixed keys of metrics.json).
    compare: tuple = setting(())
    # each model type's sections (``model.<name>``), as registry.register_model adds them:
    # the shipped types' below, a plugin's from its own module
    registered: dict = dataclasses.field(default_factory=dict, metadata={"setting": False})

    @classmethod
    def registered_sections(cls):
        return registered_sections()

    def check(self):
        names = model_names()
        for t in self.compare:
            if t not in names:
                raise FieldError("compare", f"holds {t!r}; model types are {', '.join(names)}")

    @property
    def types(self):
        """``type`` followed by the ``compare`` types, each once."""
        return tuple(dict.fromkeys((self.type, *self.compare)))


# ---------------------------------------------------------------------------------------
# The shipped model types, registered as a plugin registers its own (README, "Adding a
# model"): a builder named "module:function" (imported when built, TensorFlow with it) and
# the sections above as ``model.<name>``.

_NETWORKS = "nengo_actions.networks"
_BY_METHOD = ("dvs_conv.method", {"direct": "keras_bptt"})
_DVS = {"dvs_conv": DVSConvConfig}
for _entry, _sections in (
    (ModelType("ensemble_array", f"{_NETWORKS}.ensemble_array:build_ensemble_array", ("ensemble_array",),
               spiking_key="ensemble_array.neuron_type",
               repeat_keys=("ensemble_array.n_ensembles", "ensemble_array.n_neurons")),
     {"ensemble_array": EnsembleArrayConfig}),
    (ModelType("lmu", f"{_NETWORKS}.lmu:build_lmu", ("lmu", "lmu_spiking"), options={"variant": "lmu"}),
     {"lmu": LMUConfig, "lmu_spiking": LMUSpikingConfig}),
    (ModelType("lmu_spiking", f"{_NETWORKS}.lmu:build_lmu", ("lmu", "lmu_spiking"), options={"variant": "lmu_spiking"},
               always_spiking=True),
     {"lmu": LMUConfig, "lmu_spiking": LMUSpikingConfig}),
    (ModelType("keras_lmu", f"{_NETWORKS}.keras_lmu:build_keras_lmu", ("keras_lmu",),
               gui_refusal="runs as one TensorFlow layer inside NengoDL, with no Nengo ensembles to show; "
               "open 'lmu' or 'lmu_spiking' instead"),
     {"keras_lmu": KerasLMUConfig}),
    (ModelType("dvs_gesture_net", f"{_NETWORKS}.dvs_conv:build_gesture_net", ("dvs_gesture_net", "dvs_conv"),
               inputs="events", spiking_key="dvs_conv.spiking_neuron_type", trainer_key=_BY_METHOD,
               stages=f"{_NETWORKS}.stages:gesture_stages"),
     {"dvs_gesture_net": GestureNetConfig, **_DVS}),
    (ModelType("sl_animals_net", f"{_NETWORKS}.dvs_conv:build_sl_animals_net", ("sl_animals_net", "dvs_conv"),
               inputs="events", spiking_key="dvs_conv.spiking_neuron_type", trainer_key=_BY_METHOD,
               stages=f"{_NETWORKS}.stages:sl_animals_stages"),
     {"sl_animals_net": SLAnimalsNetConfig, **_DVS}),
):
    register_model(_entry, sections=_sections)
