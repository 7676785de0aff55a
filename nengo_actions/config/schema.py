"""The config schema: one frozen dataclass per config section, with every key's default
and checks.

A JSON config overrides any subset of :class:`Config`'s keys (:mod:`nengo_actions.config`
loads it); the sections nest as the JSON objects do (``cfg.model.lmu.order``). Lists are
tuples. Relative paths resolve against the repository root. Standard library only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nengo_actions.config.registry import dataset_names, model_names, registered_sections
from nengo_actions.config.section import FieldError, Section, merge, setting

#: The repository root, where ``configs/`` and ``results/`` live.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "config.json"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

frozen = dataclasses.dataclass(frozen=True)


# ---------------------------------------------------------------------------------------
# Video data and features


@frozen
class SyntheticActionsConfig(Section):
    """The embedded video set (feature_extraction.synthetic): classes that differ only by motion."""

    n_classes: int = setting(8, low=1)  # the first N of MoveLeft/Right/Up/Down, Rotate(Counter)Clockwise, Grow, Shrink, Move*Slow
    # many groups of few clips: models must learn motion across many appearances
    n_groups: int = setting(20, low=1)  # groups g01..gNN, each with its own background, colours and shape
    clips_per_group: int = setting(2, low=1)  # clips per class and group
    n_frames: int = setting(16, low=1)
    size: tuple = setting((48, 48))  # (height, width) of the written videos
    fps: int = setting(25, low=1)
    test_groups: tuple = setting((1, 2, 3, 4, 5))  # the test side of split 1
    seed: int = setting(0)


#: ``data.stream``'s values (nengo_actions.clips.streaming).
STREAM_CHOICES = ("auto", "on", "off")


@frozen
class DataConfig(Section):
    # "ucf101": a UCF101 folder (UCF-101/ + ucfTrainTestlist/); "synthetic_actions": the
    # embedded generated set in the same layout; the event datasets: DVS recordings.
    dataset: str = setting("synthetic_actions", choices=dataset_names)
    root: str = setting("data/synthetic_actions")
    videos_dir: str = setting(kind=str)  # default: <root>/UCF-101
    splits_dir: str = setting(kind=str)  # default: <root>/ucfTrainTestlist
    frames_dir: str = setting(kind=str)  # pre-extracted JPEG frames <frames_dir>/<video stem>/frame000001.jpg
    split: int = setting(1)
    val_fraction: float = setting(0.2)  # share of training *groups* held out for model selection
    generate: bool = setting(True)  # generate the synthetic set when it is missing
    # Keep the clips on disk and read them a minibatch at a time (nengo_actions.clips.streaming):
    # "on", "off", or "auto" (when the inputs as float32 exceed stream_above_mb MiB).
    stream: str = setting("auto", choices=STREAM_CHOICES)
    stream_above_mb: float = setting(256.0)
    synthetic: SyntheticActionsConfig = setting(factory=SyntheticActionsConfig)


#: ``frames.policy`` and ``frames.short_clips`` (feature_extraction.frames.FrameSampler).
FRAME_POLICIES = ("first", "uniform", "all")
SHORT_CLIPS = ("pad", "skip")


@frozen
class FramesConfig(Section):
    """How frames are taken from a video."""

    policy: str = setting("first", choices=FRAME_POLICIES)  # "first" N frames (the seed: 1..28)
    n_frames: int = setting(28, low=1)
    short_clips: str = setting("pad", choices=SHORT_CLIPS)  # "pad" repeats the last frame
    # A video that decodes fewer frames than its container announces (a cut download)
    # counts as failed; true uses the frames that decode and lists the clip as damaged.
    allow_short_reads: bool = setting(False)
    resize: tuple = setting((224, 224))  # (height, width); aspect ratio is not kept, as the seed
    mean: tuple = setting(IMAGENET_MEAN)
    std: tuple = setting(IMAGENET_STD)


#: ``features.backbone`` and ``features.output`` (feature_extraction.backbones).
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
FEATURE_OUTPUTS = ("pool", "seed_head")


@frozen
class FeaturesConfig(Section):
    """The per-frame features of a torchvision ResNet, and how they are stored."""

    backbone: str = setting("resnet152", choices=BACKBONES)
    weights: str = setting(kind=str)  # torchvision state dict or the seed's encoder checkpoint
    output: str = setting("pool", choices=FEATURE_OUTPUTS)  # "seed_head": the seed's 512-d head
    # 1: global average pool (torchvision's); G > 1: a GxG average grid, flattened, so the
    # features keep where things are (feature_dim = channels * G * G)
    pool_grid: int = setting(1, low=1)
    # default: <root>/features/<backbone>-<policy><N>[-grid<G>]-<hash of the other settings>
    store_dir: str = setting(kind=str)
    dtype: str = setting("float16", choices=("float16", "float32"))
    batch_size: int = setting(64, low=1)  # frames per forward pass
    chunk_size: int = setting(32, low=1)  # clips per atomically written chunk (the unit of resumption)
    device: str = setting("auto")  # "auto" (CUDA when present), "cpu" or "cuda[:N]"
    threads: int = setting(0)  # torch intra-op threads; 0 leaves torch's default
    channels_last: bool = setting(True)  # NHWC memory layout for the convolutions (faster on CPU)
    decode_workers: int = setting(1, low=1)  # threads decoding the next clips while the network runs
    keep_chunks: bool = setting(False)  # keep the per-chunk files after the store is assembled
    allow_failures: bool = setting(False)  # exit 0 even if some clips could not be decoded
    seed_pickles: dict = setting(kind=dict)  # {"train_data", "test_data", "train_labels", "test_labels"}


# ---------------------------------------------------------------------------------------
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
    ensemble_array: EnsembleArrayConfig = setting(factory=EnsembleArrayConfig)
    lmu: LMUConfig = setting(factory=LMUConfig)
    lmu_spiking: LMUSpikingConfig = setting(factory=LMUSpikingConfig)
    keras_lmu: KerasLMUConfig = setting(factory=KerasLMUConfig)
    dvs_gesture_net: GestureNetConfig = setting(factory=GestureNetConfig)
    sl_animals_net: SLAnimalsNetConfig = setting(factory=SLAnimalsNetConfig)
    dvs_conv: DVSConvConfig = setting(factory=DVSConvConfig)
    # the sections of models registered with their own settings (registry.register_model)
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
# Training and evaluation


#: ``train.distribute``'s strategies (nengo_actions.engine.distribute).
STRATEGIES = ("none", "mirrored", "multi_worker")
#: ``train.optimizer`` and ``train.schedule``: the engine builds each (engine.make_optimizer).
OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "cosine_epoch", "step")
#: ``train.adam_epsilon_form``: where Adam adds its epsilon (engine.make_optimizer).
ADAM_EPSILON_FORMS = ("keras", "torch")


@frozen
class TrainConfig(Section):
    optimizer: str = setting("adam", choices=OPTIMIZERS)
    learning_rate: float = setting(1e-3, above=0)
    adam_epsilon: float = setting(1e-7, above=0)  # Adam's epsilon: Keras' 1e-7; PyTorch (SpikingJelly) uses 1e-8
    # "keras": epsilon added to sqrt(v) before the bias correction (Kingma and Ba's epsilon
    # hat); "torch": after it, as torch.optim.Adam and so SpikingJelly. They differ where
    # gradients are small, most in the first few hundred steps.
    adam_epsilon_form: str = setting("keras", choices=ADAM_EPSILON_FORMS)
    weight_decay: float = setting(0.0, low=0)  # decoupled weight decay (Adam becomes AdamW)
    # cosine: to 0 over all epochs, every minibatch; cosine_epoch: the same once per epoch
    # (PyTorch's CosineAnnealingLR stepped per epoch, as SpikingJelly trains)
    schedule: str = setting("constant", choices=SCHEDULES)
    step_epochs: int = setting(10, low=1)  # "step": multiply the rate by step_factor every step_epochs
    step_factor: float = setting(0.1, above=0)
    loss: str = setting("sparse_categorical_crossentropy", choices=("sparse_categorical_crossentropy", "mse"))
    loss_steps: int = setting(0, low=0)  # 0: every frame (the seed); k > 0: the last k frames of each clip
    minibatch_size: int = setting(32, low=1)
    # An epoch's last minibatch when the clips do not fill it: "fill" tops it up with the
    # first clips of the epoch's order (every minibatch full; NengoDL's simulator needs
    # that); "short" trains it as it is, as PyTorch's DataLoader (drop_last=False) and so
    # SpikingJelly do. Directly trained models only.
    last_batch: str = setting("fill", choices=("fill", "short"))
    epochs: int = setting(20, low=1)
    # Scale each feature to zero mean and unit variance over the training frames
    # (validation and test use the training statistics).
    standardize: bool = setting(True)
    early_stopping: int = setting(0, low=0)  # patience in epochs without a better validation score; 0: off
    # After selection on validation, train a fresh model on the training and validation
    # clips together for the selected number of epochs (the protocol of trainers that
    # hold nothing out, such as SpikingJelly's examples) and report its test figures
    # beside the selected model's ("refit_*" in metrics.json; parameters in <model>/refit/).
    refit: bool = setting(False)
    initial_accuracy: bool = setting(True)  # the seed's check of the untrained network (on validation)
    device: str = setting("auto", choices=("auto", "cpu", "gpu"))  # "auto": a GPU when TensorFlow sees one
    # float16 arithmetic with float32 parameters and loss scaling: "auto" (on when training
    # on a GPU), "on" (a GPU is required) or "off"
    mixed_precision: str = setting("auto", choices=("auto", "on", "off"))
    # data-parallel training of directly trained models (nengo_actions.engine.distribute): "none",
    # "mirrored" (the GPUs of this machine) or "multi_worker" (workers given by TF_CONFIG)
    distribute: str = setting("none", choices=STRATEGIES)
    tensorboard: bool = setting(True)
    # Per model type, overrides of the keys above, e.g. {"keras_lmu": {"epochs": 10}}.
    models: dict = setting(kind=dict, factory=dict)

    def check(self):
        for name, override in (self.models or {}).items():
            if name not in model_names():
                raise FieldError("models", f"names {name!r}; model types are {', '.join(model_names())}")
            if isinstance(override, dict) and "models" in override:
                raise FieldError(f"models.{name}.models", "cannot be set per model type")
            self.for_model(name)

    def for_model(self, model_type):
        """The settings of ``model_type``: these with ``models.<model_type>`` applied."""
        override = (self.models or {}).get(model_type, {})
        return merge(TrainConfig, override, dataclasses.replace(self, models={}), f"models.{model_type}.")


#: The simulators a spiking evaluation runs in: NengoDL (the reference) and Loihi.
SIMULATORS = ("nengo_dl", "nengo_loihi")
#: ``evaluate.clip_method``: how a clip's answer is read off its frames (metrics.clip_scores).
CLIP_METHODS = ("last", "mean", "vote")
#: The default ``evaluate.energy_devices``: keras-spiking's presets, checked against its
#: table when a run starts (experiment.check_evaluate_settings).
ENERGY_DEVICES = ("loihi", "spinnaker", "spinnaker2", "cpu", "gpu")


@frozen
class EvaluateConfig(Section):
    clip_method: str = setting("last", choices=CLIP_METHODS)  # the per-clip answer
    last_k: int = setting(5, low=1)  # frames averaged by "mean"
    top_k: int = setting(5, low=1)
    spiking: bool = setting(True)  # also evaluate spiking models with spiking neurons
    steps_per_frame: tuple = setting((1, 2, 4, 8))  # simulation steps each frame is presented for
    spiking_steps_per_frame: int = setting(4, low=1)  # the one reported as spiking_test_clip_accuracy
    dt: float = setting(0.001, above=0)  # seconds per simulation step
    raster_neurons: int = setting(20, low=0)  # neurons per layer in the spike raster
    energy_devices: tuple = setting(ENERGY_DEVICES)
    # the spiking runs: NengoDL always; "nengo_loihi" adds Loihi (pip install -e ".[loihi]")
    simulators: tuple = setting(("nengo_dl",))
    # nengo-loihi's emulator: "sim" bit for bit as the chip, "simreal" the same model in float
    loihi_target: str = setting("sim", choices=("sim", "simreal"))
    loihi_max_clips: int = setting(100, low=1)  # test clips run on Loihi, one at a time

    def check(self):
        steps = self.steps_per_frame
        if not steps or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in steps):
            raise FieldError("steps_per_frame", "must be a list of integers >= 1")
        unknown = [s for s in self.simulators if s not in SIMULATORS]
        if unknown or "nengo_dl" not in self.simulators:
            raise FieldError("simulators", f"must hold \"nengo_dl\" and may add \"nengo_loihi\"; got {list(self.simulators)}")


# ---------------------------------------------------------------------------------------
# DVS event data (nengo_actions.data), for the event datasets; recordings under data.root.


#: ``events.frames``' choices (nengo_actions.data.frames).
SPLIT_BY = ("number", "time", "window")
FRAME_MODES = ("sum", "or", "sum_norm")
REMAINDERS = ("last", "drop")


@frozen
class EventFramesConfig(Section):
    n_frames: int = setting(16, low=1)
    split_by: str = setting("number", choices=SPLIT_BY)  # equal counts, equal spans, windows
    time_window_us: float = setting(30000.0, above=0)  # frame length for split_by = "window"
    remainder: str = setting("last", choices=REMAINDERS)  # events past T equal parts
    mode: str = setting("sum", choices=FRAME_MODES)
    downsample: int = setting(1, low=1)  # spatial factor: frames of ceil(H/f) x ceil(W/f) pixels
    channels: str = setting("last", choices=("last", "first"))  # (T, H, W, 2) for Keras or (T, 2, H, W)
    crop_us: float = setting(0.0, low=0)  # training samples cut to this length; 0 keeps all
    random_crop: bool = setting(False)  # training crops start at a random time, else the start
    test_n_frames: int = setting(0, low=0)  # frames per test sample (a longer window); 0: n_frames
    test_crop_us: float = setting(0.0, low=0)  # test samples cut to this length; 0 keeps all


@frozen
class SLAnimalsConfig(Section):
    recordings_dir: str = setting(kind=str)  # default <data.root>/recordings or /allusers_aedat
    tags_dir: str = setting(kind=str)  # default <data.root>/tags or /tags_updated_19_08_2020
    reduced: bool = setting(False)  # leave out the S3 (indoor) recordings
    n_folds: int = setting(4, low=2)  # cross-validation over recordings
    fold: int = setting(0, low=0)
    fold_seed: int = setting(0)

    def check(self):
        if self.fold >= self.n_folds:
            raise FieldError("fold", f"must be less than events.sl_animals.n_folds ({self.n_folds}), got {self.fold}")


@frozen
class SyntheticGesturesConfig(Section):
    """The embedded event set written in the DVS128 Gesture layout."""

    sensor_size: int = setting(32, low=1)
    n_classes: int = setting(10, low=1)
    n_users: int = setting(16, low=1)
    test_users: int = setting(4, low=1)
    repeats: int = setting(3, low=1)
    gesture_ms: float = setting(800.0, above=0)
    fps: float = setting(100.0, above=0)
    seed: int = setting(0)


@frozen
class EmulatorConfig(Section):
    """Video -> events pixel model."""

    pos_threshold: float = setting(0.2, above=0)
    neg_threshold: float = setting(0.2, above=0)
    threshold_sigma: float = setting(0.03, low=0)
    refractory_us: float = setting(0.0, low=0)
    noise_rate_hz: float = setting(0.2, low=0)
    log_eps: float = setting(0.001, above=0)


@frozen
class EventsConfig(Section):
    cache_dir: str = setting(kind=str)  # sliced-sample cache; default <data.root>/cache
    allow_truncated: bool = setting(False)  # read a cut-short recording up to its last whole event
    keep_invalid: bool = setting(False)  # AEDAT 3.1: keep events flagged invalid (as SpikingJelly, tonic)
    frames: EventFramesConfig = setting(factory=EventFramesConfig)
    sl_animals: SLAnimalsConfig = setting(factory=SLAnimalsConfig)
    synthetic: SyntheticGesturesConfig = setting(factory=SyntheticGesturesConfig)
    emulator: EmulatorConfig = setting(factory=EmulatorConfig)


# ---------------------------------------------------------------------------------------


@frozen
class Config(Section):
    """A whole config. ``source`` (the file it came from) and ``notes`` (what changed in
    a seed-style config) are not settings."""

    name: str = setting("config")
    seed: int = setting(0)
    save_dir: str = setting("results/runs")
    allow_pickle: bool = setting(False)  # never unpickle unless the user says so here
    data: DataConfig = setting(factory=DataConfig)
    frames: FramesConfig = setting(factory=FramesConfig)
    features: FeaturesConfig = setting(factory=FeaturesConfig)
    model: ModelConfig = setting(factory=ModelConfig)
    train: TrainConfig = setting(factory=TrainConfig)
    evaluate: EvaluateConfig = setting(factory=EvaluateConfig)
    events: EventsConfig = setting(factory=EventsConfig)
    source: str = dataclasses.field(default="config", metadata={"setting": False})
    notes: tuple = dataclasses.field(default=(), metadata={"setting": False})


#: Keys naming paths that must exist when set (others are created or generated).
EXISTING_PATHS = ("features.weights", "data.frames_dir")
