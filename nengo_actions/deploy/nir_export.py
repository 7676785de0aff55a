"""NIR export of a directly trained DVS net: ``python -m nengo_actions.deploy.export RUN --format nir``.

The graph is read off the per-frame Keras model that the Nengo network is converted from
(:func:`~nengo_actions.networks.dvs_direct.frame_model`: batch normalisation folded,
dropout left out, trained time constants), so the exported network is the one the
toolkit evaluates. Layer by layer, in NIR's channel-first order without a batch axis:

==========================  ===================================================================
per-frame layer             NIR node
==========================  ===================================================================
input frame ``(H, W, 2)``   ``Input`` of shape ``(2, H, W)``: event counts per pixel and polarity
``Conv2D`` (BN folded)      ``Conv2d``: weight ``(C_out, C_in, kH, kW)``, bias, stride, padding pairs
``LIF`` (trained tau)       ``LIF``: ``tau = tau_steps * dt``, ``r = 1``, ``v_leak = 0``,
                            ``v_threshold``, ``v_reset = 0``, one value per neuron
``AveragePooling2D``        ``AvgPool2d``: kernel, stride and padding pairs
``Flatten``                 ``Flatten`` of ``(C, H, W)`` (``start_dim = 0``), channel-first order
``Dense`` (BN folded)       ``Affine``: weight ``(out, in)`` with its inputs in NIR's order
voting                      ``Linear``: ``(classes, classes * votes)``, ``1 / votes`` per group
==========================  ===================================================================

Time: NIR is continuous; the discrete neuron ``v <- v + (I - v) / tau_steps`` is NIR's
LIF under forward Euler with ``dt`` (:data:`NIR_DT` = 1e-4 s, SpikingJelly's and
snnTorch's convention; written to the graph's metadata as ``dt``). One frame is one step.

What NIR cannot hold is refused with one line: max pooling (no NIR primitive; train with
``pool: "avg"``), inputs standardised per pixel (``train.standardize``; the graph takes raw
counts), and models not trained directly with LIF spikes.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from nengo_actions.config import registry
from nengo_actions.config import load_config
from nengo_actions.errors import NIRError
from nengo_actions.io import atomic_path
from nengo_actions.params import read_params_header

#: Seconds per step under which NIR's continuous neurons are the discrete ones.
NIR_DT = 1e-4

FORMATS = ("nir",)


def _pairs(value):
    return np.array(value if np.ndim(value) else (value, value), dtype=np.int64)


def _conv_padding(layer):
    kernel, strides = layer.kernel_size, layer.strides
    if layer.padding == "valid":
        return (0, 0)
    if any(s != 1 for s in strides) or any(k % 2 == 0 for k in kernel):
        raise NIRError(f"layer {layer.name}: 'same' padding with stride {strides} and kernel {kernel} is uneven")
    return tuple((k - 1) // 2 for k in kernel)


def frame_model_graph(per_frame, *, dt=NIR_DT, where="model"):
    """The NIR graph of a per-frame Keras model (see the module); ``where`` names the
    model in error messages."""
    from nengo_actions.compat import tf
    from nengo_actions.networks.lif_node import LIF

    layers_mod = tf.keras.layers
    nodes, order = {}, []
    shape, perm, votes = None, None, None

    def add(key, node):
        nodes[key] = node
        order.append(key)

    for layer in per_frame.layers:
        name = layer.name
        if isinstance(layer, layers_mod.InputLayer):
            continue
        if isinstance(layer, layers_mod.Reshape) and shape is None:
            h, w, c = layer.target_shape
            shape = (c, h, w)
            add("input", nir.Input(input_type={"input": np.array(shape)}))
        elif isinstance(layer, layers_mod.Conv2D):
            kernel, bias = layer.get_weights() if layer.use_bias else (layer.get_weights()[0], None)
            c_out = kernel.shape[-1]
            bias = np.zeros(c_out, np.float32) if bias is None else bias
            pad = _conv_padding(layer)
            node = nir.Conv2d(
                input_shape=shape[1:], weight=np.transpose(kernel, (3, 2, 0, 1)).astype(np.float32),
                stride=_pairs(layer.strides), padding=_pairs(pad), dilation=_pairs(layer.dilation_rate), groups=1,
                bias=np.asarray(bias, np.float32),
            )
            add(name, node)
            out = layer.compute_output_shape((None, shape[1], shape[2], shape[0]))
            shape = (c_out, out[1], out[2])
        elif isinstance(layer, LIF):
            add(name, nir.LIF(
                tau=np.full(shape, layer.tau() * dt), r=np.ones(shape), v_leak=np.zeros(shape),
                v_threshold=np.full(shape, layer.threshold), v_reset=np.zeros(shape),
            ))
        elif isinstance(layer, layers_mod.MaxPooling2D):
            raise NIRError(
                f"{where}: layer {name} is max pooling, which NIR has no node for; "
                "train with average pooling (pool: \"avg\" in the model's section)"
            )
        elif isinstance(layer, layers_mod.AveragePooling2D):
            if layer.padding != "valid":
                raise NIRError(f"{where}: layer {name} averages with 'same' padding, which NIR's AvgPool2d cannot hold")
            add(name, nir.AvgPool2d(kernel_size=_pairs(layer.pool_size), stride=_pairs(layer.strides), padding=_pairs(0)))
            out = layer.compute_output_shape((None, shape[1], shape[2], shape[0]))
            shape = (shape[0], out[1], out[2])
        elif isinstance(layer, layers_mod.Flatten) and votes is None:
            if len(shape) == 3:
                add(name, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
                # position p of the channels-last vector holds element perm[p] of NIR's
                c, h, w = shape
                perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
                shape = (c * h * w,)
        elif isinstance(layer, layers_mod.Dense):
            kernel, bias = layer.get_weights()
            weight = np.empty((kernel.shape[1], kernel.shape[0]), np.float32)
            weight[:, perm if perm is not None else slice(None)] = kernel.T
            add(name, nir.Affine(weight=weight, bias=np.asarray(bias, np.float32)))
            shape, perm = (kernel.shape[1],), None
        elif isinstance(layer, layers_mod.Reshape):
            votes = 0  # the voting layer's grouping; its pooling follows
        elif isinstance(layer, layers_mod.AveragePooling1D):
            votes = int(layer.pool_size[0])
            n = shape[0] // votes
            add(name, nir.Linear(weight=np.kron(np.eye(n), np.full((1, votes), 1.0 / votes)).astype(np.float32)))
            shape = (n,)
        elif isinstance(layer, layers_mod.Flatten):
            continue  # the voting layer's scores
        else:
            raise NIRError(f"{where}: layer {name} ({type(layer).__name__}) has no NIR counterpart")
    if perm is not None:
        raise NIRError(f"{where}: the model ends in a flattened map; NIR export expects a dense or voting output")
    add("output", nir.Output(output_type={"output": np.array(shape)}))
    edges = list(zip(order[:-1], order[1:]))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": dt, "source": "nengo_actions", "input": "event counts, (2, H, W)"})


def run_model_type(cfg, run_dir, model):
    """The model of ``run_dir`` to export: ``model``, or the run's only one."""
    types = cfg.model.types
    if model is None:
        if len(types) > 1:
            raise NIRError(f"{run_dir}: the run holds models {', '.join(types)}; choose one with --model")
        return types[0]
    if model not in types:
        raise NIRError(f"{run_dir}: --model {model!r} is not in the run (it holds {', '.join(types)})")
    return model


def model_graph(model, cfg, *, n_features, n_classes, params=None, dt=NIR_DT, where=None):
    """The NIR graph of the directly trained ``model`` of ``cfg``, with the parameters of
    the file ``params`` (``None``: its initial weights, to check what NIR can hold before
    training)."""
    from nengo_actions.networks.dvs_direct import build_temporal, frame_model, load_temporal_params

    where = where or f"{cfg.source} ({model})"
    if not registry.trains_directly(model, cfg.model):
        raise NIRError(
            f"{where}: {model} is not trained directly with LIF spikes; NIR export covers "
            "the directly trained DVS nets (README, \"NIR\")"
        )
    if cfg.train.standardize:
        raise NIRError(
            f"{where}: trained on inputs standardised per pixel (train.standardize); a NIR graph "
            "takes raw event counts: train with --set train.standardize=false"
        )
    net = build_temporal(model, cfg.model, n_features=n_features, n_classes=n_classes, seed=cfg.seed)
    if params is not None:
        load_temporal_params(net, params)
    per_frame = frame_model(net.stages, net.frame_shape, net.keras_model, net.conv, dt=cfg.evaluate.dt)
    return frame_model_graph(per_frame, dt=dt, where=where)


def export_run(run_dir, model=None, *, dt=NIR_DT):
    """The NIR graph of the trained model ``model`` of the run folder ``run_dir``."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise NIRError(f"{run_dir}: not a run folder (no config.json)")
    cfg = load_config(run_dir / "config.json")
    model = run_model_type(cfg, run_dir, model)
    params = run_dir / model / "params_best.npz"
    signature = read_params_header(params).get("signature", {})
    return model_graph(model, cfg, n_features=signature["n_features"], n_classes=signature["n_classes"], params=params,
                       dt=dt, where=f"{run_dir} ({model})")


def write_graph(graph, path):
    """Write ``graph`` to ``path`` (NIR's HDF5 file), atomically."""
    path = Path(path)
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(tmp, graph)
    return path


__all__ = ["NIR_DT", "FORMATS", "frame_model_graph", "model_graph", "export_run", "write_graph", "run_model_type"]
