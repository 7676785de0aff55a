"""Data-parallel training (train.distribute, --workers): the math of N replicas against
one process, the roles TF_CONFIG gives, and a multi-worker run killed and resumed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from nengo_actions import config as C
from nengo_actions.engine import distribute
from nengo_actions.engine import workers
from nengo_actions.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _tf_config(index, n=2, chief=False):
    cluster = {"worker": [f"localhost:{1000 + i}" for i in range(n)]}
    if chief:
        cluster["chief"] = ["localhost:999"]
    task = {"type": "chief", "index": 0} if index == "chief" else {"type": "worker", "index": index}
    return json.dumps({"cluster": cluster, "task": task})


def test_tf_config_gives_the_chief_and_the_number_of_workers(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config(0))
    assert distribute.is_chief("multi_worker") and distribute.workers("multi_worker") == 2
    monkeypatch.setenv("TF_CONFIG", _tf_config(1))
    assert not distribute.is_chief("multi_worker")
    assert distribute.is_chief("none") and distribute.workers("none") == 1  # TF_CONFIG only counts for multi_worker
    monkeypatch.setenv("TF_CONFIG", _tf_config(0, chief=True))  # with a chief task, worker 0 is not it
    assert not distribute.is_chief("multi_worker") and distribute.workers("multi_worker") == 3
    monkeypatch.setenv("TF_CONFIG", _tf_config("chief", chief=True))
    assert distribute.is_chief("multi_worker")


@pytest.mark.parametrize("text", ['{"cluster": {}}', "not json", _tf_config(0).replace('"index": 0', '"index": 5')])
def test_a_malformed_tf_config_is_named(monkeypatch, text):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        distribute.is_chief("multi_worker")


def test_the_local_workers_get_a_cluster_of_local_ports_and_a_share_of_the_threads():
    envs = workers.worker_environments(2, ports=[5001, 5002], environ={"PATH": "/bin"}, cpus=4)
    configs = [json.loads(env["TF_CONFIG"]) for env in envs]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": 0}, {"type": "worker", "index": 1}]
    assert configs[0]["cluster"] == {"worker": ["localhost:5001", "localhost:5002"]}
    assert all(env["TF_NUM_INTRAOP_THREADS"] == "2" and env["PATH"] == "/bin" for env in envs)
    assert workers.without_option(["-c", "x.json", "--workers", "2", "--set", "a=1"], "--workers") == ["-c", "x.json", "--set", "a=1"]
    assert workers.without_option(["--workers=2", "-c", "x"], "--workers") == ["-c", "x"]


def test_distribution_is_refused_for_nengo_dl_models_and_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    direct = lambda t: t == "dvs_gesture_net"  # noqa: E731
    cfg = C.load_config(overrides=['train.distribute="mirrored"'])  # the default config trains with NengoDL
    with pytest.raises(ConfigError, match=r"model '\w+' trains with NengoDL, which runs on one device.*Ray"):
        distribute.check(cfg, direct)
    gesture = C.PROJECT_ROOT / "configs" / "dvs128_gesture.json"
    with pytest.raises(ConfigError, match="needs TF_CONFIG.*--workers N"):
        distribute.check(C.load_config(gesture, ['train.distribute="multi_worker"']), direct)
    with pytest.raises(ConfigError, match=r"train.models.dvs_gesture_net.distribute: .* once"):
        distribute.check(C.load_config(gesture, ['train.models={"dvs_gesture_net": {"distribute": "mirrored"}}']), direct)
    with pytest.raises(ConfigError, match="train.distribute"):
        C.load_config(gesture, ['train.distribute="horovod"'])


# Two replicas on two logical CPUs of one process, against one replica: the same global
# minibatch, gradients summed over replicas, batch norm on the global batch. TensorFlow's
# logical devices are set before it starts, so this runs in its own process.
REPLICAS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, "tests")
    from test_dvs_direct import _halves, model_cfg
    from nengo_actions.config import schema
    from nengo_actions.engine.direct import DirectEngine
    from nengo_actions.errors import ConfigError
    from nengo_actions.networks.dvs_direct import build_temporal

    mc = model_cfg(plif=True)
    # no dropout: each replica would draw other masks
    mc = mc.replace(dvs_gesture_net=mc.dvs_gesture_net.replace(dropout=0.0))
    build = lambda: build_temporal("dvs_gesture_net", mc, n_features=x.shape[2], n_classes=2, seed=0)
    rng = np.random.default_rng(3)
    x, y = _halves(24, rng)
    settings = schema.TrainConfig(learning_rate=0.01, epochs=2, minibatch_size=8, loss="mse")

    def trained(strategy):
        net, replicated = build(), None
        if strategy is not None:
            with strategy.scope():
                replicated = build().keras_model
        engine = DirectEngine(net, 8, "cpu", 0, strategy, replicated)
        engine.compile(settings, len(x))
        losses = [engine.fit_epoch(x, y, epoch) for epoch in range(2)]
        return losses, engine.get_params(), engine

    one_losses, one, _ = trained(None)
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two_losses, both, engine = trained(two)
    assert engine.replicas == 2
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-4)
    start = build().keras_model.get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(one, start)) > 1e-3  # training moved the weights
    for a, b in zip(both, one):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    try:
        DirectEngine(build(), 7, "cpu", 0, two, None)
    except ConfigError as e:
        assert "train.minibatch_size 7" in str(e) and "multiple of 2" in str(e), e
    else:
        raise AssertionError("an odd minibatch over 2 replicas was accepted")
    print("OK")
""")


def test_two_replicas_train_as_one_process_on_the_same_global_minibatch():
    done = subprocess.run([sys.executable, "-c", REPLICAS_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


def _children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _worker_pid(launcher, index):
    """The pid of local worker ``index`` of a ``--workers`` launcher, read from /proc."""
    for pid in _children(launcher):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"TF_CONFIG=") and json.loads(item[10:])["task"]["index"] == index:
                return pid
    return None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker processes through /proc")
def test_two_local_workers_killed_mid_run_resume_to_the_end(tmp_path):
    from nengo_actions.data import SyntheticDigitSpec, ensure_synthetic_digits

    root = tmp_path / "digits"
    ensure_synthetic_digits(root, SyntheticDigitSpec(n_users=4, test_users=1, n_samples=48))
    epochs = 12
    settings = [
        f"data.root={root}", f"save_dir={tmp_path / 'runs'}", "events.frames.n_frames=4", "events.frames.downsample=4",
        "model.dvs_gesture_net.channels=4", "model.dvs_gesture_net.depth=2", "model.dvs_gesture_net.dense=16",
        f"train.epochs={epochs}", "train.minibatch_size=8", "evaluate.steps_per_frame=[1]",
        "evaluate.spiking_steps_per_frame=1", "train.tensorboard=false", 'evaluate.energy_devices=["loihi"]',
    ]
    args = ["-c", str(ROOT / "configs" / "dvs128_gesture.json")] + [a for s in settings for a in ("--set", s)]
    command = [sys.executable, "-m", "nengo_actions.train", *args, "--workers", "2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    launcher = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        history = None
        while time.monotonic() < deadline and launcher.poll() is None:
            found = list((tmp_path / "runs").glob("*/dvs_gesture_net/history.csv"))
            if found and len(found[0].read_text().splitlines()) >= 2:  # an epoch is on disk
                history = found[0]
                break
            time.sleep(0.2)
        assert history is not None, "the first epoch did not finish"
        os.kill(_worker_pid(launcher.pid, 1), signal.SIGKILL)
        out, _ = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    run_dir = history.parent.parent
    assert launcher.returncode != 0
    last = out.strip().splitlines()[-1]
    assert "training worker 1 of 2 ended with signal 9 (SIGKILL)" in last and f"--resume {run_dir} --workers 2" in last, out[-2000:]
    done_epochs = len(history.read_text().splitlines()) - 1
    assert 1 <= done_epochs < epochs and not (run_dir / "metrics.json").exists()

    resumed = subprocess.run([sys.executable, "-m", "nengo_actions.train", "--resume", str(run_dir), "--workers", "2"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming from epoch {done_epochs}" in resumed.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_workers"] == 2 and metrics["epochs_run"] == epochs
    assert len(history.read_text().splitlines()) == 1 + epochs
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]  # only the chief wrote a run folder


def test_one_replica_trains_to_the_digit_as_without_a_strategy(tmp_path):
    """``train.distribute: "mirrored"`` on a machine without GPUs is one replica (the
    CPU); its parameters and figures equal an undistributed run's."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_dvs_direct import _tiny_clips_and_config

    from nengo_actions.experiment import run_model
    from nengo_actions.params import read_params

    runs = {}
    for setting in ("none", "mirrored"):
        data, cfg = _tiny_clips_and_config(
            tmp_path, "train.epochs=2", "train.minibatch_size=4", "train.learning_rate=0.05",
            f'train.distribute="{setting}"', "evaluate.spiking=false")
        metrics = run_model("dvs_gesture_net", cfg, data, tmp_path / setting, log=lambda s: None).metrics
        runs[setting] = metrics, read_params(tmp_path / setting / "params_last.npz")[0]
    (m0, p0), (m1, p1) = runs["none"], runs["mirrored"]
    for a, b in zip(p0, p1):
        np.testing.assert_array_equal(a, b)
    assert {k: v for k, v in m0.items() if "second" not in k} == {k: v for k, v in m1.items() if "second" not in k}
