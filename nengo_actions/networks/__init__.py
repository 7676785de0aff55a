"""Nengo networks that classify clips from per-frame feature sequences.

Every builder returns a :class:`BuiltNetwork`: the ``nengo.Network``, its input node
(one feature vector per simulation step), its output probe (one class score vector per
step) and the neuron populations worth watching. Builders do not train; the engine
(:mod:`nengo_actions.engine.simulator`) trains and evaluates whatever they return.

Time: a clip of ``n_frames`` frames is simulated for ``n_frames * steps_per_frame``
steps of ``dt`` seconds, each frame held for ``steps_per_frame`` steps. Rate networks are
trained with one step per frame; spiking evaluation rebuilds the same network with more
steps per frame and loads the trained parameters. So that a network behaves the same
at any ``steps_per_frame``, synaptic time constants and LMU windows in configs are given
in **frames** and converted here (:func:`frames_to_synapse`).
"""

from __future__ import annotations

from nengo_actions.config import registry
from nengo_actions.neurons.types import is_spiking
from nengo_actions.networks.base import (  # noqa: F401  (the package's public names)
    BuildArgs,
    BuiltNetwork,
    Layer,
    frames_to_synapse,
    frame_delay,
    model_sections,
    model_signature,
    neuron_type_from_config,
    neuron_amplitude,
    rate_counterpart,
    add_layer_probes,
    layer_probes,
    layer_readings,
    unmerged_ops,
    rate_regularizer,
)


def build_model(
    model_type,
    model_cfg,
    n_features,
    n_classes,
    n_frames,
    *,
    spiking=None,
    steps_per_frame=1,
    dt=0.001,
    seed=0,
    raster_neurons=20,
) -> BuiltNetwork:
    """Build ``model_type`` from the ``model`` section of a config.

    The registered builder gets the sections its registry entry names, a
    :class:`BuildArgs` of the other arguments and the entry's options; the network's
    signature is :func:`model_signature`.

    Parameters
    ----------
    model_type : str
        A registered model type (:mod:`nengo_actions.config.registry`).
    model_cfg : ModelConfig
        The config's ``model`` section.
    n_features, n_classes, n_frames, spiking, steps_per_frame, dt, seed, raster_neurons :
        As :class:`BuildArgs`.
    """
    if model_type not in registry.MODELS:
        raise ValueError(
            f"unknown model type {model_type!r}; expected one of {', '.join(registry.model_names())}"
        )
    entry = registry.MODELS[model_type]
    builder = registry.load_function(entry.builder)  # builders import NengoDL
    args = BuildArgs(
        n_features=n_features,
        n_classes=n_classes,
        n_frames=n_frames,
        spiking=spiking,
        steps_per_frame=steps_per_frame,
        dt=dt,
        seed=seed,
        raster_neurons=raster_neurons,
        model_type=model_type,
    )
    built = builder(*model_sections(model_type, model_cfg), args, **entry.options)
    built.signature = model_signature(model_type, model_cfg, n_features, n_classes)
    unmerged_ops(built.network)
    return built


def model_is_spiking(model_type, model_cfg):
    """Whether ``model_type`` as configured (``model_cfg``: a
    :class:`~nengo_actions.config.models.ModelConfig`) has spiking neurons to evaluate."""
    entry = registry.MODELS[model_type]
    if entry.always_spiking or entry.spiking_key is None:
        return entry.always_spiking
    return is_spiking(registry.lookup(model_cfg, entry.spiking_key))


__all__ = [
    "BuildArgs",
    "BuiltNetwork",
    "Layer",
    "build_model",
    "model_is_spiking",
    "model_sections",
    "model_signature",
    "frames_to_synapse",
    "frame_delay",
    "neuron_type_from_config",
    "rate_counterpart",
    "unmerged_ops",
    "add_layer_probes",
    "layer_probes",
    "layer_readings",
]
