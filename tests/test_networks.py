"""The network builders against independent references, and each one learning."""

import functools

import nengo
import numpy as np
import pytest

from nengo_actions import config as C
from nengo_actions.config import schema
from nengo_actions.compat import nengo_dl, tf  # noqa: F401  (the shim before nengo_dl users)
from nengo_actions.networks import build_model, frames_to_synapse, neuron_type_from_config
from nengo_actions.networks.ensemble_array import EnsembleArrayClassifier, solve_decoders
from nengo_actions.networks.lmu import lmu_matrices


def small_model_cfg(**lmu):
    small = {
        "ensemble_array.n_ensembles": 24, "ensemble_array.n_neurons": 10,
        "lmu.order": 4, "lmu.units": 24, "lmu.memory_d": 2, "lmu.hidden_to_hidden": False,
        **{f"lmu.{k}": v for k, v in lmu.items()},
        "lmu_spiking.memory_neurons_per_dim": 4,
        "keras_lmu.order": 4, "keras_lmu.units": 24, "keras_lmu.memory_d": 2, "keras_lmu.hidden": "dense",
    }
    return C.override(C.load_config(C.DEFAULT_CONFIG).model, small, "small_model_cfg")


@pytest.mark.parametrize("order,theta", [(1, 5.0), (4, 12.0), (6, 28.0)])
def test_lmu_matrices_match_keras_lmu(order, theta):
    import keras_lmu

    cell = keras_lmu.LMUCell(memory_d=1, order=order, theta=theta, hidden_cell=None)
    cell.build((None, 3))
    A, B = lmu_matrices(order, theta)
    np.testing.assert_allclose(A, cell.A.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(B, cell.B.numpy().T, rtol=1e-5, atol=1e-6)


def test_ensemble_array_decoders_are_nengo_lstsq_l2():
    clf = EnsembleArrayClassifier(3, 2, n_ensembles=5, n_neurons=20, eval_points=300, seed=1)
    x = clf.eval_points[:, None]
    for g in range(5):
        sl = slice(20 * g, 20 * (g + 1))
        rates = nengo.SpikingRectifiedLinear().rates(x * clf.encoders[sl], clf.gain[sl], clf.bias[sl])
        decoders, _ = nengo.solvers.LstsqL2()(rates, x)
        np.testing.assert_allclose(clf.decoders[sl], decoders[:, 0], rtol=1e-6, atol=1e-9)


def test_flat_ensemble_array_computes_what_nengo_ensemble_array_computes():
    """Same tuning in both; Nengo's reference simulator runs each."""
    n_ens, n_neurons = 4, 30
    neuron_type = nengo.RectifiedLinear(amplitude=1 / 400)
    value = np.array([-0.7, -0.2, 0.3, 0.8])
    with nengo.Network(seed=3) as net:
        clf = EnsembleArrayClassifier(
            n_ens, 3, n_ensembles=n_ens, n_neurons=n_neurons, neuron_type=neuron_type,
            eval_points=200, seed=5,
        )
        # identity input projection, so each ensemble represents one entry of `value`
        stim = nengo.Node(value)
        nengo.Connection(stim, clf.ensemble_input, synapse=None)
        ref = nengo.networks.EnsembleArray(n_neurons, n_ens, neuron_type=neuron_type)
        for g, ens in enumerate(ref.ea_ensembles):
            sl = slice(n_neurons * g, n_neurons * (g + 1))
            ens.gain, ens.bias = clf.gain[sl], clf.bias[sl]
            ens.encoders = clf.encoders[sl, None]
            ens.eval_points = clf.eval_points[:, None]
        nengo.Connection(stim, ref.input, synapse=None)
        p_flat = nengo.Probe(clf.ensemble_output, synapse=None)
        p_ref = nengo.Probe(ref.output, synapse=None)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(5)
    np.testing.assert_allclose(sim.data[p_flat][-1], sim.data[p_ref][-1], atol=1e-6)
    np.testing.assert_allclose(sim.data[p_flat][-1], value, atol=0.05)


@pytest.mark.parametrize("memory_tau", [0.0, 2.0])
@pytest.mark.parametrize("steps_per_frame", [1, 3])
def test_rate_spiking_lmu_memory_is_the_exact_lmu(memory_tau, steps_per_frame):
    """The memory ensemble of the spiking LMU with rate neurons, run in Nengo's reference
    simulator, holds the LMU state m[t] = A m[t-1] + B u[t] (delayed by one step when the
    state is held in a low-pass synapse)."""
    m = C.override(small_model_cfg(), {"lmu_spiking.memory_tau": memory_tau}, "test")
    n_frames = 10
    built = build_model("lmu_spiking", m, 5, 3, n_frames, spiking=False, steps_per_frame=steps_per_frame)
    lmu = built.lmu
    x = np.random.RandomState(0).randn(n_frames * steps_per_frame, 5)
    with built.network:
        built.input.output = nengo.processes.PresentInput(x, presentation_time=built.dt)
        p_u = nengo.Probe(lmu.u, synapse=None)
        p_neurons = nengo.Probe(lmu.memory_ensemble.neurons, synapse=None)
    with nengo.Simulator(built.network, dt=built.dt, progress_bar=False) as sim:
        sim.run_steps(len(x))
    u = sim.data[p_u]
    memory = sim.data[p_neurons] @ lmu._memory_solver.values  # analytic decoders
    A, B = lmu_matrices(4, n_frames * steps_per_frame)
    A, B = np.kron(np.eye(2), A), np.kron(np.eye(2), B)
    state, expected = np.zeros(8), []
    for t in range(len(u)):
        state = A @ state + B @ u[t]
        expected.append(state)
    expected = np.asarray(expected)
    # u reaches the state at once through synapse=None, one step later through a low-pass
    shift = 1 if memory_tau else 0
    np.testing.assert_allclose(memory[shift:], expected[: len(u) - shift], atol=1e-5 * np.abs(expected).max() + 1e-6)


def test_layer_rate_probe_reads_the_mean_rate_in_both_simulators():
    from nengo_actions.networks import BuiltNetwork, add_layer_probes

    amplitude, rates = 0.01, np.array([[0.0, 50.0, 100.0, 10.0], [20.0, 0.0, 0.0, 300.0]])
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(nengo.processes.PresentInput(rates, 0.001))
        ens = nengo.Ensemble(4, 1, neuron_type=nengo.RectifiedLinear(amplitude=amplitude), gain=np.ones(4), bias=np.zeros(4))
        nengo.Connection(inp, ens.neurons, synapse=None)
        out = nengo.Probe(ens.neurons, synapse=None)
    built = BuiltNetwork(network=net, input=inp, output=out, n_classes=4)
    layer = add_layer_probes(built, "ens", ens, raster_neurons=2)
    expected = rates.mean(axis=1, keepdims=True)  # Hz: the outputs over the amplitude
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(2)
    np.testing.assert_allclose(sim.data[layer.rate_probe], expected, rtol=1e-6)
    with nengo_dl.Simulator(net, minibatch_size=1, progress_bar=False) as sim:
        sim.run_steps(2)
    np.testing.assert_allclose(sim.data[layer.rate_probe][0], expected, rtol=1e-5)  # minibatch item 0
    np.testing.assert_allclose(sim.data[layer.raster_probe][0], rates[:, :2] * amplitude, rtol=1e-5)


def test_neuron_type_amplitude_is_set_unless_given():
    assert neuron_type_from_config("SpikingRectifiedLinear", 0.01).amplitude == 0.01
    assert neuron_type_from_config("SpikingRectifiedLinear(amplitude=0.5)", 0.01).amplitude == 0.5
    assert neuron_type_from_config("LIF", 0.02).amplitude == 0.02
    assert frames_to_synapse(None) is None and frames_to_synapse(0) is None
    assert frames_to_synapse(2, steps_per_frame=4, dt=0.001).tau == pytest.approx(0.008)


@pytest.mark.parametrize("model_type", ["ensemble_array", "lmu", "lmu_spiking"])
def test_a_spiking_rebuild_has_the_signature_of_the_rate_network_it_was_trained_as(model_type):
    m = small_model_cfg()
    rate = build_model(model_type, m, 5, 3, 6, spiking=False)
    spiking = build_model(model_type, m, 5, 3, 6, spiking=True, steps_per_frame=4, dt=0.002, raster_neurons=0)
    assert spiking.signature == rate.signature
    assert rate.signature["model"] == model_type and rate.signature["n_features"] == 5
    for name in ("ensemble_array",) if model_type == "ensemble_array" else ("lmu", "lmu_spiking"):
        assert rate.signature[name] == C.get(m, name).to_dict()  # the sections' settings, as JSON values


# ---------------------------------------------------------------------------------------
# Each builder learns a small task above chance


@pytest.fixture(scope="module")
def ring_data(tmp_path_factory):
    from clip_stores import make_ring_store
    from nengo_actions.clips.feature_data import load_clip_data

    folder = tmp_path_factory.mktemp("ring")
    make_ring_store(folder, n_classes=4, n_groups=8, clips_per_group=3, n_frames=10, n_features=16,
                    test_groups=(1, 2), noise=0.15, class_offset=0.4)
    cfg = C.load_config(C.DEFAULT_CONFIG, [f"features.store_dir={folder}", "data.val_fraction=0.2"])
    return load_clip_data(cfg)


def train_and_test(model_type, m, data, tmp_path, epochs=15, lr=0.01, loss_steps=3, spiking_k=None):
    from nengo_actions.engine.simulator import Engine
    from nengo_actions.engine.training import train
    from nengo_actions.clips.metrics import evaluate_outputs

    build = functools.partial(build_model, model_type, m, data.n_features, data.n_classes, data.n_frames)
    settings = schema.TrainConfig(epochs=epochs, learning_rate=lr, loss_steps=loss_steps,
                                  initial_accuracy=False, tensorboard=False)
    ev = schema.EvaluateConfig()
    engine = Engine(build(spiking=False), minibatch_size=12)
    result = train(engine, data.x_train, data.y_train, data.x_val, data.y_val, settings, ev, tmp_path, log=lambda s: None)
    engine.load_params(result.params_path)
    rate = evaluate_outputs(engine.predict(data.x_test), data.y_test, data.n_classes)["clip_accuracy"]
    engine.close()
    spiking = None
    if spiking_k:
        spk = Engine(build(spiking=True, steps_per_frame=spiking_k), minibatch_size=12)
        spk.load_params(result.params_path)
        spiking = evaluate_outputs(spk.predict(data.x_test), data.y_test, data.n_classes)["clip_accuracy"]
        spk.close()
    return rate, spiking


def test_lmu_learns(ring_data, tmp_path):
    rate, _ = train_and_test("lmu", small_model_cfg(), ring_data, tmp_path)
    assert rate >= 0.75, rate  # chance 0.25


def test_spiking_lmu_learns_and_keeps_its_accuracy_with_spikes(ring_data, tmp_path):
    m = C.override(small_model_cfg(), {"lmu_spiking.memory_neurons_per_dim": 8, "lmu_spiking.rate": 400.0}, "test")
    rate, spiking = train_and_test("lmu_spiking", m, ring_data, tmp_path, spiking_k=4)
    # Chance is 0.25. The small spiking LMU trains a full weight matrix from its 128
    # memory neurons, so it overfits these 72 training clips more than the rate LMU.
    assert rate >= 0.6, rate
    assert spiking >= rate - 0.1, (rate, spiking)


def test_ensemble_array_learns(ring_data, tmp_path):
    rate, spiking = train_and_test("ensemble_array", small_model_cfg(), ring_data, tmp_path, loss_steps=0, spiking_k=4)
    assert rate >= 0.6, rate
    assert spiking >= 0.5, spiking


def test_keras_lmu_learns(ring_data, tmp_path):
    rate, _ = train_and_test("keras_lmu", small_model_cfg(), ring_data, tmp_path)
    assert rate >= 0.6, rate


def test_constant_inputs_fold_into_neuron_biases_and_outputs_stay_the_same():
    from nengo_actions.networks.constant_inputs import fold_constant_inputs
    from nengo_actions.networks.tensor_nodes import ChannelBroadcast

    def network():
        rng = np.random.default_rng(0)
        with nengo.Network(seed=1) as net:
            x = nengo.Node(lambda t: [np.sin(9 * t), np.cos(5 * t), 0.5, -0.2])
            one = nengo.Node([1.0])
            relay = nengo.Node(size_in=2)
            nengo.Connection(one, relay, transform=[[0.3], [-0.7]], synapse=None)
            broadcast = ChannelBroadcast(2, 2)
            nengo.Connection(relay, broadcast, synapse=None)
            layer = nengo.Node(size_in=4)  # conv-like: input plus per-channel bias
            nengo.Connection(x, layer, synapse=None)
            nengo.Connection(broadcast, layer, synapse=None)
            ens = nengo.Ensemble(4, 1, neuron_type=nengo.RectifiedLinear(), gain=rng.uniform(1, 3, 4), bias=rng.uniform(-1, 1, 4))
            nengo.Connection(layer, ens.neurons, synapse=None)
            direct = nengo.Ensemble(3, 1, neuron_type=nengo.RectifiedLinear(), gain=np.full(3, 2.0), bias=np.zeros(3))
            nengo.Connection(x[:3], direct.neurons, synapse=None)
            nengo.Connection(one, direct.neurons, transform=[[1.0], [0.5], [0.0]], synapse=None)
            kept = nengo.Node(size_in=1)  # probed: its constant input must stay
            nengo.Connection(one, kept, transform=2.0, synapse=None)
            probes = [nengo.Probe(ens.neurons), nengo.Probe(direct.neurons), nengo.Probe(kept)]
        return net, ens, direct, probes

    def run(net, probes):
        with nengo.Simulator(net, progress_bar=False) as sim:
            sim.run_steps(20)
        return [sim.data[p] for p in probes]

    net, ens, direct, probes = network()
    expected = run(net, probes)
    bias_before = ens.bias.copy()
    assert fold_constant_inputs(net) == 2
    np.testing.assert_allclose(ens.bias - bias_before, ens.gain * np.array([0.3, -0.7, 0.3, -0.7]))
    np.testing.assert_allclose(direct.bias, [2.0, 1.0, 0.0])
    assert not [n for n in net.all_nodes if isinstance(n, ChannelBroadcast)]
    assert len(net.all_nodes) == 4  # x, one (still read by `kept`), layer, kept
    for got, want in zip(run(net, probes), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
