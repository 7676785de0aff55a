"""NIR graphs as Nengo networks run spiking by NengoDL: ``python -m nengo_actions.train --nir FILE``.

A NIR file is a user's file: :func:`read_graph` reads it with ``nir.read`` (HDF5, no
pickle) and :func:`frame_model` checks every node's type, shape and edges before it
builds anything, refusing what it cannot build with one line that names the node.

The graph becomes a per-frame Keras model that ``nengo_dl.Converter`` turns into the
Nengo network (:func:`~nengo_actions.networks.dvs_direct.convert_frame_model`, the same
tail as the toolkit's own trained nets), one frame per simulation step:

=====================  =====================================================================
NIR node               per-frame layer
=====================  =====================================================================
``Input`` (C, H, W)    the flattened channels-last frame ``(H * W * C,)`` reshaped to (H, W, C)
``Input`` (N,)         a feature vector
``Conv2d``             ``Conv2D`` (zero padding as 'same', 'valid' or ``ZeroPadding2D``)
``AvgPool2d``          ``AveragePooling2D`` (padding counted in the average, as torch does)
``SumPool2d``          :class:`SumPooling2D`
``Flatten``            ``Flatten``; NIR flattens channel-first, the layers that follow read
                       their inputs in that order
``Affine``/``Linear``  ``Dense`` (a ``Linear`` that averages consecutive groups is the voting layer)
``LIF``/``IF``/``CubaLIF``  :class:`~nengo_actions.networks.nir_layers.EulerNeurons`
several edges in       ``Add``
=====================  =====================================================================

Neurons run NIR's dynamics under forward Euler with the graph's ``dt`` (its metadata
``dt``, else :data:`~nengo_actions.deploy.nir_export.NIR_DT`, the exporters' convention).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import nir
import numpy as np

from nengo_actions.deploy.nir_export import NIR_DT
from nengo_actions.errors import NIRError, cause

SUPPORTED = ("Input", "Output", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Affine", "Linear", "LIF", "IF", "CubaLIF")


def read_graph(path):
    """Read the NIR file ``path``; :class:`NIRError` naming it if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise NIRError(f"NIR file not found: {path}")
    try:
        graph = nir.read(path, type_check=False)
    except Exception as e:  # h5py and nir raise many kinds on a damaged file
        raise NIRError(f"{path}: not a readable NIR file ({cause(e)})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"{path}: holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


def graph_dt(graph):
    """Seconds per step of the graph's neurons: its metadata's ``dt`` or :data:`NIR_DT`."""
    dt = (graph.metadata or {}).get("dt", NIR_DT)
    try:
        dt = float(np.asarray(dt))
    except (TypeError, ValueError):
        raise NIRError(f"graph metadata: dt {dt!r} is not a number") from None
    if not np.isfinite(dt) or dt <= 0:
        raise NIRError(f"graph metadata: dt {dt} must be a positive number of seconds")
    return dt


def topological_order(graph, where):
    """``(order, inputs)``: the node keys from the Input to the Output, and each node's
    predecessors; refuses unknown endpoints, cycles and dangling nodes."""
    nodes = graph.nodes
    kinds = {key: type(node).__name__ for key, node in nodes.items()}
    for key, kind in kinds.items():
        if kind not in SUPPORTED:
            raise NIRError(f"{where}: node {key!r} is a {kind}, which this importer cannot build "
                           f"(it builds {', '.join(SUPPORTED)})")
    ins = [k for k, kind in kinds.items() if kind == "Input"]
    outs = [k for k, kind in kinds.items() if kind == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise NIRError(f"{where}: the graph needs one Input and one Output node, it has {len(ins)} and {len(outs)}")
    inputs, outputs = defaultdict(list), defaultdict(list)
    for edge in graph.edges:
        if len(edge) != 2 or any(e not in nodes for e in edge):
            raise NIRError(f"{where}: edge {tuple(edge)} names a node the graph does not have")
        src, dst = edge
        inputs[dst].append(src)
        outputs[src].append(dst)
    pending = {k: len(set(inputs[k])) for k in nodes}
    order, ready = [], [ins[0]]
    if pending[ins[0]]:
        raise NIRError(f"{where}: the Input node {ins[0]!r} has incoming edges")
    while ready:
        key = ready.pop()
        order.append(key)
        for nxt in dict.fromkeys(outputs[key]):
            pending[nxt] -= 1
            if pending[nxt] == 0:
                ready.append(nxt)
    missing = [k for k in nodes if k not in order]
    if missing:
        raise NIRError(f"{where}: node {missing[0]!r} is on a cycle or not reachable from the Input "
                       "(recurrent graphs are not supported)")
    if outputs[outs[0]]:
        raise NIRError(f"{where}: the Output node {outs[0]!r} has outgoing edges")
    dangling = [k for k in order if not outputs[k] and k != outs[0]]
    if dangling:
        raise NIRError(f"{where}: node {dangling[0]!r} leads nowhere (it does not reach the Output)")
    order.remove(outs[0])  # the Output last: a node may reach it before its other inputs are done
    return order + [outs[0]], {k: list(dict.fromkeys(v)) for k, v in inputs.items()}


def _pairs(value, key, what):
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.array([arr, arr])
    if arr.shape != (2,) or not np.all(np.equal(np.mod(arr, 1), 0)) or np.any(arr < 0):
        raise NIRError(f"node {key!r}: {what} {value!r} is not a pair of non-negative integers")
    return tuple(int(v) for v in arr)


def _layer_names(keys):
    """A Keras layer name per node key: TensorFlow's scope characters only, starting with a
    letter or digit (exporters write keys such as ``_0`` or ``conv.1``), all distinct and
    none the model's own (``frame``, ``image``)."""
    names, used = {}, {"frame", "image"}
    for key in keys:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(key))
        name = name if name[:1].isalnum() else f"node{name}"
        while name in used:
            name += "_"
        names[key] = name
        used.add(name)
    return names


class _Tensor:
    """A Keras tensor with the NIR shape it stands for: ``(C, H, W)`` held channels-last,
    or ``(N,)`` whose position ``p`` holds NIR element ``perm[p]`` (after a Flatten)."""

    def __init__(self, x, shape, perm=None):
        self.x, self.shape, self.perm = x, tuple(int(s) for s in shape), perm

    def to_layer_order(self, values):
        """Per-element NIR values, broadcast to the shape, in the tensor's own order."""
        values = np.broadcast_to(values, self.shape)
        flat = values.transpose(1, 2, 0).ravel() if len(self.shape) == 3 else values.ravel()
        return flat if self.perm is None else flat[self.perm]


def _neuron_params(node, key, t, nir_dt):
    def get(name, default=None):
        value = getattr(node, name, None)
        value = default if value is None else value
        try:
            arr = np.asarray(value, dtype=np.float64)
            arr = t.to_layer_order(arr)
        except ValueError:
            raise NIRError(f"node {key!r}: {name} of shape {np.shape(value)} does not fit the layer shape {t.shape}") from None
        if not np.all(np.isfinite(arr)):
            raise NIRError(f"node {key!r}: {name} holds values that are not finite")
        return arr

    if isinstance(node, nir.IF):
        params = dict(tau=1.0, r=get("r") * nir_dt, v_leak=0.0, leak=0.0)
    else:
        tau = get("tau_mem" if isinstance(node, nir.CubaLIF) else "tau")
        params = dict(tau=tau / nir_dt, r=get("r"), v_leak=get("v_leak", 0.0), leak=1.0)
    params.update(threshold=get("v_threshold"), v_reset=get("v_reset", 0.0))
    if isinstance(node, nir.CubaLIF):
        params.update(tau_syn=get("tau_syn") / nir_dt, w_in=get("w_in", 1.0))
    for name in ("tau", "tau_syn"):
        if name in params and np.any(np.asarray(params[name]) <= 0):
            raise NIRError(f"node {key!r}: time constants must be positive")
    # one value for a layer whose neurons share it (a scalar constant in the graph)
    return {k: (float(np.ravel(v)[0]) if np.all(np.asarray(v) == np.ravel(v)[0]) else v) for k, v in params.items()}


def _voting_groups(weight):
    """``votes`` when ``weight`` averages consecutive groups of ``votes`` inputs, else 0."""
    n_out, n_in = weight.shape
    if n_out == 0 or n_in % n_out or n_in == n_out:
        return 0
    votes = n_in // n_out
    expected = np.kron(np.eye(n_out), np.full((1, votes), 1.0 / votes)).astype(np.float32)
    return votes if np.array_equal(weight.astype(np.float32), expected) else 0


def frame_model(graph, *, dt=0.001, where="NIR graph"):
    """The per-frame Keras model of ``graph``, with the NIR shapes of its input and output.

    Returns ``(model, input_shape, n_outputs)``; the model maps ``(batch, prod(input_shape))``
    (a channels-last flattened frame) to ``(batch, n_outputs)``.
    """
    from nengo_actions.compat import tf
    from nengo_actions.networks.dvs_conv import voting
    from nengo_actions.networks.nir_layers import EulerNeurons
    from nengo_actions.networks.nir_layers import SumPooling2D

    L = tf.keras.layers
    nir_dt = graph_dt(graph)
    order, inputs = topological_order(graph, where)
    tensors, weights, model_input, names = {}, [], None, _layer_names(order)
    key = order[0]
    try:  # a node's values that Keras or NumPy refuse name the node
        for key in order:
            node, name = graph.nodes[key], names[key]
            prefix = f"{where}: node {key!r}"
            if isinstance(node, nir.Input):
                shape = tuple(int(s) for s in np.ravel(list(node.input_type.values())[0]))
                if len(shape) not in (1, 3) or min(shape) < 1:
                    raise NIRError(f"{prefix}: input shape {shape} is neither (C, H, W) nor (N,)")
                model_input = tf.keras.Input((int(np.prod(shape)),), name="frame")
                x = L.Reshape((shape[1], shape[2], shape[0]), name="image")(model_input) if len(shape) == 3 else model_input
                tensors[key] = _Tensor(x, shape)
                continue
            ins = [tensors[k] for k in inputs[key]]
            if len({(t.shape, None if t.perm is None else t.perm.tobytes()) for t in ins}) > 1:
                raise NIRError(f"{prefix}: its inputs differ in shape ({', '.join(str(t.shape) for t in ins)})")
            t = ins[0] if len(ins) == 1 else _Tensor(L.Add(name=f"{name}_sum")([i.x for i in ins]), ins[0].shape, ins[0].perm)
            if isinstance(node, nir.Output):  # the last key of the order: the model ends here
                if t.perm is not None or len(t.shape) != 1:
                    raise NIRError(f"{prefix}: the graph's output must be a vector after a dense or voting layer")
                model = tf.keras.Model(model_input, t.x, name="nir_frame")
                for layer, values in weights:
                    layer.set_weights([np.asarray(v, np.float32) for v in values])
                return model, tensors[order[0]].shape, t.shape[0]
            is_map = len(t.shape) == 3
            if isinstance(node, (nir.Conv2d, nir.AvgPool2d, nir.SumPool2d)) and not is_map:
                raise NIRError(f"{prefix}: a {type(node).__name__} needs a (C, H, W) input, it gets {t.shape}")
            if isinstance(node, nir.Conv2d):
                w = np.asarray(node.weight, np.float32)
                if w.ndim != 4 or w.shape[1] != t.shape[0] or int(node.groups) != 1:
                    raise NIRError(f"{prefix}: weight {w.shape} (groups {node.groups}) does not take {t.shape[0]} channels")
                if _pairs(node.dilation, key, "dilation") != (1, 1):
                    raise NIRError(f"{prefix}: dilated convolutions are not supported")
                bias = np.broadcast_to(np.asarray(node.bias, np.float32), (w.shape[0],))
                stride = _pairs(node.stride, key, "stride")
                if isinstance(node.padding, str):
                    raise NIRError(f"{prefix}: padding {node.padding!r}; give it as a pair of integers")
                pad, k = _pairs(node.padding, key, "padding"), w.shape[2:]
                x = t.x
                if stride == (1, 1) and all(p == (s - 1) // 2 and s % 2 for p, s in zip(pad, k)):
                    padding = "same"
                else:
                    padding = "valid"
                    if pad != (0, 0):
                        x = L.ZeroPadding2D(pad, name=f"{name}_pad")(x)
                layer = L.Conv2D(w.shape[0], tuple(k), strides=stride, padding=padding, name=name)
                x = layer(x)
                weights.append((layer, [np.transpose(w, (2, 3, 1, 0)), bias]))
                tensors[key] = _Tensor(x, (w.shape[0], x.shape[1], x.shape[2]))
            elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
                size, stride = _pairs(node.kernel_size, key, "kernel_size"), _pairs(node.stride, key, "stride")
                pad, x = _pairs(node.padding, key, "padding"), t.x
                if pad != (0, 0):
                    x = L.ZeroPadding2D(pad, name=f"{name}_pad")(x)
                kind = L.AveragePooling2D if isinstance(node, nir.AvgPool2d) else SumPooling2D
                x = kind(size, strides=stride, padding="valid", name=name)(x)
                tensors[key] = _Tensor(x, (t.shape[0], x.shape[1], x.shape[2]))
            elif isinstance(node, nir.Flatten):
                if not is_map:
                    tensors[key] = t
                    continue
                if int(node.start_dim) != 0 or int(node.end_dim) not in (-1, 2):
                    raise NIRError(f"{prefix}: only a Flatten of the whole (C, H, W) map (start_dim 0) is supported")
                c, h, w = t.shape
                perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
                tensors[key] = _Tensor(L.Flatten(name=name)(t.x), (c * h * w,), perm)
            elif isinstance(node, (nir.Affine, nir.Linear)):
                w = np.asarray(node.weight, np.float32)
                if is_map or w.ndim != 2 or w.shape[1] != t.shape[0]:
                    raise NIRError(f"{prefix}: weight {w.shape} does not take an input of shape {t.shape}")
                votes = _voting_groups(w) if isinstance(node, nir.Linear) and t.perm is None else 0
                if votes:
                    x = voting(tf, w.shape[0], votes, name=name)(t.x)
                else:
                    has_bias = isinstance(node, nir.Affine)
                    layer = L.Dense(w.shape[0], use_bias=has_bias, name=name)
                    x = layer(t.x)
                    kernel = (w[:, t.perm] if t.perm is not None else w).T
                    values = [kernel]
                    if has_bias:
                        values.append(np.broadcast_to(np.asarray(node.bias, np.float32), (w.shape[0],)))
                    weights.append((layer, values))
                tensors[key] = _Tensor(x, (w.shape[0],))
            else:  # LIF, IF, CubaLIF
                params = _neuron_params(node, key, t, nir_dt)
                tensors[key] = _Tensor(EulerNeurons(params, dt=dt, name=name)(t.x), t.shape, t.perm)

    except NIRError as e:  # the node checks name the node; the file is named here
        if str(e).startswith(where):
            raise
        raise NIRError(f"{where}: {e}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise NIRError(f"{where}: node {key!r}: {cause(e)}") from None


def describe(graph, path):
    """One line: the file and its nodes in order."""
    order, _ = topological_order(graph, str(path))
    kinds = [type(graph.nodes[k]).__name__ for k in order[1:-1]]
    return f"NIR graph {Path(path).name} ({graph_dt(graph):g} s per step): {' - '.join(kinds)}; run as a Nengo network, one frame per step"


def build_nir_network(graph, path, *, n_features, n_classes, spiking=True, steps_per_frame=1, dt=0.001, raster_neurons=20):
    """The :class:`~nengo_actions.networks.BuiltNetwork` of ``graph`` (read from ``path``)
    for data of ``n_features`` values per frame and ``n_classes`` classes. Its neurons
    spike; there is no rate form (``spiking=False`` is refused)."""
    from nengo_actions.networks.dvs_direct import convert_frame_model

    if not spiking:
        raise ValueError("a NIR graph's neurons spike; it has no rate network")

    model, input_shape, n_outputs = frame_model(graph, dt=dt, where=str(path))
    if int(np.prod(input_shape)) != int(n_features):
        raise NIRError(f"{path}: the graph takes inputs of shape {input_shape} ({int(np.prod(input_shape))} values), "
                       f"the data's frames hold {n_features}")
    if n_outputs != int(n_classes):
        raise NIRError(f"{path}: the graph has {n_outputs} outputs, the data {n_classes} classes")
    signature = {"model": "nir", "file": str(path), "n_features": int(n_features), "n_classes": int(n_classes)}
    return convert_frame_model(model, n_classes=n_classes, signature=signature, description=describe(graph, path),
                               steps_per_frame=steps_per_frame, dt=dt, raster_neurons=raster_neurons)


__all__ = ["SUPPORTED", "read_graph", "graph_dt", "topological_order", "frame_model", "describe", "build_nir_network"]
