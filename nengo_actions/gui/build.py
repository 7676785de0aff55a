"""The configured network the GUI shows and the data that sizes it.

The network is built by a *builder*: the project's (:func:`build_configured`, what the
train command builds) or another one given as ``"module:function"``, returning a
:class:`~nengo_actions.networks.BuiltNetwork` or a ``(network, input node, output
probe)`` tuple. A model too large to draw is shown as a *reduced copy*
(:func:`reduced_config`).
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from nengo_actions import networks

from nengo_actions.config import registry
from nengo_actions.config import override
from nengo_actions.errors import ConfigError, StoreError
from nengo_actions.clips.feature_data import store_dir
from nengo_actions.networks import BuiltNetwork
from nengo_actions.config.schema import Config
from nengo_actions.store import load_split, split_path

#: Above this many ensembles (or neurons) the GUI shows a reduced copy.
MAX_ENSEMBLES = 200
MAX_NEURONS = 20000
#: Ensembles kept in a reduced copy.
REDUCED_ENSEMBLES = 16
#: Test clips the input node presents, one after another.
GUI_CLIPS = 4

#: nengo-gui always simulates with Nengo's default step; synapses given in frames are
#: converted to seconds with it.
GUI_DT = 0.001

#: The project's network builder, as ``module:function``.
DEFAULT_BUILDER = "nengo_actions.gui.build:build_configured"


class GuiError(ConfigError):
    """The model cannot be shown (e.g. parameters that do not fit it)."""


@dataclasses.dataclass
class DataInfo:
    """What the network needs to know about the data, and a few clips to present."""

    n_features: int
    n_classes: int
    n_steps: int
    clips: np.ndarray  # (clips, steps, n_features) float32
    labels: np.ndarray  # (clips,)
    clip_ids: list
    class_names: list
    source: str


def data_info(cfg: Config, n_clips=GUI_CLIPS):
    """Sizes and the first ``n_clips`` test clips from the config's feature store."""
    path = split_path(store_dir(cfg), "test")
    try:
        split = load_split(path, mmap=True)
    except (StoreError, FileNotFoundError, OSError) as e:
        raise GuiError(
            f"{cfg.source}: no feature store to size the model from ({e}); "
            "run `python -m nengo_actions.train` with this config first (it extracts the features)"
        ) from None
    n = min(n_clips, len(split))
    names = split.class_names or [str(i) for i in range(int(split.labels.max()) + 1)]
    return DataInfo(
        n_features=split.features.shape[2],
        n_classes=len(names),
        n_steps=split.features.shape[1],
        clips=np.asarray(split.features[:n], dtype=np.float32),
        labels=np.asarray(split.labels[:n]),
        clip_ids=[str(c) for c in split.clip_ids[:n]],
        class_names=names,
        source=str(path),
    )


def build_configured(cfg: Config, n_features, n_classes, n_steps, spiking=None, steps_per_frame=1):
    """The configured model, as the train command builds it (a ``BuiltNetwork``)."""
    return networks.build_model(
        cfg.model.type,
        cfg.model,
        n_features=n_features,
        n_classes=n_classes,
        n_frames=n_steps,
        spiking=spiking,
        steps_per_frame=steps_per_frame,
        dt=GUI_DT,
        seed=cfg.seed,
        raster_neurons=cfg.evaluate.raster_neurons,
    )


def unpack(built):
    """A builder's result as a ``BuiltNetwork``.

    A ``(network, input node, output probe)`` tuple becomes one without layers or probe
    helpers and with ``signature=None``: what its parameters depend on is unknown, so a
    parameter file is checked against the variables' shapes only.
    """
    if isinstance(built, tuple):
        net, input_node, output_probe = built
        return BuiltNetwork(net, input_node, output_probe, n_classes=output_probe.size_in, signature=None)
    return built


def resolve_builder(build=None):
    """``(function, spec)`` for a builder given as a function, ``"module:function"`` or
    ``None`` (the project's builder). ``spec`` is what the model script imports."""
    if build is None:
        build = DEFAULT_BUILDER
    if callable(build):
        return build, f"{build.__module__}:{build.__qualname__}"
    module, _, name = str(build).partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise GuiError(f"builder {build!r}: cannot import it ({e})") from None
    return fn, str(build)


def build_network(build, cfg, info, spiking=None, steps_per_frame=1):
    """``build`` (a builder function) applied to ``cfg`` at the sizes of ``info``, as a
    ``BuiltNetwork`` (:func:`unpack`)."""
    return unpack(build(cfg, info.n_features, info.n_classes, info.n_steps,
                        spiking=spiking, steps_per_frame=steps_per_frame))


def reduced_config(cfg: Config, max_ensembles=MAX_ENSEMBLES, reduced_ensembles=REDUCED_ENSEMBLES,
                   max_neurons=MAX_NEURONS):
    """``(cfg, note)``: the config to show and, for a reduced copy, what was reduced.

    A model made of copies of one ensemble (``repeat_keys`` in
    :mod:`nengo_actions.config.registry`, such as the EnsembleArray classifier with
    ``model.ensemble_array.n_ensembles``, the seed's 10,000 x 50 neurons) grows too large
    to draw or to simulate live; its reduced copy keeps the first ``reduced_ensembles``.
    Other models are a few populations and are shown as they are.
    """
    model = cfg.model
    keys = registry.MODELS[model.type].repeat_keys
    if keys:
        n, per = registry.lookup(model, keys[0]), registry.lookup(model, keys[1])
        if n > max_ensembles or n * per > max_neurons:
            keep = max(1, min(reduced_ensembles, max_ensembles, max_neurons // per, n))
            small = override(cfg, {f"model.{keys[0]}": keep}, cfg.source)
            return small, (
                f"reduced copy: {keep} of {n:,} ensembles ({keep * per:,} of {n * per:,} "
                f"neurons), the full model is too large to draw; the output sums only these {keep}"
            )
    return cfg, None
