"""The one place that imports NengoDL.

NengoDL 3.6 (the last release) imports ``keras.engine`` and
``keras.layers.BatchNormalizationV1/V2``, which TensorFlow 2.13+ moved under
``keras.src``. Aliasing them before the first ``import nengo_dl`` lets NengoDL run on
TensorFlow 2.15, the last release with Keras 2 built in that keras-lmu and
keras-spiking also need. Every module that needs NengoDL does
``from nengo_actions.compat import nengo_dl, tf``.
"""

import os
import sys
import warnings

# TensorFlow's C++ start-up chatter (CUDA probing on a CPU machine) hides real output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow 2.15 runs its oneDNN kernels by default only on x86 CPUs with AVX-512 VNNI or
# BF16 or AMX, and Eigen's elsewhere. On an AVX2 CPU Eigen's convolution gradients run at
# about a quarter of the forward pass's rate: the direct DVS trainer went from 30 to 61 samples/s with
# oneDNN (benchmarks/README.md), and the feature models' runs kept their speed. So oneDNN is
# on for every CPU; TF_ENABLE_ONEDNN_OPTS=0 still turns it off. It is read once, when
# TensorFlow loads, so it only applies where this module imports TensorFlow first.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import tensorflow as tf  # noqa: E402

import keras  # noqa: E402
import keras.src.engine  # noqa: E402
import keras.src.engine.functional  # noqa: E402
from keras.src import layers as _keras_layers  # noqa: E402

sys.modules.setdefault("keras.engine", keras.src.engine)
sys.modules.setdefault("keras.engine.functional", keras.src.engine.functional)
for _name in ("BatchNormalizationV1", "BatchNormalizationV2"):
    if not hasattr(keras.layers, _name):
        setattr(keras.layers, _name, _keras_layers.BatchNormalization)

with warnings.catch_warnings():
    # NengoDL re-registers its BatchNormalization converter for the aliased class.
    warnings.filterwarnings("ignore", message=".*already has a converter.*")
    import nengo_dl  # noqa: E402

# NengoDL warns on every Simulator that no GPU is present; CPU is the supported default.
warnings.filterwarnings("ignore", message="No GPU support detected")

__all__ = ["nengo_dl", "tf", "keras"]
