"""A search's space and scheduler: the distributions a search key draws from, checked
with the key named, and ASHA's settings and rungs (Ray Tune's)."""

from __future__ import annotations

import dataclasses
import math

from nengo_actions.config.section import FieldError, Section, closest, setting

#: The distributions of a search space: the key of each one-key object, and what it holds.
DISTRIBUTIONS = {"choice": "a non-empty list of values", "uniform": "[low, high]",
                 "loguniform": "[low, high], low above 0", "randint": "[low, high] of integers, high left out"}
SCHEDULERS = ("asha", "fifo")
#: What a search maximises: the validation figures that training writes after every epoch.
SEARCH_METRICS = ("val_clip_accuracy", "val_step_accuracy")
#: The keys that only a search reads; a grid-only sweep leaves them out of sweep.json.
SEARCH_KEYS = ("search", "num_samples", "scheduler", "asha", "metric")


@dataclasses.dataclass(frozen=True)
class AshaConfig(Section):
    """ASHA's settings (Ray Tune's defaults); its max_t is the trials' ``train.epochs``."""

    grace_period: int = setting(1, low=1)  # epochs every trial trains before it may be stopped
    reduction_factor: float = setting(4.0, above=1)  # 1 in this many trials goes on at each rung
    brackets: int = setting(1, low=1)


def check_distribution(key, spec):
    """A search-space entry ``{"<distribution>": args}``; :class:`FieldError` names
    ``search.<key>[.<distribution>]``."""
    name = f"search.{key}"
    kinds = ", ".join(f'{{"{k}": {v}}}' for k, v in DISTRIBUTIONS.items())
    if not isinstance(spec, dict) or len(spec) != 1:
        raise FieldError(name, f"must be one of {kinds}; got {spec!r}")
    (kind, args), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise FieldError(f"{name}.{kind}", f"; a distribution is one of {', '.join(DISTRIBUTIONS)}"
                         f"{closest(kind, DISTRIBUTIONS)}", unknown=True)
    name, wanted = f"{name}.{kind}", DISTRIBUTIONS[kind]
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise FieldError(name, f"must be {wanted}, got {args!r}")
        return
    number = int if kind == "randint" else (int, float)
    if (not isinstance(args, list) or len(args) != 2
            or not all(isinstance(v, number) and not isinstance(v, bool) for v in args)):
        raise FieldError(name, f"must be {wanted}, got {args!r}")
    low, high = args
    if not all(math.isfinite(v) for v in args):
        raise FieldError(name, f"must be finite, got {args!r}")
    if not low < high:
        raise FieldError(name, f"must have low < high, got {args!r}")
    if kind == "loguniform" and low <= 0:
        raise FieldError(name, f"must have low above 0 (a log scale), got {args!r}")


def asha_rungs(asha, max_t):
    """The epochs at which ASHA (:class:`AshaConfig` ``asha``) compares trials, as Ray
    Tune's first bracket places them."""
    n = int(math.log(max_t / asha.grace_period) / math.log(asha.reduction_factor) + 1)
    return [asha.grace_period * asha.reduction_factor ** k for k in range(n)]


def distribution_values(spec):
    """Values a distribution can give that are checked before a search starts: every
    choice, the ends of a range."""
    (kind, args), = spec.items()
    if kind == "choice":
        return list(args)
    if kind == "randint":
        return [args[0], args[1] - 1]
    return [float(args[0]), float(args[1])]
