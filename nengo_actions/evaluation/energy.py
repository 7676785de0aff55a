"""Synaptic operations and energy per inference of a Nengo network.

The device figures are keras-spiking's (``keras_spiking.ModelEnergy.devices``: energy
per synaptic operation and per neuron update on Loihi, SpiNNaker, SpiNNaker 2, a CPU, a
GPU and an ARM core, with their published sources), applied with keras-spiking's rules
to the connections of the Nengo network as it is built:

* every connection counts its synapses: the non-zero weights from its source (the
  neurons of an ensemble, including decoded connections, whose weights are
  ``transform @ decoders``) to its target; decoded input into an ensemble also counts
  the ensemble's encoders (neurons x dimensions);
* on a **spiking** device a synapse works when a spike arrives: a connection from
  neurons does ``synapses x (mean firing rate of the source) x dt`` operations per step.
  Connections from real-valued sources (the input features, decoded values passing
  through nodes) are not spikes; they are counted as one operation per synapse per step;
* on a **non-spiking** device (cpu, gpu, arm) the network runs as an ANN: one operation
  per synapse and one neuron update per neuron for every frame, whatever the spikes;
* every neuron is updated once per simulation step on a spiking device.

So a spiking figure depends on the measured firing rates and the simulation steps per
inference (frames x steps per frame); a non-spiking one only on the frames. These are
rough estimates in the sense keras-spiking gives them: no overheads, no data movement.
"""

from __future__ import annotations

import nengo
import numpy as np


def device_table():
    """keras-spiking's device presets: ``{name: {spiking, energy_per_synop, energy_per_neuron}}``."""
    import keras_spiking

    return {name: dict(spec) for name, spec in keras_spiking.ModelEnergy.devices.items()}


def _transform_nnz(conn):
    transform = conn.transform
    if isinstance(transform, nengo.transforms.Sparse):
        init = transform.init
        if hasattr(init, "indices") and not hasattr(init, "nnz"):
            return len(np.asarray(init.indices))
        return int(init.nnz)
    if isinstance(transform, nengo.transforms.Dense):
        shape = transform.shape
        if len(shape) < 2:  # elementwise (diagonal) transform
            return int(shape[0])
        return int(np.prod(shape))
    if isinstance(transform, nengo.transforms.Convolution):
        return int(np.prod(transform.output_shape.shape) * np.prod(transform.kernel_size) * transform.input_shape.n_channels)
    return int(conn.size_out)  # NoTransform / scalar: one weight per element


def _ensemble_of(obj):
    if isinstance(obj, nengo.Ensemble):
        return obj
    if isinstance(obj, nengo.ensemble.Neurons):
        return obj.ensemble
    return None


def synapse_groups(built):
    """The network's synapses, grouped by source.

    Returns
    -------
    list of dict
        ``{"source": layer name or "values", "synapses": int, "what": str}``; ``source``
        names a layer of ``built.layers`` for spike-driven synapses and is ``"values"``
        for synapses fed by real values every step.
    """
    layer_of = {id(layer.ensemble): layer.name for layer in built.layers}
    groups = []
    encoded = {}
    for conn in built.network.all_connections:
        if conn in built.instrumentation:
            continue
        pre = _ensemble_of(conn.pre_obj)
        nnz = _transform_nnz(conn)
        if isinstance(conn.pre_obj, nengo.Ensemble):
            # decoded connection: its weights are transform @ decoders, (size_out, n_neurons)
            nnz = conn.size_out * conn.pre_obj.n_neurons
        post = conn.post_obj
        if isinstance(post, nengo.Ensemble):
            encoded[id(post)] = post
        source = layer_of.get(id(pre), "values") if pre is not None else "values"
        groups.append({"source": source, "synapses": int(nnz), "what": f"{conn.pre_obj} -> {post}"})
    for ens in encoded.values():
        groups.append(
            {"source": "values", "synapses": ens.n_neurons * ens.dimensions, "what": f"encoders of {ens}"}
        )
    return groups


def count_neurons(built):
    return int(sum(e.n_neurons for e in built.network.all_ensembles))


def operations_per_inference(built, layer_rates_hz, n_frames, steps_per_frame, dt):
    """Synaptic operations and neuron updates per clip.

    Parameters
    ----------
    layer_rates_hz : dict
        Mean firing rate of each layer (Hz), measured in the spiking run.

    Returns
    -------
    dict
        ``spike_synops`` (spike-driven operations on a spiking device), ``value_synops``
        (operations fed by real values), ``neuron_updates`` (per spiking-device run),
        ``dense_synops`` and ``dense_neuron_updates`` (one ANN pass per frame), and
        ``synapses`` (total count).
    """
    steps = n_frames * steps_per_frame
    spike_ops = value_ops = dense_ops = 0.0
    total = 0
    for group in synapse_groups(built):
        total += group["synapses"]
        dense_ops += group["synapses"] * n_frames
        if group["source"] == "values":
            value_ops += group["synapses"] * steps
        else:
            spike_ops += group["synapses"] * layer_rates_hz.get(group["source"], 0.0) * dt * steps
    neurons = count_neurons(built)
    return {
        "synapses": int(total),
        "spike_synops": float(spike_ops),
        "value_synops": float(value_ops),
        "neuron_updates": float(neurons * steps),
        "dense_synops": float(dense_ops),
        "dense_neuron_updates": float(neurons * n_frames),
    }


def energy_per_inference(ops, devices):
    """Joules per clip on each device (keras-spiking's presets); see the module notes."""
    table = device_table()
    result = {}
    for name in devices:
        key = str(name).lower()
        if key not in table:
            raise ValueError(f"unknown energy device {name!r}; keras-spiking knows {', '.join(sorted(table))}")
        spec = table[key]
        if spec["spiking"]:
            synops = ops["spike_synops"] + ops["value_synops"]
            neurons = ops["neuron_updates"]
        else:
            synops, neurons = ops["dense_synops"], ops["dense_neuron_updates"]
        result[key] = float(spec["energy_per_synop"] * synops + spec["energy_per_neuron"] * neurons)
    return result
