"""NIR exchange: export of trained DVS nets, import of NIR graphs as Nengo networks.

Node mapping against hand-computed neuron traces, channel order and shapes against an
independent numpy reading of NIR's semantics, the exact round trip (network and command
line), and graphs that must be refused with one line naming the node."""

import json
import math
import sys

import nir
import numpy as np
import pytest

from nengo_actions import config as C
from nengo_actions.deploy.nir_export import NIR_DT, export_run, frame_model_graph, write_graph
from nengo_actions.deploy.nir_import import build_nir_network, read_graph
from nengo_actions.engine.simulator import Engine
from nengo_actions.errors import NIRError
from nengo_actions.networks.dvs_direct import build_temporal, convert_temporal, frame_model

from test_dvs_direct import SPIKES, X, _boost, _randomise_batch_norm, model_cfg

SIDE, CLASSES = 16, 4


def _run(built, x):
    engine = Engine.for_inference(built, None, minibatch_size=len(x))
    try:
        return engine.predict(np.asarray(x, np.float32))
    finally:
        engine.close()


@pytest.fixture(scope="module")
def trained():
    """A gesture net with average pooling, PLIF time constants and batch norm, its
    per-frame model, graph and Poisson inputs that make every layer spike."""
    rng = np.random.default_rng(2)
    m = model_cfg(plif=True)
    m = m.replace(dvs_gesture_net=m.dvs_gesture_net.replace(pool="avg"))
    net = build_temporal("dvs_gesture_net", m, n_features=SIDE * SIDE * 2, n_classes=CLASSES, seed=3)
    _randomise_batch_norm(net, rng)
    _boost(net, ["conv1", "fc0", "fc1"], 3.0)
    net.keras_model.get_layer("lif_fc0").w.assign(0.3)  # a trained tau other than the initial one
    x = rng.poisson(2.0, (5, 6, SIDE * SIDE * 2)).astype(np.float32)
    per_frame = frame_model(net.stages, net.frame_shape, net.keras_model, net.conv)
    return net, per_frame, frame_model_graph(per_frame), x


def test_sl_animals_net_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(4)
    net = build_temporal("sl_animals_net", model_cfg(plif=True), n_features=SIDE * SIDE * 2, n_classes=CLASSES, seed=3)
    _boost(net, ["conv0", "conv1", "fc0"], 4.0)
    fc1 = net.keras_model.get_layer("fc1").layer
    fc1.set_weights([fc1.kernel.numpy(), np.full(CLASSES, 2.5, np.float32)])
    x = rng.poisson(2.0, (4, 5, SIDE * SIDE * 2)).astype(np.float32)
    graph = frame_model_graph(frame_model(net.stages, net.frame_shape, net.keras_model, net.conv))
    assert [type(graph.nodes[k]).__name__ for k in ("conv0", "pool0", "fc1")] == ["Conv2d", "AvgPool2d", "Affine"]
    np.testing.assert_array_equal(graph.nodes["conv0"].padding, [0, 0])  # 'valid' convolutions
    path = write_graph(graph, tmp_path / "sl.nir")
    original = _run(convert_temporal(net), x)
    assert original.mean() > 0.05
    imported = build_nir_network(read_graph(path), path, n_features=SIDE * SIDE * 2, n_classes=CLASSES)
    np.testing.assert_array_equal(_run(imported, x), original)


def test_export_then_import_runs_bit_for_bit_as_the_original(trained, tmp_path):
    net, _, graph, x = trained
    original = _run(convert_temporal(net), x)
    assert 0.05 < original.mean() < 0.95  # the outputs spike, and not always
    path = write_graph(graph, tmp_path / "net.nir")
    nir.read(path)  # NIR's own type check accepts the file
    back = read_graph(path)
    assert back.metadata["dt"] == NIR_DT
    imported = build_nir_network(back, path, n_features=SIDE * SIDE * 2, n_classes=CLASSES)
    np.testing.assert_array_equal(_run(imported, x), original)


def test_exported_nodes_carry_the_trained_values_in_nirs_channel_first_order(trained):
    net, per_frame, graph, _ = trained
    nodes = graph.nodes
    assert [type(nodes[k]).__name__ for k in ("input", "conv0", "lif_conv0", "pool0", "flatten", "fc0", "voting", "output")] == [
        "Input", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Affine", "Linear", "Output"]
    np.testing.assert_array_equal(nodes["input"].input_type["input"], [2, SIDE, SIDE])
    kernel, bias = per_frame.get_layer("conv0").get_weights()
    np.testing.assert_array_equal(nodes["conv0"].weight, kernel.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(nodes["conv0"].bias, bias)
    np.testing.assert_array_equal(nodes["conv0"].padding, [1, 1])
    np.testing.assert_array_equal(nodes["pool0"].kernel_size, [2, 2])
    # the learned time constant, written under NIR's dt; threshold and reset per neuron
    tau = 1 / (1 / (1 + math.exp(-0.3)))
    assert nodes["lif_fc0"].tau.shape == (16,)
    np.testing.assert_allclose(nodes["lif_fc0"].tau, tau * NIR_DT, rtol=1e-6)
    np.testing.assert_array_equal(nodes["lif_fc0"].r, 1.0)
    assert nodes["lif_conv1"].tau.shape == (4, SIDE // 2, SIDE // 2)
    votes = nodes["voting"].weight
    assert votes.shape == (CLASSES, CLASSES * 3) and np.allclose(votes.sum(axis=1), 1.0)


def _numpy_nir(graph, frames):
    """An independent reading of the exported graph: NIR semantics in float64 on
    channel-first frames ``(T, 2, H, W)``, forward Euler under the graph's dt."""
    from scipy.signal import correlate

    order = [e[0] for e in graph.edges] + ["output"]
    dt = graph.metadata["dt"]
    state = {}
    outputs = []
    for frame in frames:
        x = frame.astype(np.float64)
        for key in order[1:-1]:
            node = graph.nodes[key]
            if isinstance(node, nir.Conv2d):
                p = int(node.padding[0])
                xp = np.pad(x, ((0, 0), (p, p), (p, p)))
                x = np.stack([sum(correlate(xp[c], w[c], mode="valid") for c in range(len(w))) for w in node.weight])
                x = x + node.bias[:, None, None]
            elif isinstance(node, nir.LIF):
                v = state.get(key, np.zeros_like(x)) + dt / node.tau * (node.v_leak - state.get(key, 0.0) + node.r * x)
                spikes = (v >= node.v_threshold).astype(np.float64)
                state[key] = np.where(spikes > 0, node.v_reset, v)
                x = spikes
            elif isinstance(node, nir.AvgPool2d):
                c, h, w = x.shape
                x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
            elif isinstance(node, nir.Flatten):
                x = x.reshape(-1)
            elif isinstance(node, (nir.Affine, nir.Linear)):
                x = node.weight @ x + (node.bias if isinstance(node, nir.Affine) else 0)
        outputs.append(x)
    return np.array(outputs)


def test_nengo_network_of_the_graph_matches_an_independent_numpy_reading(trained, tmp_path):
    _, _, graph, x = trained
    path = write_graph(graph, tmp_path / "net.nir")
    out = _run(build_nir_network(read_graph(path), path, n_features=SIDE * SIDE * 2, n_classes=CLASSES), x[:3])
    frames = x[:3].reshape(3, 6, SIDE, SIDE, 2).transpose(0, 1, 4, 2, 3)  # channel-first, as NIR
    reference = np.stack([_numpy_nir(graph, clip) for clip in frames])
    # float64 against float32 can flip a spike at the threshold; the channel order or the
    # flatten permutation wrong would change most of them
    assert np.mean(np.isclose(out, reference, atol=1e-5)) > 0.97
    assert np.array_equal(out.sum(axis=1).argmax(-1), reference.sum(axis=1).argmax(-1))


def _single_neuron_graph(neuron):
    """``Input (1,) -> Affine 1 -> neuron -> Linear 1 -> Output``: the neuron's spikes."""
    one = np.ones((1, 1), np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1])}),
        "w": nir.Affine(weight=one, bias=np.zeros(1, np.float32)),
        "n": neuron,
        "read": nir.Linear(weight=one),
        "output": nir.Output(output_type={"output": np.array([1])}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("input", "w"), ("w", "n"), ("n", "read"), ("read", "output")])


def _trace(neuron, inputs):
    graph = _single_neuron_graph(neuron)
    built = build_nir_network(graph, "trace.nir", n_features=1, n_classes=1)
    return _run(built, np.asarray(inputs, np.float32)[None, :, None])[0, :, 0]


def test_nir_lif_follows_the_hand_computed_trace():
    # tau = 2 steps under dt 1e-4, r = 1: v <- v + (x - v) / 2, spike at v >= 1, reset to 0
    lif = nir.LIF(tau=np.array([2e-4]), r=np.array([1.0]), v_leak=np.array([0.0]),
                  v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
    np.testing.assert_array_equal(_trace(lif, X), SPIKES)


def test_nir_if_and_cuba_lif_follow_their_hand_computed_traces():
    # IF with r = 1 / dt (SpikingJelly's export): v <- v + x; 0.5, 1.1 (spike), 0.2, 1.7 (spike), 0, 0.9, 1.8 (spike)
    if_node = nir.IF(r=np.array([1e4]), v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
    np.testing.assert_array_equal(_trace(if_node, [0.5, 0.6, 0.2, 1.5, 0.0, 0.9, 0.9]), [0, 1, 0, 1, 0, 0, 1])
    # CubaLIF, tau_syn = tau_mem = 2 steps, r = w_in = 1: i <- i + (x - i) / 2, v <- v + (i - v) / 2
    # x = 4, 4, 0, 0: i = 2, 3, 1.5, 0.75; v = 1 (spike, 0), 1.5 (spike, 0), 0.75, 0.75
    cuba = nir.CubaLIF(tau_syn=np.array([2e-4]), tau_mem=np.array([2e-4]), r=np.array([1.0]), v_leak=np.array([0.0]),
                       v_threshold=np.array([1.0]), v_reset=np.array([0.0]), w_in=np.array([1.0]))
    np.testing.assert_array_equal(_trace(cuba, [4.0, 4.0, 0.0, 0.0]), [1, 1, 0, 0])


def test_node_keys_that_are_no_layer_names_are_renamed():
    # SpikingJelly's exporter names nodes "_0", "_1", ...; "image" is the model's own layer
    graph = _single_neuron_graph(nir.LIF(tau=np.array([2e-4]), r=np.array([1.0]), v_leak=np.array([0.0]),
                                         v_threshold=np.array([1.0]), v_reset=np.array([0.0])))
    graph = nir.NIRGraph(nodes={"input": graph.nodes["input"], "_0": graph.nodes["w"], "image": graph.nodes["n"],
                                "read": graph.nodes["read"], "output": graph.nodes["output"]},
                         edges=[("input", "_0"), ("_0", "image"), ("image", "read"), ("read", "output")])
    built = build_nir_network(graph, "names.nir", n_features=1, n_classes=1)
    np.testing.assert_array_equal(_run(built, np.asarray(X, np.float32)[None, :, None])[0, :, 0], SPIKES)


def test_per_neuron_parameters_and_sum_pooling_are_built():
    # two neurons with their own thresholds, after a 2x2 sum pool of a (1, 2, 4) map
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 2, 4])}),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([1, 1, 2])}, start_dim=0),
        "lif": nir.LIF(tau=np.array([1e-4, 1e-4]), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.array([3.0, 5.0]),
                       v_reset=np.zeros(2)),
        "read": nir.Linear(weight=np.eye(2, dtype=np.float32)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "pool"), ("pool", "flat"), ("flat", "lif"), ("lif", "read"), ("read", "output")]
    built = build_nir_network(nir.NIRGraph(nodes=nodes, edges=edges), "pool.nir", n_features=8, n_classes=2)
    frame = np.array([[1, 1, 1, 1], [1, 1, 1, 1]], np.float32)  # (H=2, W=4), one channel: sums 4 and 4
    out = _run(built, frame.reshape(1, 1, 8))
    np.testing.assert_array_equal(out[0, 0], [1, 0])  # tau of one step: v = input


def _graph(**changes):
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Affine(weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32)),
        "lif": nir.LIF(tau=np.full(2, 2e-4), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    nodes.update(changes.pop("nodes", {}))
    return nir.NIRGraph(nodes=nodes, edges=changes.pop("edges", edges), type_check=False)


@pytest.mark.parametrize("graph, match", [
    (_graph(nodes={"lif": nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2))}), "node 'lif' is a LI"),
    (_graph(edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc"), ("lif", "output")]), "node 'fc' is on a cycle"),
    (_graph(edges=[("input", "fc"), ("fc", "lif"), ("lif", "out")]), r"edge \('lif', 'out'\)"),
    (_graph(nodes={"fc": nir.Affine(weight=np.ones((2, 5), np.float32), bias=np.zeros(2))}), r"node 'fc': weight \(2, 5\)"),
    (_graph(nodes={"lif": nir.LIF(tau=np.full(3, 2e-4), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                                  v_reset=np.zeros(3))}), "node 'lif': tau of shape"),
    (_graph(nodes={"lif": nir.LIF(tau=np.zeros(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2),
                                  v_reset=np.zeros(2))}), "node 'lif': time constants"),
    (_graph(edges=[("input", "fc"), ("fc", "output"), ("fc", "lif")]), "node 'lif' leads nowhere"),
])
def test_a_graph_that_cannot_be_built_is_refused_naming_the_node(graph, match):
    with pytest.raises(NIRError, match=match):
        build_nir_network(graph, "bad.nir", n_features=3, n_classes=2)


def test_files_and_shapes_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(NIRError, match="NIR file not found"):
        read_graph(tmp_path / "missing.nir")
    (tmp_path / "junk.nir").write_bytes(b"\x89HDF\r\n\x1a\n not really")
    with pytest.raises(NIRError, match="junk.nir: not a readable NIR file"):
        read_graph(tmp_path / "junk.nir")
    good = write_graph(_graph(), tmp_path / "good.nir")
    with pytest.raises(NIRError, match="takes inputs of shape"):
        build_nir_network(read_graph(good), good, n_features=4, n_classes=2)
    with pytest.raises(NIRError, match="2 outputs, the data 3 classes"):
        build_nir_network(read_graph(good), good, n_features=3, n_classes=3)


def test_max_pooling_is_refused_naming_the_layer_and_the_setting():
    m = model_cfg()
    net = build_temporal("dvs_gesture_net", m, n_features=SIDE * SIDE * 2, n_classes=CLASSES)
    per_frame = frame_model(net.stages, net.frame_shape, net.keras_model, net.conv)
    with pytest.raises(NIRError, match=r"layer pool0 is max pooling.*pool: \"avg\""):
        frame_model_graph(per_frame)


def _train(tmp_path, *overrides):
    from nengo_actions.train import main

    cfg = ["-c", str(C.PROJECT_ROOT / "configs" / "dvs_synthetic.json")]
    sets = [f"data.root={tmp_path / 'dvs'}", "events.synthetic.n_users=6", "events.synthetic.test_users=2",
            "events.synthetic.n_classes=3", "events.synthetic.repeats=2", "events.synthetic.sensor_size=16",
            "events.frames.n_frames=4", "data.val_fraction=0.25", f"save_dir={tmp_path / 'runs'}",
            "model.dvs_gesture_net.pool=avg", "model.dvs_gesture_net.channels=4", "model.dvs_gesture_net.dense=16",
            "model.dvs_conv.method=direct", "train.standardize=false", "train.epochs=1", "train.tensorboard=false", "evaluate.steps_per_frame=[1]",
            "evaluate.spiking_steps_per_frame=1", *overrides]
    return cfg + [a for s in sets for a in ("--set", s)], main


def test_export_command_and_train_nir_reproduce_the_run_exactly(tmp_path, capsys):
    from nengo_actions.deploy.export import main as export_main

    args, train_main = _train(tmp_path)
    assert train_main(args) == 0
    run = C.Path(capsys.readouterr().out.strip().splitlines()[-1][len("run directory: "):])
    assert export_main([str(run), "--out", str(tmp_path / "net.nir")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {tmp_path / 'net.nir'}"
    assert train_main(args + ["--nir", str(tmp_path / "net.nir")]) == 0
    again = C.Path(capsys.readouterr().out.strip().splitlines()[-1][len("run directory: "):])
    original = json.loads((run / "metrics.json").read_text())
    imported = json.loads((again / "metrics.json").read_text())
    assert imported["model_type"] == "nir" and imported["epochs_run"] == 0
    assert imported["spiking_test_clip_accuracy"] == original["spiking_test_clip_accuracy"]
    assert imported["spiking_test_step_accuracy"] == original["spiking_test_step_accuracy"]
    assert (again / "nir" / "result.json").exists() and (again / "report.md").exists()
    # a standardised run cannot be exported: the graph takes raw counts
    with pytest.raises(NIRError, match="train.standardize"):
        cfg = json.loads((run / "config.json").read_text())
        cfg["train"]["standardize"] = True
        (run / "config.json").write_text(json.dumps(cfg))
        export_run(run)


def test_export_of_a_missing_run_exits_2_with_one_line(tmp_path, capsys):
    from nengo_actions.deploy.export import main as export_main

    with pytest.raises(SystemExit) as e:
        export_main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.nir")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a run folder" in err[0]
    assert not (tmp_path / "x.nir").exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
