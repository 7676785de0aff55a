"""The network the GUI shows: the configured model with trained values, an input that
presents test clips, a node naming the clip and its class, probes and spike rasters."""

from __future__ import annotations

import dataclasses

import nengo
import numpy as np

from nengo_actions.gui.build import GUI_DT, MAX_ENSEMBLES, build_network, resolve_builder
from nengo_actions.gui.freeze import apply_params

#: Ensembles whose spikes get a raster plot.
RASTER_ENSEMBLES = 3
#: Input dimensions shown in the input's value plot (a 512-d plot is unreadable).
SHOWN_INPUT_DIMS = 8


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
    """A node function whose HTML names the clip shown at time ``t``, its true class and
    the class the output ``x`` (class scores) picks now; ``presentation``: seconds a
    frame is shown."""
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


def gui_model(cfg, info, values=None, note=None, build=None, spiking=None, steps_per_frame=1, dt=GUI_DT):
    """Build the network the GUI shows.

    Parameters
    ----------
    cfg : Config
        The (possibly reduced) config.
    info : DataInfo
        Sizes and clips to present.
    values : dict or None
        Frozen parameters (:func:`~nengo_actions.gui.freeze.frozen_params`), applied by structural key.
    note : str or None
        Shown on the canvas (e.g. that this is a reduced copy).
    build : callable, str or None
        ``build(cfg, n_features, n_classes, n_steps, spiking=, steps_per_frame=)``
        returning a ``BuiltNetwork`` or ``(network, input node, output probe)``; a
        ``"module:function"`` string; ``None``: :func:`~nengo_actions.gui.build.build_configured`.
    spiking, steps_per_frame :
        Passed to the builder: ``spiking=True`` builds with spiking neurons, each frame
        held for ``steps_per_frame`` steps of ``dt`` seconds.
    """
    build, _ = resolve_builder(build)
    built = build_network(build, cfg, info, spiking, steps_per_frame)
    net, input_node, output_probe = built.network, built.input, built.output
    layers = [layer.ensemble for layer in getattr(built, "layers", [])]
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
