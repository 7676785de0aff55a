"""The one description of each DVS network: a list of stages (layers), read by every
form the network takes: the rate-trained Keras model (:mod:`~nengo_actions.networks.dvs_conv`),
the directly trained multi-step model and its per-frame copy
(:mod:`~nengo_actions.networks.dvs_direct`), and through them the Nengo network and the
NIR graph. A model type names its stage list in its registry entry (``stages``).
Standard library only.
"""

from __future__ import annotations

import dataclasses

from nengo_actions.config import registry
from nengo_actions.config.models import GestureNetConfig, SLAnimalsNetConfig


@dataclasses.dataclass(frozen=True)
class Stage:
    """One layer of a network: ``kind`` is conv, lif, pool, flatten, dropout, dense or
    vote; ``size`` channels, units, pool size, dropout rate or votes."""

    kind: str
    name: str
    size: float = 0
    padding: str = "same"
    batch_norm: bool = False
    pool: str = "max"


def gesture_stages(net: GestureNetConfig, n_classes):
    """``model.dvs_gesture_net``: ``{conv3x3 - BN - LIF - pool 2} x depth - dropout -
    dense - LIF - dropout - dense classes x votes - LIF - voting``."""
    stages = []
    for i in range(net.depth):
        stages += [
            Stage("conv", f"conv{i}", net.channels, batch_norm=net.batch_norm),
            Stage("lif", f"lif_conv{i}"),
            Stage("pool", f"pool{i}", 2, pool=net.pool),
        ]
    stages.append(Stage("flatten", "flatten"))
    if net.dropout:
        stages.append(Stage("dropout", "dropout0", net.dropout))
    dense_bn = net.dense_batch_norm
    stages += [Stage("dense", "fc0", net.dense, batch_norm=dense_bn), Stage("lif", "lif_fc0")]
    if net.dropout:
        stages.append(Stage("dropout", "dropout1", net.dropout))
    stages += [Stage("dense", "fc1", n_classes * net.votes, batch_norm=dense_bn), Stage("lif", "lif_fc1")]
    if net.votes > 1:
        stages.append(Stage("vote", "voting", net.votes))
    return stages


def sl_animals_stages(net: SLAnimalsNetConfig, n_classes):
    """``model.sl_animals_net``: ``{conv3x3 (valid) - LIF - pool 2} x 2 - dense - LIF -
    dense classes - LIF``."""
    stages = []
    for i, c in enumerate(net.channels):
        stages += [Stage("conv", f"conv{i}", c, padding="valid"), Stage("lif", f"lif_conv{i}"), Stage("pool", f"pool{i}", 2, pool=net.pool)]
    stages.append(Stage("flatten", "flatten"))
    if net.dropout:
        stages.append(Stage("dropout", "dropout0", net.dropout))
    return stages + [Stage("dense", "fc0", net.dense), Stage("lif", "lif_fc0"), Stage("dense", "fc1", n_classes), Stage("lif", "lif_fc1")]


def stages_of(model_type, section, n_classes):
    """The stage list of ``model_type`` for its ``model.<name>`` ``section``: the
    ``stages`` function of its registry entry (the shipped nets' are above; a plugin
    registers its own)."""
    entry = registry.MODELS[model_type]
    if entry.stages is None:
        raise ValueError(f"model type {model_type!r} has no registered stages: it is not built from a stage list")
    return registry.load_function(entry.stages)(section, n_classes)


def summary(stages, neuron):
    """``"conv3x3 32 - BN - LIF - avgpool 2 - ..."``: the layers of ``stages``, each neuron
    layer named ``neuron``."""
    parts = []
    for s in stages:
        if s.kind in ("conv", "dense"):
            parts.append(f"{'conv3x3' if s.kind == 'conv' else 'dense'} {int(s.size)}{' - BN' if s.batch_norm else ''}")
        elif s.kind == "lif":
            parts.append(neuron)
        elif s.kind == "pool":
            parts.append(f"{s.pool}pool {int(s.size)}")
        elif s.kind == "vote":
            parts.append(f"voting over {int(s.size)}")
    return " - ".join(parts)
