"""The engine: resume, model selection, parameter files, bad input, and the NengoDL shim."""

import functools
import json
import math
import os
import subprocess
import sys

import nengo
import numpy as np
import pytest

from nengo_actions import config as C
from nengo_actions.compat import nengo_dl, tf
from nengo_actions.engine.simulator import Engine
from nengo_actions.errors import ParamsError
from nengo_actions.engine.losses import clip_loss, numpy_clip_loss
from nengo_actions.params import read_params
from nengo_actions.params import read_params_header
from nengo_actions.engine.training import train
from nengo_actions.clips.feature_data import DataError
from nengo_actions.networks import build_model
from nengo_actions.config.schema import EvaluateConfig, TrainConfig


@pytest.mark.parametrize("setting, enabled", [(None, "True"), ("0", "False")])
def test_the_shim_turns_onednn_on_unless_the_user_turned_it_off(setting, enabled):
    """TensorFlow leaves oneDNN off on CPUs without AVX-512 VNNI/BF16 or AMX; the shim
    turns it on everywhere, and an explicit TF_ENABLE_ONEDNN_OPTS=0 still wins."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("import nengo_actions.compat\n"
            "from tensorflow.python.util import _pywrap_util_port\n"
            "print('oneDNN', _pywrap_util_port.IsMklEnabled())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert f"oneDNN {enabled}" in out


def test_a_tiny_nengo_dl_network_trains_through_the_shim():
    """nengo_dl imported through nengo_actions.compat builds, trains and improves."""
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, size=(64, 1, 2)).astype(np.float32)
    y = (x[..., :1] * x[..., 1:]).astype(np.float32)  # a product: needs the neurons
    with nengo.Network(seed=0) as net:
        nengo_dl.configure_settings(stateful=False)
        inp = nengo.Node(np.zeros(2))
        ens = nengo.Ensemble(100, 2, neuron_type=nengo.RectifiedLinear(amplitude=1 / 200))
        nengo.Connection(inp, ens, synapse=None)
        out = nengo.Node(size_in=1)
        nengo.Connection(ens, out, function=lambda v: 0.0, synapse=None)
        probe = nengo.Probe(out, synapse=None)
    with nengo_dl.Simulator(net, minibatch_size=16, progress_bar=False) as sim:
        sim.compile(optimizer=tf.optimizers.Adam(0.01), loss=tf.losses.mse)
        before = sim.evaluate({inp: x}, {probe: y}, verbose=0)["loss"]
        sim.fit({inp: x}, {probe: y}, epochs=30, verbose=0)
        after = sim.evaluate({inp: x}, {probe: y}, verbose=0)["loss"]
    assert after < 0.3 * before, (before, after)


def tiny(n=24, frames=6, features=5, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    x = rng.randn(n, frames, features).astype(np.float32) * 0.3
    x[np.arange(n), :, y] += np.linspace(0, 1, frames)  # class = which feature ramps up
    return x, y


def model_cfg(**changes):
    values = {"lmu.order": 3, "lmu.units": 12, "lmu.memory_d": 1, "lmu.hidden_to_hidden": True,
              "ensemble_array.n_ensembles": 8, "ensemble_array.n_neurons": 5, **changes}
    return C.override(C.load_config(C.DEFAULT_CONFIG).model, values, "test")


def settings(**kw):
    return TrainConfig(**{"epochs": 4, "learning_rate": 0.01, "initial_accuracy": False, "tensorboard": False, **kw})


EVAL = EvaluateConfig()


def make_engine(model_type="lmu", m=None, features=5, classes=3, frames=6):
    built = build_model(model_type, m or model_cfg(), features, classes, frames, spiking=False, seed=0)
    return Engine(built, minibatch_size=8, seed=0)


def test_clip_loss_matches_its_numpy_twin():
    rng = np.random.RandomState(1)
    out = rng.randn(4, 6, 3).astype(np.float32)
    y = np.array([0, 2, 1, 2])
    for last in (0, 2):
        fn = clip_loss(3, last_steps=last)
        target = np.repeat(y[:, None, None], 6, axis=1).astype(np.float32)
        tf_loss = float(tf.reduce_mean(fn(tf.constant(target), tf.constant(out))))
        assert tf_loss == pytest.approx(numpy_clip_loss(out, y, last_steps=last), rel=1e-5)


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    x, y = tiny()
    xv, yv = tiny(12, seed=1)
    full = make_engine()
    r_full = train(full, x, y, xv, yv, settings(epochs=4, schedule="cosine"), EVAL, tmp_path / "full", seed=3, log=lambda s: None)
    expected = full.get_params()
    full.close()

    class Interrupted(Exception):
        pass

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise Interrupted

    first = make_engine()
    with pytest.raises(Interrupted):
        train(first, x, y, xv, yv, settings(epochs=4, schedule="cosine"), EVAL, tmp_path / "split", seed=3,
              log=lambda s: None, on_epoch_end=stop_after_two)
    first.close()
    # a new process would start from scratch: a new engine, resumed from the checkpoint
    second = make_engine()
    r_split = train(second, x, y, xv, yv, settings(epochs=4, schedule="cosine"), EVAL, tmp_path / "split",
                    resume=True, seed=3, log=lambda s: None)
    got = second.get_params()
    second.close()
    assert r_split.resumed_from_epoch == 2
    assert [h["epoch"] for h in r_split.history] == [1, 2, 3, 4]
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [round(h["train_loss"], 5) for h in r_full.history] == [round(h["train_loss"], 5) for h in r_split.history]
    assert (tmp_path / "split" / "history.csv").read_text().count("\n") == 5


def test_the_selected_epoch_is_the_best_on_validation(tmp_path):
    x, y = tiny()
    xv, yv = tiny(12, seed=1)
    engine = make_engine()
    result = train(engine, x, y, xv, yv, settings(epochs=5), EVAL, tmp_path, log=lambda s: None)
    accs = [h["val_clip_accuracy"] for h in result.history]
    assert result.best_val_clip_accuracy == max(accs)
    assert accs[result.best_epoch - 1] == max(accs)
    engine.load_params(result.params_path)
    from nengo_actions.clips.metrics import evaluate_outputs

    again = evaluate_outputs(engine.predict(xv), yv, 3)["clip_accuracy"]
    assert again == pytest.approx(max(accs))
    header = read_params(result.params_path)[1]
    assert header["epoch"] == result.best_epoch and header["signature"]["model"] == "lmu"
    engine.close()


def test_early_stopping_stops_after_patience(tmp_path):
    x, y = tiny()
    engine = make_engine()
    # validation labels that no network can fit: no improvement after the first epochs
    result = train(engine, x, y, x[:8], (y[:8] + 1) % 3, settings(epochs=30, early_stopping=2, learning_rate=0.05),
                   EVAL, tmp_path, log=lambda s: None)
    engine.close()
    assert result.stopped_early and len(result.history) < 30
    assert len(result.history) - result.best_epoch == 2


def test_params_from_another_model_are_refused_by_name(tmp_path):
    engine = make_engine()
    path = engine.save_params(tmp_path / "lmu.npz")
    engine.close()
    before = path.read_bytes()
    other = make_engine("ensemble_array", features=5)
    with pytest.raises(ParamsError, match=r"lmu\.npz.*different model"):
        other.load_params(path)
    other.close()
    bigger = make_engine(features=7)
    with pytest.raises(ParamsError, match=r"lmu\.npz.*n_features: file 5 vs model 7"):
        bigger.load_params(path)
    bigger.close()
    assert path.read_bytes() == before  # nothing overwritten
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    same = make_engine()
    with pytest.raises(ParamsError, match="junk.npz"):
        same.load_params(tmp_path / "junk.npz")
    with pytest.raises(ParamsError, match="not found"):
        same.load_params(tmp_path / "missing.npz")
    with np.load(path, allow_pickle=False) as data:  # a file of the earlier parameter order
        arrays = dict(data)
    header = json.loads(str(arrays["header"]))
    arrays["header"] = np.asarray(json.dumps(dict(header, format="nengo_actions.params/1")))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ParamsError, match=r"old\.npz: written by an earlier nengo_actions.*train the model again"):
        same.load_params(tmp_path / "old.npz")
    same.close()
    # the header alone: the same checks, no parameter arrays read
    assert read_params_header(path) == read_params(path)[1]
    with pytest.raises(ParamsError, match=r"old\.npz: written by an earlier"):
        read_params_header(tmp_path / "old.npz")


def test_a_params_file_loads_into_the_spiking_build_of_the_same_model(tmp_path):
    m = model_cfg(**{"lmu.hidden_to_hidden": False})
    rate = Engine(build_model("lmu_spiking", m, 5, 3, 6, spiking=False), minibatch_size=4)
    path = rate.save_params(tmp_path / "p.npz")
    values = rate.get_params()
    rate.close()
    spk = Engine(build_model("lmu_spiking", m, 5, 3, 6, spiking=True, steps_per_frame=4), minibatch_size=4)
    spk.load_params(path)
    for a, b in zip(values, spk.get_params()):
        np.testing.assert_array_equal(a, b)
    spk.close()


def test_bad_arrays_are_clear_errors():
    engine = make_engine()
    x, y = tiny()
    with pytest.raises(DataError, match="7 values per frame, but the model was built for 5"):
        engine.check_arrays(np.zeros((4, 6, 7)), np.zeros(4, int), "test split")
    with pytest.raises(DataError, match=r"labels must be in 0\.\.2.*\[3\]"):
        engine.check_arrays(x, np.where(y == 2, 3, y), "training split")
    with pytest.raises(DataError, match="no clips"):
        engine.check_arrays(np.zeros((0, 6, 5)))
    engine.close()


def test_predict_pads_to_whole_minibatches():
    engine = make_engine()
    x, _ = tiny(n=5)
    out = engine.predict(x)
    assert out.shape == (5, 6, 3)
    np.testing.assert_allclose(engine.predict(x[:1])[0], out[0], rtol=1e-5, atol=1e-6)
    engine.close()
    assert json.loads(json.dumps(engine.built.signature)) == engine.built.signature


@pytest.mark.parametrize("kind", ["lmu_spiking", "dvs_gesture_net"])
def test_an_inference_engine_predicts_what_the_training_engine_predicts(kind, tmp_path):
    """Parameters frozen into the network and NengoDL's inference_only build give the
    same spiking outputs as loading them into a trainable simulator."""
    m = C.override(C.load_config(C.DEFAULT_CONFIG).model, {
        "lmu.order": 3, "lmu.units": 12, "lmu.memory_d": 2, "lmu_spiking.memory_neurons_per_dim": 4,
        "dvs_gesture_net.channels": 4, "dvs_gesture_net.depth": 2, "dvs_gesture_net.dense": 8,
        "dvs_gesture_net.votes": 2,
    }, "test")
    n_features = 8 * 8 * 2 if kind == "dvs_gesture_net" else 6
    build = functools.partial(build_model, kind, m, n_features, 3, 4)
    rng = np.random.default_rng(0)
    engine = Engine(build(spiking=False), minibatch_size=2, device="cpu")
    try:
        engine.set_params([v + rng.normal(0, 0.1, v.shape).astype(v.dtype) for v in engine.get_params()])
        path = engine.save_params(tmp_path / "params.npz")
    finally:
        engine.close()
    x = rng.uniform(0, 1, (3, 4, n_features)).astype(np.float32)
    engine = Engine(build(spiking=True, steps_per_frame=3), minibatch_size=2, device="cpu")
    try:
        engine.load_params(path)
        expected = engine.predict(x)
    finally:
        engine.close()
    built = build(spiking=True, steps_per_frame=3)
    engine = Engine.for_inference(built, path, minibatch_size=2, device="cpu")
    try:
        assert not engine.sim.keras_model.trainable_weights
        got = engine.predict(x)
    finally:
        engine.close()
    if kind == "dvs_gesture_net":  # the layers' biases now live in the neurons
        assert not [n for n in built.network.all_nodes if str(n.label).endswith((".bias", ".bias_relay", ".broadcast"))]
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_mixed_precision_follows_the_device_and_trains_with_loss_scaling(tmp_path, monkeypatch):
    from nengo_actions.engine import trainer as trainer_module
    from nengo_actions.clips.feature_data import DataError

    assert trainer_module.mixed_precision("auto", "/gpu:0") and trainer_module.mixed_precision("on", "/gpu:0")
    assert not trainer_module.mixed_precision("auto", "/cpu:0") and not trainer_module.mixed_precision("off", "/gpu:0")
    with pytest.raises(DataError, match="train.mixed_precision is 'on'"):
        trainer_module.mixed_precision("on", "/cpu:0")
    # the GPU path on the CPU: the loss-scaling optimizer, checkpoints and resumption
    monkeypatch.setattr(trainer_module, "mixed_precision", lambda setting, device: True)
    rng = np.random.RandomState(0)
    y = np.arange(24) % 3
    x = (rng.randn(24, 6, 5) * 0.3 + y[:, None, None]).astype(np.float32)
    try:
        engine = make_engine()
        first = train(engine, x, y, x[:8], y[:8], settings(epochs=2), EVAL, tmp_path, log=lambda s: None)
        assert isinstance(engine.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        engine.close()
        engine = make_engine()
        result = train(engine, x, y, x[:8], y[:8], settings(epochs=6), EVAL, tmp_path, resume=True, log=lambda s: None)
        engine.close()
    finally:
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision": False})
    assert result.resumed_from_epoch == 2 and len(result.history) == 6
    assert result.history[-1]["train_loss"] < first.history[0]["train_loss"]


def test_a_loss_that_is_not_finite_stops_training_naming_the_epoch(tmp_path):
    from nengo_actions.errors import DivergedError

    x, y = tiny()
    x[3, 0, 0] = np.inf  # a clip the store check would have refused, reaching the engine anyway
    engine = make_engine()
    try:
        with pytest.raises(DivergedError, match=r"epoch 1: the training loss is nan"):
            train(engine, x, y, x[:8], y[:8], settings(epochs=3), EVAL, tmp_path, log=lambda s: None)
    finally:
        engine.close()


def test_the_engine_builds_every_optimizer_and_schedule_of_the_schema():
    """The schema owns the choices (schema.OPTIMIZERS, SCHEDULES); the engine's if-chain
    must build each one, not fall through to a default."""
    from nengo_actions.engine.trainer import make_optimizer
    from nengo_actions.config.schema import ADAM_EPSILON_FORMS, OPTIMIZERS, SCHEDULES

    for name in OPTIMIZERS:
        for decay in (0.0, 0.01):
            optimizer = make_optimizer(TrainConfig(optimizer=name, weight_decay=decay), steps_per_epoch=10)
            assert type(optimizer).__name__.lower().startswith(name)
    for form in ADAM_EPSILON_FORMS:
        for decay in (0.0, 0.01):
            optimizer = make_optimizer(TrainConfig(adam_epsilon_form=form, weight_decay=decay), steps_per_epoch=10)
            assert isinstance(optimizer, tf.keras.optimizers.AdamW if decay else tf.keras.optimizers.Adam)
            assert type(optimizer).__name__.lower().startswith("torch") == (form == "torch")
    kinds = set()
    for schedule in SCHEDULES:
        settings = TrainConfig(schedule=schedule, epochs=20, step_epochs=5)
        rate = make_optimizer(settings, steps_per_epoch=10)._learning_rate
        if schedule == "constant":
            assert not isinstance(rate, tf.keras.optimizers.schedules.LearningRateSchedule)
            continue
        kinds.add(type(rate))
        assert float(rate(150)) < float(rate(0)) == pytest.approx(settings.learning_rate)
    assert len(kinds) == len(SCHEDULES) - 1


@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_adam_with_torch_s_epsilon_steps_as_torch_optim_adam(decay):
    """``train.adam_epsilon_form: "torch"`` against torch.optim.Adam(W)'s update as its
    documentation writes it, on gradients from large to far below epsilon; Keras' own form
    differs on the small ones (what kept the direct trainer off SpikingJelly's path)."""
    from nengo_actions.engine.trainer import make_optimizer

    f32 = lambda v: float(np.float32(v))  # Keras keeps its hyperparameters in float32
    lr, eps, b1, b2 = f32(3e-3), 1e-8, f32(0.9), f32(0.999)
    grads = np.array([[1e-2, -1e-3, 1e-5], [3e-7, -1e-8, 2e-9]])
    forms = {}
    for form in ("torch", "keras"):
        settings = TrainConfig(learning_rate=3e-3, adam_epsilon=eps, adam_epsilon_form=form, weight_decay=decay)
        optimizer = make_optimizer(settings, steps_per_epoch=10)
        var = tf.Variable(np.ones_like(grads))
        for _ in range(5):
            optimizer.apply_gradients([(tf.constant(grads), var)])
        forms[form] = var.numpy()
    ref, m, v = np.ones_like(grads), 0.0, 0.0
    for t in range(1, 6):
        ref *= 1 - lr * f32(decay)  # AdamW: decoupled decay first
        m, v = b1 * m + (1 - b1) * grads, b2 * v + (1 - b2) * grads**2
        ref -= lr / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(forms["torch"] - 1, ref - 1, rtol=1e-5)
    step_gap = np.abs(forms["keras"] - ref) / (5 * lr)
    assert step_gap[1].max() > 0.1 and step_gap[0, :2].max() < 1e-3


def test_a_float64_model_steps_with_torch_s_adam_to_the_last_bits():
    """In a float64 model the torch form, with the per-epoch cosine, is torch.optim.Adam's
    update in double precision (Keras would round its betas and the rate to float32)."""
    from nengo_actions.engine.trainer import make_optimizer

    settings = TrainConfig(learning_rate=3e-3, adam_epsilon=1e-8, adam_epsilon_form="torch", schedule="cosine_epoch", epochs=4)
    rng = np.random.default_rng(3)
    grads = rng.normal(size=(6, 50)) * np.logspace(-9, -2, 50)
    tf.keras.backend.set_floatx("float64")
    try:
        optimizer = make_optimizer(settings, steps_per_epoch=2)
        var = tf.Variable(np.ones(50))
        for g in grads:
            optimizer.apply_gradients([(tf.constant(g), var)])
    finally:
        tf.keras.backend.set_floatx("float32")
    ref, m, v = np.ones(50), 0.0, 0.0
    for t, g in enumerate(grads, 1):
        lr = 3e-3 * (1 + math.cos(math.pi * ((t - 1) // 2) / 4)) / 2
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        ref -= lr / (1 - 0.9**t) * m / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(var.numpy() - 1, ref - 1, rtol=1e-12, atol=1e-17)


def test_the_default_energy_devices_are_the_schema_s_and_keras_spiking_knows_them():
    import inspect

    from nengo_actions.evaluation.energy import device_table
    from nengo_actions.config.schema import ENERGY_DEVICES
    from nengo_actions.evaluation.spiking import evaluate_spiking

    assert inspect.signature(evaluate_spiking).parameters["devices"].default is ENERGY_DEVICES
    assert EvaluateConfig().energy_devices is ENERGY_DEVICES
    assert set(ENERGY_DEVICES) <= set(device_table())


def test_tensorboard_holds_the_history_s_figures(tmp_path):
    from nengo_actions.engine.training import HISTORY_FIELDS, SCALAR_FIELDS

    x, y = tiny()
    engine = make_engine()
    train(engine, x, y, x[:8], y[:8], settings(epochs=1, tensorboard=True), EVAL, tmp_path, log=lambda s: None)
    engine.close()
    tags = {value.tag for path in (tmp_path / "tensorboard").iterdir()
            for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert tags == set(SCALAR_FIELDS)
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == ",".join(HISTORY_FIELDS)
