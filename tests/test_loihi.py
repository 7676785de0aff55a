"""The Loihi runner (nengo_actions.deploy.loihi) against a numpy reference of NIR's steps.

The reference below is written from NIR's definitions alone: per step, forward Euler
``v <- v + (r*I + v_leak - v) * dt / tau`` (LIF) or ``v <- v + dt*r*I`` (IF), a spike of
1 when ``v >= v_threshold``, reset to 0; AvgPool2d on the spikes; Flatten in C order.
"""

import json
import sys
from pathlib import Path
import warnings

import numpy as np
import pytest

from nengo_actions import compat  # noqa: F401 -- NengoDL shimmed before nengo-loihi imports it

pytest.importorskip("nengo_loihi")
nir = pytest.importorskip("nir")

from nengo_actions.deploy import loihi  # noqa: E402
from nengo_actions.errors import DataError, NIRError, UserError  # noqa: E402

DT = 1e-4
POOL = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))


def lif(shape, tau=2, r=1.0, vth=1.0, leak=0.0):
    return nir.LIF(tau=np.full(shape, tau * DT), r=np.full(shape, r), v_leak=np.full(shape, leak),
                   v_threshold=np.full(shape, vth), v_reset=np.zeros(shape))


def tiny_graph(seed=0):
    """(2, 8, 8) -> conv 4 -> LIF -> pool -> conv 4 -> LIF(tau 4, r 0.8, vth 1.5) -> pool ->
    flatten -> affine 20 -> LIF(v_leak 0.1) -> affine 10 -> LIF -> voting Linear to 2."""
    rng = np.random.RandomState(seed)
    nodes = [
        nir.Input(np.array([2, 8, 8])),
        nir.Conv2d((8, 8), rng.randn(4, 2, 3, 3) * 1.2, 1, 1, 1, 1, rng.randn(4) * 0.3), lif((4, 8, 8)), nir.AvgPool2d(**POOL),
        nir.Conv2d((4, 4), rng.randn(4, 4, 3, 3) * 1.8, 1, 1, 1, 1, rng.randn(4) * 0.3), lif((4, 4, 4), tau=4, r=0.8, vth=1.5), nir.AvgPool2d(**POOL),
        nir.Flatten(np.array([4, 2, 2]), start_dim=0),
        nir.Affine(rng.randn(20, 16) * 1.5, rng.randn(20) * 0.3), lif((20,), leak=0.1),
        nir.Affine(rng.randn(10, 20) * 1.2, rng.randn(10) * 0.3), lif((10,)),
        nir.Linear(np.kron(np.eye(2), np.full((1, 5), 0.2))),
    ]
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def conv2d(x, w, b, stride=1, pad=1):
    """Cross-correlation as torch/NIR do it: x (C, H, W), w (O, C, kh, kw)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((w.shape[0], oh, ow))
    for a in range(kh):
        for c in range(kw):
            patch = x[:, a : a + stride * oh : stride, c : c + stride * ow : stride]
            out += np.einsum("oc,chw->ohw", w[:, :, a, c], patch)
    return out + np.asarray(b).reshape(-1, 1, 1)


def avgpool(s):
    c, h, w = s.shape
    return s.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))


def reference(graph, x, steps_per_frame=1):
    """Per-frame readout and mean spikes per clip of each neuron layer, from the graph's
    nodes in order (a chain), x (clips, T, H*W*C) channels-last."""
    order = [k for k in graph.nodes if k not in ("input", "output")]
    c, h, w = graph.nodes["input"].input_type["input"]
    outs, counts = [], {k: 0.0 for k in order if isinstance(graph.nodes[k], (nir.LIF, nir.IF))}
    for clip in x:
        v, frames = {k: 0.0 for k in counts}, []
        for frame in clip:
            acc = 0.0
            for _ in range(steps_per_frame):
                a = frame.reshape(h, w, c).transpose(2, 0, 1)
                for k in order:
                    n = graph.nodes[k]
                    if isinstance(n, nir.Conv2d):
                        a = conv2d(a, n.weight, n.bias, n.stride[0], n.padding[0])
                    elif isinstance(n, nir.AvgPool2d):
                        a = avgpool(a)
                    elif isinstance(n, nir.Flatten):
                        a = a.reshape(-1)
                    elif isinstance(n, nir.Affine):
                        a = n.weight @ a + n.bias
                    elif isinstance(n, nir.Linear):
                        a = n.weight @ a
                    else:
                        a = a.reshape(n.r.shape)
                        if isinstance(n, nir.LIF):
                            v[k] = v[k] + (n.r * a + n.v_leak - v[k]) * DT / n.tau
                        else:
                            v[k] = v[k] + DT * n.r * a
                        a = (v[k] >= n.v_threshold).astype(float)
                        v[k] = np.where(a > 0, n.v_reset, v[k])
                        counts[k] += a.sum() / len(x)
                acc = acc + a / steps_per_frame
            frames.append(acc)
        outs.append(frames)
    return np.array(outs), counts


def clips(n=4, T=8, seed=1):
    return np.random.RandomState(seed).poisson(0.8, size=(n, T, 8 * 8 * 2)).astype(np.float32)


def test_pool_then_conv_folds_into_one_strided_conv():
    """avgpool 2/2 + conv 3x3 pad 1 == conv 6x6 stride 2 pad 2 (W[a//2, b//2] / 4), exactly
    in float, in numpy and as the nengo.Convolution the runner builds."""
    import nengo

    graph = tiny_graph()
    layer = loihi.parse_graph(graph, DT)[0][1]
    w = graph.nodes["conv2d_1"].weight * 0.8 / 1.5  # W' = r W / v_threshold
    s = (np.random.RandomState(3).rand(4, 8, 8) < 0.4).astype(float)
    want = conv2d(avgpool(s), w, np.zeros(4))
    assert layer.weight.shape == (4, 4, 6, 6) and layer.stride == (2, 2) and layer.padding == "same"
    np.testing.assert_allclose(layer.weight, np.repeat(np.repeat(w, 2, 2), 2, 3) / 4, rtol=1e-12)
    np.testing.assert_allclose(conv2d(s, layer.weight, np.zeros(4), stride=2, pad=2), want, rtol=1e-10, atol=1e-12)
    with nengo.Network() as net:
        u = nengo.Node(s.ravel())
        out = nengo.Node(size_in=want.size)
        conv = nengo.Convolution(4, (4, 8, 8), kernel_size=(6, 6), strides=(2, 2), padding=layer.padding,
                                 channels_last=False, init=layer.weight.transpose(2, 3, 1, 0))
        nengo.Connection(u, out, transform=conv, synapse=None)
        p = nengo.Probe(out)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.step()
    np.testing.assert_allclose(sim.data[p][0], want.ravel(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias, np.repeat(graph.nodes["conv2d_1"].bias * 0.8 / 1.5, 16), rtol=1e-12)


def test_pool_then_flatten_then_affine_folds_into_one_matrix():
    graph = tiny_graph()
    layer = loihi.parse_graph(graph, DT)[0][2]
    s = (np.random.RandomState(4).rand(4, 4, 4) < 0.4).astype(float)
    a = graph.nodes["affine"]
    np.testing.assert_allclose(layer.weight @ s.ravel(), a.weight @ avgpool(s).ravel(), rtol=1e-12)
    np.testing.assert_allclose(layer.bias, a.bias + 0.1, rtol=1e-12)  # + v_leak (r = vth = 1)


def test_emulator_runs_the_graph_like_nir():
    """Float emulator ("simreal"): the NIR steps exactly, over clips (so the state resets).
    Loihi emulator ("sim"): close; 8-bit weights move a few spikes across the threshold."""
    graph, x = tiny_graph(), clips()
    want, counts = reference(graph, x)
    real = loihi.run_loihi(graph, x, target="simreal", progress=False)
    np.testing.assert_array_equal(real.outputs, want)
    assert real.spikes_per_inference == pytest.approx(counts, abs=1e-9)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Lost .* extra bits in weight rounding")
        run = loihi.run_loihi(graph, x, target="sim", progress=False)
    assert run.outputs.shape == (4, 8, 2) and run.steps_per_clip == 8 + 3
    assert isinstance(run.n_cores, int) and run.n_cores == 4  # 3 chip layers + the bias clock
    assert isinstance(run.n_chips, int) and run.n_chips == 1
    assert run.seconds > 0 and run.clips_per_second > 0
    for name, n in counts.items():  # the host layer is float64 NIR: exact; chip layers within 10 %
        assert run.spikes_per_inference[name] == pytest.approx(n, rel=0 if name == "lif" else 0.1, abs=1)
    assert np.abs(run.outputs - want).mean() < 0.06  # per-frame scores, in votes of 0.2
    assert np.abs(run.outputs.sum(1) - want.sum(1)).max() <= 0.8 + 1e-9


def test_steps_per_frame_hold_each_frame():
    graph, x = tiny_graph(1), clips(2, T=4, seed=2)
    want, _ = reference(graph, x, steps_per_frame=3)
    run = loihi.run_loihi(graph, x, steps_per_frame=3, target="simreal", progress=False)
    np.testing.assert_allclose(run.outputs, want, atol=1e-12)


def test_if_neurons():
    rng = np.random.RandomState(5)
    shape = (3, 4, 4)
    iff = nir.IF(r=np.full(shape, 1 / DT), v_threshold=np.full(shape, 2.0), v_reset=np.zeros(shape))
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([2, 4, 4])), nir.Conv2d((4, 4), rng.rand(3, 2, 3, 3), 1, 1, 1, 1, rng.rand(3) * 0.2), iff,
        nir.Flatten(np.array(shape), start_dim=0), nir.Affine(rng.rand(6, 48) * 0.5, rng.rand(6) * 0.1),
        nir.IF(r=np.full(6, 1 / DT), v_threshold=np.full(6, 2.0), v_reset=np.zeros(6)), type_check=False)
    x = np.random.RandomState(6).poisson(0.5, size=(2, 6, 32)).astype(np.float32)
    want, _ = reference(graph, x)
    run = loihi.run_loihi(graph, x, target="simreal", progress=False)  # inputs >= 0: exact
    np.testing.assert_allclose(run.outputs, want, atol=1e-12)
    assert want.sum() > 0


@pytest.mark.parametrize("kind", ["Scale", "CubaLIF"])
def test_unsupported_nodes_are_refused_by_name(kind):
    rng = np.random.RandomState(0)
    odd = (nir.Scale(np.ones(8)) if kind == "Scale" else
           nir.CubaLIF(tau_syn=np.full(8, 2e-4), tau_mem=np.full(8, 2e-4), r=np.ones(8), v_leak=np.zeros(8), v_threshold=np.ones(8)))
    graph = nir.NIRGraph.from_list(nir.Input(np.array([8])), odd, nir.Affine(rng.randn(4, 8), np.zeros(4)), lif((4,)),
                                   nir.Affine(rng.randn(4, 4), np.zeros(4)), lif((4,)), type_check=False)
    with pytest.raises(NIRError, match=f"NIR node '{kind.lower()}' is a {kind}, which the Loihi runner cannot build"):
        loihi.loihi_network(graph)


def test_default_block_shapes_fit_a_core():
    """A folded 6x6/2 conv of 32 -> 32 channels: 16 filters on an 8 x 8 tile per core (the
    reduced gesture net builds with these: synapse memory 46-76 % of a core)."""
    conv = loihi.Layer("c", (32, 32, 32), "LIF", 2.0, np.zeros((32, 32, 6, 6)), np.zeros(32 * 32 * 32), (32, 64, 64), (2, 2), "same")
    assert loihi.default_block_shape(conv) == (16, 8, 8)
    dense = loihi.Layer("d", (512,), "LIF", 2.0, np.zeros((512, 512)), np.zeros(512), (512,))
    assert loihi.default_block_shape(dense) == (256,)
    small = loihi.Layer("s", (4, 4, 4), "LIF", 2.0, np.zeros((4, 4, 6, 6)), np.zeros(64), (4, 8, 8), (2, 2), "same")
    assert loihi.default_block_shape(small) == (4, 4, 4)


def test_bad_input_and_missing_nengo_loihi(monkeypatch):
    with pytest.raises(DataError, match=r"expected \(clips, T, 128\)"):
        loihi.run_loihi(tiny_graph(), np.zeros((1, 3, 100)), progress=False)
    monkeypatch.setitem(sys.modules, "nengo_loihi", None)
    with pytest.raises(UserError, match=r'nengo-loihi is not installed; install it with: pip install -e "\.\[loihi\]"'):
        loihi.loihi_network(tiny_graph())


def test_train_with_the_loihi_emulator_reports_it_beside_nengo_dl(tmp_path, capsys):
    from test_nir import _train

    args, train_main = _train(tmp_path, 'evaluate.simulators=["nengo_dl","nengo_loihi"]', "evaluate.loihi_max_clips=3",
                              "evaluate.loihi_target=simreal")
    assert train_main(args) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1][len("run directory: "):])
    m = json.loads((run / "metrics.json").read_text())
    assert m["loihi_clips"] == 3 and m["loihi_chips"] == 1 and m["loihi_cores"] >= 2
    # float emulation runs NIR's step: the answers are NengoDL's, but for a spike exactly at threshold
    assert m["loihi_agreement"] >= 2 / 3
    assert 0 <= m["loihi_test_clip_accuracy"] <= 1 and m["loihi_measured_energy_joules_per_inference"] > 0


def test_loihi_with_max_pooling_is_refused_before_training(tmp_path, capsys):
    from test_nir import _train

    args, train_main = _train(tmp_path, 'evaluate.simulators=["nengo_dl","nengo_loihi"]', "model.dvs_gesture_net.pool=max")
    with pytest.raises(SystemExit) as e:
        train_main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "evaluate.simulators holds nengo_loihi" in err[0] and 'pool: "avg"' in err[0]
    assert not list((tmp_path / "runs").glob("*"))
