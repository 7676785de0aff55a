"""The registry: every list of model types and datasets comes from it, and a model
registered from outside the package is configured and built like the others."""

import json

import nengo
import numpy as np
import pytest

from nengo_actions import registry
from nengo_actions.config import ConfigError, load_config
from nengo_actions.networks import BuiltNetwork, build_model, model_is_spiking


def build_readout(args, *, gain=1.0):
    """A linear readout: the smallest network a builder can return (it takes no sections)."""
    with nengo.Network(seed=args.seed) as net:
        inp = nengo.Node(size_in=args.n_features)
        out = nengo.Node(size_in=args.n_classes)
        nengo.Connection(inp, out, transform=np.full((args.n_classes, args.n_features), 1e-3 * gain))
        probe = nengo.Probe(out)
    return BuiltNetwork(network=net, input=inp, output=probe, n_classes=args.n_classes,
                        description=f"readout, gain {gain}")


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
