"""What a run's ``metrics.json`` holds: the key names, what kind each figure is, and the
one way figures are summarised over repeats or folds (mean +- sample std).

``metrics.json`` is flat: the first model's figures (``model.type``) under the keys
below, and each model's figures again as ``<model>.<key>``. The report, sweeps and
cross-validation read figures through these names only.
"""

from __future__ import annotations

import math

TEST_CLIP_ACCURACY = "test_clip_accuracy"  # rate neurons, one answer per clip
SPIKING_TEST_CLIP_ACCURACY = "spiking_test_clip_accuracy"  # at evaluate.spiking_steps_per_frame
TEST_STEP_ACCURACY = "test_step_accuracy"  # the seed's figure: accuracy averaged over steps
VAL_CLIP_ACCURACY = "val_clip_accuracy"  # the split that picks the epoch
TRAIN_SECONDS = "train_seconds"
CHANCE_ACCURACY = "chance_accuracy"  # 1 / classes

#: The headline accuracies, in the order tables show them.
ACCURACY_KEYS = (TEST_CLIP_ACCURACY, SPIKING_TEST_CLIP_ACCURACY, TEST_STEP_ACCURACY, VAL_CLIP_ACCURACY)
TIME_KEYS = (TRAIN_SECONDS,)


def is_per_model(key):
    """A figure of one model when several ran (``<model>.<key>``)."""
    return "." in key


def is_accuracy(key):
    return key.endswith("accuracy") or "_accuracy_" in key


def is_firing_rate(key):
    return "firing_rate" in key or key.endswith("_hz")


def is_energy(key):
    return key.startswith("energy_") or "_energy_" in key


def is_number(value):
    """A finite int or float (not a bool): a figure that can be averaged."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_std(values):
    """``(mean, std, n)`` of the finite numbers in ``values``; ``std`` is the sample
    standard deviation (``ddof=1``), 0 for a single value; ``(nan, nan, 0)`` for none."""
    values = [float(v) for v in values if is_number(v)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var), n


__all__ = [
    "TEST_CLIP_ACCURACY", "SPIKING_TEST_CLIP_ACCURACY", "TEST_STEP_ACCURACY", "VAL_CLIP_ACCURACY",
    "TRAIN_SECONDS", "CHANCE_ACCURACY", "ACCURACY_KEYS", "TIME_KEYS", "is_per_model", "is_accuracy",
    "is_firing_rate", "is_energy", "is_number", "mean_std",
]
