"""Bypass passthrough nodes that only relay one linear map into neurons.

``nengo_dl.Converter`` turns a Keras layer without an activation (a convolution or a
dense layer followed by a separate neuron layer) into a passthrough node: the layer's
transform writes into the node, and a second connection copies the node into the
neurons' input. Each step NengoDL then copies the whole layer twice on its way to the
neurons, which for the DVS128 Gesture network's first layer is two passes over the
largest array of the step. Once the parameters are fixed, the transform can feed the
neurons directly: the neurons receive the same values, one copy fewer.
(``nengo.utils.builder.remove_passthrough_nodes`` multiplies transforms together, which
Nengo's convolutions do not allow; here the outgoing map must be the identity.)
"""

from __future__ import annotations

import nengo
import numpy as np


def _plain(conn):
    """Whether ``conn`` is a transform with no synapse, function or slice."""
    return (
        conn.synapse is None
        and conn.function is None
        and not isinstance(conn.pre, nengo.base.ObjView)
        and not isinstance(conn.post, nengo.base.ObjView)
    )


def _identity(conn):
    transform = conn.transform
    if isinstance(transform, nengo.transforms.NoTransform):
        return True
    return (
        isinstance(transform, nengo.transforms.Dense)
        and isinstance(transform.init, (np.ndarray, float, int))
        and np.ndim(transform.init) == 0
        and float(transform.init) == 1.0
    )


def bypass_passthrough_nodes(network, inputs=()):
    """Connect straight through each passthrough node that has one plain incoming
    connection and one plain identity connection out to the neurons of an ensemble, in
    place; returns the number of nodes removed.

    The new connection takes the incoming connection's transform (dense, sparse or
    convolution), so the neurons receive the same input. Probed nodes and ``inputs``
    (the nodes the data is fed into) stay. Run it on a network whose parameters are
    fixed (``Simulator.freeze_params``): the new connection starts from the transform's
    current values.
    """
    owner = {}
    for net in (network, *network.all_networks):
        for obj in (*net.nodes, *net.connections):
            owner[obj] = net
    incoming, outgoing = {}, {}
    for conn in network.all_connections:
        incoming.setdefault(conn.post_obj, []).append(conn)
        outgoing.setdefault(conn.pre_obj, []).append(conn)
    probed = {p.target for p in network.all_probes} | {getattr(p.target, "obj", None) for p in network.all_probes}
    removed = 0
    for node in list(network.all_nodes):
        if node.output is not None or node in probed or node in inputs or type(node) is not nengo.Node:
            continue
        ins, outs = incoming.get(node, []), outgoing.get(node, [])
        if len(ins) != 1 or len(outs) != 1:
            continue
        (into,), (out,) = ins, outs
        if not (_plain(into) and _plain(out) and _identity(out)) or not isinstance(out.post_obj, nengo.ensemble.Neurons):
            continue
        with owner[out]:
            through = nengo.Connection(into.pre, out.post, transform=into.transform, synapse=None, label=into.label)
        if into.seed is not None:
            through.seed = into.seed
        for conn in (into, out):
            owner[conn].connections.remove(conn)
        owner[node].nodes.remove(node)
        outgoing[into.pre_obj] = [through if c is into else c for c in outgoing[into.pre_obj]]
        incoming[out.post_obj] = [through if c is out else c for c in incoming[out.post_obj]]
        removed += 1
    return removed


__all__ = ["bypass_passthrough_nodes"]
