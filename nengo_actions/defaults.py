"""Every config key with its default, its type, bounds and choices: the config schema.

:data:`DEFAULTS` holds every valid key; a JSON file overrides any subset of it.
:data:`TYPES` gives the type of keys whose default is ``None``, :data:`BOUNDS` lower
bounds and :data:`CHOICES` the strings a key may take. :mod:`nengo_actions.config`
checks a config against these. Standard library only.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root, where ``configs/`` and ``results/`` live.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "configs" / "config.json"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# ---------------------------------------------------------------------------------------
# Defaults, one block per section. Relative paths resolve against the repository root.

DATA_DEFAULTS = {
    # "ucf101": a UCF101 folder (UCF-101/ + ucfTrainTestlist/); "synthetic_actions": the
    # embedded generated set in the same layout.
    "dataset": "synthetic_actions",
    "root": "data/synthetic_actions",
    "videos_dir": None,  # default: <root>/UCF-101
    "splits_dir": None,  # default: <root>/ucfTrainTestlist
    "frames_dir": None,  # pre-extracted JPEG frames <frames_dir>/<video stem>/frame000001.jpg
    "split": 1,
    "val_fraction": 0.2,  # share of training *groups* held out for model selection
    "generate": True,  # generate the synthetic set when it is missing
    # Keep the clips on disk and read them a minibatch at a time (nengo_actions.streaming):
    # "on", "off", or "auto" (when the inputs as float32 exceed stream_above_mb MiB).
    "stream": "auto",
    "stream_above_mb": 256,
    # The embedded set (feature_extraction.synthetic): classes that differ only by motion.
    "synthetic": {
        "n_classes": 8,  # the first N of MoveLeft/Right/Up/Down, Rotate(Counter)Clockwise, Grow, Shrink, Move*Slow
        # many groups of few clips: models must learn motion across many appearances
        "n_groups": 20,  # groups g01..gNN, each with its own background, colours and shape
        "clips_per_group": 2,  # clips per class and group
        "n_frames": 16,
        "size": [48, 48],  # (height, width) of the written videos
        "fps": 25,
        "test_groups": [1, 2, 3, 4, 5],  # the test side of split 1
        "seed": 0,
    },
}

FRAMES_DEFAULTS = {
    "policy": "first",  # "first" N frames (the seed: frames 1..28), "uniform" or "all"
    "n_frames": 28,
    "short_clips": "pad",  # "pad" (repeat the last frame) or "skip"
    # A video that decodes fewer frames than its container announces (a cut download)
    # counts as failed; true uses the frames that decode and lists the clip as damaged.
    "allow_short_reads": False,
    "resize": [224, 224],  # (height, width); aspect ratio is not kept, as the seed
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
}

FEATURES_DEFAULTS = {
    "backbone": "resnet152",  # torchvision resnet18/34/50/101/152
    "weights": None,  # torchvision state dict or the seed's encoder checkpoint
    "output": "pool",  # "pool": the global-average-pooled vector; "seed_head": 512-d head
    # 1: global average pool (torchvision's); G > 1: a GxG average grid, flattened, so the
    # features keep where things are (feature_dim = channels * G * G)
    "pool_grid": 1,
    # default: <root>/features/<backbone>-<policy><N>[-grid<G>]-<hash of the other settings>
    "store_dir": None,
    "dtype": "float16",
    "batch_size": 64,  # frames per forward pass
    "chunk_size": 32,  # clips per atomically written chunk (the unit of resumption)
    "device": "auto",  # "auto" (CUDA when present), "cpu" or "cuda[:N]"
    "threads": 0,  # torch intra-op threads; 0 leaves torch's default
    "channels_last": True,  # NHWC memory layout for the convolutions (faster on CPU)
    "decode_workers": 1,  # threads decoding the next clips while the network runs
    "keep_chunks": False,  # keep the per-chunk files after the store is assembled
    "allow_failures": False,  # exit 0 even if some clips could not be decoded
    "seed_pickles": None,  # {"train_data", "test_data", "train_labels", "test_labels"}
}

MODEL_DEFAULTS = {
    "type": "lmu",  # "ensemble_array", "lmu", "lmu_spiking", "keras_lmu"
    # More model types trained and evaluated in the same run and reported beside
    # "type" (whose figures are the unprefixed keys of metrics.json).
    "compare": [],
    # Synaptic time constants below are in frames (tau_seconds = frames x steps per
    # frame x dt), so a network behaves the same at any number of steps per frame;
    # null or 0 means no synapse.
    "ensemble_array": {
        "n_ensembles": 10000,
        "n_neurons": 50,
        "neuron_type": "SpikingRectifiedLinear",
        "max_rates": [200.0, 400.0],
        "intercepts": [-1.0, 0.9],
        "amplitude": None,  # neuron output per spike x dt; default 1 / max_rates[1]
        # One zero-initialised trainable projection of the input per entry, through a
        # low-pass synapse of that many frames (0: none). [0] is the seed's design.
        "input_synapses": [0.0],
        "readout_synapse": None,
        "fixed_decoders": False,  # keep the least-squares decoders out of training
        "rate_target": 100.0,  # Hz, mean rate the regulariser pulls the neurons towards
        "rate_regularization": 0.0,  # weight of ((mean rate / target) - 1)^2 in the loss
    },
    "lmu": {  # architecture of both LMU variants
        "order": 2,
        "units": 800,
        "theta": None,  # memory window in frames; default: frames per clip
        "memory_d": 1,  # memories, each on its own trainable projection of the input
        "input_to_hidden": True,
        "hidden_to_hidden": True,  # the hidden layer also sees its previous frame
        # Frames: the network sees x - lowpass(x) instead of x (what changes, without the
        # static scene); 0: the features as they are (the seed).
        "input_highpass": 0.0,
        # Neurons of the spiking LMU's memory and hidden ensembles; the rate LMU ("lmu")
        # has a linear memory and the rate counterpart of hidden_neuron_type.
        "neuron_type": "SpikingRectifiedLinear",
        "hidden_neuron_type": "SpikingRectifiedLinear",
    },
    "lmu_spiking": {  # rates, synapses and regularisation of the spiking LMU
        "rate": 200.0,  # Hz per unit input of the hidden neurons (amplitude 1/rate)
        "memory_rate": None,  # Hz per unit of memory state; default: rate
        "memory_neurons_per_dim": 16,  # per memory dimension and sign
        "memory_encoding": "onoff",  # "onoff" (exactly linear) or "nengo" (the seed's)
        # Frames: the memory state is held in a low-pass synapse of this time constant
        # on the memory ensemble's recurrence (0: a one-step delay, as the seed).
        "memory_tau": 1.0,
        "memory_synapse": None,  # frames, memory -> hidden
        "readout_synapse": None,  # frames, hidden -> output
        "max_rates": [200.0, 400.0],  # tuning of non-rectified-linear neuron types
        "rate_target": 100.0,  # Hz, mean rate the regulariser pulls each layer towards
        "rate_regularization": 0.0,  # weight of ((mean rate / target) - 1)^2 in the loss
    },
    "keras_lmu": {
        "order": 2,
        "units": 800,
        "theta": None,
        "memory_d": 1,
        "hidden": "rnn",  # "rnn" (SimpleRNNCell) or "dense" (feed-forward ReLU)
    },
    # DVS convolutional networks (Keras, converted by nengo_dl.Converter); inputs are
    # one flattened (H, W, 2) frame per step. frame_shape [] = square two-polarity frames.
    "dvs_gesture_net": {  # the PLIF paper / SpikingJelly DVS128 Gesture network
        "channels": 128,
        "depth": 5,
        "dense": 512,
        "votes": 10,  # output neurons per class, averaged by the voting layer
        "pool": "max",  # "max" (converted as average pooling) or "avg"
        "batch_norm": True,  # folded into the convolutions for conversion
        # direct training: also batch-normalise the two dense layers (folded likewise),
        # which keeps them firing from the first step instead of silent at the start
        "dense_batch_norm": False,
        "dropout": 0.5,  # Keras model only; left out of the converted network
        "frame_shape": [],
    },
    "sl_animals_net": {  # the SL-Animals-DVS STBP network
        "channels": [20, 50],
        "dense": 200,
        "pool": "avg",
        "dropout": 0.0,
        "frame_shape": [],
    },
    "dvs_conv": {  # training method and neurons of both DVS networks
        # "direct": trained with LIF spikes over time and surrogate gradients, then run
        # as the Nengo network of the same layers (networks/dvs_direct.py); "rate": rate
        # neurons trained in NengoDL, spiking neurons swapped in (networks/dvs_conv.py)
        "method": "direct",
        # direct: LIF neurons (SpikingJelly's LIFNode / ParametricLIFNode)
        "lif_tau": 2.0,  # membrane time constant, simulation steps
        "threshold": 1.0,
        "plif": True,  # learn one time constant per layer (the PLIF paper)
        "surrogate_alpha": 2.0,  # ATan surrogate gradient sharpness
        "detach_reset": True,  # no gradient through the reset
        # rate: conversion settings
        "spiking_neuron_type": "SpikingRectifiedLinear",
        "scale_firing_rates": 100.0,  # neuron input gain (output divided by it)
        "synapse": 0.0,  # frames, lowpass on connections from spiking neurons (0: none)
        "rate_target": 100.0,  # Hz, mean rate the regulariser pulls each layer towards
        "rate_regularization": 0.0,  # weight of ((mean rate / target) - 1)^2 in the loss
    },
}

TRAIN_DEFAULTS = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "weight_decay": 0.0,  # decoupled weight decay (Adam becomes AdamW)
    "schedule": "constant",  # "constant", "cosine" (to 0 over all epochs), "step"
    "step_epochs": 10,  # "step": multiply the rate by step_factor every step_epochs
    "step_factor": 0.1,
    "loss": "sparse_categorical_crossentropy",  # on logits; or "mse" on one-hot targets
    "loss_steps": 0,  # 0: every frame (the seed); k > 0: the last k frames of each clip
    "minibatch_size": 32,
    "epochs": 20,
    # Scale each feature to zero mean and unit variance over the training frames
    # (validation and test use the training statistics).
    "standardize": True,
    "early_stopping": 0,  # patience in epochs without a better validation score; 0: off
    "initial_accuracy": True,  # the seed's check of the untrained network (on validation)
    "device": "auto",  # "auto" (a GPU when TensorFlow sees one), "cpu" or "gpu"
    # float16 arithmetic with float32 parameters and loss scaling: "auto" (on when
    # training on a GPU), "on" (a GPU is required) or "off"
    "mixed_precision": "auto",
    "tensorboard": True,
    # Per model type, overrides of the keys above, e.g. {"keras_lmu": {"epochs": 10}}.
    "models": {},
}

EVALUATE_DEFAULTS = {
    "clip_method": "last",  # the per-clip answer: "last" step, "mean" of last_k, "vote"
    "last_k": 5,  # frames averaged by "mean"
    "top_k": 5,
    "spiking": True,  # also evaluate spiking models with spiking neurons
    "steps_per_frame": [1, 2, 4, 8],  # simulation steps each frame is presented for
    "spiking_steps_per_frame": 4,  # the one reported as spiking_test_clip_accuracy
    "dt": 0.001,  # seconds per simulation step
    "raster_neurons": 20,  # neurons per layer in the spike raster
    "energy_devices": ["loihi", "spinnaker", "spinnaker2", "cpu", "gpu"],
}

EVENTS_DEFAULTS = {
    # DVS event data (nengo_actions.data) for data.dataset = "dvs128_gesture",
    # "sl_animals" or "synthetic_gestures"; the recordings are under data.root.
    "cache_dir": None,  # sliced-sample cache; default <data.root>/cache
    "allow_truncated": False,  # read a cut-short recording up to its last whole event
    "keep_invalid": False,  # AEDAT 3.1: keep events flagged invalid (as SpikingJelly, tonic)
    "frames": {
        "n_frames": 16,
        "split_by": "number",  # "number" (equal counts), "time" (equal spans), "window"
        "time_window_us": 30000.0,  # frame length for split_by = "window"
        "remainder": "last",  # events past T equal parts: "last" frame or "drop"
        "mode": "sum",  # "sum", "or" or "sum_norm"
        "downsample": 1,  # spatial factor: frames of ceil(H/f) x ceil(W/f) pixels
        "channels": "last",  # "last" (T, H, W, 2) for Keras or "first" (T, 2, H, W)
        "crop_us": 0.0,  # training samples cut to this length; 0 keeps all
        "random_crop": False,  # training crops start at a random time, else the start
        "test_n_frames": 0,  # frames per test sample (a longer window); 0: n_frames
        "test_crop_us": 0.0,  # test samples cut to this length; 0 keeps all
    },
    "sl_animals": {
        "recordings_dir": None,  # default <data.root>/recordings or /allusers_aedat
        "tags_dir": None,  # default <data.root>/tags or /tags_updated_19_08_2020
        "reduced": False,  # leave out the S3 (indoor) recordings
        "n_folds": 4,  # cross-validation over recordings
        "fold": 0,
        "fold_seed": 0,
    },
    "synthetic": {  # the embedded set written in the DVS128 Gesture layout
        "sensor_size": 32,
        "n_classes": 10,
        "n_users": 16,
        "test_users": 4,
        "repeats": 3,
        "gesture_ms": 800.0,
        "fps": 100.0,
        "seed": 0,
    },
    "emulator": {  # video -> events pixel model
        "pos_threshold": 0.2,
        "neg_threshold": 0.2,
        "threshold_sigma": 0.03,
        "refractory_us": 0.0,
        "noise_rate_hz": 0.2,
        "log_eps": 0.001,
    },
}

DEFAULTS = {
    "name": "config",
    "seed": 0,
    "save_dir": "results/runs",
    "allow_pickle": False,  # never unpickle unless the user says so here
    "data": DATA_DEFAULTS,
    "frames": FRAMES_DEFAULTS,
    "features": FEATURES_DEFAULTS,
    "model": MODEL_DEFAULTS,
    "train": TRAIN_DEFAULTS,
    "evaluate": EVALUATE_DEFAULTS,
    "events": EVENTS_DEFAULTS,
}

#: Types of keys whose default is ``None`` (anything else takes the default's type).
TYPES = {
    "data.videos_dir": str,
    "data.splits_dir": str,
    "data.frames_dir": str,
    "features.weights": str,
    "features.store_dir": str,
    "features.seed_pickles": dict,
    "model.ensemble_array.amplitude": float,
    "model.ensemble_array.readout_synapse": float,
    "model.lmu.theta": float,
    "model.lmu_spiking.memory_rate": float,
    "model.lmu_spiking.memory_synapse": float,
    "model.lmu_spiking.readout_synapse": float,
    "model.keras_lmu.theta": float,
    "train.models": dict,
}

#: Keys with a lower bound: ``(minimum, inclusive)``; ``train.models.<type>.<key>``
#: overrides are held to the bound of ``train.<key>``.
BOUNDS = {
    "frames.n_frames": (1, True),
    "features.batch_size": (1, True),
    "features.chunk_size": (1, True),
    "features.decode_workers": (1, True),
    "features.pool_grid": (1, True),
    "train.learning_rate": (0, False),
    "train.weight_decay": (0, True),
    "train.step_epochs": (1, True),
    "train.step_factor": (0, False),
    "train.loss_steps": (0, True),
    "train.minibatch_size": (1, True),
    "train.epochs": (1, True),
    "train.early_stopping": (0, True),
    "evaluate.last_k": (1, True),
    "evaluate.top_k": (1, True),
    "evaluate.spiking_steps_per_frame": (1, True),
    "evaluate.dt": (0, False),
    "evaluate.raster_neurons": (0, True),
    "events.frames.n_frames": (1, True),
    "events.frames.time_window_us": (0, False),
    "events.frames.downsample": (1, True),
    "events.frames.crop_us": (0, True),
    "events.frames.test_n_frames": (0, True),
    "events.frames.test_crop_us": (0, True),
    "events.sl_animals.n_folds": (2, True),
    "events.sl_animals.fold": (0, True),
}

#: Keys whose value must be one of a few strings (``model.type`` and ``data.dataset``:
#: the names in :mod:`nengo_actions.registry`).
CHOICES = {
    "data.stream": ("auto", "on", "off"),
    "frames.policy": ("first", "uniform", "all"),
    "frames.short_clips": ("pad", "skip"),
    "features.backbone": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    "features.output": ("pool", "seed_head"),
    "features.dtype": ("float16", "float32"),
    "model.dvs_gesture_net.pool": ("max", "avg"),
    "model.sl_animals_net.pool": ("max", "avg"),
    "model.dvs_conv.method": ("direct", "rate"),
    "model.lmu_spiking.memory_encoding": ("onoff", "nengo"),
    "model.keras_lmu.hidden": ("rnn", "dense"),
    "train.schedule": ("constant", "cosine", "step"),
    "train.optimizer": ("adam", "sgd", "rmsprop"),
    "train.loss": ("sparse_categorical_crossentropy", "mse"),
    "train.device": ("auto", "cpu", "gpu"),
    "train.mixed_precision": ("auto", "on", "off"),
    "evaluate.clip_method": ("last", "mean", "vote"),
}

#: Keys naming paths that must exist when set (others are created or generated).
EXISTING_PATHS = ("features.weights", "data.frames_dir")
