"""The config schema: one frozen dataclass per config section, with every key's default
and checks.

A JSON config overrides any subset of :class:`Config`'s keys (:mod:`nengo_actions.config`
loads it); the sections nest as the JSON objects do (``cfg.model.lmu.order``). Lists are
tuples. Relative paths resolve against the repository root. Standard library only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nengo_actions.config.registry import dataset_names, model_names
from nengo_actions.config.events import EventsConfig
from nengo_actions.config.models import ModelConfig
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
