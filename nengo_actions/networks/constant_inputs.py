"""Fold constant inputs into neuron biases, once a network's parameters are fixed.

A converted Keras layer adds its biases from a constant node: ``nengo_dl.Converter``
gives each dense or conv layer a node that outputs ``[1]``, a trainable transform of it
(the biases), for conv layers a broadcast over positions (:class:`ChannelBroadcast`),
and a connection into the node that sums the layer's input before its neurons. Every
step recomputes and adds these constants; for the DVS128 Gesture network that was a
fifth of a spiking run. Once training is over the biases are constants, and each such
sum feeds only neurons, so the constant can join the neurons' own bias (a neuron's
input current is ``gain * input + bias``), which the neuron update adds anyway.
"""

from __future__ import annotations

import nengo
import numpy as np

from nengo_actions.networks.tensor_nodes import ChannelBroadcast


def _full(obj):
    return not isinstance(obj, nengo.base.ObjView)


def _linear(conn):
    """The connection's matrix (or scalar) if it is a plain linear map, else ``None``."""
    if conn.synapse is not None or conn.function is not None or not (_full(conn.pre) and _full(conn.post)):
        return None
    transform = conn.transform
    if isinstance(transform, nengo.transforms.NoTransform):
        return np.float64(1.0)
    if isinstance(transform, nengo.transforms.Dense) and isinstance(transform.init, np.ndarray | float | int):
        return np.asarray(transform.init, dtype=np.float64)
    return None


def _apply(matrix, value):
    return matrix * value if matrix.ndim < 2 else matrix @ value


def fold_constant_inputs(network, inputs=()):
    """Move constant inputs of neuron populations into their biases, in place.

    A *constant* is a node with a fixed output and no input, or a passthrough node or
    :class:`ChannelBroadcast` fed only by constants through plain linear connections
    (no synapse, function or slice). A constant is folded where it enters a
    passthrough node whose every outgoing connection is such a linear connection to
    the neurons of an ensemble, or enters the neurons directly; the constants left
    without outgoing connections are removed. Ensemble gains and biases must be
    arrays (``Simulator.freeze_params`` writes them so). Returns the number of
    connections folded. Outputs are unchanged up to float rounding. ``inputs`` are
    the nodes the data is fed into: their placeholder outputs are not constants.
    """
    networks = [network, *network.all_networks]
    owner = {}
    for net in networks:
        for obj in (*net.nodes, *net.connections, *net.ensembles):
            owner[obj] = net
    incoming, outgoing = {}, {}
    for conn in network.all_connections:
        incoming.setdefault(conn.post_obj, []).append(conn)
        outgoing.setdefault(conn.pre_obj, []).append(conn)
    probed = {p.target for p in network.all_probes} | {getattr(p.target, "obj", None) for p in network.all_probes}
    values = {}

    def constant(obj):
        if obj in values:
            return values[obj]
        value = values[obj] = None  # also what a loop back to obj sees
        if isinstance(obj, nengo.Node) and obj not in probed and obj not in inputs:
            if obj.size_in == 0 and isinstance(obj.output, np.ndarray):
                value = np.asarray(obj.output, dtype=np.float64)
            elif (obj.output is None or isinstance(obj, ChannelBroadcast)) and incoming.get(obj):
                parts = [(_linear(c), constant(c.pre_obj)) for c in incoming[obj]]
                if all(m is not None and v is not None for m, v in parts):
                    value = sum(_apply(m, v) for m, v in parts)
                    if isinstance(obj, ChannelBroadcast):
                        value = obj.output(0.0, value)
        values[obj] = value
        return value

    def add_to_biases(neurons, matrix, value):
        ens = neurons.ensemble
        if not (isinstance(ens.gain, np.ndarray) and isinstance(ens.bias, np.ndarray)):
            raise ValueError(f"{ens}: gain and bias must be arrays (freeze the parameters first)")
        ens.bias = ens.bias + ens.gain * _apply(matrix, value)

    folded = []
    for post, conns in list(incoming.items()):
        constant_in = [c for c in conns if constant(c.pre_obj) is not None and _linear(c) is not None]
        if not constant_in or constant(post) is not None:
            continue
        if isinstance(post, nengo.ensemble.Neurons):
            for conn in constant_in:
                add_to_biases(post, _linear(conn), constant(conn.pre_obj))
            folded += constant_in
            continue
        outs = outgoing.get(post, [])
        if not (isinstance(post, nengo.Node) and post.output is None and post not in probed and outs):
            continue
        if not all(isinstance(c.post_obj, nengo.ensemble.Neurons) and _linear(c) is not None for c in outs):
            continue
        offset = sum(_apply(_linear(c), constant(c.pre_obj)) for c in constant_in)
        for out in outs:
            add_to_biases(out.post_obj, _linear(out), offset)
        folded += constant_in

    for conn in folded:
        owner[conn].connections.remove(conn)
        outgoing[conn.pre_obj].remove(conn)
    # constants nothing reads any more go, with the connections into them
    dangling = [obj for obj, v in values.items() if v is not None and not outgoing.get(obj)]
    while dangling:
        obj = dangling.pop()
        if obj not in owner[obj].nodes:
            continue
        owner[obj].nodes.remove(obj)
        for conn in incoming.get(obj, []):
            owner[conn].connections.remove(conn)
            outgoing[conn.pre_obj].remove(conn)
            if not outgoing[conn.pre_obj] and values.get(conn.pre_obj) is not None:
                dangling.append(conn.pre_obj)
    return len(folded)


__all__ = ["fold_constant_inputs"]
