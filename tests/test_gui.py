"""The Nengo GUI command: model script, trained parameters, reduced copies, the page."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nengo_actions import gui, store
from nengo_actions.config import PROJECT_ROOT, load_config

N_FEATURES, N_CLASSES, N_STEPS = 12, 3, 5


def make_store(tmp_path, n_clips=6):
    rng = np.random.default_rng(1)
    store_dir = tmp_path / "store"
    store.save_split(
        store.split_path(store_dir, "test"),
        rng.uniform(-1, 1, size=(n_clips, N_STEPS, N_FEATURES)).astype(np.float32),
        np.arange(n_clips) % N_CLASSES,
        [f"Class{i % N_CLASSES}/v_{i}" for i in range(n_clips)],
        np.arange(n_clips) + 1,
        {"class_names": ["jump", "run", "wave"]},
    )
    return store_dir


def write_config(tmp_path, model, name="gui_test"):
    cfg = {"name": name, "seed": 3, "features": {"store_dir": str(make_store(tmp_path))}, "model": model,
           "save_dir": str(tmp_path / "runs")}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def standin_build(cfg, n_features, n_classes, n_steps, spiking=None, steps_per_frame=1):
    """A network of Nengo's own EnsembleArray with decoded connections (the builder
    protocol's tuple form), to check parameter freezing against NengoDL."""
    import nengo

    from nengo_actions.neurons.types import parse_neuron_type

    ea_cfg = cfg.model.ensemble_array
    n = ea_cfg.n_ensembles
    with nengo.Network(label="stand-in", seed=cfg.seed) as net:
        inp = nengo.Node(np.zeros(n_features), label="features")
        ea = nengo.networks.EnsembleArray(
            ea_cfg.n_neurons, n, neuron_type=parse_neuron_type(ea_cfg.neuron_type), label="array"
        )
        nengo.Connection(
            inp, ea.input, synapse=None,
            transform=nengo.transforms.Dense((n, n_features), init=nengo.dists.Uniform(-0.3, 0.3)),
        )
        out = nengo.Node(size_in=n_classes, label="scores")
        nengo.Connection(
            ea.output, out, synapse=None,
            transform=nengo.transforms.Dense((n_classes, n), init=nengo.dists.Uniform(-0.5, 0.5)),
        )
        probe = nengo.Probe(out, synapse=None)
    return net, inp, probe


def save_random_params(cfg, path, seed=0, build=standin_build):
    """Build ``cfg``'s model in NengoDL, move every parameter, save it (as training
    would), and return the NengoDL simulator's own output on the GUI's clips."""
    from nengo_actions.compat import nengo_dl, tf

    info = gui.data_info(cfg)
    parts = gui.unpack(build(cfg, N_FEATURES, N_CLASSES, N_STEPS))
    net, inp, probe = parts.network, parts.input, parts.output
    rng = np.random.default_rng(seed)
    with nengo_dl.Simulator(net, minibatch_size=1, progress_bar=False) as sim:
        tf.keras.backend.batch_set_value(
            [(w, w.numpy() + rng.normal(0, 0.2, size=w.shape)) for w in sim.keras_model.weights]
        )
        sim.save_params(str(path))
        frames = info.clips.reshape(1, -1, N_FEATURES)
        reference = sim.predict({inp: frames}, n_steps=frames.shape[1])[probe][0]
    return reference


def test_trained_params_reach_the_nengo_model(tmp_path):
    """The GUI's plain Nengo model computes what NengoDL computes with the saved params."""
    import nengo

    path = write_config(tmp_path, {"type": "ensemble_array", "ensemble_array": {"n_ensembles": 6, "n_neurons": 30, "neuron_type": "LIFRate"}})
    cfg = load_config(path)
    reference = save_random_params(cfg, tmp_path / "trained")
    script, model = gui.prepare(cfg, tmp_path / "gui", params=tmp_path / "trained.npz", build=standin_build)
    assert script.name == "model.py" and not model.note
    # 6 ensembles, their 6 decoded connections, the input projection and the readout
    assert model.n_params == 6 + 6 + 2
    with nengo.Simulator(model.model, progress_bar=False) as sim:
        sim.run_steps(reference.shape[0])
    out = sim.data[model.probes["output"]]
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(out, reference, atol=2e-4 * np.abs(reference).max())
    # The script nengo-gui runs rebuilds the same model from the folder.
    again = gui.load_gui_model(tmp_path / "gui", build=standin_build)
    with nengo.Simulator(again.model, progress_bar=False) as sim2:
        sim2.run_steps(reference.shape[0])
    np.testing.assert_allclose(sim2.data[again.probes["output"]], out)


def train_like_params(cfg, path, seed=0):
    """Save moved parameters of ``cfg``'s model in the train command's format (with the
    engine that training uses) and return the engine's per-frame outputs on the first
    test clip."""
    from nengo_actions.engine.simulator import Engine

    info = gui.data_info(cfg)
    engine = Engine(gui.build_configured(cfg, N_FEATURES, N_CLASSES, N_STEPS), minibatch_size=1)
    rng = np.random.default_rng(seed)
    engine.set_params([v + rng.normal(0, 0.2, size=v.shape) for v in engine.get_params()])
    engine.save_params(path)
    reference = engine.predict(info.clips[:1])[0]
    engine.close()
    return reference


@pytest.mark.parametrize("model", [
    {"type": "ensemble_array", "ensemble_array": {
        "n_ensembles": 8, "n_neurons": 10, "neuron_type": "RectifiedLinear", "input_synapses": [0, 2]}},
    {"type": "lmu", "lmu": {"units": 16, "order": 3, "neuron_type": "LIFRate"}},
], ids=["ensemble_array", "lmu"])
def test_trained_project_models_match_the_engine(tmp_path, model):
    """The project's networks (sparse, dense and recurrent weights) trained values, saved
    by the engine as the train command saves them, frozen into plain Nengo."""
    import nengo

    cfg = load_config(write_config(tmp_path, model))
    (tmp_path / "run" / cfg.model.type).mkdir(parents=True)
    reference = train_like_params(cfg, tmp_path / "run" / cfg.model.type / "params_best.npz")
    script, model = gui.prepare(cfg, tmp_path / "gui", params=tmp_path / "run")  # a run folder
    with nengo.Simulator(model.model, progress_bar=False) as sim:
        sim.run_steps(N_STEPS)
    out = sim.data[model.probes["output"]]
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(out, reference, atol=2e-4 * np.abs(reference).max())


def test_engine_params_of_another_model_are_rejected(tmp_path):
    model = {"type": "ensemble_array", "ensemble_array": {"n_ensembles": 8, "n_neurons": 10}}
    cfg = load_config(write_config(tmp_path, model))
    train_like_params(cfg, tmp_path / "params_best.npz")
    other = load_config(write_config(tmp_path, model), ["model.ensemble_array.n_ensembles=9"])
    with pytest.raises(gui.GuiError, match=r"params_best.npz: parameters of a different model \(ensemble_array\.n_ensembles: file 8 vs model 9\)"):
        gui.prepare(other, tmp_path / "gui", params=tmp_path / "params_best.npz")
    assert not (tmp_path / "gui").exists()


def test_reduced_copy_takes_the_leading_block_of_trained_values(tmp_path):
    path = write_config(tmp_path, {"type": "ensemble_array", "ensemble_array": {"n_ensembles": 40, "n_neurons": 10, "neuron_type": "LIFRate"}})
    cfg = load_config(path)
    save_random_params(cfg, tmp_path / "trained")
    info = gui.data_info(cfg)
    full = gui.frozen_params(standin_build(cfg, N_FEATURES, N_CLASSES, N_STEPS), tmp_path / "trained.npz")
    script, model = gui.prepare(cfg, tmp_path / "gui", params=tmp_path / "trained.npz", build=standin_build,
                                max_ensembles=20, reduced_ensembles=4, info=info)
    assert script.name == "model_reduced.py"
    assert model.note.startswith("reduced copy: 4 of 40 ensembles")
    assert model.note in model.model.label
    assert any(n.label == model.note for n in model.model.all_nodes)  # drawn on the canvas
    ea = model.model.networks[0]
    assert len(ea.ensembles) == 4
    keys = gui.ensemble_keys(model.model)
    for ens in ea.ensembles:
        np.testing.assert_array_equal(ens.bias, full[f"{keys[ens]}/bias"])
    conns = gui.connection_keys(model.model)
    (readin,) = [c for c in conns if c.post_obj is ea.input]
    (readout,) = [c for c in conns if c.pre_obj is ea.output]
    np.testing.assert_array_equal(readin.transform.init, full[f"{conns[readin]}/weights"][:4])
    np.testing.assert_array_equal(readout.transform.init, full[f"{conns[readout]}/weights"][:, :4])


def test_params_from_another_model_are_rejected(tmp_path):
    path = write_config(tmp_path, {"type": "ensemble_array", "ensemble_array": {"n_ensembles": 6, "n_neurons": 30, "neuron_type": "LIFRate"}})
    save_random_params(load_config(path), tmp_path / "trained")
    other = load_config(path, ["model.ensemble_array.n_neurons=20"])
    with pytest.raises(gui.GuiError, match="trained.npz: .*saved from another model"):
        gui.prepare(other, tmp_path / "gui", params=tmp_path / "trained.npz", build=standin_build)
    assert not (tmp_path / "gui" / "model.py").exists()
    with pytest.raises(gui.GuiError, match="no such file"):
        gui.prepare(other, tmp_path / "gui", params=tmp_path / "missing.npz", build=standin_build)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(gui.GuiError, match="not a readable .npz"):
        gui.prepare(other, tmp_path / "gui", params=tmp_path / "junk.npz", build=standin_build)


def test_missing_feature_store_is_a_clear_error(tmp_path):
    cfg = load_config(write_config(tmp_path, {"type": "lmu"}), [f"features.store_dir={json.dumps(str(tmp_path / 'none'))}"])
    with pytest.raises(gui.GuiError, match="no feature store.*run `python -m nengo_actions.train`"):
        gui.prepare(cfg, tmp_path / "gui")


# ---------------------------------------------------------------------------------------
# The page, in headless Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
URL = re.compile(r"(http://127\.0\.0\.1:\d+/\?token=[0-9a-f]+)")
OBJECT = re.compile(r'<g class="[^"]*" data-object-type="(\w+)"[^>]*><text[^>]*>([^<]*)</text>')


def load_page(url, profile):
    """The page's DOM after Chromium ran it for 15 s of virtual time: ``(title, console
    errors, {label: object type})`` of the objects drawn on the canvas."""
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    ).stdout
    title = re.search(r"<title>([^<]*)</title>", dom)
    # nengo-gui builds the model's simulator when the page opens; errors land here
    error = re.search(r'<pre id="console_error">(.*?)</pre>', dom, re.S)
    assert error is not None, dom[:2000]
    objects = {label: kind for kind, label in OBJECT.findall(dom)}
    return (title.group(1) if title else ""), error.group(1).strip(), objects


def serve_and_load(config_path, out_dir, expected, extra=()):
    """Start the GUI command on a free 127.0.0.1 port and load its page in Chromium
    until the ``expected`` labels are drawn (the server sends the objects of opened
    networks one message at a time, which on a busy machine can outlast one load).

    Returns ``(title, {label: object type})``; fails on any model error on the page.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "nengo_actions.gui", "-c", str(config_path), "--port", "0", "--no-browser",
         "--out", str(out_dir), *extra],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        lines, url, deadline = [], None, time.monotonic() + 180
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = URL.search(line)
            url = match.group(1) if match else None
        assert url, "no URL from the GUI command:\n" + "".join(lines)
        for attempt in range(3):
            title, error, objects = load_page(url, out_dir / f"chromium-profile-{attempt}")
            assert error == "", error
            if set(expected) <= set(objects):
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return title, objects


pytestmark_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install -y chromium)"
)


@pytestmark_chromium
def test_page_shows_a_reduced_ensemble_array(tmp_path):
    path = write_config(
        tmp_path,
        {"type": "ensemble_array", "ensemble_array": {"n_ensembles": 500, "n_neurons": 50}},
    )
    note = "reduced copy: 16 of 500 ensembles (800 of 25,000 neurons), the full model is too large to draw; the output sums only these 16"
    title, objects = serve_and_load(path, tmp_path / "gui", expected=[note, "ensembles", "output"])
    assert title == "model_reduced.py"
    assert objects.get(note) == "node"
    # the classifier's own objects, inside its (opened) network
    for label in ("input", "ensemble_input", "ensemble_output", "output"):
        assert objects.get(label) == "node", (label, objects)
    assert objects.get("ensembles") == "ensemble"
    # what the GUI adds to watch
    assert objects.get("clip and class") == "node"
    assert objects.get(f"input (first 8 of {N_FEATURES} features)") == "node"


@pytestmark_chromium
def test_page_shows_an_lmu(tmp_path):
    path = write_config(tmp_path, {"type": "lmu_spiking", "lmu": {"units": 30, "order": 2}})
    title, objects = serve_and_load(path, tmp_path / "gui", expected=["memory", "hidden"])
    assert title == "model.py"
    # the LMU's spiking memory and hidden layers, inside its (opened) network
    assert objects.get("memory") == "ensemble" and objects.get("hidden") == "ensemble", objects
    assert objects.get("lmu") == "network"
    assert objects.get("clip and class") == "node"


def listening_addresses(port):
    """Local IPv4 addresses with a socket listening on ``port`` (from /proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.append(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
def test_the_server_listens_on_localhost_only_and_wants_its_token(tmp_path):
    import http.client

    path = write_config(tmp_path, {"type": "lmu", "lmu": {"units": 6, "order": 2}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "nengo_actions.gui", "-c", str(path), "--port", "0", "--no-browser",
         "--out", str(tmp_path / "gui")],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        lines, url = [], None
        for line in proc.stdout:
            lines.append(line)
            match = URL.search(line)
            if match:
                url = match.group(1)
                break
        assert url, "".join(lines)
        port, token = int(url.split(":")[2].split("/")[0]), url.split("token=")[1]
        assert listening_addresses(port) == ["127.0.0.1"]

        def get(resource):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", resource)
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            conn.close()
            return response.status, body

        assert get("/")[0] != 200  # no token
        assert get("/?token=" + "0" * len(token))[0] != 200  # a wrong one
        status, body = get(f"/?token={token}")
        assert status == 200 and "nengo" in body.lower()
        status, _ = get("/")  # a new client without the token's session
        assert status in (302, 303, 307)  # sent to the login page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
