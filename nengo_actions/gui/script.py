"""The files nengo-gui runs: the model script, its ``.cfg`` layout and the folder they read.

:func:`prepare` writes into one folder::

    model.py (model_reduced.py)   the script nengo-gui runs; its file name is the page title
    model.py.cfg                  the layout: value plots, rasters, open networks
    gui.json                      the resolved config, sizes, builder and notes
    frozen_params.npz             the trained values (:mod:`nengo_actions.gui.freeze`)
    clips.npz                     the test clips the input presents

The script calls :func:`load_gui_model` on the folder, which rebuilds the network from
the resolved config and the frozen values, so it runs in a plain Nengo simulator without
TensorFlow sessions and can be edited in the GUI's editor.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from pathlib import Path

import numpy as np

from nengo_actions.config import registry
from nengo_actions.config import PROJECT_ROOT, settings
from nengo_actions.config.schema import Config
from nengo_actions.config.section import build as build_section
from nengo_actions.gui.build import (
    GUI_CLIPS,
    MAX_ENSEMBLES,
    REDUCED_ENSEMBLES,
    DataInfo,
    GuiError,
    build_network,
    data_info,
    reduced_config,
    resolve_builder,
)
from nengo_actions.gui.freeze import frozen_params, params_file, restrict_params
from nengo_actions.gui.model import gui_model
from nengo_actions.gui.netgraph_fix import fix_nengo_gui_expansion
from nengo_actions.io import save_npz_atomic, write_json_atomic, write_text_atomic

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


def _network_names(networks):
    """Script variable names for ``networks``: nengo-gui names an unlabelled network by
    its variable in the script, so each gets one from its label or class."""
    names = []
    for sub in networks:
        name = re.sub(r"\W+", "_", sub.label or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(sub).__name__)).strip("_").lower()
        name = name if name.isidentifier() and not keyword.iskeyword(name) else f"network_{len(names)}"
        while name in names or name in RESERVED_SCRIPT_NAMES:
            name += "_"
        names.append(name)
    return names


def _cfg_file(gui, raster_names, network_names):
    """The script's ``.cfg``: nengo-gui's layout of the plots, the editor and the
    simulation controls, with the raster networks drawn open."""
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


def prepare(cfg: Config, out_dir, params=None, max_ensembles=MAX_ENSEMBLES, reduced_ensembles=REDUCED_ENSEMBLES,
            n_clips=GUI_CLIPS, build=None, info=None, spiking=None, steps_per_frame=1):
    """Check everything and write the model script, its layout and the frozen values.

    Returns ``(script path, GuiModel)``; the script is what nengo-gui runs.
    """
    model_type = cfg.model.type
    refusal = registry.MODELS[model_type].gui_refusal
    if refusal and build is None:
        raise GuiError(f"{cfg.source}: model.type '{model_type}' {refusal}")
    build, build_spec = resolve_builder(build)
    info = info or data_info(cfg, n_clips)
    small, note = reduced_config(cfg, max_ensembles, reduced_ensembles)
    variant = dict(spiking=spiking, steps_per_frame=steps_per_frame)
    values = {}
    if params is not None:
        params = params_file(params, model_type)
        values = frozen_params(build_network(build, cfg, info, **variant), params)
        if small is not cfg:
            values = restrict_params(values, build_network(build, small, info, **variant).network)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npz_atomic(out_dir / "frozen_params.npz", **{k.replace("/", "|"): v for k, v in values.items()})
    save_npz_atomic(out_dir / "clips.npz", clips=info.clips, labels=info.labels,
                    clip_ids=np.asarray(info.clip_ids, dtype=str), class_names=np.asarray(info.class_names, dtype=str))
    meta = {
        "config": settings(small),
        "note": note,
        "source": str(cfg.source),
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
    network_names = _network_names(gui.expand)
    title = f"{cfg.name}: {model_type} model" + (f" -- {note}" if note else "")
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
    cfg = build_section(Config, meta["config"], str(folder / "gui.json"), base=Config(source=meta["source"]))
    return gui_model(cfg, info, values=values, note=meta["note"], build=build or meta["builder"],
                     spiking=meta["spiking"], steps_per_frame=meta["steps_per_frame"])
