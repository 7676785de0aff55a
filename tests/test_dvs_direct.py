"""Direct spiking training: LIF neurons, the multi-step model, its Nengo network, the engine."""

import math

import nengo
import numpy as np
import pytest

from nengo_actions import config as C
from nengo_actions.config import models, schema
from nengo_actions.compat import nengo_dl, tf
from nengo_actions.engine.simulator import Engine
from nengo_actions.errors import ParamsError
from nengo_actions.engine.training import train
from nengo_actions.engine.direct import DirectEngine
from nengo_actions.engine.losses import numpy_rate_loss, rate_loss
from nengo_actions.networks.dvs_direct import (
    SeededDropout, build_direct_network, build_temporal, convert_temporal, load_temporal_params,
)
from nengo_actions.networks.lif_node import LIF, DiscreteLIF
from nengo_actions.networks.tensor_nodes import MaxPool2D

# A hand-computed trace, tau = 2 steps, threshold 1: v <- v + (x - v) / 2, spike at
# v >= 1, then v = 0.
X = [1.5, 1.5, 0.2, 3.0, 0.0, 2.2, 0.9, 0.9]
V_BEFORE_RESET = [0.75, 1.125, 0.1, 1.55, 0.0, 1.1, 0.45, 0.675]
SPIKES = [0, 1, 0, 1, 0, 1, 0, 0]


def model_cfg(**conv):
    m = models.ModelConfig()
    return m.replace(
        dvs_gesture_net=m.dvs_gesture_net.replace(channels=4, depth=2, dense=16, votes=3, frame_shape=()),
        sl_animals_net=m.sl_animals_net.replace(channels=(3, 5), dense=12, pool="avg"),
        dvs_conv=m.dvs_conv.replace(method="direct", **conv),
    )


def test_lif_layer_follows_the_hand_computed_trace():
    layer = LIF(tau=2.0, threshold=1.0)
    out = layer(tf.constant(np.asarray(X, np.float32)[None, :, None])).numpy()[0, :, 0]
    np.testing.assert_array_equal(out, SPIKES)


@pytest.mark.parametrize("simulator", ["nengo", "nengo_dl"])
def test_nengo_neuron_type_follows_the_same_trace(simulator):
    dt = 0.001
    with nengo.Network() as net:
        stim = nengo.Node(lambda t: X[min(int(round(t / dt)) - 1, len(X) - 1)])
        ens = nengo.Ensemble(1, 1, neuron_type=DiscreteLIF(tau=2.0, threshold=1.0, amplitude=dt), gain=[1.0], bias=[0.0])
        nengo.Connection(stim, ens.neurons, synapse=None)
        p = nengo.Probe(ens.neurons, synapse=None)
    sim_cls = nengo.Simulator if simulator == "nengo" else nengo_dl.Simulator
    kwargs = {"progress_bar": False}
    with sim_cls(net, dt=dt, **kwargs) as sim:
        sim.run_steps(len(X))
    np.testing.assert_allclose(sim.data[p][:, 0], SPIKES, atol=1e-6)


def test_surrogate_gradient_is_the_atan_derivative_and_finite():
    alpha, tau, thr = 2.0, 2.0, 1.0
    layer = LIF(tau=tau, threshold=thr, surrogate_alpha=alpha, temporal=False)
    x = tf.Variable(np.linspace(-3, 5, 17, dtype=np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    grad = tape.gradient(y, x).numpy()
    v = x.numpy() / tau - thr
    expected = (1 / tau) * (alpha / 2) / (1 + (math.pi / 2 * alpha * v) ** 2)
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    assert np.all(np.isfinite(grad)) and np.all(grad > 0)


def test_plif_time_constant_starts_at_tau_and_receives_gradients_through_time():
    layer = LIF(tau=3.0, trainable_tau=True)
    x = tf.constant(np.random.default_rng(0).uniform(0, 3, (4, 10, 6)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(layer(x))
    assert layer.tau() == pytest.approx(3.0)
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    assert np.isfinite(grad.numpy()) and grad.numpy() != 0


def test_a_trained_tau_of_one_step_or_less_is_refused():
    with pytest.raises(ValueError, match="above 1 step"):
        LIF(tau=1.0, trainable_tau=True)


def test_max_pool_node_runs_the_same_in_numpy_and_tensorflow():
    with nengo.Network():
        node = MaxPool2D(5, 4, 3, 2)
    x = np.random.default_rng(1).uniform(size=5 * 4 * 3).astype(np.float32)
    expected = x.reshape(5, 4, 3)[:4].reshape(2, 2, 2, 2, 3).max(axis=(1, 3)).ravel()
    np.testing.assert_allclose(node._pool(0.0, x), expected)
    np.testing.assert_allclose(node.tensor_func(tf, tf.constant(x[None])).numpy()[0], expected)


def _randomise_batch_norm(net, rng):
    for layer in net.keras_model.layers:
        if layer.name.startswith("bn_"):
            bn = layer.layer
            c = bn.gamma.shape[0]
            bn.set_weights([rng.uniform(0.8, 2, c), rng.normal(0.3, 0.3, c), rng.normal(0, 0.3, c), rng.uniform(0.5, 2, c)])


def _boost(net, names, factor=4.0):
    for name in names:  # initial weights leave deep layers nearly silent
        layer = net.keras_model.get_layer(name).layer
        w = layer.get_weights()
        layer.set_weights([w[0] * factor] + w[1:])


@pytest.mark.parametrize("kind", ["dvs_gesture_net", "sl_animals_net"])
def test_nengo_network_at_one_step_per_frame_equals_the_trained_model(kind):
    rng = np.random.default_rng(2)
    side = 16
    net = build_temporal(kind, model_cfg(plif=True), n_features=side * side * 2, n_classes=4, seed=3)
    _randomise_batch_norm(net, rng)
    if kind == "dvs_gesture_net":
        _boost(net, ["conv1", "fc0", "fc1"], 3.0)
    else:
        _boost(net, ["conv0", "conv1", "fc0"], 4.0)
        fc1 = net.keras_model.get_layer("fc1").layer
        fc1.set_weights([fc1.kernel.numpy(), np.full(4, 2.5, np.float32)])
    net.keras_model.get_layer("lif_fc0").w.assign(0.3)  # a trained tau other than the initial one
    x = rng.poisson(2.0, (5, 6, side * side * 2)).astype(np.float32)
    expected = net.keras_model(x, training=False).numpy()
    assert 0.05 < expected.mean() < 0.95  # the outputs spike, and not always
    built = convert_temporal(net)
    taus = {e.label: e.neuron_type.tau for e in built.network.all_ensembles}
    assert taus["lif_fc0.0"] == pytest.approx(1 / (1 / (1 + math.exp(-0.3))))
    pools = [n for n in built.network.all_nodes if isinstance(n, MaxPool2D)]
    assert len(pools) == (2 if kind == "dvs_gesture_net" else 0)
    engine = Engine.for_inference(built, None, minibatch_size=5)
    try:
        outputs = engine.predict(x)
    finally:
        engine.close()
    np.testing.assert_array_equal(outputs, expected)


def test_rate_losses_match_their_numpy_versions():
    rng = np.random.default_rng(4)
    out = (rng.uniform(size=(3, 5, 4)) < 0.4).astype(np.float32)
    y = np.array([0, 3, 1])
    for kind in ("mse", "sparse_categorical_crossentropy"):
        for last in (0, 2):
            tf_value = float(rate_loss(4, kind, last)(tf.constant(y), tf.constant(out)))
            assert tf_value == pytest.approx(numpy_rate_loss(out, y, kind, last), rel=1e-5)
    # SpikingJelly's loss: MSE of the mean rate against the one-hot target
    rate = out.mean(axis=1)
    assert numpy_rate_loss(out, y, "mse") == pytest.approx(np.mean((rate - np.eye(4)[y]) ** 2))


def _halves(n, rng, side=8, steps=4):
    """Two classes: events in the left or in the right half of the frame."""
    y = np.arange(n) % 2
    x = np.zeros((n, steps, side, side, 2), np.float32)
    for i, label in enumerate(y):
        cols = slice(0, side // 2) if label == 0 else slice(side // 2, side)
        x[i, :, :, cols] = rng.poisson(1.5, (steps, side, side // 2, 2))
    x += rng.poisson(0.2, x.shape)
    return x.reshape(n, steps, -1), y


def test_direct_training_learns_resumes_and_its_nengo_network_agrees(tmp_path):
    rng = np.random.default_rng(5)
    x_train, y_train = _halves(48, rng)
    x_val, y_val = _halves(16, rng)
    mc = model_cfg(plif=True)
    settings = schema.TrainConfig(learning_rate=0.01, epochs=3, minibatch_size=8, loss="mse", tensorboard=False, initial_accuracy=False)
    ev = schema.EvaluateConfig(clip_method="mean", last_k=4)
    net = build_temporal("dvs_gesture_net", mc, n_features=x_train.shape[2], n_classes=2, seed=0)
    engine = DirectEngine(net, minibatch_size=8, device="cpu")
    result = train(engine, x_train, y_train, x_val, y_val, settings.replace(epochs=2), ev, tmp_path, log=lambda s: None)
    resumed = train(engine, x_train, y_train, x_val, y_val, settings, ev, tmp_path, resume=True, log=lambda s: None)
    assert resumed.resumed_from_epoch == 2 and len(resumed.history) == 3
    assert resumed.best_val_clip_accuracy >= 0.9
    assert result.params_path.exists()

    built = build_direct_network("dvs_gesture_net", mc, n_features=x_train.shape[2], n_classes=2, params_path=resumed.params_path)
    trained = build_temporal("dvs_gesture_net", mc, n_features=x_train.shape[2], n_classes=2)
    load_temporal_params(trained, resumed.params_path)
    expected = trained.keras_model(x_val, training=False).numpy()
    nengo_engine = Engine.for_inference(built, None, minibatch_size=8)
    try:
        np.testing.assert_array_equal(nengo_engine.predict(x_val), expected)
    finally:
        nengo_engine.close()

    with pytest.raises(ValueError, match="no rate form"):  # refused, never silently built spiking
        build_direct_network("dvs_gesture_net", mc, n_features=x_train.shape[2], n_classes=2,
                             params_path=resumed.params_path, spiking=False)
    other = build_temporal("dvs_gesture_net", model_cfg(plif=False), n_features=x_train.shape[2], n_classes=2)
    with pytest.raises(ParamsError, match="different model.*plif"):
        load_temporal_params(other, resumed.params_path)


def test_dropout_draws_new_masks_every_epoch_and_a_resumed_run_draws_the_same(tmp_path):
    net = build_temporal("dvs_gesture_net", model_cfg(), n_features=8 * 8 * 2, n_classes=2)
    (layer,) = [l for l in net.keras_model.layers if isinstance(l, SeededDropout)][:1]
    ones = tf.ones((64, 3, layer.noise_shape[-1]))

    def mask(*seed):
        layer.source.set(*seed)
        return layer(ones, training=True).numpy()

    first = mask(7, 0)
    assert set(np.unique(first)) == {0.0, 1 / (1 - layer.rate)}  # Keras' scaling
    assert np.all(first == first[:, :1])  # one mask for all steps of a sample
    np.testing.assert_array_equal(mask(7, 0), first)
    assert not np.array_equal(mask(8, 0), first) and not np.array_equal(mask(7, 1), first)
    assert abs(np.mean(first == 0) - layer.rate) < 0.1
    np.testing.assert_array_equal(layer(ones, training=False).numpy(), ones.numpy())

    rng = np.random.default_rng(5)
    x, y = _halves(24, rng)
    settings = schema.TrainConfig(learning_rate=0.01, epochs=3, minibatch_size=8, tensorboard=False, initial_accuracy=False)
    ev = schema.EvaluateConfig(clip_method="mean", last_k=4)
    params = {}
    for name, stops in (("whole", [3]), ("resumed", [2, 3])):
        for epochs in stops:  # each leg a fresh process's network and trainer
            net = build_temporal("dvs_gesture_net", model_cfg(), n_features=x.shape[2], n_classes=2)
            result = train(DirectEngine(net, minibatch_size=8, device="cpu"), x, y, x, y, settings.replace(epochs=epochs),
                           ev, tmp_path / name, resume=epochs != stops[0], log=lambda s: None)
        params[name] = result.params_path
    with np.load(params["whole"], allow_pickle=False) as a, np.load(params["resumed"], allow_pickle=False) as b:
        names = [n for n in a.files if n.startswith("param_")]
        assert names
        for n in names:
            np.testing.assert_allclose(b[n], a[n], rtol=1e-5, atol=1e-6, err_msg=n)


@pytest.mark.parametrize(
    "key, value, match",
    [("lif_tau", 0.5, "lif_tau"), ("lif_tau", 1.0, "lif_tau"), ("threshold", 0.0, "threshold"), ("surrogate_alpha", -1.0, "surrogate_alpha")],
)
def test_bad_lif_settings_name_the_key(key, value, match):
    # the schema checks the LIF settings when the config is loaded
    with pytest.raises(C.ConfigError, match=rf"model\.dvs_conv\.{match}"):
        C.load_config(overrides=[f"model.dvs_conv.{key}={value}"])


def test_an_unknown_training_method_is_a_config_error():
    with pytest.raises(C.ConfigError, match="model.dvs_conv.method"):
        C.load_config(overrides=["model.dvs_conv.method=spikes"])


@pytest.mark.parametrize("detach_reset", [True, False])
def test_written_out_backpropagation_through_time_equals_autodiff(detach_reset):
    layer = LIF(tau=2.5, trainable_tau=True, detach_reset=detach_reset)
    x = tf.constant(np.random.default_rng(6).uniform(0, 2.5, (3, 7, 5)).astype(np.float32))
    weights = tf.constant(np.random.default_rng(7).normal(size=(3, 7, 5)).astype(np.float32))
    layer.build(x.shape)

    def autodiff(x, k):  # the same steps through TensorFlow's own gradients
        v, out = tf.zeros_like(x[:, 0]), []
        for t in range(x.shape[1]):
            v = v + (x[:, t] - v) * k
            s = layer._spike(v - layer.threshold)
            out.append(s)
            v = v * (1 - (tf.stop_gradient(s) if detach_reset else s))
        return tf.stack(out, axis=1)

    results = []
    for fn in (lambda x: layer(x), lambda x: autodiff(x, layer.decay())):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * weights)
        results.append([tape.gradient(loss, x).numpy(), tape.gradient(loss, layer.w).numpy()])
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4)


def _tiny_clips_and_config(tmp_path, *overrides):
    """6 training, 4 validation and 4 test clips of two classes, and a small gesture net."""
    from nengo_actions.clips.feature_data import ClipData

    rng = np.random.default_rng(8)
    x_train, y_train = _halves(6, rng)
    x_val, y_val = _halves(4, rng)
    x_test, y_test = _halves(4, rng)
    g = lambda n: np.array(["u"] * n)  # noqa: E731
    data = ClipData(x_train, y_train, x_val, y_val, x_test, y_test, g(6), g(4), g(4), ["left", "right"], tmp_path, {"frame_shape": [8, 8, 2]})
    cfg = C.load_config(C.PROJECT_ROOT / "configs" / "dvs128_gesture.json", [
        "model.dvs_gesture_net.channels=4", "model.dvs_gesture_net.depth=2", "model.dvs_gesture_net.dense=8",
        "train.tensorboard=false", "evaluate.energy_devices=[\"loihi\"]", *overrides,
    ])
    return data, cfg


def test_run_model_trains_directly_on_fewer_clips_than_a_minibatch(tmp_path):
    from nengo_actions.experiment import run_model

    data, cfg = _tiny_clips_and_config(tmp_path, "train.epochs=1", "train.minibatch_size=16", "evaluate.steps_per_frame=[1,2]")
    lines = []
    result = run_model("dvs_gesture_net", cfg, data, tmp_path / "run", log=lines.append)
    assert any("using minibatches of 6" in line for line in lines)
    m = result.metrics
    assert m["spiking_test_clip_accuracy_k1"] == pytest.approx(m["test_clip_accuracy"])
    assert {"spiking_test_clip_accuracy_k2", "n_neurons", "firing_rate_hz_conv0"} <= set(m)
    assert (tmp_path / "run" / "params_best.npz").exists()


def test_refit_trains_on_training_and_validation_clips_for_the_selected_epochs(tmp_path):
    from nengo_actions.experiment import run_model

    data, cfg = _tiny_clips_and_config(tmp_path, "train.epochs=2", "train.minibatch_size=4", "train.refit=true",
                                       "evaluate.steps_per_frame=[1]", "evaluate.spiking_steps_per_frame=1")
    m = run_model("dvs_gesture_net", cfg, data, tmp_path / "run", log=lambda s: None).metrics
    assert m["refit_epochs"] == m["best_epoch"] and m["refit_train_clips"] == 10
    history = (tmp_path / "run" / "refit" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + m["best_epoch"] and "val_clip_accuracy" in history[0]
    # the Nengo network of the refit parameters at 1 step per frame is the trained model
    assert m["refit_spiking_test_clip_accuracy"] == pytest.approx(m["refit_test_clip_accuracy"])
    assert 0 <= m["refit_test_clip_accuracy"] <= 1


def test_torch_initialisation_and_adam_epsilon_are_pytorchs():
    """``model.dvs_conv.init: "torch"`` starts every layer as PyTorch's Conv2d and Linear
    do (uniform within 1 / sqrt(fan_in)); ``train.adam_epsilon`` reaches the optimizer."""
    from nengo_actions.engine.trainer import make_optimizer

    cfg = C.load_config(C.PROJECT_ROOT / "configs" / "dvs128_gesture.json", [
        "model.dvs_gesture_net.channels=16", "model.dvs_gesture_net.depth=2", "model.dvs_gesture_net.dense=64",
        "model.dvs_gesture_net.frame_shape=[32,32,2]", "model.dvs_gesture_net.dense_batch_norm=false",
        "model.dvs_conv.init=\"torch\"", "train.adam_epsilon=1e-8"])
    net = build_temporal("dvs_gesture_net", cfg.model, n_features=32 * 32 * 2, n_classes=4).keras_model
    fan_ins = {"conv0": 2 * 9, "conv1": 16 * 9, "fc0": 16 * 8 * 8, "fc1": 64}
    for name, fan_in in fan_ins.items():
        for w in net.get_layer(name).layer.weights:
            values, limit = w.numpy().ravel(), 1 / math.sqrt(fan_in)
            assert np.abs(values).max() <= limit and values.std() == pytest.approx(limit / math.sqrt(3), rel=0.25), w.name
    assert any("bias" in w.name for w in net.get_layer("fc0").layer.weights)  # no BN after it: a bias, as torch's
    assert make_optimizer(cfg.train, 10).epsilon == 1e-8


@pytest.mark.parametrize("floatx", ["float32", "float64"])
def test_unbiased_batch_norm_variance_is_pytorch_s_running_var(floatx):
    """``model.dvs_conv.batch_norm_variance: "unbiased"``: the moving variance averages
    n / (n - 1) times the batch variance on dense and conv inputs in both float types, as
    torch.nn.BatchNorm's running_var; Keras' own takes it only in its fused kernel."""
    from nengo_actions.networks.dvs_direct import _batch_norm

    rng = np.random.default_rng(4)
    tf.keras.backend.set_floatx(floatx)
    try:
        for shape in ((128, 6), (8, 5, 5, 3)):  # a dense layer's B x T samples; conv frames
            x = tf.constant(rng.normal(2.0, 3.0, size=shape), floatx)
            batch = x.numpy().reshape(-1, shape[-1])
            momentum = {}
            for kind in ("keras", "unbiased"):
                bn = _batch_norm(models.DVSConvConfig(batch_norm_variance=kind))
                bn(x, training=True)
                momentum[kind] = bn.moving_variance.numpy()
                np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * batch.mean(0), rtol=1e-5)
            unbiased = 0.9 + 0.1 * batch.var(0, ddof=1)
            np.testing.assert_allclose(momentum["unbiased"], unbiased, rtol=1e-12 if floatx == "float64" else 1e-5)
            keras_fused = floatx == "float32" and len(shape) == 4
            # (Keras' decay is a float32 constant, 1e-9 off in float64)
            np.testing.assert_allclose(momentum["keras"], unbiased if keras_fused else 0.9 + 0.1 * batch.var(0),
                                       rtol=1e-7 if floatx == "float64" else 1e-5)
            assert keras_fused or not np.allclose(momentum["keras"], unbiased, rtol=1e-4)
    finally:
        tf.keras.backend.set_floatx("float32")
    with pytest.raises(C.ConfigError, match="batch_norm_variance"):
        C.load_config(overrides=["model.dvs_conv.batch_norm_variance=\"torch\""])


def test_cosine_per_epoch_is_pytorchs_cosine_annealing_stepped_per_epoch():
    from nengo_actions.engine.trainer import EpochCosine, make_optimizer

    cfg = C.load_config(overrides=["train.schedule=\"cosine_epoch\"", "train.learning_rate=0.003", "train.epochs=10"])
    schedule = make_optimizer(cfg.train, steps_per_epoch=5)._learning_rate  # Keras keeps the schedule there
    assert isinstance(schedule, EpochCosine)
    got = np.array([float(schedule(step)) for step in range(50)])
    # torch.optim.lr_scheduler.CosineAnnealingLR(T_max=10, eta_min=0), stepped after each epoch
    expected = np.repeat([0.003 * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(10)], 5)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_a_short_last_batch_is_trained_as_it_is_when_asked(tmp_path):
    """``train.last_batch: "short"`` trains the remainder as its own minibatch (PyTorch's
    DataLoader with drop_last=False); "fill" tops it up; NengoDL models refuse "short".
    Both are trainers of the one interface."""
    from nengo_actions.engine.simulator import Engine
    from nengo_actions.engine.trainer import Trainer
    from nengo_actions.networks import build_model

    rng = np.random.default_rng(9)
    x, y = _halves(10, rng)
    net = build_temporal("dvs_gesture_net", model_cfg(), n_features=x.shape[2], n_classes=2, seed=0)
    for last_batch, sizes in (("fill", [4, 4, 4]), ("short", [4, 4, 2])):
        engine = DirectEngine(net, minibatch_size=4, device="cpu")
        assert isinstance(engine, Trainer)
        engine.compile(schema.TrainConfig(minibatch_size=4, loss="mse", last_batch=last_batch), len(x))
        seen, step = [], engine._train_step
        engine._train_step = lambda xb, yb: (seen.append(len(yb)), step(xb, yb))[1]
        loss = engine.fit_epoch(x, y, epoch=0)
        assert seen == sizes and np.isfinite(loss)
    mc = models.ModelConfig()
    nengo_net = build_model("ensemble_array", mc, 6, 2, 3)
    engine = Engine(nengo_net, minibatch_size=4, device="cpu")
    assert isinstance(engine, Trainer)
    try:
        with pytest.raises(C.ConfigError, match="train.last_batch 'short' is for directly trained models"):
            engine.compile(schema.TrainConfig(minibatch_size=4, last_batch="short"), 10)
    finally:
        engine.close()
