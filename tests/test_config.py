import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from nengo_actions import config as C


def write(tmp_path, obj, name="cfg.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def test_defaults_and_overrides(tmp_path):
    path = write(tmp_path, {"name": "x", "train": {"epochs": 3}})
    cfg = C.load_config(path, ["train.learning_rate=0.01", "frames.resize=[112,112]"])
    assert cfg.name == "x"
    assert cfg.train.epochs == 3
    assert cfg.train.learning_rate == 0.01
    assert cfg.frames.resize == (112, 112)
    # untouched keys keep their defaults
    assert cfg.seed == C.Config().seed
    assert cfg.source == str(path)


def test_override_int_to_float_and_string_fallback(tmp_path):
    cfg = C.load_config(write(tmp_path, {}), ["train.learning_rate=1", "name=run-a"])
    assert cfg.train.learning_rate == 1.0 and isinstance(
        cfg.train.learning_rate, float
    )
    assert cfg.name == "run-a"


def test_unknown_key_names_file_and_suggests(tmp_path):
    path = write(tmp_path, {"train": {"epoch": 3}})
    with pytest.raises(C.ConfigError) as e:
        C.load_config(path)
    msg = str(e.value)
    assert str(path) in msg and "'train.epoch'" in msg and "'train.epochs'" in msg


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(C.ConfigError, match=r"unknown key 'trian' \(did you mean 'train'"):
        C.load_config(write(tmp_path, {"trian": {}}))


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("train.epochs=abc", "'train.epochs' must be an integer"),
        ("train.epochs=true", "'train.epochs' must be an integer"),
        ("allow_pickle=1", "'allow_pickle' must be true or false"),
        ("train=3", "'train' must be an object"),
        ("nonsense", "expected KEY=VALUE"),
    ],
)
def test_wrong_types(tmp_path, override, fragment):
    with pytest.raises(C.ConfigError, match=fragment):
        C.load_config(write(tmp_path, {}), [override])


def test_choice_suggests_closest(tmp_path):
    with pytest.raises(C.ConfigError, match="did you mean 'uniform'"):
        C.load_config(write(tmp_path, {"frames": {"policy": "uniorm"}}))


def test_missing_path_names_key(tmp_path):
    path = write(tmp_path, {"features": {"weights": str(tmp_path / "nope.pth")}})
    with pytest.raises(C.ConfigError, match="'features.weights'.*nope.pth"):
        C.load_config(path)


def test_bad_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(C.ConfigError, match="bad.json: not valid JSON"):
        C.load_config(bad)
    with pytest.raises(C.ConfigError, match="config file not found"):
        C.load_config(tmp_path / "missing.json")


def test_seed_config_is_mapped_with_notes(tmp_path):
    seed = {
        "name": "SNN_action",
        "seed": 7,
        "data_path": "/data/UCF-101",
        "use_cuda": True,
        "save_dir": "saved/",
        "dataloader": {"batch_size": 16, "num_workers": 4, "img_x": 224, "img_y": 200},
        "pickle_locations": {
            "train_data": "a.pkl",
            "test_data": "b.pkl",
            "train_labels": "c.pkl",
            "test_labels": "d.pkl",
            "SNN_weights": "w",
        },
        "SNN": {"minibatch_size": 50},
        "SNN_trainer": {
            "epochs": 12,
            "import_CNN_forward_data": True,
            "get_initial_testing_accuracy": True,
            "do_SNN_training": True,
        },
    }
    cfg = C.load_config(write(tmp_path, seed))
    assert cfg.name == "SNN_action" and cfg.seed == 7
    assert cfg.data.dataset == "ucf101"
    assert cfg.data.videos_dir == "/data/UCF-101"
    assert cfg.data.root == "/data"
    assert cfg.features.device == "auto"
    assert cfg.train.minibatch_size == 50 and cfg.train.epochs == 12
    assert cfg.train.initial_accuracy is True
    assert cfg.frames.resize == (200, 224)
    assert cfg.features.seed_pickles["test_labels"] == "d.pkl"
    assert cfg.allow_pickle is False  # mapping never grants permission to unpickle
    notes = "\n".join(cfg.notes)
    for key in ("data_path", "use_cuda", "SNN_trainer.epochs", "do_SNN_training",
                "pickle_locations.SNN_weights", "dataloader.batch_size", "allow_pickle"):
        assert key in notes


def test_run_dir_holds_resolved_config(tmp_path):
    cfg = C.load_config(write(tmp_path, {"name": "demo", "save_dir": str(tmp_path / "runs")}))
    run = C.make_run_dir(cfg)
    again = C.make_run_dir(cfg, now=None)
    assert run != again and run.parent == again.parent == tmp_path / "runs"
    assert run.name.startswith("demo-")
    saved = json.loads((run / "config.json").read_text())
    assert saved == C.settings(cfg) and "_source" not in saved


def test_light_modules_do_not_import_tensorflow():
    code = (
        "import sys, nengo_actions, nengo_actions.config, nengo_actions.store, "
        "nengo_actions.splits; "
        "bad=[m for m in ('tensorflow','nengo','nengo_dl','torch') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_shipped_configs_are_valid():
    from nengo_actions.sweep import expand_trials, load_sweep_config

    paths = sorted((C.PROJECT_ROOT / "configs").glob("*.json"))
    assert any(p.name == "config.json" for p in paths)
    for path in paths:
        if path.name.startswith("sweep_"):
            assert expand_trials(load_sweep_config(path))
        else:
            C.load_config(path)


def _choices(section, key):
    return {f.name: f for f in dataclasses.fields(section)}[key].metadata["choices"]


def test_each_choice_list_has_one_owner_that_the_schema_and_the_implementation_read():
    """A choice added to the schema reaches the module that implements it (and the other way
    round): both read the same tuple, owned by the schema (standard library only, so the
    modules that need TensorFlow, PyTorch or NumPy can import it and not the reverse)."""
    from feature_extraction import frames as video_frames
    from nengo_actions.clips import metrics
    from nengo_actions.config import schema as S
    from nengo_actions.clips import streaming
    from nengo_actions.data import frames as event_frames

    from nengo_actions.config import events as E, models as M

    pairs = [
        (_choices(S.EvaluateConfig, "clip_method"), S.CLIP_METHODS, metrics.CLIP_METHODS),
        (_choices(S.DataConfig, "stream"), S.STREAM_CHOICES, streaming.STREAM_CHOICES),
        (_choices(S.FramesConfig, "policy"), S.FRAME_POLICIES, video_frames.POLICIES),
        (_choices(S.FramesConfig, "short_clips"), S.SHORT_CLIPS, video_frames.SHORT_CLIPS),
        (_choices(E.EventFramesConfig, "split_by"), E.SPLIT_BY, event_frames.SPLITS),
        (_choices(E.EventFramesConfig, "mode"), E.FRAME_MODES, event_frames.MODES),
        (_choices(E.EventFramesConfig, "remainder"), E.REMAINDERS, event_frames.REMAINDERS),
        (_choices(S.FeaturesConfig, "backbone"), S.BACKBONES, S.BACKBONES),
        (_choices(M.GestureNetConfig, "pool"), _choices(M.SLAnimalsNetConfig, "pool"), M.POOLS),
        (_choices(S.TrainConfig, "optimizer"), S.OPTIMIZERS, S.OPTIMIZERS),
        (_choices(S.TrainConfig, "schedule"), S.SCHEDULES, S.SCHEDULES),
    ]
    for in_schema, owner, implementation in pairs:
        assert in_schema is owner is implementation
    assert S.EvaluateConfig().energy_devices is S.ENERGY_DEVICES
    # the event frames' channels keep their own order ("first", "last"), the same two names
    assert set(_choices(E.EventFramesConfig, "channels")) == set(event_frames.CHANNELS)


def test_each_choice_of_the_schema_is_implemented():
    from feature_extraction.frames import FrameSampler
    from nengo_actions.clips import metrics
    from nengo_actions.evaluation import report
    from nengo_actions.config import events as E, schema as S
    from nengo_actions.data import ToFrames, make_events

    outputs = np.random.default_rng(0).random((2, 4, 3))
    for method in S.CLIP_METHODS:
        assert metrics.clip_scores(outputs, method).shape == (2, 3)
        assert report.clip_method_text(S.EvaluateConfig(clip_method=method))
    for policy in S.FRAME_POLICIES:
        for short in S.SHORT_CLIPS:
            assert len(FrameSampler(policy, 4, short)(8))
    events = make_events(x=[0, 1, 2, 3], y=[0, 1, 0, 1], p=[1, 0, 1, 1], t=[0, 10, 20, 30])
    for split_by in E.SPLIT_BY:
        for mode in E.FRAME_MODES:
            for remainder in E.REMAINDERS:
                frames = ToFrames(sensor_size=(4, 2, 2), n_frames=2, split_by=split_by, mode=mode, remainder=remainder,
                                  time_window=20.0 if split_by == "window" else None, channels="last")
                assert frames(events).shape == (2, 2, 4, 2)


def test_one_dotted_getter_serves_config_and_registry():
    from nengo_actions.config import registry

    cfg = C.load_config(overrides=["model.lmu.order=3"])
    assert C.get(cfg, "model.lmu.order") == registry.lookup(cfg, "model.lmu.order") == 3
    assert C.get(cfg.model, "lmu.order") == 3
    with pytest.raises(AttributeError):
        C.get(cfg, "model.lmu.no_such_key")
