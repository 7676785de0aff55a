"""Native NengoDL builders for AdaptiveLIF, AdaptiveLIFRate and Izhikevich.

Reference: ``nengo.Simulator`` running the same network (Nengo 3.2's numpy step
functions). In float64 the NengoDL simulation must match it to rounding; in NengoDL's
default float32 every neuron's spike count must be within one spike of the reference.
"""

import warnings

import nengo
import numpy as np
import pytest
from nengo.builder.neurons import SimNeurons

from nengo_actions.neurons import tf_builders as neurons
from nengo_actions.compat import nengo_dl, tf

FALLBACK_MESSAGE = "does not have a native TensorFlow implementation"

# adaptation stronger and faster than Nengo's defaults (tau_n=1, inc_n=0.01), so that it
# visibly changes the output within the short runs below
NEURON_TYPES = {
    "AdaptiveLIF": lambda: nengo.AdaptiveLIF(tau_n=0.1, inc_n=0.05),
    "AdaptiveLIFRate": lambda: nengo.AdaptiveLIFRate(tau_n=0.1, inc_n=0.05),
    "Izhikevich": lambda: nengo.Izhikevich(),
}
BUILDER_OF = {
    "AdaptiveLIF": neurons.AdaptiveLIFBuilder,
    "AdaptiveLIFRate": neurons.AdaptiveLIFRateBuilder,
    "Izhikevich": neurons.IzhikevichBuilder,
}
DRIVES = (0.7, -0.4)  # ensemble input per minibatch item; both make some neurons fire


def driven_ensemble(neuron_type, drive, dtype="float64", n_neurons=30, seed=3):
    """An ensemble driven by a constant scalar; probes on its output and states."""
    with nengo.Network(seed=seed) as net:
        nengo_dl.configure_settings(dtype=dtype)
        net.drive = nengo.Node([drive])
        net.ens = nengo.Ensemble(n_neurons, 1, neuron_type=neuron_type)
        nengo.Connection(net.drive, net.ens, synapse=None)
        net.watch = {"output": nengo.Probe(net.ens.neurons)}
        for state in neuron_type.state:
            net.watch[state] = nengo.Probe(net.ens.neurons, state)
    return net


def reference(neuron_type, drive, n_steps, dt):
    net = driven_ensemble(neuron_type, drive)
    with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
        sim.run_steps(n_steps)
    return {name: sim.data[p] for name, p in net.watch.items()}


def native_simulator(net, **kwargs):
    """A NengoDL simulator; fails if any neuron group fell back to Python."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = nengo_dl.Simulator(net, progress_bar=False, **kwargs)
    fallback = [str(w.message) for w in caught if FALLBACK_MESSAGE in str(w.message)]
    assert not fallback, fallback
    return sim


def neuron_builders(sim):
    graph = sim.tensor_graph
    return [
        graph.op_builder.op_builds[ops].built_neurons
        for ops in graph.plan
        if isinstance(ops[0], SimNeurons)
    ]


def run_batched(name, dtype, n_steps, dt):
    """Run the ensemble in NengoDL with one minibatch item per drive."""
    net = driven_ensemble(NEURON_TYPES[name](), DRIVES[0], dtype=dtype)
    data = np.array(DRIVES)[:, None, None] * np.ones((1, n_steps, 1))
    with native_simulator(net, dt=dt, minibatch_size=len(DRIVES)) as sim:
        builders = neuron_builders(sim)
        sim.run_steps(n_steps, data={net.drive: data})
        return builders, {k: sim.data[p] for k, p in net.watch.items()}


@pytest.mark.parametrize("dt", (0.001, 0.0005))
@pytest.mark.parametrize("name", sorted(NEURON_TYPES))
def test_float64_matches_nengo(name, dt):
    n_steps = 300
    builders, ours = run_batched(name, "float64", n_steps, dt)
    assert [type(b) for b in builders] == [BUILDER_OF[name]]

    for batch, drive in enumerate(DRIVES):
        ref = reference(NEURON_TYPES[name](), drive, n_steps, dt)
        for key, expected in ref.items():
            assert ours[key][batch].shape == expected.shape == (n_steps, 30)
            np.testing.assert_allclose(
                ours[key][batch], expected, rtol=1e-6, atol=1e-6, err_msg=key
            )
        # the comparison is only meaningful if neurons fire (and adapt)
        assert (ref["output"].sum(axis=0) > 0).sum() >= 5
        if "adaptation" in ref:
            assert ref["adaptation"][-1].max() > 0.5


@pytest.mark.parametrize("name", sorted(NEURON_TYPES))
def test_float32_counts_match_nengo(name):
    n_steps, dt = 500, 0.001
    _, ours = run_batched(name, "float32", n_steps, dt)
    for batch, drive in enumerate(DRIVES):
        ref = reference(NEURON_TYPES[name](), drive, n_steps, dt)
        ours_total = ours["output"][batch].sum(axis=0) * dt  # spikes (or rate * s)
        ref_total = ref["output"].sum(axis=0) * dt
        if NEURON_TYPES[name]().spiking:
            # float32 rounding may move a spike across a step boundary
            assert np.abs(ours_total - ref_total).max() <= 1.0
            assert abs(ours_total.sum() - ref_total.sum()) <= 0.005 * ref_total.sum()
        else:
            np.testing.assert_allclose(ours_total, ref_total, rtol=1e-4, atol=1e-3)


def test_fallback_is_detected_and_register_restores():
    net = driven_ensemble(nengo.AdaptiveLIF(), 0.5)
    neurons.unregister()
    try:
        assert not neurons.is_registered()
        with pytest.warns(UserWarning, match=FALLBACK_MESSAGE):
            with nengo_dl.Simulator(net, progress_bar=False) as sim:
                assert type(neuron_builders(sim)[0]).__name__ == "GenericNeuronBuilder"
    finally:
        neurons.register()
    neurons.register()  # idempotent
    assert neurons.is_registered()
    with native_simulator(net) as sim:
        assert type(neuron_builders(sim)[0]) is neurons.AdaptiveLIFBuilder


def test_rate_wrapper_uses_native_base():
    neuron_type = nengo.RegularSpiking(nengo.AdaptiveLIFRate(tau_n=0.1, inc_n=0.05))
    net = driven_ensemble(neuron_type, 0.7)
    with native_simulator(net) as sim:
        assert neurons.AdaptiveLIFRateBuilder in map(type, neuron_builders(sim))
        sim.run_steps(200)
        ours = sim.data[net.watch["output"]]
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    np.testing.assert_allclose(ours, ref.data[net.watch["output"]], atol=1e-6)


def training_outputs(net, n_steps):
    """Probe output of a NengoDL simulator in its training (rate) mode."""
    with native_simulator(net) as sim:
        inputs = [
            tf.constant(np.full((1, n_steps, 1), net.drive.output[0])),
            tf.constant([[n_steps]]),
        ]
        return sim.tensor_graph(inputs, training=True)[0].numpy()[0]


def test_adaptive_lif_trains_as_adaptive_lif_rate():
    kwargs = dict(tau_n=0.1, inc_n=0.05, amplitude=0.5)
    n_steps = 200
    rates = training_outputs(driven_ensemble(nengo.AdaptiveLIF(**kwargs), 0.7), n_steps)
    expected = reference(nengo.AdaptiveLIFRate(**kwargs), 0.7, n_steps, 0.001)["output"]
    np.testing.assert_allclose(rates, expected, rtol=1e-9, atol=1e-9)
    # adaptation is part of the training dynamics: the rates fall over time
    active = expected[0] > 0
    assert active.sum() >= 5
    assert np.all(rates[-1][active] < rates[0][active])
    assert rates[-1][active].mean() < 0.8 * rates[0][active].mean()


def test_izhikevich_trains_on_its_spiking_rate():
    dt, n_steps = 0.001, 1200
    net = driven_ensemble(nengo.Izhikevich(), 0.7)
    rates = training_outputs(net, 1)[0]

    with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
        sim.run_steps(n_steps)
    # mean rate after the initial transient
    spiking = sim.data[net.watch["output"]][200:].mean(axis=0)
    assert spiking.max() > 100
    np.testing.assert_allclose(rates, spiking, rtol=0.03, atol=2.0)


def test_izhikevich_rate_curve_matches_nengo_rates():
    current0, spacing, rates = neurons.izhikevich_rate_curve()
    grid = current0 + spacing * np.arange(rates.size)
    assert current0 == -30.0 and rates[0] == 0 and rates[-1] == 1000.0
    assert np.all(np.diff(rates) >= 0)
    currents = np.array([3.0, 10.0, 50.0, 120.0, 250.0])
    state = {k: np.zeros(currents.size) for k in ("output", "voltage", "recovery")}
    expected = nengo.neurons.settled_firingrate(
        nengo.Izhikevich().step, currents, state, settle_time=0.2, sim_time=2.0
    )
    np.testing.assert_allclose(np.interp(currents, grid, rates), expected, atol=2.0)


@pytest.mark.parametrize("name", sorted(NEURON_TYPES))
def test_fit_trains_through_the_neurons(name):
    """Only the input weights train, so the loss falls only if gradients flow."""
    rng = np.random.RandomState(0)
    n_neurons = 40
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(stateful=False, trainable=None)
        inp = nengo.Node(np.zeros(2))
        ens = nengo.Ensemble(n_neurons, 1, neuron_type=NEURON_TYPES[name]())
        out = nengo.Node(size_in=1)
        nengo.Connection(
            inp, ens.neurons, transform=nengo_dl.dists.Glorot(), synapse=None
        )
        readout = nengo.Connection(
            ens.neurons,
            out,
            transform=rng.uniform(-1, 1, (1, n_neurons)) / (10 * n_neurons),
            synapse=None,
        )
        net.config[readout].trainable = False
        net.config[ens].trainable = False
        probe = nengo.Probe(out)

    x = rng.uniform(-1, 1, (64, 1, 2))
    y = np.sin(2 * x[..., :1]) * x[..., 1:]
    with native_simulator(net, minibatch_size=64) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(0.05), loss="mse")
        loss = sim.fit({inp: x}, {probe: y}, epochs=25, verbose=0).history["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.5 * loss[0], loss


def test_merged_groups_with_different_parameters():
    """Ensembles of one type with different parameters share one builder."""
    types = [
        nengo.AdaptiveLIF(tau_n=0.1, inc_n=0.05),
        nengo.AdaptiveLIF(tau_n=0.3, inc_n=0.1, tau_rc=0.03, amplitude=0.5),
        nengo.Izhikevich(),
        nengo.Izhikevich(tau_recovery=0.1),  # "fast spiking"
    ]
    n_steps = 300
    with nengo.Network(seed=5) as net:
        nengo_dl.configure_settings(dtype="float64")
        net.drive = nengo.Node([0.7])
        probes = []
        for neuron_type in types:
            ens = nengo.Ensemble(20, 1, neuron_type=neuron_type)
            nengo.Connection(net.drive, ens, synapse=None)
            probes.append(nengo.Probe(ens.neurons))
        fast = ens  # the fast-spiking Izhikevich ensemble

    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(n_steps)
    with native_simulator(net) as sim:
        builders = neuron_builders(sim)
        assert sorted(type(b).__name__ for b in builders) == [
            "AdaptiveLIFBuilder",
            "IzhikevichBuilder",
        ]
        assert all(len(b.ops) == 2 for b in builders)
        sim.run_steps(n_steps)
        for p in probes:
            np.testing.assert_allclose(sim.data[p], ref.data[p], atol=1e-6)
            assert sim.data[p].sum() > 0

        inputs = [tf.constant(np.full((1, 1, 1), 0.7)), tf.constant([[1]])]
        rates = sim.tensor_graph(inputs, training=True)[3].numpy()[0, 0]

    # the fast-spiking ensemble trains on its own curve, not the regular-spiking one
    current = 0.7 * ref.data[fast].scaled_encoders[:, 0] + ref.data[fast].bias
    current0, spacing, curve = neurons.izhikevich_rate_curve(tau_recovery=0.1)
    grid = current0 + spacing * np.arange(curve.size)
    np.testing.assert_allclose(rates, np.interp(current, grid, curve), atol=1e-6)
    regular = neurons.izhikevich_rate_curve()
    regular_rates = np.interp(
        current, regular[0] + regular[1] * np.arange(regular[2].size), regular[2]
    )
    assert np.abs(rates - regular_rates).max() > 5


def test_the_engine_registers_the_native_builders():
    """A fresh process that only imports the engine (as the train command does) uses
    the native builders, not NengoDL's Python fallback."""
    import subprocess
    import sys

    code = (
        "import nengo, nengo_actions.engine.simulator\n"
        "from nengo_dl.neuron_builders import SimNeuronsBuilder as B\n"
        "print(sorted(t.__name__ for t in (nengo.AdaptiveLIF, nengo.AdaptiveLIFRate, nengo.Izhikevich)"
        " if B.TF_NEURON_IMPL.get(t, None) is not None and B.TF_NEURON_IMPL[t].__module__ == 'nengo_actions.neurons.tf_builders'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['AdaptiveLIF', 'AdaptiveLIFRate', 'Izhikevich']"
