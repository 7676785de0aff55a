"""DVS conv nets: Keras builders, BN folding, voting, conversion, spiking runs, event data."""

import os
from pathlib import Path

import nengo
import numpy as np
import pytest

from nengo_actions import config as C
from nengo_actions.config import models
from nengo_actions.compat import tf
from nengo_actions.engine.simulator import Engine
from nengo_actions.engine.training import train
from nengo_actions.clips.event_data import load_event_data
from nengo_actions.networks import build_model, model_is_spiking
from nengo_actions.networks.conversion import convert, fold_batch_norm, tile_conv_biases
from nengo_actions.networks.dvs_conv import gesture_net, sl_animals_net, voting

SHARED = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures")))
DEFINITIONS = SHARED / "sl_animals" / "SL-Animals-DVS_gestures_definitions.csv"


def small_model_cfg(**conv):
    small = {
        "dvs_gesture_net.channels": 4, "dvs_gesture_net.depth": 2, "dvs_gesture_net.dense": 16, "dvs_gesture_net.votes": 3,
        "sl_animals_net.channels": [3, 5], "sl_animals_net.dense": 12,
        **{f"dvs_conv.{k}": v for k, v in conv.items()},
    }
    return C.override(models.ModelConfig(), small, "small_model_cfg")


def test_voting_averages_each_group_of_votes():
    x = np.arange(12, dtype=np.float32)[None]
    inp = tf.keras.Input((12,))
    model = tf.keras.Model(inp, voting(tf, 4, 3)(inp))
    np.testing.assert_allclose(model.predict(x, verbose=0), [[1.0, 4.0, 7.0, 10.0]])


def test_folded_batch_norm_matches_keras_inference():
    model = gesture_net((8, 8, 2), 3, channels=4, depth=2, dense=8, votes=2, pool="avg", seed=1)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 2, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c), rng.uniform(0.2, 3, c)]
            )
    folded = fold_batch_norm(model)
    kinds = {type(layer).__name__ for layer in folded.layers}
    assert "BatchNormalization" not in kinds and "Dropout" not in kinds
    x = rng.uniform(0, 3, (5, 128)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_sl_animals_net_has_the_stbp_layer_sizes():
    model = sl_animals_net((32, 32, 2), 19)
    convs = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    dense = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense)]
    assert [c.kernel.shape.as_list() for c in convs] == [[3, 3, 2, 20], [3, 3, 20, 50]]
    assert [d.units for d in dense] == [200, 19]
    assert model.output_shape == (None, 19)


@pytest.mark.parametrize("kind", ["dvs_gesture_net", "sl_animals_net"])
def test_each_builder_converts_and_runs_spiking(kind):
    m = small_model_cfg(synapse=0.5)
    assert model_is_spiking(kind, m)
    built = build_model(kind, m, 8 * 8 * 2 if kind == "dvs_gesture_net" else 10 * 10 * 2, 3, 4, spiking=True, steps_per_frame=2)
    assert built.spiking and built.steps_per_frame == 2
    assert all(isinstance(layer.ensemble.neuron_type, nengo.SpikingRectifiedLinear) for layer in built.layers)
    assert [layer.name for layer in built.layers][-2:] == ["fc0", "fc1"]
    engine = Engine(built, minibatch_size=2, device="cpu")
    try:
        x = np.random.default_rng(0).uniform(0, 2, (3, 4, built.input.size_out)).astype(np.float32)
        out = engine.predict(x)
    finally:
        engine.close()
    assert out.shape == (3, 4, 3) and np.all(np.isfinite(out))


def test_max_pooling_is_converted_as_average_pooling():
    model = fold_batch_norm(gesture_net((8, 8, 2), 2, channels=2, depth=1, dense=4, votes=1, pool="max"))
    converter = convert(model)  # would raise without max_to_avg_pool
    avg = fold_batch_norm(gesture_net((8, 8, 2), 2, channels=2, depth=1, dense=4, votes=1, pool="avg"))
    avg.set_weights(model.get_weights())
    x = np.random.default_rng(0).uniform(0, 1, (4, 128)).astype(np.float32)
    from nengo_actions.compat import nengo_dl

    with nengo_dl.Simulator(converter.net, minibatch_size=4, progress_bar=False) as sim:
        out = sim.predict({converter.inputs[model.inputs[0]]: x[:, None]}, verbose=0)
    np.testing.assert_allclose(out[converter.outputs[model.outputs[0]]][:, 0], avg.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_tiled_conv_biases_compute_the_keras_model_and_stay_trainable():
    from nengo_actions.compat import nengo_dl

    model = fold_batch_norm(gesture_net((6, 6, 2), 3, channels=4, depth=2, dense=8, votes=1, pool="avg", seed=2))
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.Conv2D):
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape))  # a different bias per channel
    x = rng.uniform(0, 1, (4, 6 * 6 * 2)).astype(np.float32)
    expected = model.predict(x, verbose=0)

    def run(converter, simulator):
        probe = converter.outputs[model.outputs[0]]
        node = converter.inputs[model.inputs[0]]
        if simulator is nengo.Simulator:  # the nodes' Python functions
            node.output = nengo.processes.PresentInput(x, 0.001)
            with nengo.Simulator(converter.net, progress_bar=False) as sim:
                sim.run_steps(len(x))
            return sim.data[probe], None
        with nengo_dl.Simulator(converter.net, minibatch_size=4, progress_bar=False) as sim:
            out = sim.predict({node: x[:, None]}, verbose=0)[probe][:, 0]
            return out, [w.shape for w in sim.keras_model.trainable_weights]

    sparse = convert(model)
    _, sparse_weights = run(sparse, nengo_dl.Simulator)
    tiled = convert(model)
    assert tile_conv_biases(tiled.net) == 2
    assert not any(isinstance(c.transform, nengo.transforms.Sparse) for c in tiled.net.all_connections)
    out, tiled_weights = run(tiled, nengo_dl.Simulator)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert tiled_weights == sparse_weights  # the per-channel biases are still the parameters
    reference, _ = run(tiled, nengo.Simulator)
    np.testing.assert_allclose(reference, expected, rtol=1e-4, atol=1e-5)


def test_rate_and_spiking_outputs_agree_at_a_high_firing_rate_scale():
    m = small_model_cfg(scale_firing_rates=2000.0, synapse=0.05)
    m = m.replace(dvs_gesture_net=m.dvs_gesture_net.replace(pool="avg"))
    n_features, steps = 8 * 8 * 2, 50
    rate = build_model("dvs_gesture_net", m, n_features, 3, 2, spiking=False, steps_per_frame=1)
    spiking = build_model("dvs_gesture_net", m, n_features, 3, 2, spiking=True, steps_per_frame=steps)
    assert spiking.signature == rate.signature  # the spiking run loads the rate network's parameters
    frame = np.random.default_rng(1).uniform(0, 2, (4, 1, n_features)).astype(np.float32)
    x = np.repeat(frame, 2, axis=1)  # the same frame twice: the second is past the synapses' rise
    expected = rate.keras_model.predict(frame[:, 0], verbose=0)
    engine = Engine(rate, minibatch_size=4, device="cpu")
    try:
        params = engine.get_params()
        rate_out = engine.predict(x)
    finally:
        engine.close()
    np.testing.assert_allclose(rate_out[:, 1], expected, rtol=1e-4, atol=1e-5)
    engine = Engine(spiking, minibatch_size=4, device="cpu")
    try:
        engine.set_params(params)
        spike_out = engine.predict(x)[:, 1]  # mean over the second frame's 50 steps
    finally:
        engine.close()
    scale = np.abs(expected).max()
    assert scale > 0.05
    np.testing.assert_allclose(spike_out, expected, atol=0.08 * scale)
    assert np.array_equal(spike_out.argmax(-1), expected.argmax(-1))


def synthetic_cfg(root, **overrides):
    cfg = C.load_config(
        C.PROJECT_ROOT / "configs" / "dvs_synthetic.json",
        [f"data.root={root}", "events.synthetic.n_users=8", "events.synthetic.test_users=2",
         "events.synthetic.n_classes=4", "events.synthetic.repeats=3", "events.synthetic.sensor_size=16",
         "events.frames.n_frames=4", "data.val_fraction=0.2"]
        + [f"{k}={v}" for k, v in overrides.items()],
    )
    return cfg


def test_event_data_splits_by_user_and_a_short_run_learns_the_synthetic_gestures(tmp_path):
    cfg = synthetic_cfg(tmp_path / "dvs")
    data = load_event_data(cfg, progress=False)
    assert data.x_train.shape[1:] == (4, 16 * 16 * 2) and data.x_train.dtype == np.float32
    assert data.metadata["frame_shape"] == [16, 16, 2] and data.n_classes == 4
    train_users, val_users, test_users = (set(g.tolist()) for g in (data.groups_train, data.groups_val, data.groups_test))
    assert val_users and not train_users & val_users and not (train_users | val_users) & test_users
    assert len(data.y_test) == 2 * 4 * 3
    # the flattened frame is the channels-last frame of the framing transform
    from nengo_actions.data.prepare import frame_transforms, open_event_splits

    test_set = open_event_splits(cfg, progress=False)["test"]
    frames = frame_transforms(cfg.events.frames, test_set.sensor_size)[1](test_set.events(0))
    np.testing.assert_array_equal(data.x_test[0], frames.reshape(4, -1))

    m = C.override(cfg.model, {"dvs_gesture_net.channels": 8, "dvs_gesture_net.depth": 1, "dvs_gesture_net.dense": 32,
                               "dvs_gesture_net.votes": 2}, "test")
    built = build_model("dvs_gesture_net", m, data.n_features, data.n_classes, data.n_frames)
    engine = Engine(built, minibatch_size=8, device="cpu")
    ts = cfg.train.replace(epochs=6, learning_rate=0.003, tensorboard=False, initial_accuracy=False)
    ev = cfg.evaluate.replace(last_k=4)
    try:
        result = train(engine, data.x_train, data.y_train, data.x_val, data.y_val, ts, ev, tmp_path / "run", log=lambda s: None)
        engine.load_params(result.params_path)
        scores = engine.predict(data.x_test).mean(axis=1)
    finally:
        engine.close()
    accuracy = float(np.mean(scores.argmax(-1) == data.y_test))
    assert accuracy >= 0.6, accuracy  # chance is 0.25


@pytest.mark.skipif(not DEFINITIONS.exists(), reason="SL-Animals definitions fixture missing")
def test_sl_animals_validation_and_test_never_share_a_recording(tmp_path):
    import shutil

    from nengo_actions.data import make_events, write_aedat2

    names = ["user01_imse", "user02_dc", "user03_dc", "user04_indoor", "user05_sunlight", "user06_dc", "user07_indoor", "user08_imse"]
    (tmp_path / "allusers_aedat").mkdir(parents=True)
    (tmp_path / "tags_updated_19_08_2020").mkdir()
    shutil.copy(DEFINITIONS, tmp_path / DEFINITIONS.name)
    rng = np.random.default_rng(0)
    for name in names:
        n = 19 * 30
        events = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n), np.sort(rng.integers(0, 5_000_000, n)))
        write_aedat2(tmp_path / "allusers_aedat" / f"{name}.aedat", events)
        rows = "".join(f"{k + 1},{k * 30},{(k + 1) * 30}\n" for k in range(19))
        (tmp_path / "tags_updated_19_08_2020" / f"{name}.csv").write_text("class,startTime_ev,endTime_ev\n" + rows)
    seen_test = set()
    for fold in range(4):
        cfg = C.load_config(
            C.PROJECT_ROOT / "configs" / "sl_animals.json",
            [f"data.root={tmp_path}", f"events.sl_animals.fold={fold}", "events.frames.n_frames=3",
             "events.frames.test_n_frames=3", "events.frames.downsample=16", "data.val_fraction=0.2"],
        )
        data = load_event_data(cfg, progress=False)
        train_r, val_r, test_r = (set(g.tolist()) for g in (data.groups_train, data.groups_val, data.groups_test))
        assert train_r and val_r and test_r
        assert not train_r & val_r and not train_r & test_r and not val_r & test_r
        assert data.metadata["fold"] == fold and data.x_train.shape[1:] == (3, 8 * 8 * 2)
        seen_test |= test_r
    assert seen_test == set(names)  # every recording is tested once over the folds


def test_cross_validation_configs_and_summary():
    from nengo_actions.crossval import fold_config, format_table, summarize_folds

    cfg = C.load_config(C.PROJECT_ROOT / "configs" / "sl_animals.json")
    one = fold_config(cfg, 2, True, "/tmp/cv")
    assert one.events.sl_animals.fold == 2 and one.events.sl_animals.reduced
    assert cfg.events.sl_animals.fold == 0 and one.name == "sl_animals-reduced-fold2"
    s = summarize_folds([{"test_clip_accuracy": 0.5}, {"test_clip_accuracy": 0.7}, {"test_clip_accuracy": None}])
    assert s["test_clip_accuracy"]["mean"] == pytest.approx(0.6) and s["test_clip_accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))  # sample std
    table = format_table({"n_folds": 4, "folds": [0, 1], "sets": {"full": {"summary": s}}})
    assert "| full | 60.00 +- 14.14% |" in table


def test_every_pool_of_the_schema_is_a_pooling_layer():
    from nengo_actions.networks import dvs_conv

    assert dvs_conv.POOLS is models.POOLS
    layers = {type(dvs_conv._pool_layer(tf, pool, f"pool_{pool}")) for pool in models.POOLS}
    assert layers == {tf.keras.layers.MaxPooling2D, tf.keras.layers.AveragePooling2D}


@pytest.mark.parametrize("kind", ["dvs_gesture_net", "sl_animals_net"])
def test_the_rate_and_the_direct_model_come_from_one_stage_list(kind):
    """Both routes read networks/stages.py: the same weight layers, in the same order,
    with the same shapes."""
    from nengo_actions.networks.dvs_conv import rate_model
    from nengo_actions.networks.dvs_direct import temporal_model
    from nengo_actions.networks.stages import stages_of

    m = models.ModelConfig()
    net = getattr(m, kind).replace(**({"channels": 4, "dense": 8} if kind == "dvs_gesture_net" else {"channels": (3, 5), "dense": 7}))
    stages = stages_of(kind, net, 3)
    shape = (32, 32, 2) if kind == "dvs_gesture_net" else (34, 34, 2)
    rate = rate_model(stages, shape)
    direct = temporal_model(stages, shape, m.dvs_conv)

    def kernels(model):
        return [(w.name.split("/")[0], tuple(w.shape)) for w in model.weights if "kernel" in w.name]

    assert kernels(rate) == kernels(direct) and len(kernels(rate)) == sum(s.kind in ("conv", "dense") for s in stages)
    assert rate.output_shape == (None, 3) and direct.output_shape == (None, None, 3)


def test_the_rate_route_refuses_batch_norm_after_dense_layers():
    cfg = C.load_config(overrides=["model.type=\"dvs_gesture_net\"", "model.dvs_conv.method=\"rate\"",
                                   "model.dvs_gesture_net.dense_batch_norm=true", "model.dvs_gesture_net.channels=2"])
    with pytest.raises(C.ConfigError, match=r"model\.dvs_gesture_net\.dense_batch_norm"):
        build_model("dvs_gesture_net", cfg.model, n_features=32 * 32 * 2, n_frames=2, n_classes=3)
