"""Splits by group: the leak check and the validation split.

UCF101 clips of one group (``gGG``) are cut from one long video, so a clip split that
puts one group on both sides leaks. Both checks work on group labels only (NumPy, no
TensorFlow), so the extractor and the trainer share them.
"""

from __future__ import annotations

import numpy as np

from nengo_actions.errors import DataError, SplitLeakError


def check_group_leak(groups_a, groups_b, names=("train", "test"), where=""):
    """Raise :class:`SplitLeakError` if any group is in both ``groups_a`` and ``groups_b``."""
    shared = sorted(set(np.asarray(groups_a).tolist()) & set(np.asarray(groups_b).tolist()))
    if shared:
        prefix = f"{where}: " if where else ""
        raise SplitLeakError(
            f"{prefix}groups {shared} are in both the {names[0]} and the {names[1]} "
            "split; clips of one group come from one video, so this split leaks"
        )


def validation_groups(groups, fraction, seed=0):
    """Pick whole groups holding about ``fraction`` of the clips for validation.

    Groups are shuffled with ``seed`` and taken until the share of clips reaches
    ``fraction`` (at least one group, and at least one group left for training).

    Returns
    -------
    numpy.ndarray
        The sorted validation group labels.
    """
    groups = np.asarray(groups)
    unique, counts = np.unique(groups, return_counts=True)
    if fraction <= 0:
        return unique[:0]
    if len(unique) < 2:
        raise ValueError(
            f"cannot carve a validation split by group from {len(unique)} group(s)"
        )
    order = np.random.RandomState(seed).permutation(len(unique))
    target = fraction * len(groups)
    chosen, total = [], 0
    for i in order[:-1]:
        chosen.append(unique[i])
        total += counts[i]
        if total >= target:
            break
    return np.sort(np.asarray(chosen))


def split_by_group(groups, fraction, seed=0):
    """Boolean masks ``(train, val)`` over clips, with whole groups on each side."""
    groups = np.asarray(groups)
    val = np.isin(groups, validation_groups(groups, fraction, seed))
    return ~val, val


def carve_validation(groups, fraction, seed=0, where=""):
    """Boolean masks ``(train, val)`` over the training side's clips: whole groups holding
    about ``fraction`` of them for validation (:func:`split_by_group`), none for a fraction
    of 0. Raises :class:`DataError` naming ``where`` when the groups cannot be split."""
    if fraction <= 0:
        return np.ones(len(groups), bool), np.zeros(len(groups), bool)
    try:
        return split_by_group(groups, fraction, seed)
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None
