"""The registry: every list of model types and datasets comes from it, and a model
registered from outside the package is configured and built like the others."""

import dataclasses
import json

import nengo
import numpy as np
import pytest

from nengo_actions.config import registry
from nengo_actions.config import ConfigError, load_config, make_run_dir
from nengo_actions.networks import BuiltNetwork, build_model, model_is_spiking
from nengo_actions.config.models import DVSConvConfig
from nengo_actions.config.section import Section, setting


def build_readout(args, *, gain=1.0):
    """A linear readout: the smallest network a builder can return (it takes no sections)."""
    with nengo.Network(seed=args.seed) as net:
        inp = nengo.Node(size_in=args.n_features)
        out = nengo.Node(size_in=args.n_classes)
        nengo.Connection(inp, out, transform=np.full((args.n_classes, args.n_features), 1e-3 * gain))
        probe = nengo.Probe(out)
    return BuiltNetwork(network=net, input=inp, output=probe, n_classes=args.n_classes,
                        description=f"readout, gain {gain}")


@dataclasses.dataclass(frozen=True)
class GainedReadoutConfig(Section):
    """The settings a model registered from outside brings with it."""

    gain: float = setting(1.0, above=0)
    label: str = setting("readout")


def build_gained_readout(section, args):
    """The README's example: an input node (the engine feeds it one frame per step) and a
    trainable linear readout."""
    with nengo.Network(seed=args.seed) as net:
        inp = nengo.Node(np.zeros(args.n_features))
        out = nengo.Node(size_in=args.n_classes)
        nengo.Connection(inp, out, transform=np.full((args.n_classes, args.n_features), 1e-3 * section.gain))
        probe = nengo.Probe(out)
    return BuiltNetwork(network=net, input=inp, output=probe, n_classes=args.n_classes,
                        description=f"{section.label}, gain {section.gain}")


@pytest.fixture
def gained_readout():
    entry = registry.register_model(
        registry.ModelType("gained_readout", f"{__name__}:build_gained_readout", ("gained_readout",)),
        sections={"gained_readout": GainedReadoutConfig},
    )
    yield entry
    del registry.MODELS["gained_readout"], registry.SECTIONS["gained_readout"]


@pytest.fixture
def readout():
    entry = registry.register_model(registry.ModelType("readout", f"{__name__}:build_readout", options={"gain": 2.0}))
    yield entry
    del registry.MODELS["readout"]


def test_the_shipped_types_are_registered_and_configs_check_against_them(tmp_path):
    assert set(registry.model_names()) >= {"ensemble_array", "lmu", "lmu_spiking", "keras_lmu", "dvs_gesture_net", "sl_animals_net"}
    assert {n for n, d in registry.DATASETS.items() if d.inputs == "events"} == {"dvs128_gesture", "sl_animals", "synthetic_gestures"}
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"type": "lmu_spikin"}}))
    with pytest.raises(ConfigError, match=r"model\.type.*did you mean 'lmu_spiking'"):
        load_config(path)


def test_a_registered_model_is_valid_in_configs_and_built_with_its_options(tmp_path, readout):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"type": "readout"}}))
    cfg = load_config(path)
    built = build_model("readout", cfg.model, n_features=4, n_classes=3, n_frames=2)
    assert built.description == "readout, gain 2.0"  # the registered options reach the builder
    assert built.signature == {"model": "readout", "n_features": 4, "n_classes": 3, "gain": 2.0}
    with nengo.Simulator(built.network, progress_bar=False) as sim:
        sim.run_steps(1)
    assert sim.data[built.output].shape == (1, 3)
    assert not model_is_spiking("readout", cfg.model)
    assert not registry.trains_directly("readout", cfg.model)


def test_bad_registrations_are_refused():
    with pytest.raises(ValueError, match="module:function"):
        registry.ModelType("x", "no_colon")
    with pytest.raises(ValueError, match="inputs"):
        registry.ModelType("x", "a:b", inputs="pixels")
    with pytest.raises(ValueError, match="sections"):
        registry.ModelType("x", "a:b", sections="lmu")
    with pytest.raises(ValueError, match="unknown trainer 'keras'"):
        registry.ModelType("x", "a:b", trainer_key=("dvs_conv.method", {"direct": "keras"}))
    with pytest.raises(ValueError, match="trainer_key must be"):
        registry.ModelType("x", "a:b", trainer_key=("dvs_conv.method", "direct"))
    with pytest.raises(ValueError, match="stages must be 'module:function'"):
        registry.ModelType("x", "a:b", stages="gesture_stages")


def test_the_registry_picks_each_model_s_trainer_from_its_settings():
    """A DVS net trains with NengoDL when it is rate-trained and converted, with Keras
    through time when it is trained directly; the other types always with NengoDL."""
    rate = load_config(overrides=['model.dvs_conv.method="rate"']).model
    direct = load_config(overrides=['model.dvs_conv.method="direct"']).model
    for name in ("dvs_gesture_net", "sl_animals_net"):
        assert registry.MODELS[name].trainer_for(rate) == "nengo_dl"
        assert registry.MODELS[name].trainer_for(direct) == "keras_bptt" and registry.trains_directly(name, direct)
    assert registry.trainer("dvs_gesture_net", direct).__name__ == "DirectEngine"
    assert registry.trainer("dvs_gesture_net", rate).__name__ == registry.trainer("lmu", direct).__name__ == "Engine"


def test_a_model_registered_with_its_own_settings_is_configured_like_the_shipped_ones(tmp_path, gained_readout):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"type": "gained_readout", "gained_readout": {"gain": 3}}}))
    cfg = load_config(path, ['model.gained_readout.label="mine"'])
    assert cfg.model.gained_readout == GainedReadoutConfig(gain=3.0, label="mine")
    assert cfg.model.lmu.order == 2  # the schema's sections as before
    built = build_model("gained_readout", cfg.model, n_features=4, n_classes=3, n_frames=2)
    assert built.description == "mine, gain 3.0"
    assert built.signature == {"model": "gained_readout", "n_features": 4, "n_classes": 3,
                               "gained_readout": {"gain": 3.0, "label": "mine"}}
    # the run folder's config holds the section and loads back to the same config
    saved = make_run_dir(cfg.replace(save_dir=str(tmp_path / "runs"))) / "config.json"
    assert json.loads(saved.read_text())["model"]["gained_readout"] == {"gain": 3.0, "label": "mine"}
    assert load_config(saved).model == cfg.model
    # defaults when the config does not name the section; its keys are checked by name
    (tmp_path / "plain.json").write_text(json.dumps({"model": {"type": "gained_readout"}}))
    assert load_config(tmp_path / "plain.json").model.gained_readout == GainedReadoutConfig()
    with pytest.raises(ConfigError, match=r"c\.json: unknown key 'model\.gained_readout\.gian' \(did you mean 'model\.gained_readout\.gain'"):
        path.write_text(json.dumps({"model": {"gained_readout": {"gian": 2}}}))
        load_config(path)
    with pytest.raises(ConfigError, match=r"--set model\.gained_readout\.gain=0: key 'model\.gained_readout\.gain' must be more than 0"):
        load_config(tmp_path / "plain.json", ["model.gained_readout.gain=0"])
    with pytest.raises(ConfigError, match=r"did you mean 'model\.gained_readout'"):
        load_config(tmp_path / "plain.json", ["model.gained_readot.gain=2"])


def test_a_registered_model_is_trained_and_evaluated_by_the_engine(tmp_path, gained_readout):
    """The train command's per-model step takes the registered model as it takes the shipped
    ones: trained from an uninformative start to a separable task, then its parameters
    checked against its settings."""
    from nengo_actions.errors import ParamsError
    from nengo_actions.experiment import run_model
    from nengo_actions.clips.feature_data import ClipData

    rng = np.random.default_rng(0)

    def clips(n):  # the class is which of two features is high
        y = np.arange(n) % 2
        x = rng.normal(0, 0.1, (n, 3, 4)).astype(np.float32)
        x[np.arange(n), :, y] += 1.0
        return x, y

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = clips(32), clips(8), clips(16)
    groups = lambda n: np.array(["g"] * n)  # noqa: E731
    data = ClipData(x_train, y_train, x_val, y_val, x_test, y_test, groups(32), groups(8), groups(16),
                    ["a", "b"], tmp_path, {})
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"type": "gained_readout"}}))
    cfg = load_config(path, ["train.epochs=5", "train.learning_rate=0.05", "train.minibatch_size=8",
                             "train.tensorboard=false", 'evaluate.energy_devices=["cpu"]'])
    result = run_model("gained_readout", cfg, data, tmp_path / "run", log=lambda s: None)
    assert result.metrics["initial_val_clip_accuracy"] == 0.5  # equal weights: every clip scores the same
    assert result.metrics["test_clip_accuracy"] >= 0.9
    other = cfg.replace(model=cfg.model.replace(registered={"gained_readout": GainedReadoutConfig(gain=2.0)}))
    with pytest.raises(ParamsError, match=r"gained_readout\.gain"):
        run_model("gained_readout", other, data, tmp_path / "again", params=tmp_path / "run" / "params_best.npz",
                  log=lambda s: None)


@dataclasses.dataclass(frozen=True)
class TinyEventNetConfig(Section):
    """The settings of an event model registered from outside (the README's second example)."""

    channels: int = setting(4, low=1)
    frame_shape: tuple = setting(())


def tiny_event_stages(net, n_classes):
    """conv3x3 - LIF - avgpool 2 - dense classes - LIF."""
    from nengo_actions.networks.stages import Stage

    return [Stage("conv", "conv0", net.channels), Stage("lif", "lif_conv0"), Stage("pool", "pool0", 2, pool="avg"),
            Stage("flatten", "flatten"), Stage("dense", "fc0", n_classes), Stage("lif", "lif_fc0")]


@pytest.fixture
def tiny_event_net():
    entry = registry.register_model(
        registry.ModelType(
            "tiny_event_net", "nengo_actions.networks.dvs_conv:build_staged_net", ("tiny_event_net", "dvs_conv"),
            inputs="events", stages=f"{__name__}:tiny_event_stages", spiking_key="dvs_conv.spiking_neuron_type",
            trainer_key=("dvs_conv.method", {"direct": "keras_bptt"}),
        ),
        sections={"tiny_event_net": TinyEventNetConfig, "dvs_conv": DVSConvConfig},  # the shipped section, shared
    )
    yield entry
    del registry.MODELS["tiny_event_net"], registry.SECTIONS["tiny_event_net"]


@pytest.mark.parametrize("method", ["direct", "rate"])
def test_a_registered_event_model_trains_through_both_trainers(tmp_path, tiny_event_net, method):
    """A plugin's stage list is the whole description of its network: trained directly
    with spikes (Keras through time) or as rates in NengoDL, then run spiking as a Nengo
    network, on events that sit in the left or the right half of the frame."""
    from nengo_actions.clips.feature_data import ClipData
    from nengo_actions.experiment import run_model

    rng = np.random.default_rng(3)

    def clips(n, side=8, steps=4):
        y = np.arange(n) % 2
        x = rng.poisson(0.2, (n, steps, side, side, 2)).astype(np.float32)
        for i, label in enumerate(y):
            x[i, :, :, slice(0, side // 2) if label == 0 else slice(side // 2, side)] += rng.poisson(1.5, (steps, side, side // 2, 2))
        return x.reshape(n, steps, -1), y

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = clips(24), clips(8), clips(16)
    groups = lambda n: np.array(["u"] * n)  # noqa: E731
    data = ClipData(x_train, y_train, x_val, y_val, x_test, y_test, groups(24), groups(8), groups(16),
                    ["left", "right"], tmp_path, {"frame_shape": [8, 8, 2]})
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": {"dataset": "dvs128_gesture"}, "model": {"type": "tiny_event_net", "dvs_conv": {"method": method}}}))
    cfg = load_config(path, ["train.epochs=8", "train.learning_rate=0.02", "train.minibatch_size=8", "train.loss=\"mse\"",
                             "train.standardize=false", "train.tensorboard=false", 'evaluate.energy_devices=["cpu"]',
                             "evaluate.steps_per_frame=[1]", "evaluate.spiking_steps_per_frame=1"])
    m = run_model("tiny_event_net", cfg, data, tmp_path / "run", log=lambda s: None).metrics
    # directly trained, the Nengo network at 1 step per frame is the model trained; the
    # rate-trained one is judged as trained (its spiking form needs more steps per frame)
    assert m["spiking_test_clip_accuracy" if method == "direct" else "test_clip_accuracy"] >= 0.9
    assert {"firing_rate_hz_conv0", "firing_rate_hz_fc0"} <= set(m)


def test_a_registered_section_cannot_take_a_schema_name_or_go_unnamed():
    with pytest.raises(ValueError, match="'lmu' cannot name a section"):
        registry.register_model(registry.ModelType("x", "a:b", ("lmu",)), sections={"lmu": GainedReadoutConfig})
    with pytest.raises(ValueError, match="not in its sections"):
        registry.register_model(registry.ModelType("x", "a:b"), sections={"x": GainedReadoutConfig})
    with pytest.raises(ValueError, match="must be a nengo_actions.config.section.Section"):
        registry.register_model(registry.ModelType("x", "a:b", ("x",)), sections={"x": dict})
    assert "x" not in registry.MODELS and "x" not in registry.SECTIONS


def open_recorded(cfg, root, cache_dir, **reader):
    """A stand-in reader: records what the registry's caller passes."""
    return {"train": ("train", cfg.data.dataset, root, cache_dir, reader), "test": None}


def test_an_event_dataset_is_opened_by_its_registered_reader(tmp_path):
    from nengo_actions.data.prepare import open_event_splits
    from nengo_actions.clips.event_data import is_event_dataset

    registry.register_dataset(registry.DatasetType("recorded", "events", f"{__name__}:open_recorded", split_unit="recording"))
    try:
        path = tmp_path / "c.json"
        path.write_text(json.dumps({"data": {"dataset": "recorded", "root": str(tmp_path / "rec")}}))
        cfg = load_config(path, ["events.allow_truncated=true"])
        assert is_event_dataset(cfg)
        splits = open_event_splits(cfg, progress=False)
        assert splits["train"] == ("train", "recorded", tmp_path / "rec", tmp_path / "rec" / "cache" / "recorded",
                                   {"allow_truncated": True, "progress": False})
    finally:
        del registry.DATASETS["recorded"]
    with pytest.raises(ConfigError, match=r"data\.dataset.*'recorded'"):
        load_config(path)


def test_bad_dataset_registrations_are_refused():
    with pytest.raises(ValueError, match="needs a reader"):
        registry.DatasetType("x", "events")
    with pytest.raises(ValueError, match="split_unit"):
        registry.DatasetType("x", "features", split_unit="speaker")


def test_the_report_reads_the_registry_when_it_is_used(readout):
    """The seed's UCF101 anchors go beside every model reading features, one registered
    after the report module was imported too."""
    from nengo_actions.evaluation import report

    assert report.shows_seed_anchors(["readout"]) and report.shows_seed_anchors(["dvs_gesture_net", "lmu"])
    assert not report.shows_seed_anchors(["dvs_gesture_net", "sl_animals_net"])
    assert "dvs_gesture_net" in registry.model_names(inputs="events") and "readout" not in registry.model_names(inputs="events")
    assert registry.model_names(inputs="features")[-1] == "readout" and registry.model_names()[-1] == "readout"
