"""Open a configured model in the Nengo GUI.

``python -m nengo_actions.gui -c CONFIG [--params PATH] [--port P] [--no-browser]``

1. Builds the model the config describes, with the feature and class sizes of its
   feature store. A model with more than ``--max-ensembles`` ensembles (the seed's
   EnsembleArray has 10,000) is too large to draw; the GUI then shows a *reduced copy*
   with the first ``--reduced-ensembles`` of them. The page says so: the script's file
   name (the page title) and a node on the canvas name it a reduced copy.
2. With ``--params`` (a NengoDL parameter file saved by the train command, or a run
   folder holding one) it loads the trained parameters into the full model with NengoDL
   and freezes them into plain Nengo values (encoders, gains, biases, connection
   weights; what ``nengo_dl.Simulator.freeze_params`` does), taking the matching leading
   block of each array for a reduced copy. A file that does not fit the model is an
   error before anything is served.
3. Adds what is worth watching: the input presents the first test clips of the feature
   store frame by frame, a node shows each clip's true and predicted class, and the GUI
   opens value plots of the input and output and spike rasters of a few ensembles.
4. Writes ``model.py`` (or ``model_reduced.py``) with its ``.cfg`` layout into the
   output folder and serves it with nengo-gui on 127.0.0.1, printing the URL with its
   access token.

The model script rebuilds the network from the resolved config and the frozen
parameters (``frozen_params.npz``), so it runs in a plain Nengo simulator without
TensorFlow sessions and can be edited in the GUI's editor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import keyword
import os
import re
import sys
from pathlib import Path

import numpy as np

from nengo_actions import config as config_mod
from nengo_actions.config import PROJECT_ROOT, ConfigError, resolve_path, settings, write_json_atomic
from nengo_actions.io import save_npz_atomic, write_text_atomic

#: Above this many ensembles (or neurons) the GUI shows a reduced copy.
MAX_ENSEMBLES = 200
MAX_NEURONS = 20000
#: Ensembles kept in a reduced copy.
REDUCED_ENSEMBLES = 16
#: Test clips the input node presents, one after another.
GUI_CLIPS = 4
#: Ensembles whose spikes get a raster plot.
RASTER_ENSEMBLES = 3
#: Input dimensions shown in the input's value plot (a 512-d plot is unreadable).
SHOWN_INPUT_DIMS = 8


class GuiError(ConfigError):
    """The model cannot be shown (e.g. parameters that do not fit it)."""


# ---------------------------------------------------------------------------------------
# Building the configured model


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


#: nengo-gui always simulates with Nengo's default step; synapses given in frames are
#: converted to seconds with it.
GUI_DT = 0.001

#: The project's network builder, as ``module:function``.
DEFAULT_BUILDER = "nengo_actions.gui:build_configured"


def build_configured(cfg, n_features, n_classes, n_steps, spiking=None, steps_per_frame=1):
    """The configured model, as the train command builds it (a ``BuiltNetwork``)."""
    from nengo_actions import networks

    return networks.build_model(
        cfg["model"]["type"],
        cfg["model"],
        n_features=n_features,
        n_classes=n_classes,
        n_frames=n_steps,
        spiking=spiking,
        steps_per_frame=steps_per_frame,
        dt=GUI_DT,
        seed=cfg["seed"],
        raster_neurons=cfg["evaluate"].get("raster_neurons", 20),
    )


@dataclasses.dataclass
class Parts:
    """What the GUI needs of a builder's result."""

    network: object
    input: object  # nengo.Node
    output: object  # nengo.Probe
    layers: list  # ensembles worth a spike raster
    helpers: set  # probe instrumentation: gets no trained values
    signature: dict  # what the parameters depend on (None: unknown)


def _unpack(built):
    """:class:`Parts` of a builder's result: a ``BuiltNetwork`` or a ``(network, input
    node, output probe)`` tuple."""
    if isinstance(built, tuple):
        net, input_node, output_probe = built
        return Parts(net, input_node, output_probe, [], set(), None)
    return Parts(
        built.network,
        built.input,
        built.output,
        [layer.ensemble for layer in getattr(built, "layers", [])],
        set(getattr(built, "instrumentation", ())),
        getattr(built, "signature", None),
    )


def resolve_builder(build=None):
    """``(function, spec)`` for a builder given as a function, ``"module:function"`` or
    ``None`` (the project's builder). ``spec`` is what the model script imports."""
    import importlib

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


def data_info(cfg, n_clips=GUI_CLIPS):
    """Sizes and the first test clips from the config's feature store."""
    from nengo_actions.feature_data import store_dir
    from nengo_actions.store import StoreError, load_split, split_path

    path = split_path(store_dir(cfg), "test")
    try:
        split = load_split(path, mmap=True)
    except (StoreError, FileNotFoundError, OSError) as e:
        raise GuiError(
            f"{cfg.get('_source', 'config')}: no feature store to size the model from ({e}); "
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


def reduced_config(cfg, max_ensembles=MAX_ENSEMBLES, reduced_ensembles=REDUCED_ENSEMBLES,
                   max_neurons=MAX_NEURONS):
    """``(cfg, note)``: the config to show and, for a reduced copy, what was reduced.

    The EnsembleArray classifier grows with ``model.ensemble_array.n_ensembles`` into
    thousands of ensembles (the seed: 10,000 x 50 neurons), too many to draw or to
    simulate live; its reduced copy keeps the first ``reduced_ensembles``. The LMUs
    are a few populations and are shown as they are.
    """
    model = cfg["model"]
    if model["type"] == "ensemble_array":
        n = model["ensemble_array"]["n_ensembles"]
        per = model["ensemble_array"]["n_neurons"]
        if n > max_ensembles or n * per > max_neurons:
            keep = max(1, min(reduced_ensembles, max_ensembles, max_neurons // per, n))
            small = json.loads(json.dumps(settings(cfg)))
            small["model"]["ensemble_array"]["n_ensembles"] = keep
            small["_source"] = cfg.get("_source")
            return small, (
                f"reduced copy: {keep} of {n:,} ensembles ({keep * per:,} of {n * per:,} "
                f"neurons), the full model is too large to draw; the output sums only these {keep}"
            )
    return cfg, None


# ---------------------------------------------------------------------------------------
# Trained parameters: NengoDL -> plain Nengo values


def _net_keys(net, prefix=""):
    """Structural keys of every ensemble, node and network: stable under reduction.

    An object's key is its network path and its index in that network's list, so the
    first k ensembles of an EnsembleArray have the same keys in the full model and in a
    reduced copy with fewer ensembles.
    """
    keys = {net: prefix or "model"}
    for kind in ("ensembles", "nodes"):
        for i, obj in enumerate(getattr(net, kind)):
            keys[obj] = f"{prefix}{kind}[{i}]"
    for i, sub in enumerate(net.networks):
        keys.update(_net_keys(sub, f"{prefix}networks[{i}]."))
    return keys


def _obj_key(keys, obj):
    import nengo

    if isinstance(obj, nengo.ensemble.Neurons):
        return keys[obj.ensemble] + ".neurons"
    if isinstance(obj, nengo.base.ObjView):
        return f"{_obj_key(keys, obj.obj)}[{obj.slice}]"
    return keys[obj]


def connection_keys(net):
    """``{connection: key}``: pre, post and the count of earlier equal pairs."""
    keys, out, seen = _net_keys(net), {}, {}
    for conn in net.all_connections:
        base = f"{_obj_key(keys, conn.pre)}->{_obj_key(keys, conn.post)}"
        seen[base] = seen.get(base, -1) + 1
        out[conn] = f"{base}#{seen[base]}"
    return out


def ensemble_keys(net):
    keys = _net_keys(net)
    return {ens: keys[ens] for ens in net.all_ensembles}


def resolve_params_path(path, model_type=None):
    """A parameter file, or the one in a run folder.

    A run folder written by the train command holds ``params_best.npz`` (the epoch
    picked on the validation split), for each model it trained (``model.compare``) in
    that model's subfolder; the one of ``model_type`` is taken.
    """
    path = Path(path)
    if path.is_dir():
        found = [p for name in ("params_best.npz", "params_last.npz")
                 for p in [path / name, *sorted(path.glob(f"*/{name}"))] if p.is_file()]
        if model_type is not None and len({p.parent for p in found}) > 1:
            found = [p for p in found if _saved_model_type(p) == model_type] or found
        if not found:
            raise GuiError(f"--params {path}: no parameter file (params_best.npz) in this folder")
        if len({p.parent for p in found}) > 1:
            raise GuiError(
                f"--params {path}: several parameter files ({', '.join(str(p.relative_to(path)) for p in found)}); name one"
            )
        return found[0]
    for c in (path, Path(str(path) + ".npz")):
        if c.is_file():
            return c
    raise GuiError(f"--params {path}: no such file")


def _saved_model_type(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return json.loads(str(f["header"])).get("signature", {}).get("model")
    except (OSError, ValueError, KeyError):
        return None


def frozen_params(net, params_path, exclude=(), signature=None):
    """Trained values of every ensemble and weighted connection, as plain arrays.

    Builds ``net`` in NengoDL, loads ``params_path`` and reads the values back as Nengo
    parameters, as ``nengo_dl.Simulator.freeze_params`` does. Two file formats load:

    * the train command's (``params_best.npz``: trainable variables and a header with
      the network's ``signature``), checked against ``signature`` and the variables'
      shapes;
    * NengoDL's own ``Simulator.save_params`` (``arr_0``, ``arr_1``, ...), checked
      against the variables' shapes.

    Objects in ``exclude`` (probe helpers) are left out.

    Returns
    -------
    dict
        ``"<ensemble key>/encoders" | "/gain" | "/bias"``; for a connection
        ``"<key>/weights"`` and ``"<key>/kind"`` (0: dense transform, 1: decoders of a
        decoded connection, 2: sparse transform, with ``"<key>/indices"`` and
        ``"<key>/shape"``) -> arrays.

    Raises
    ------
    GuiError
        The file is missing or unreadable, or was saved from another model.
    """
    import nengo

    from nengo_actions.compat import nengo_dl, tf

    import nengo_actions.neurons  # noqa: F401 (native builders for the adaptive types)

    params_path = resolve_params_path(params_path)
    try:
        with np.load(params_path, allow_pickle=False) as saved:
            files = set(saved.files)
            header = json.loads(str(saved["header"])) if "header" in files else None
            if header is None:
                n = len(files)
                if files != {f"arr_{i}" for i in range(n)}:
                    raise GuiError(
                        f"--params {params_path}: neither a parameter file of the train command "
                        "nor one of nengo_dl.Simulator.save_params"
                    )
                arrays = [saved[f"arr_{i}"] for i in range(n)]
    except (OSError, ValueError, KeyError) as e:
        raise GuiError(f"--params {params_path}: not a readable .npz file ({e})") from None
    ens_keys, conn_keys = ensemble_keys(net), connection_keys(net)
    # building a large model (the seed's 500,000 neurons) takes minutes: show progress
    large = sum(e.n_neurons for e in net.all_ensembles) > MAX_NEURONS
    with nengo_dl.Simulator(net, minibatch_size=1, progress_bar=large) as sim:
        if header is not None:
            from nengo_actions.engine import ParamsError, check_signature, read_params

            variables = list(sim.keras_model.trainable_weights)
            described = [{"name": w.name, "shape": list(w.shape)} for w in variables]
            try:
                arrays, header = read_params(params_path)
                if signature is not None:
                    check_signature(params_path, header, signature, described)
            except ParamsError as e:
                raise GuiError(f"--params {e}") from None
        else:
            variables = list(sim.keras_model.weights)
        if len(variables) != len(arrays):
            raise GuiError(
                f"--params {params_path}: holds {len(arrays)} arrays but the configured model "
                f"has {len(variables)} parameter variables; it was saved from another model"
            )
        for i, (var, value) in enumerate(zip(variables, arrays)):
            if tuple(var.shape) != value.shape:
                raise GuiError(
                    f"--params {params_path}: array {i} has shape {value.shape} but the "
                    f"configured model's variable {var.name} has shape {tuple(var.shape)}; "
                    "it was saved from another model or config"
                )
        tf.keras.backend.batch_set_value(zip(variables, arrays))
        exclude = set(exclude)
        ensembles = [
            e for e in net.all_ensembles if not isinstance(e.neuron_type, nengo.Direct) and e not in exclude
        ]
        conns = [c for c in net.all_connections if c.has_weights and c not in exclude]
        values = sim.get_nengo_params(ensembles + conns)
    out = {}
    for ens, p in zip(ensembles, values[: len(ensembles)]):
        for name in ("encoders", "gain", "bias"):
            out[f"{ens_keys[ens]}/{name}"] = np.asarray(p[name], dtype=np.float64)
    for conn, p in zip(conns, values[len(ensembles):]):
        key, transform = conn_keys[conn], p.get("transform")
        if "solver" in p:
            out[f"{key}/weights"] = np.asarray(p["solver"].values.T, dtype=np.float64)
            out[f"{key}/kind"] = np.array(1)
        elif isinstance(transform, nengo.transforms.Sparse):
            init = transform.init
            out[f"{key}/weights"] = np.asarray(init.data, dtype=np.float64)
            out[f"{key}/indices"] = np.asarray(init.indices, dtype=np.int64)
            out[f"{key}/shape"] = np.asarray(init.shape, dtype=np.int64)
            out[f"{key}/kind"] = np.array(2)
        elif isinstance(transform, np.ndarray) or np.isscalar(transform):
            out[f"{key}/weights"] = np.asarray(transform, dtype=np.float64)
            out[f"{key}/kind"] = np.array(0)
        else:
            raise GuiError(
                f"connection {conn}: its {type(transform).__name__} transform cannot be shown with "
                "trained values in the GUI"
            )
    return out


def restrict_params(values, net):
    """The frozen values for ``net``, a copy of the model with possibly fewer ensembles.

    Every object of ``net`` takes the values stored under its key (its network path and
    index, see :func:`_net_keys`); :func:`apply_params` cuts them to the object's size.
    """
    keys = set(ensemble_keys(net).values()) | set(connection_keys(net).values())
    return {name: value for name, value in values.items() if name.rsplit("/", 1)[0] in keys}


def apply_params(net, values):
    """Set frozen values on the objects of ``net`` (matched by structural key).

    Where ``net`` is a reduced copy (fewer ensembles), each array is cut to its leading
    block (dense) or to its entries inside the smaller shape (sparse), which are the
    values of the first ensembles and of the weights to and from them. An array smaller
    than its object is an error naming the object.

    Returns
    -------
    int
        The number of ensembles and connections set.
    """
    import nengo
    from nengo.solvers import NoSolver

    n = 0

    def fit(name, value, shape):
        if value.ndim != len(shape) or any(v < s for v, s in zip(value.shape, shape)):
            raise GuiError(f"frozen parameter {name} has shape {value.shape}; the model needs {shape}")
        return value[tuple(slice(0, s) for s in shape)]

    for ens, key in ensemble_keys(net).items():
        if f"{key}/encoders" not in values:
            continue
        ens.encoders = fit(f"{key}/encoders", values[f"{key}/encoders"], (ens.n_neurons, ens.dimensions))
        ens.normalize_encoders = False
        ens.gain = fit(f"{key}/gain", values[f"{key}/gain"], (ens.n_neurons,))
        ens.bias = fit(f"{key}/bias", values[f"{key}/bias"], (ens.n_neurons,))
        n += 1
    for conn, key in connection_keys(net).items():
        if f"{key}/weights" not in values:
            continue
        w, kind = values[f"{key}/weights"], int(values[f"{key}/kind"])
        if kind == 1:
            w = fit(f"{key}/weights", w, (conn.size_out, conn.pre_obj.n_neurons))
            conn.solver = NoSolver(w.T, weights=False)
            conn.function = _Zeros(w.shape[0])
            conn.transform = None
        elif kind == 2:
            own = conn.transform
            if not isinstance(own, nengo.transforms.Sparse):
                raise GuiError(f"frozen parameter {key}: sparse values for a {type(own).__name__} transform")
            indices = values[f"{key}/indices"]
            keep = np.all(indices < np.asarray(own.shape)[None, :], axis=1)
            if keep.sum() != len(own.init.indices):
                raise GuiError(
                    f"frozen parameter {key}: {keep.sum()} sparse entries fit the shape "
                    f"{own.shape}, the model has {len(own.init.indices)}"
                )
            conn.transform = nengo.transforms.Sparse(own.shape, indices=indices[keep], init=w[keep])
        else:
            if w.ndim == 2:
                w = fit(f"{key}/weights", w, (conn.size_out, conn.size_mid))
            conn.transform = w
        n += 1
    return n


@dataclasses.dataclass(frozen=True)
class _Zeros:
    """The function of a frozen decoded connection (its decoders carry the values)."""

    size: int

    def __call__(self, x):
        return np.zeros(self.size)


# ---------------------------------------------------------------------------------------
# The model the GUI shows


@dataclasses.dataclass
class GuiModel:
    """The network the GUI shows and the objects worth watching."""

    model: object  # nengo.Network
    input_node: object
    output: object  # what the output probe watches
    clip_info: object  # a node whose HTML names the clip, true and predicted class
    input_preview: object  # the first input dimensions, for a readable plot
    rasters: list  # ensembles with spike rasters
    expand: list  # networks to draw open (those holding the rasters)
    probes: dict
    note: str
    n_params: int


def _class_display(info, presentation):
    clip_time = info.n_steps * presentation

    class ClipInfo:
        _nengo_html_ = ""

        def __call__(self, t, x):
            i = int(t // clip_time) % len(info.labels)
            pred = int(np.argmax(x)) if np.any(x) else -1
            true = info.class_names[int(info.labels[i])]
            guess = info.class_names[pred] if pred >= 0 else "-"
            mark = "&#10003;" if pred == int(info.labels[i]) else "&#10007;"
            self._nengo_html_ = (
                f"<p>clip {i + 1}/{len(info.labels)}: <b>{info.clip_ids[i]}</b></p>"
                f"<p>true: <b>{true}</b></p><p>output now: <b>{guess}</b> {mark}</p>"
            )
            return None

    return ClipInfo()


def _build(build, cfg, info, spiking=None, steps_per_frame=1):
    return build(cfg, info.n_features, info.n_classes, info.n_steps, spiking=spiking, steps_per_frame=steps_per_frame)


def gui_model(cfg, info, values=None, note=None, build=None, spiking=None, steps_per_frame=1, dt=GUI_DT):
    """Build the network the GUI shows.

    Parameters
    ----------
    cfg : dict
        The (possibly reduced) config.
    info : DataInfo
        Sizes and clips to present.
    values : dict or None
        Frozen parameters (:func:`frozen_params`), applied by structural key.
    note : str or None
        Shown on the canvas (e.g. that this is a reduced copy).
    build : callable, str or None
        ``build(cfg, n_features, n_classes, n_steps, spiking=, steps_per_frame=)``
        returning a ``BuiltNetwork`` or ``(network, input node, output probe)``; a
        ``"module:function"`` string; ``None``: :func:`build_configured`.
    spiking, steps_per_frame :
        Passed to the builder: ``spiking=True`` builds with spiking neurons, each frame
        held for ``steps_per_frame`` steps of ``dt`` seconds.
    """
    import nengo

    build, _ = resolve_builder(build)
    parts = _unpack(_build(build, cfg, info, spiking, steps_per_frame))
    net, input_node, output_probe, layers = parts.network, parts.input, parts.output, parts.layers
    n_params = apply_params(net, values or {})
    presentation = dt * steps_per_frame
    frames = info.clips.reshape(-1, info.n_features)
    input_node.output = nengo.processes.PresentInput(frames, presentation_time=presentation)
    output = output_probe.target
    with net:
        shown = min(SHOWN_INPUT_DIMS, info.n_features)
        preview = nengo.Node(size_in=shown, label=f"input (first {shown} of {info.n_features} features)")
        nengo.Connection(input_node[:shown], preview, synapse=None)
        clip_info = nengo.Node(_class_display(info, presentation), size_in=info.n_classes, label="clip and class")
        nengo.Connection(output, clip_info, synapse=None)
        if note:
            nengo.Node(size_in=1, label=note)
        pool = layers or [e for e in net.all_ensembles if getattr(e.neuron_type, "spiking", False)]
        pool = pool or list(net.all_ensembles)
        picks = np.linspace(0, len(pool) - 1, min(RASTER_ENSEMBLES, len(pool))) if pool else []
        rasters = [pool[i] for i in sorted({int(round(j)) for j in picks})]
        probes = {
            "input": nengo.Probe(input_node, synapse=None, label="input probe"),
            "output": output_probe,
            **{f"spikes_{i}": nengo.Probe(e.neurons, label=f"spikes of {e.label or i}") for i, e in enumerate(rasters)},
        }
    if note:
        net.label = f"{net.label or 'model'} ({note})"
    expand = []
    for sub in net.all_networks:
        if any(e in sub.all_ensembles for e in rasters) and len(sub.all_ensembles) <= MAX_ENSEMBLES:
            expand.append(sub)
    return GuiModel(net, input_node, output, clip_info, preview, rasters, expand, probes, note or "", n_params)


# ---------------------------------------------------------------------------------------
# Files for nengo-gui and the server


RESERVED_SCRIPT_NAMES = ("sys", "model", "input_node", "output", "input_preview", "clip_info", "load_gui_model")

SCRIPT = '''\
"""{title}

Written by `python -m nengo_actions.gui`; nengo-gui runs this file to build the model.
Config: {source}
Parameters: {params}
"""
import sys

sys.path.insert(0, {root!r})  # the nengo_actions package

from nengo_actions.gui import load_gui_model

_gui = load_gui_model({folder!r})
model = _gui.model
input_node = _gui.input_node
output = _gui.output
input_preview = _gui.input_preview
clip_info = _gui.clip_info
{rasters}
{expand}
'''


def _cfg_file(gui, raster_names, network_names):
    lines = []
    # x, y: the plot's centre as a fraction of the canvas
    # (auto-layout puts the input on the left and the networks in the middle; plots
    # start along the top and bottom edges and can be dragged)
    plots = [("Value", "input_preview", 0.1, 0.08), ("Value", "output", 0.6, 0.08), ("HTMLView", "clip_info", 0.88, 0.08)]
    plots += [("Raster", name, 0.35 + 0.25 * i, 0.92) for i, name in enumerate(raster_names)]
    for i, (kind, name, x, y) in enumerate(plots):
        lines += [
            f"_viz_{i} = nengo_gui.components.{kind}({name})",
            f"_viz_config[_viz_{i}].label_visible = True",
            f"_viz_config[_viz_{i}].x = {x}",
            f"_viz_config[_viz_{i}].y = {y}",
            f"_viz_config[_viz_{i}].width = 0.15",
            f"_viz_config[_viz_{i}].height = 0.15",
        ]
        if kind == "Value":
            lines += [f"_viz_config[_viz_{i}].max_value = 1", f"_viz_config[_viz_{i}].min_value = -1"]
        if kind == "Raster":
            lines.append(f"_viz_config[_viz_{i}].n_neurons = {min(20, gui.rasters[int(name.rsplit('_', 1)[1])].n_neurons)}")
    lines += [
        "_viz_ace_editor = nengo_gui.components.AceEditor()",
        "_viz_net_graph = nengo_gui.components.NetGraph()",
        "_viz_sim_control = nengo_gui.components.SimControl()",
        "_viz_config[_viz_sim_control].kept_time = 4",
        "_viz_config[_viz_sim_control].shown_time = 0.5",
        "_viz_config[model].expanded = True",
    ]
    lines += [f"_viz_config[{name}].expanded = True" for name in network_names]
    return "\n".join(lines) + "\n"


def prepare(cfg, out_dir, params=None, max_ensembles=MAX_ENSEMBLES, reduced_ensembles=REDUCED_ENSEMBLES,
            n_clips=GUI_CLIPS, build=None, info=None, spiking=None, steps_per_frame=1):
    """Check everything and write the model script, its layout and the frozen values.

    Returns ``(script path, GuiModel)``; the script is what nengo-gui runs.
    """
    if cfg["model"]["type"] == "keras_lmu" and build is None:
        raise GuiError(
            f"{cfg.get('_source', 'config')}: model.type 'keras_lmu' runs as one TensorFlow layer "
            "inside NengoDL, with no Nengo ensembles to show; open 'lmu' or 'lmu_spiking' instead"
        )
    build, build_spec = resolve_builder(build)
    info = info or data_info(cfg, n_clips)
    small, note = reduced_config(cfg, max_ensembles, reduced_ensembles)
    variant = dict(spiking=spiking, steps_per_frame=steps_per_frame)
    values = {}
    if params is not None:
        params = resolve_params_path(params, cfg["model"]["type"])
        full = _unpack(_build(build, cfg, info, **variant))
        values = frozen_params(full.network, params, exclude=full.helpers, signature=full.signature)
        if small is not cfg:
            values = restrict_params(values, _unpack(_build(build, small, info, **variant)).network)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(out_dir / "frozen_params.npz", **{k.replace("/", "|"): v for k, v in values.items()})
    save_npz_atomic(out_dir / "clips.npz", clips=info.clips, labels=info.labels,
                    clip_ids=np.asarray(info.clip_ids, dtype=str), class_names=np.asarray(info.class_names, dtype=str))
    meta = {
        "config": settings(small),
        "note": note,
        "source": str(cfg.get("_source")),
        "params": str(params) if params else None,
        "data_source": info.source,
        "sizes": [info.n_features, info.n_classes, info.n_steps],
        "builder": build_spec,
        "spiking": spiking,
        "steps_per_frame": steps_per_frame,
    }
    write_json_atomic(out_dir / "gui.json", meta)
    gui = load_gui_model(out_dir, build=build)  # the script's own path, run once here
    for stale in ("model.py", "model_reduced.py"):
        for p in (out_dir / stale, out_dir / f"{stale}.cfg"):
            if p.exists():
                p.unlink()
    script = out_dir / ("model_reduced.py" if note else "model.py")
    raster_names = [f"raster_{i}" for i in range(len(gui.rasters))]
    # nengo-gui names an unlabelled network by its variable in the script
    network_names = []
    for sub in gui.expand:
        name = re.sub(r"\W+", "_", sub.label or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(sub).__name__)).strip("_").lower()
        name = name if name.isidentifier() and not keyword.iskeyword(name) else f"network_{len(network_names)}"
        while name in network_names or name in RESERVED_SCRIPT_NAMES:
            name += "_"
        network_names.append(name)
    title = f"{cfg['name']}: {cfg['model']['type']} model" + (f" -- {note}" if note else "")
    write_text_atomic(
        script,
        SCRIPT.format(
            title=title,
            source=meta["source"],
            params=meta["params"] or "untrained (initial values)",
            root=str(PROJECT_ROOT),
            folder=str(out_dir.resolve()),
            rasters="\n".join(f"{n} = _gui.rasters[{i}]" for i, n in enumerate(raster_names)),
            expand="\n".join(f"{n} = _gui.expand[{i}]" for i, n in enumerate(network_names)),
        ),
    )
    write_text_atomic(Path(str(script) + ".cfg"), _cfg_file(gui, raster_names, network_names))
    return script, gui


def load_gui_model(folder, build=None):
    """The GUI model written by :func:`prepare` into ``folder`` (what the script runs)."""
    folder = Path(folder)
    meta = json.loads((folder / "gui.json").read_text(encoding="utf-8"))
    with np.load(folder / "frozen_params.npz", allow_pickle=False) as f:
        values = {k.replace("|", "/"): f[k] for k in f.files}
    with np.load(folder / "clips.npz", allow_pickle=False) as f:
        clips, labels, clip_ids, class_names = f["clips"], f["labels"], list(f["clip_ids"]), list(f["class_names"])
    n_features, n_classes, n_steps = meta["sizes"]
    info = DataInfo(n_features, n_classes, n_steps, clips, labels, [str(c) for c in clip_ids],
                    [str(c) for c in class_names], meta["data_source"])
    if "nengo_gui" in sys.modules:  # run by a nengo-gui server not started by serve()
        fix_nengo_gui_expansion()
    cfg = dict(meta["config"], _source=meta["source"])
    return gui_model(cfg, info, values=values, note=meta["note"], build=build or meta["builder"],
                     spiking=meta["spiking"], steps_per_frame=meta["steps_per_frame"])


def fix_nengo_gui_expansion():
    """Make nengo-gui 0.6 open the subnetworks its ``.cfg`` marks as expanded.

    Its ``NetGraph.create_object`` means to send a network's saved ``expanded`` flag to
    the page but tests the builtin ``type`` instead of ``obj_type``, so every subnetwork
    starts collapsed. The flag is sent here with the object's other display details.
    """
    import nengo
    from nengo_gui.components import netgraph

    if getattr(netgraph.NetGraph, "_sends_expanded", False):
        return
    original = netgraph.NetGraph.get_extra_info

    def get_extra_info(self, obj):
        info = original(self, obj)
        if isinstance(obj, nengo.Network):
            info["expanded"] = bool(self.page.config[obj].expanded)
        return info

    netgraph.NetGraph.get_extra_info = get_extra_info
    netgraph.NetGraph._sends_expanded = True


#: Ports tried when none is given: nengo-gui's default and the next few.
DEFAULT_PORTS = range(8080, 8090)


def serve(script, port=None, browser=False, host="127.0.0.1"):
    """Serve ``script`` with nengo-gui on ``host:port`` until interrupted.

    Prints the URL with the access token. ``port=None`` takes the first free one of
    :data:`DEFAULT_PORTS`; ``port=0`` any free port.
    """
    import logging
    import warnings

    # editor autocompletion is optional; its absence is not worth a warning
    warnings.filterwarnings("ignore", message="Install the jedi module")
    import nengo_gui
    import nengo_gui.gui
    from nengo_gui.guibackend import GuiServerSettings, ModelContext

    logging.basicConfig()
    fix_nengo_gui_expansion()
    script = Path(script)
    os.chdir(script.parent)  # nengo-gui resolves the script and its .cfg from here
    server = None
    for candidate in DEFAULT_PORTS if port is None else [port]:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Cannot bind to address")
                server = nengo_gui.gui.InteractiveGUI(
                    ModelContext(filename=script.name),
                    GuiServerSettings((host, candidate), auto_shutdown=0),
                    page_settings=nengo_gui.page.PageSettings(backend="nengo"),
                )
            break
        except (RuntimeError, OSError):  # nengo-gui: "Could not bind to any address."
            continue
    if server is None:
        tried = f"ports {DEFAULT_PORTS.start}-{DEFAULT_PORTS.stop - 1}" if port is None else f"port {port}"
        raise GuiError(f"{host}: {tried} in use; choose another with --port (0: any free port)")
    url = str(server.server.get_url())
    print(f"Nengo GUI for {script}: {url}", flush=True)
    if browser:
        import threading
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    server.start()


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m nengo_actions.gui", description="Open a configured model in the Nengo GUI."
    )
    config_mod.add_config_arguments(parser)
    parser.add_argument("--params", help="trained parameters: a NengoDL .npz file or a run folder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 serves every "
                        "network interface, to anyone who also has the token)")
    parser.add_argument("--port", type=int, help="port (default: the first free of 8080-8089; 0: any free port)")
    parser.add_argument("--no-browser", dest="browser", action="store_false", help="only print the URL")
    parser.add_argument("--out", help="folder for the model script (default: <save_dir>/gui-<name>)")
    parser.add_argument("--max-ensembles", type=int, default=MAX_ENSEMBLES, help="draw a reduced copy above this many ensembles")
    parser.add_argument("--reduced-ensembles", type=int, default=REDUCED_ENSEMBLES, help="ensembles kept in a reduced copy")
    parser.add_argument("--clips", type=int, default=GUI_CLIPS, help="test clips the input presents")
    parser.add_argument("--spiking", action="store_true", help="build with spiking neurons (as the spiking evaluation)")
    parser.add_argument("--steps-per-frame", type=int, help="steps each frame is held (default: 1; with --spiking evaluate.spiking_steps_per_frame)")
    parser.add_argument("--builder", help="MODULE:FUNCTION building another network (default: the project's)")
    parser.add_argument("--prepare-only", action="store_true", help="write the model script and exit")
    return parser


def _command(argv):
    args = build_parser().parse_args(argv)
    cfg = config_mod.config_from_args(args)
    evaluate = cfg["evaluate"]
    spiking_steps = evaluate.get("spiking_steps_per_frame") or max(evaluate["steps_per_frame"])
    steps = args.steps_per_frame or (spiking_steps if args.spiking else 1)
    out = Path(args.out) if args.out else resolve_path(cfg["save_dir"]) / f"gui-{cfg['name']}"
    script, gui = prepare(cfg, out, params=args.params, max_ensembles=args.max_ensembles,
                          reduced_ensembles=args.reduced_ensembles, n_clips=args.clips, build=args.builder,
                          spiking=True if args.spiking else None, steps_per_frame=steps)
    print(f"model script: {script}" + (f" ({gui.note})" if gui.note else ""))
    if args.params:
        print(f"trained parameters: {gui.n_params} ensembles and connections set from {args.params}")
    if args.prepare_only:
        return 0
    serve(script, port=args.port, browser=args.browser, host=args.host)
    return 0


def main(argv=None):
    """The command; bad input exits 2 with one line (see :func:`~nengo_actions.config.run_command`)."""
    return config_mod.run_command(lambda: _command(argv))


if __name__ == "__main__":
    sys.exit(main())
