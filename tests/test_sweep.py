"""Sweeps: grid expansion, seeds, validation before any trial, resume, backends, report."""

import csv
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nengo_actions import sweep
from nengo_actions.config import PROJECT_ROOT, ConfigError

# A stand-in for `python -m nengo_actions.train`, keeping its contract: it reads the
# config with the real loader (so bad keys fail as they would), writes a run folder with
# config.json and metrics.json and prints `run directory: PATH` last. Its accuracy is a
# known function of the neuron type and the seed, so the tables can be checked.
FAKE_TRAIN = textwrap.dedent(
    """
    import argparse, json, os, sys, time
    from nengo_actions import config as c

    p = c.add_config_arguments(argparse.ArgumentParser())
    cfg = c.load_config(*(lambda a: (a.config, a.overrides))(p.parse_args()))
    start = time.time()
    nt = cfg.model.lmu.neuron_type
    if nt == "Izhikevich":
        print("simulated failure", file=sys.stderr)
        sys.exit(3)
    # killed from outside: SpikingRectifiedLinear every time, Tanh on its first attempt;
    # the process itself, or with FAKE_TRAIN_KILL_PARENT the one that started it (a Ray worker)
    marker = os.path.join(cfg.save_dir, "killed-once")
    if nt == "SpikingRectifiedLinear" or (nt == "Tanh" and not os.path.exists(marker)):
        open(marker, "w").close()
        os.kill(os.getppid() if os.environ.get("FAKE_TRAIN_KILL_PARENT") else os.getpid(), 9)
        time.sleep(60)
    time.sleep(float(os.environ.get("FAKE_TRAIN_SLEEP", "0")))
    run = c.make_run_dir(cfg)
    base = {"LIF": 0.8, "LIFRate": 0.9}.get(nt, 0.5)
    acc = base + 0.01 * cfg.seed
    c.write_json_atomic(run / "metrics.json", {
        "test_clip_accuracy": acc, "spiking_test_clip_accuracy": acc - 0.05,
        "test_step_accuracy": acc - 0.1, "val_clip_accuracy": acc,
        "train_seconds": 2.0 + cfg.seed, "firing_rate_hz_ensembles": 100.0 * base,
        "rate_mode_firing_rate_hz_ensembles": 90.0 * base,
        "energy_loihi_joules_per_inference": 1e-6 * base, "energy_cpu_joules_per_inference": 1e-3,
        "lif.test_clip_accuracy": 0.1, "epochs": cfg.train.epochs,
        "note": "text values are left out of the tables",
        "start": start, "end": time.time(),
    })
    print("training done")
    print(f"run directory: {run}")
    """
)


@pytest.fixture
def fake_train(tmp_path):
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAIN)
    return (sys.executable, str(path))


def write_sweep(tmp_path, **cfg):
    cfg.setdefault("name", "t")
    cfg.setdefault("output_dir", str(tmp_path / "out"))
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(cfg))
    return path


NEURONS = {"model.lmu.neuron_type": ["LIF", "LIFRate"]}


def stand_in(calls=None):
    """A fast in-process trial: writes metrics.json the way the train command would."""

    def trial_fn(trial):
        if calls is not None:
            calls.append(trial.trial_id)
        run = Path(trial.trial_dir) / "run-0"
        run.mkdir(parents=True, exist_ok=True)
        nt = dict(trial.point).get("model.lmu.neuron_type", "LIF")
        acc = {"LIF": 0.8, "LIFRate": 0.9}.get(nt, 0.5) + 0.01 * trial.seed
        (run / "metrics.json").write_text(json.dumps({"test_clip_accuracy": acc, "train_seconds": 1.0}))
        return run

    return trial_fn


def test_grid_expansion_seeds_and_repeats(tmp_path):
    path = write_sweep(
        tmp_path,
        grid={"model.lmu.neuron_type": ["LIF", "RegularSpiking(LIFRate)"], "train.learning_rate": [0.01, 0.001]},
        repeats=2,
        seed=7,
    )
    trials = sweep.expand_trials(sweep.load_sweep_config(path))
    assert len(trials) == 2 * 2 * 2
    assert [t.seed for t in trials[:2]] == [7, 8]
    assert len({t.trial_id for t in trials}) == 8
    first = trials[0]
    assert dict(first.point) == {"model.lmu.neuron_type": "LIF", "train.learning_rate": 0.01}
    assert 'model.lmu.neuron_type="LIF"' in first.overrides
    assert "train.learning_rate=0.01" in first.overrides
    assert "seed=7" in first.overrides
    assert Path(first.trial_dir).parent == tmp_path / "out" / "trials"
    assert first.base_config == str(tmp_path / "out" / "base_config.json")
    # The same sweep gives the same ids (resume relies on it) ...
    again = sweep.expand_trials(sweep.load_sweep_config(path))
    assert [t.trial_id for t in again] == [t.trial_id for t in trials]
    # ... and a changed base setting gives new ones.
    path = write_sweep(tmp_path, grid=json.loads(path.read_text())["grid"], repeats=2, seed=7, base_settings={"train": {"epochs": 3}})
    changed = sweep.expand_trials(sweep.load_sweep_config(path))
    assert not {t.trial_id for t in changed} & {t.trial_id for t in trials}


def test_list_of_grids_and_linked_keys(tmp_path):
    path = write_sweep(
        tmp_path,
        grid=[
            {"model.lmu.neuron_type,model.lmu.hidden_neuron_type": ["LIF", "LIFRate"]},
            {"model.type": ["ensemble_array"], "model.ensemble_array.neuron_type": ["AdaptiveLIF"]},
        ],
    )
    trials = sweep.expand_trials(sweep.load_sweep_config(path))
    assert [t.label for t in trials] == ["LIF", "LIFRate", "ensemble_array / AdaptiveLIF"]
    assert 'model.lmu.neuron_type="LIF"' in trials[0].overrides
    assert 'model.lmu.hidden_neuron_type="LIF"' in trials[0].overrides


def test_set_overrides_on_the_sweep_config(tmp_path):
    path = write_sweep(tmp_path, grid=NEURONS)
    cfg = sweep.load_sweep_config(path, ['grid.model.lmu.neuron_type=["AdaptiveLIFRate"]', "repeats=3", "base_settings.train.epochs=2"])
    trials = sweep.expand_trials(cfg)
    assert [t.label for t in trials] == ["AdaptiveLIFRate"] * 3
    assert cfg.base_settings == {"train": {"epochs": 2}}
    with pytest.raises(ConfigError, match="did you mean 'repeats'"):
        sweep.load_sweep_config(path, ["repeat=3"])


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"grid": {"model.lmu.neuron_tpye": ["LIF"]}}, "unknown key 'model.lmu.neuron_tpye' .*did you mean 'model.lmu.neuron_type'"),
        ({"grid": {"model.lmu.neuron_type": ["LIF", "LIFF"]}}, "unknown neuron type 'LIFF'.*SpikingRectifiedLinear.*Izhikevich.*RegularSpiking"),
        ({"grid": {"model.lmu.neuron_type": ["RegularSpiking(LIF)"]}}, "needs a rate type.*RegularSpiking\\(LIFRate\\)"),
        ({"grid": NEURONS, "base_settings": {"model": {"ensemble_array": {"neuron_type": "Lif"}}}}, "base config: key 'model.ensemble_array.neuron_type'.*did you mean 'LIF'"),
        ({"grid": {"train.epochs": ["five"]}}, "'train.epochs' must be an integer"),
        ({"grid": {"seed": [1, 2]}}, "set by the sweep itself"),
        ({"grid": {"model.lmu.neuron_type": []}}, "non-empty list"),
        ({"grid": NEURONS, "repeats": 0}, "'repeats' must be at least 1"),
        ({"grid": NEURONS, "backend": "slurm"}, "'backend' must be one of process, ray"),
        ({"grid": NEURONS, "jbos": 2}, "unknown key 'jbos' .*did you mean 'jobs'"),
        ({"grid": NEURONS, "base": "configs/missing.json"}, "'base' names a file that does not exist"),
    ],
)
def test_bad_sweeps_fail_before_any_trial(tmp_path, cfg, message):
    calls = []
    with pytest.raises(ConfigError, match=message):
        sweep.run_sweep(sweep.load_sweep_config(write_sweep(tmp_path, **cfg)), trial_fn=stand_in(calls), progress=False)
    assert calls == []
    assert not (tmp_path / "out" / "trials").exists()


def test_resume_skips_finished_trials(tmp_path):
    cfg = sweep.load_sweep_config(write_sweep(tmp_path, grid=NEURONS, repeats=2))
    calls = []
    trials, rows = sweep.run_sweep(cfg, trial_fn=stand_in(calls), progress=False)
    assert len(calls) == 4 and all(r["status"] == "done" for r in rows)

    calls.clear()
    _, rows = sweep.run_sweep(cfg, trial_fn=stand_in(calls), progress=False)
    assert calls == []
    assert all(r["status"].startswith("skipped") for r in rows)

    # An interrupted trial (metrics.json half written) and a removed one run again.
    (Path(trials[1].trial_dir) / "run-0" / "metrics.json").write_text('{"test_clip_acc')
    (Path(trials[2].trial_dir) / "run-0" / "metrics.json").unlink()
    _, rows = sweep.run_sweep(cfg, trial_fn=stand_in(calls), progress=False)
    assert sorted(calls) == sorted([trials[1].trial_id, trials[2].trial_id])
    assert [r["metrics"]["test_clip_accuracy"] for r in rows] == pytest.approx([0.8, 0.81, 0.9, 0.91])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_parallel_processes_through_the_train_contract(tmp_path, fake_train, monkeypatch):
    monkeypatch.setenv("FAKE_TRAIN_SLEEP", "1.5")
    cfg = sweep.load_sweep_config(
        write_sweep(tmp_path, grid={"model.lmu.neuron_type": ["LIF", "LIFRate", "Izhikevich"]}, repeats=2, jobs=2,
                    base_settings={"train": {"epochs": 3}})
    )
    trials, rows = sweep.run_sweep(cfg, trial_fn=sweep.TrainCommandTrial(command=fake_train), progress=False)
    out = tmp_path / "out"
    by_label = {}
    for r in rows:
        by_label.setdefault(r["trial"].label, []).append(r)
    # Izhikevich fails in the stand-in: reported, and the others still ran.
    assert [r["status"] for r in by_label["Izhikevich"]] == ["failed", "failed"]
    assert "exit status 3" in by_label["Izhikevich"][0]["error"]
    assert "simulated failure" in by_label["Izhikevich"][0]["error"]
    done = by_label["LIF"] + by_label["LIFRate"]
    assert all(r["status"] == "done" for r in done)
    # base_settings and the seed reached the train command
    assert all(r["metrics"]["epochs"] == 3 for r in done)
    assert [r["metrics"]["test_clip_accuracy"] for r in by_label["LIF"]] == pytest.approx([0.8, 0.81])
    # The two slots ran at the same time.
    # The first trial ran alone (it may generate shared data), later ones two at a time.
    spans = sorted((r["metrics"]["start"], r["metrics"]["end"]) for r in done)
    assert all(spans[0][1] <= b[0] for b in spans[1:])
    assert any(b[0] < a[1] for a, b in zip(spans[1:], spans[2:]))
    # The run folder is inside the trial folder, with the resolved config.
    run_cfg = json.loads((out / done[0]["run_dir"] / "config.json").read_text())
    assert run_cfg["model"]["lmu"]["neuron_type"] == "LIF" and run_cfg["seed"] == 0

    table = read_csv(out / "results.csv")
    assert len(table) == 6
    assert table[0]["model.lmu.neuron_type"] == "LIF" and table[0]["seed"] == "0"
    assert float(table[1]["test_clip_accuracy"]) == pytest.approx(0.81)
    assert "note" not in table[0]  # non-numeric metrics are left out
    md = (out / "results.md").read_text()
    # mean +- sample std over the two seeds, in percent
    std = 100 * math.sqrt(((0.8 - 0.805) ** 2 + (0.81 - 0.805) ** 2) / 1)
    assert f"| `LIF` | 2/2 | 80.50 +- {std:.2f} | 75.50 +- {std:.2f}" in md
    assert "`Izhikevich` | 0/2" in md and "## Failed trials" in md
    for name in ("accuracy.png", "accuracy_vs_energy.png", "train_time.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in md


KILLED = {"model.lmu.neuron_type": ["LIF", "Tanh", "SpikingRectifiedLinear", "LIFRate"]}


def check_killed_trials(rows):
    by_label = {r["trial"].label: r for r in rows}
    assert [by_label[k]["status"] for k in ("LIF", "Tanh", "SpikingRectifiedLinear", "LIFRate")] == [
        "done", "done", "failed", "done"]  # retried once, recorded as failed, the rest finished
    return by_label["SpikingRectifiedLinear"]["error"]


def test_a_killed_trial_is_retried_then_recorded_and_the_sweep_finishes(tmp_path, fake_train):
    cfg = sweep.load_sweep_config(write_sweep(tmp_path, grid=KILLED, jobs=2))
    trials, rows = sweep.run_sweep(cfg, trial_fn=sweep.TrainCommandTrial(command=fake_train), progress=False)
    error = check_killed_trials(rows)
    assert "killed by SIGKILL in each of 2 attempt(s)" in error
    md = (tmp_path / "out" / "results.md").read_text()
    assert "killed by SIGKILL" in md and "`SpikingRectifiedLinear` | 0/1" in md
    log = (Path(trials[1].trial_dir) / "log.txt").read_text()
    assert "attempt 2: the last one was killed" in log and "run directory: " in log
    cfg = sweep.load_sweep_config(write_sweep(tmp_path, grid=KILLED, output_dir=str(tmp_path / "none"), retries=0))
    _, rows = sweep.run_sweep(cfg, trial_fn=sweep.TrainCommandTrial(command=fake_train, retries=0), progress=False)
    assert [r["status"] for r in rows] == ["done", "failed", "failed", "done"]


def test_command_line(tmp_path, fake_train, capsys):
    path = write_sweep(tmp_path, grid=NEURONS)
    assert sweep.main(["-c", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 trials (0 finished before)" in out and '--set model.lmu.neuron_type="LIFRate"' in out
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    with pytest.raises(SystemExit) as e:
        sweep.main(["-c", str(path), "--set", 'grid.model.lmu.neuron_type=["Lif"]'])
    assert e.value.code == 2 and "unknown neuron type 'Lif'" in capsys.readouterr().err
    # The real entry point: a bad sweep exits 2 with the message.
    bad = subprocess.run(
        [sys.executable, "-m", "nengo_actions.sweep", "-c", str(path), "--set", "jobs=0"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2 and "'jobs' must be at least 1" in bad.stderr


def test_ray_backend_local(tmp_path, fake_train):
    pytest.importorskip("ray")
    grid = {"model.lmu.neuron_type": ["LIF", "LIFRate", "Izhikevich"]}
    cfg = sweep.load_sweep_config(write_sweep(tmp_path, grid=grid, backend="ray", jobs=1))
    trials, rows = sweep.run_sweep(cfg, trial_fn=sweep.TrainCommandTrial(command=fake_train), progress=False)
    assert [r["status"] for r in rows] == ["done", "done", "failed"]
    assert [r["metrics"].get("test_clip_accuracy") for r in rows[:2]] == pytest.approx([0.8, 0.9])
    assert "TrialError" in rows[2]["error"] and "exit status 3" in rows[2]["error"]
    import ray

    assert not ray.is_initialized()  # the local Ray it started is shut down


def test_ray_reruns_a_trial_whose_worker_died(tmp_path, fake_train, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("FAKE_TRAIN_KILL_PARENT", "1")
    cfg = sweep.load_sweep_config(write_sweep(tmp_path, grid=KILLED, backend="ray", jobs=1))
    trials, rows = sweep.run_sweep(cfg, trial_fn=sweep.TrainCommandTrial(command=fake_train), progress=False)
    assert "WorkerCrashedError" in check_killed_trials(rows)


def learnable_store(folder, n_classes=4, per_class=10, frames=6, dim=16, seed=0):
    """A small feature store whose classes differ in their mean feature vector."""
    from nengo_actions import store

    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1, size=(n_classes, dim))
    for split, groups in (("train", range(1, 7)), ("test", range(7, 9))):
        labels = np.repeat(np.arange(n_classes), per_class if split == "train" else 3)
        feats = means[labels][:, None, :] + rng.normal(0, 0.3, size=(len(labels), frames, dim))
        group = np.resize(np.asarray(list(groups)), len(labels))
        store.save_split(
            store.split_path(folder, split), feats.astype(np.float32), labels,
            [f"C{c}/v_{split}_{i}" for i, c in enumerate(labels)], group,
            {"class_names": [f"C{c}" for c in range(n_classes)]},
        )
    return folder


@pytest.mark.skipif(
    not (PROJECT_ROOT / "nengo_actions" / "train.py").exists(), reason="the train command is not there yet"
)
def test_one_real_trial_through_the_train_command(tmp_path):
    """One small real trial: the sweep drives `python -m nengo_actions.train`."""
    base_settings = {
        "features": {"store_dir": str(learnable_store(tmp_path / "store"))},
        "model": {"type": "ensemble_array", "compare": [], "ensemble_array": {"n_ensembles": 20, "n_neurons": 10}},
        "train": {"epochs": 3, "learning_rate": 0.01, "minibatch_size": 8, "tensorboard": False},
        "evaluate": {"steps_per_frame": [2], "spiking_steps_per_frame": 2},
    }
    cfg = sweep.load_sweep_config(
        write_sweep(tmp_path, base="configs/config.json", grid={"model.ensemble_array.neuron_type": ["LIF"]},
                    base_settings=base_settings)
    )
    trials, rows = sweep.run_sweep(cfg, progress=False)
    assert rows[0]["status"] == "done", rows[0]["error"]
    metrics = rows[0]["metrics"]
    for key in sweep.ACCURACY_KEYS + sweep.TIME_KEYS:
        assert key in metrics, key
    assert metrics["test_clip_accuracy"] > 0.5  # 4 well separated classes: chance is 0.25
    run_cfg = json.loads((tmp_path / "out" / rows[0]["run_dir"] / "config.json").read_text())
    assert run_cfg["model"]["ensemble_array"]["neuron_type"] == "LIF" and run_cfg["seed"] == 0
    md = (tmp_path / "out" / "results.md").read_text()
    assert "firing_rate_hz_ensembles" in md and "energy_loihi_joules_per_inference" in md


def test_neuron_type_strings():
    """The one parser for config neuron types: names, arguments, wrappers, no code."""
    import nengo

    from nengo_actions.neurons.types import NeuronTypeError, is_spiking, neuron_type_name, parse_neuron_type

    for name in ("SpikingRectifiedLinear", "RectifiedLinear", "LIF", "LIFRate", "AdaptiveLIF",
                 "AdaptiveLIFRate", "Izhikevich"):
        assert type(parse_neuron_type(name)) is getattr(nengo, name)
    lif = parse_neuron_type("LIF(tau_rc=0.05, amplitude=0.01)")
    assert (lif.tau_rc, lif.amplitude, lif.tau_ref) == (0.05, 0.01, 0.002)
    wrapped = parse_neuron_type("PoissonSpiking(LIFRate(tau_rc=0.03))")
    assert isinstance(wrapped, nengo.PoissonSpiking) and wrapped.base_type.tau_rc == 0.03
    assert is_spiking("RegularSpiking(LIFRate)") and not is_spiking("LIFRate")
    for text in ("RegularSpiking(LIFRate)", "LIF(tau_rc=0.05)", "Izhikevich"):
        assert parse_neuron_type(neuron_type_name(text)) == parse_neuron_type(text)
    for bad, message in [
        ("Lif", "did you mean 'LIF'"),
        ("RegularSpiking(LIF)", "needs a rate type"),
        ("LIF(tau=1)", "invalid arguments for LIF"),
        ("LIF(1)", "keyword arguments only"),
        ("__import__('os').system('true')", "expected a type name or a call"),
        ("LIF(tau_rc=open('x'))", "not a literal value"),
        ("LIF(", "not a type name or call"),
    ]:
        with pytest.raises(NeuronTypeError, match=message) as info:
            parse_neuron_type(bad)
        assert "RegularSpiking(<rate type>)" in str(info.value)  # lists what is valid
