"""A quick check that stored features carry a clip's class in how they change over time.

Nearest class mean, fitted on the training side and scored on the test side, of each
clip's mean per-step feature difference (``mean_t (f[t+1] - f[t])``), with features
standardised by the training statistics. For comparison the same classifier on one
frame (the middle step) shows how much a single frame gives away. NumPy only.
"""

from __future__ import annotations

import numpy as np


def _nearest_class_mean(train_x, train_y, test_x, n_classes):
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / std, (test_x - mean) / std
    centres = np.stack([a[train_y == c].mean(0) for c in range(n_classes)])
    distances = (b**2).sum(1)[:, None] - 2 * b @ centres.T + (centres**2).sum(1)[None, :]
    return distances.argmin(1)


def motion_probe(train, test):
    """Accuracies of the probe on two :class:`~nengo_actions.store.FeatureSplit` s.

    Returns
    -------
    dict
        ``motion``: accuracy from the mean feature difference over time;
        ``single_frame``: accuracy from the middle frame alone;
        ``chance``: 1 / number of classes.
    """
    n_classes = len(train.class_names) or int(max(train.labels.max(), test.labels.max())) + 1
    x_train = np.asarray(train.features, dtype=np.float32)
    x_test = np.asarray(test.features, dtype=np.float32)

    def motion(x):
        return np.diff(x, axis=1).mean(1)

    mid = x_train.shape[1] // 2
    moving = _nearest_class_mean(motion(x_train), train.labels, motion(x_test), n_classes)
    still = _nearest_class_mean(x_train[:, mid], train.labels, x_test[:, mid], n_classes)
    return {
        "motion": float((moving == test.labels).mean()),
        "single_frame": float((still == test.labels).mean()),
        "chance": 1.0 / n_classes,
    }
