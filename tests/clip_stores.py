"""Small feature stores for tests: the class is visible only in how features move.

Each frame's features encode a position on a ring with ``n_features`` tuning curves
(place cells); a clip starts at a random position and moves at its class's velocity.
Every position is equally likely in every class, so a single frame says nothing about
the class; the direction and speed over time say everything. Groups share an appearance
offset and the test groups are held out, as in UCF101.
"""

from __future__ import annotations

import numpy as np

from nengo_actions.store import save_split

VELOCITIES = (-0.5, -0.25, 0.25, 0.5, -0.75, 0.75, 0.1, -0.1)  # ring turns per clip


def ring_clips(n_classes, n_groups, clips_per_group, n_frames, n_features, noise, seed, class_offset=0.0):
    rng = np.random.RandomState(seed)
    centres = np.linspace(0, 2 * np.pi, n_features, endpoint=False)
    offsets = rng.randn(n_classes, n_features) * class_offset
    features, labels, groups, ids = [], [], [], []
    appearance = rng.randn(n_groups + 1, n_features) * 0.3
    for g in range(1, n_groups + 1):
        for c in range(n_classes):
            for k in range(clips_per_group):
                start = rng.uniform(0, 2 * np.pi)
                pos = start + 2 * np.pi * VELOCITIES[c] * np.arange(n_frames) / n_frames
                x = np.exp(2.0 * (np.cos(pos[:, None] - centres[None, :]) - 1))
                x = x + appearance[g] + offsets[c] + noise * rng.randn(n_frames, n_features)
                features.append(x)
                labels.append(c)
                groups.append(g)
                ids.append(f"C{c}/v_C{c}_g{g:02d}_c{k + 1:02d}")
    return (np.asarray(features, np.float32), np.asarray(labels), np.asarray(groups), np.asarray(ids))


def make_ring_store(folder, n_classes=4, n_groups=6, clips_per_group=2, n_frames=12, n_features=16,
                    test_groups=(1, 2), noise=0.2, seed=0, dtype=np.float32, class_offset=0.0):
    """Write ``train.npz`` and ``test.npz`` into ``folder``; returns ``folder``.

    ``class_offset`` > 0 adds a class-specific pattern to every frame, so that single
    frames also show the class (for per-frame classifiers).
    """
    x, y, g, ids = ring_clips(n_classes, n_groups, clips_per_group, n_frames, n_features, noise, seed, class_offset)
    test = np.isin(g, test_groups)
    meta = {"class_names": [f"C{c}" for c in range(n_classes)], "source": "tests/clip_stores.py"}
    for name, mask in (("train", ~test), ("test", test)):
        save_split(f"{folder}/{name}.npz", x[mask].astype(dtype), y[mask], ids[mask], g[mask], meta)
    return folder
