"""Nengo networks that classify clips from per-frame feature sequences.

Every builder returns a :class:`BuiltNetwork`: the ``nengo.Network``, its input node
(one feature vector per simulation step), its output probe (one class score vector per
step) and the neuron populations worth watching. Builders do not train; the engine
(:mod:`nengo_actions.engine`) trains and evaluates whatever they return.

Time: a clip of ``n_frames`` frames is simulated for ``n_frames * steps_per_frame``
steps of ``dt`` seconds, each frame held for ``steps_per_frame`` steps. Rate networks are
trained with one step per frame; spiking evaluation rebuilds the same network with more
steps per frame and loads the trained parameters. So that a network behaves the same
at any ``steps_per_frame``, synaptic time constants and LMU windows in configs are given
in **frames** and converted here (:func:`frames_to_synapse`).
"""

from __future__ import annotations

from typing import Callable

from nengo_actions.networks.base import (  # noqa: F401  (the package's public names)
    BuiltNetwork,
    Layer,
    frames_to_synapse,
    frame_delay,
    neuron_type_from_config,
    neuron_amplitude,
    rate_counterpart,
    add_layer_probes,
    unmerged_ops,
    rate_regularizer,
)

#: The model types a config may name (``model.type``).
MODEL_TYPES = ("ensemble_array", "lmu", "lmu_spiking", "keras_lmu", "dvs_gesture_net", "sl_animals_net")


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

    Parameters
    ----------
    model_type : str
        One of :data:`MODEL_TYPES`.
    model_cfg : dict
        The config's ``model`` section.
    n_features, n_classes, n_frames : int
        Feature size, number of classes, frames per clip.
    spiking : bool or None
        Build with spiking neurons (``None``: the model's own neuron types).
    steps_per_frame : int
        Simulation steps per frame.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}"
        )
    builder = _builders()[model_type]
    built = builder(
        model_cfg,
        n_features=n_features,
        n_classes=n_classes,
        n_frames=n_frames,
        spiking=spiking,
        steps_per_frame=steps_per_frame,
        dt=dt,
        seed=seed,
        raster_neurons=raster_neurons,
    )
    unmerged_ops(built.network)
    return built


def model_is_spiking(model_type, model_cfg):
    """Whether ``model_type`` as configured has spiking neurons to evaluate."""
    from nengo_actions.neuron_types import is_spiking

    if model_type == "ensemble_array":
        return is_spiking(model_cfg["ensemble_array"]["neuron_type"])
    if model_type == "lmu_spiking":
        return True
    if model_type in ("dvs_gesture_net", "sl_animals_net"):
        return is_spiking(model_cfg["dvs_conv"]["spiking_neuron_type"])
    return False


def _builders() -> dict[str, Callable]:
    from nengo_actions.networks.ensemble_array import build_ensemble_array
    from nengo_actions.networks.dvs_conv import build_gesture_net, build_sl_animals_net
    from nengo_actions.networks.keras_lmu import build_keras_lmu
    from nengo_actions.networks.lmu import build_lmu

    return {
        "ensemble_array": build_ensemble_array,
        "lmu": lambda cfg, **kw: build_lmu(cfg, variant="lmu", **kw),
        "lmu_spiking": lambda cfg, **kw: build_lmu(cfg, variant="lmu_spiking", **kw),
        "keras_lmu": build_keras_lmu,
        "dvs_gesture_net": build_gesture_net,
        "sl_animals_net": build_sl_animals_net,
    }


__all__ = [
    "MODEL_TYPES",
    "BuiltNetwork",
    "Layer",
    "build_model",
    "model_is_spiking",
    "frames_to_synapse",
    "frame_delay",
    "neuron_type_from_config",
    "rate_counterpart",
    "unmerged_ops",
    "add_layer_probes",
]
