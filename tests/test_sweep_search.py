"""Searches on Ray Tune: the search config's checks, ASHA stopping weak trials with their
train processes ended (also when Ray kills a trial's actor), the results table, one real
search through the train command, and the message without Ray Tune."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nengo_actions import sweep
from nengo_actions.config import PROJECT_ROOT, ConfigError
from nengo_actions.sweep.search import plan
from nengo_actions.sweep.search_trial import end_process, start_process
from test_sweep import learnable_store, read_csv, write_sweep

# A stand-in for `python -m nengo_actions.train` that trains epoch by epoch: it reads the
# config with the real loader, writes <run>/<model.type>/history.csv after each epoch (as
# nengo_actions.engine.training does), then metrics.json, and takes --resume. Its validation
# accuracy is a known function of model.lmu.units. Every process notes its pid in
# <save_dir>/pids. While the sweep's folder holds `kill-actor`, it removes it after epoch 2,
# kills the process that started it (the trial's Ray actor) and sleeps. (Files, not
# environment variables: the module's Ray workers started before a test sets any.)
FAKE_EPOCHS = textwrap.dedent(
    """
    import argparse, json, os, time
    from pathlib import Path
    from nengo_actions import config as c
    from nengo_actions.io import write_json_atomic, write_text_atomic

    p = c.add_config_arguments(argparse.ArgumentParser())
    p.add_argument("--resume")
    a = p.parse_args()
    cfg = c.load_run_config(a.resume) if a.resume else c.load_config(a.config, a.overrides)
    with open(os.path.join(cfg.save_dir, "pids"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    run = Path(a.resume) if a.resume else c.make_run_dir(cfg)
    folder = run / cfg.model.type
    folder.mkdir(exist_ok=True)
    history = folder / "history.csv"
    rows = history.read_text().splitlines()[1:] if history.exists() else []
    top = {64: 0.9, 32: 0.7}.get(cfg.model.lmu.units, 0.3)
    for epoch in range(len(rows) + 1, cfg.train.epochs + 1):
        time.sleep(0.4)
        acc = top * (1 - 0.5 ** epoch) + 1e-3 * cfg.train.learning_rate
        rows.append(f"{epoch},1.0,1.0,{acc},{acc / 2},{cfg.train.learning_rate},0.4")
        write_text_atomic(history, "epoch,train_loss,val_loss,val_clip_accuracy,val_step_accuracy,"
                                   "learning_rate,seconds\\n" + "\\n".join(rows) + "\\n")
        marker = Path(cfg.save_dir).parents[1] / "kill-actor"
        if epoch == 2 and marker.exists():
            marker.unlink()
            os.kill(os.getppid(), 9)
            time.sleep(60)
    time.sleep(0.3)
    write_json_atomic(run / "metrics.json", {"val_clip_accuracy": acc, "test_clip_accuracy": acc - 0.05,
                                             "train_seconds": 0.4 * cfg.train.epochs, "epochs_run": len(rows)})
    print(f"run directory: {run}")
    """
)


@pytest.fixture
def fake_epochs(tmp_path):
    path = tmp_path / "fake_epochs.py"
    path.write_text(FAKE_EPOCHS)
    return sweep.TrainCommandTrial(command=(sys.executable, str(path)))


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's searches (a search uses a running Ray as it is)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    yield ray
    ray.shutdown()


SPACE = {"train.learning_rate": {"loguniform": [1e-3, 1e-1]}}


def search_sweep(tmp_path, **cfg):
    """A search on a small feature store (made here, so no trial extracts features)."""
    cfg.setdefault("search", SPACE)
    store = tmp_path / "store"
    if not store.exists():
        learnable_store(store)
    cfg.setdefault("base_settings", {"train": {"epochs": 4}, "features": {"store_dir": str(store)}})
    return sweep.load_sweep_config(write_sweep(tmp_path, **cfg))


def test_each_distribution_and_the_plan(tmp_path, capsys):
    space = {
        "model.lmu.units": {"choice": [32, 64]},
        "train.learning_rate": {"loguniform": [1e-4, 1e-2]},
        "data.val_fraction": {"uniform": [0.1, 0.3]},
        "model.lmu.order": {"randint": [2, 7]},
        "model.lmu.neuron_type,model.lmu.hidden_neuron_type": {"choice": ["LIF", "RegularSpiking(LIFRate)"]},
    }
    path = write_sweep(tmp_path, search=space, num_samples=3, scheduler="asha", asha={"grace_period": 2, "reduction_factor": 2},
                       base_settings={"train": {"epochs": 8}}, grid={"model.lmu.memory_d": [4, 8]})
    assert sweep.main(["-c", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 trials (3 samples x 2 grid point(s) and seed(s)), ASHA on val_clip_accuracy (rungs at 2, 4, 8 of 8 epochs)" in out
    assert 'model.lmu.order: randint [2, 7]' in out
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    context, max_t = plan(sweep.load_sweep_config(path), write=False)
    assert max_t == 8 and context.keys[0] == "model.lmu.units"
    trial = context.trial({"_grid": 1, "model.lmu.units": 64, "train.learning_rate": 0.00123456,
                           "data.val_fraction": 0.2, "model.lmu.order": 3,
                           "model.lmu.neuron_type,model.lmu.hidden_neuron_type": "LIF"})
    assert trial.label == "8 / 64 / 0.001235 / 0.2 / 3 / LIF" and trial.seed == 0
    assert "model.lmu.memory_d=8" in trial.overrides and "train.learning_rate=0.00123456" in trial.overrides
    assert 'model.lmu.hidden_neuron_type="LIF"' in trial.overrides
    # the same drawn settings make the same trial (how a search reuses its trials' folders)
    assert context.trial({"_grid": 1, **dict(trial.point[1:])}).trial_id == trial.trial_id
    cfg = sweep.load_sweep_config(path, ['search.model.lmu.units={"choice": [16]}', "asha.brackets=2"])
    assert cfg.search["model.lmu.units"] == {"choice": [16]} and cfg.asha.brackets == 2


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"search": {"train.learning_rate": {"uniform": [0.1, 0.01]}}}, "'search.train.learning_rate.uniform' must have low < high"),
        ({"search": {"train.learning_rate": {"loguniform": [0, 0.1]}}}, "loguniform' must have low above 0"),
        ({"search": {"model.lmu.order": {"randint": [2.5, 4]}}}, r"randint' must be \[low, high\] of integers"),
        ({"search": {"model.lmu.order": {"randint": [4, 4]}}}, "must have low < high"),
        ({"search": {"model.lmu.units": {"choice": []}}}, "'search.model.lmu.units.choice' must be a non-empty list"),
        ({"search": {"model.lmu.units": {"choise": [64]}}}, "unknown key 'search.model.lmu.units.choise'; a distribution is one of choice, uniform, loguniform, randint \\(did you mean 'choice'\\?\\)"),
        ({"search": {"model.lmu.units": [64, 128]}}, "'search.model.lmu.units' must be one of"),
        ({"search": {"model.lmu.units": {"choice": [64], "randint": [1, 9]}}}, "'search.model.lmu.units' must be one of"),
        ({"search": {"model.lmu.unit": {"choice": [64]}}}, "search key 'model.lmu.unit': unknown key 'model.lmu.unit' \\(did you mean 'model.lmu.units'\\?\\)"),
        ({"search": {"model.lmu.units": {"uniform": [16, 64]}}}, "search key 'model.lmu.units'.*'model.lmu.units' must be an integer"),
        ({"search": {"model.lmu.neuron_type": {"choice": ["LIF", "Lif"]}}}, "unknown neuron type 'Lif'"),
        ({"search": {"seed": {"randint": [0, 3]}}}, "search key 'seed' is set by the sweep itself"),
        ({"grid": {"train.learning_rate": [0.1]}}, "search key 'train.learning_rate' is in the grid too"),
        ({"scheduler": "asah"}, "'scheduler' must be one of asha, fifo; got 'asah' \\(did you mean 'asha'\\?\\)"),
        ({"scheduler": "asha", "asha": {"grace_perod": 2}}, "unknown key 'asha.grace_perod' \\(did you mean 'asha.grace_period'\\?\\)"),
        ({"scheduler": "asha", "asha": {"reduction_factor": 1}}, "'asha.reduction_factor' must be more than 1"),
        ({"scheduler": "asha", "asha": {"grace_period": 5}}, "'asha.grace_period' must be at most the epochs a trial trains \\(4\\)"),
        ({"scheduler": "fifo", "asha": {"grace_period": 2}}, "key 'asha' applies to scheduler 'asha', not 'fifo'"),
        ({"num_sample": 4}, "unknown key 'num_sample' \\(did you mean 'num_samples'\\?\\)"),
        ({"num_samples": 0}, "'num_samples' must be at least 1"),
        ({"metric": "val_loss"}, "'metric' must be one of val_clip_accuracy, val_step_accuracy"),
        ({"search": {}, "num_samples": 4}, "key 'num_samples' applies to a search"),
    ],
)
def test_bad_searches_fail_before_any_trial(tmp_path, cfg, message):
    with pytest.raises(ConfigError, match=message):
        plan(search_sweep(tmp_path, **cfg))
    assert not (tmp_path / "out").exists()


def test_a_grid_sweep_states_no_search_keys(tmp_path):
    sweep.prepare(sweep.load_sweep_config(write_sweep(tmp_path, grid={"model.lmu.neuron_type": ["LIF"]})))
    assert "search" not in json.loads((tmp_path / "out" / "sweep.json").read_text())


def train_processes(tmp_path):
    """Running processes whose command line names a path under ``tmp_path``: the trials'
    train processes (real or stand-in), which name their config and folders there."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and str(tmp_path).encode() in cmdline:
            found.append(int(proc.name))
    return found


def no_train_process_left(tmp_path, wait=10.0):
    deadline = time.monotonic() + wait
    while train_processes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    return train_processes(tmp_path) == []


def test_asha_stops_weak_trials_and_their_processes(tmp_path, fake_epochs, local_ray):
    # per draw, the strong grid point first, then the weak one: ASHA (one trial at a time)
    # has the strong one's first epoch to compare the weak one's with, and stops it
    cfg = search_sweep(tmp_path, grid={"model.lmu.units": [64, 16]}, num_samples=2, scheduler="asha",
                       asha={"grace_period": 1, "reduction_factor": 2}, jobs=1, seed=3)
    trials, rows = sweep.run_sweep(cfg, trial_fn=fake_epochs, progress=False)
    by_status = {}
    for r in rows:
        by_status.setdefault(r["status"], []).append(r)
    assert set(by_status) <= {"done", "stopped early"} and len(rows) == 4
    assert len(by_status.get("stopped early", [])) >= 1
    assert all(dict(r["trial"].point)["model.lmu.units"] == 64 for r in by_status["done"])
    for r in by_status["done"]:
        assert r["epochs"] == 4 and r["metrics"]["test_clip_accuracy"] == pytest.approx(r["metrics"]["val_clip_accuracy"] - 0.05)
    for r in by_status["stopped early"]:
        assert dict(r["trial"].point)["model.lmu.units"] == 16
        assert 1 <= r["epochs"] < 4 and "test_clip_accuracy" not in r["metrics"]
        assert r["metrics"]["val_clip_accuracy"] == pytest.approx(max(r["curve"]))
        assert not list((tmp_path / "out" / r["run_dir"]).glob("metrics.json"))
    assert no_train_process_left(tmp_path)  # the stopped trials' train processes were ended

    table = read_csv(tmp_path / "out" / "results.csv")
    assert [row["status"] for row in table] == [r["status"] for r in rows]
    assert {row["epochs"] for row in table if row["status"] == "stopped early"} <= {"1", "2", "3"}
    assert table[0]["model.lmu.units"] == "64" and float(table[0]["train.learning_rate"]) > 1e-3
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| model.lmu.units | train.learning_rate | seed | status | epochs |" in md
    assert "| stopped early | " in md and "rungs at 1, 2, 4 epochs" in md
    assert f"stopped early: {len(by_status['stopped early'])}" in md and "![metric_per_epoch](metric_per_epoch.png)" in md
    assert (tmp_path / "out" / "metric_per_epoch.png").read_bytes()[:4] == b"\x89PNG"

    # again: the same draws, so the finished trials are replayed and none trains again
    trials_again, rows = sweep.run_sweep(cfg, trial_fn=fake_epochs, progress=False)
    assert [t.trial_id for t in trials_again] == [t.trial_id for t in trials]
    assert all(r["status"] == "skipped (finished before)" for r in rows if dict(r["trial"].point)["model.lmu.units"] == 64)
    assert sweep.main(["-c", str(tmp_path / "sweep.json"), "--report-only"]) == 0


def test_an_actor_killed_by_ray_leaves_no_train_process(tmp_path, fake_epochs, local_ray):
    cfg = search_sweep(tmp_path, search={"model.lmu.units": {"choice": [64]}}, num_samples=1, retries=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kill-actor").touch()
    _, rows = sweep.run_sweep(cfg, trial_fn=fake_epochs, progress=False)
    # Ray Tune ran the trial again in a new actor, which went on from the run folder
    assert [(r["status"], r["epochs"]) for r in rows] == [("done", 4)], rows[0]["error"]
    log = (Path(rows[0]["trial"].trial_dir) / "log.txt").read_text()
    assert "--resume" in log
    assert "The actor died unexpectedly" in next((tmp_path / "out" / "tune").glob("*/error.txt")).read_text()
    pids = (Path(rows[0]["trial"].trial_dir) / "pids").read_text().split()
    assert len(pids) == 2  # the process the actor's death left, and the one that went on
    # the first outlived its actor only until the kernel ended it
    assert no_train_process_left(tmp_path)


def test_a_started_process_dies_with_its_parent(tmp_path):
    """PR_SET_PDEATHSIG: a parent killed with SIGKILL (no finally runs) takes the train process along."""
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys, time
            from nengo_actions.sweep.search_trial import start_process
            proc = start_process([sys.executable, "-c", "import time; time.sleep(60)"], None)
            print(proc.pid, flush=True)
            time.sleep(60)
            """)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )
    child = int(parent.stdout.readline())
    assert Path(f"/proc/{child}").exists()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists()
    # and end_process ends the group at once
    proc = start_process([sys.executable, "-c", "import time; time.sleep(60)"], None)
    start = time.monotonic()
    end_process(proc)
    assert proc.returncode == -signal.SIGTERM and time.monotonic() - start < 5


def test_one_real_search_through_the_train_command(tmp_path, local_ray):
    """Two real trials: the train command's per-epoch history reaches Tune."""
    base_settings = {
        "features": {"store_dir": str(learnable_store(tmp_path / "store"))},
        "model": {"type": "ensemble_array", "compare": [], "ensemble_array": {"n_ensembles": 10, "n_neurons": 8}},
        "train": {"epochs": 3, "minibatch_size": 8, "tensorboard": False},
        "evaluate": {"steps_per_frame": [2], "spiking": False},
    }
    cfg = search_sweep(tmp_path, search={"train.learning_rate": {"choice": [0.01, 1e-7]}}, num_samples=2,
                       base_settings=base_settings, scheduler="asha", asha={"reduction_factor": 2}, jobs=2)
    _, rows = sweep.run_sweep(cfg, progress=False)
    assert all(r["status"] in ("done", "stopped early") for r in rows), [r["error"] for r in rows]
    for r in rows:
        assert r["epochs"] == len(r["curve"]) >= 1 and all(0 <= v <= 1 for v in r["curve"])
    done = [r for r in rows if r["status"] == "done"]
    assert done and done[0]["epochs"] == 3 and "test_clip_accuracy" in done[0]["metrics"]
    result = json.loads(next((tmp_path / "out" / "tune").glob("*/result.json")).read_text().splitlines()[0])
    assert result["epoch"] == 1 and "val_clip_accuracy" in result  # what Tune received
    assert no_train_process_left(tmp_path)


def test_a_search_without_ray_tune_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray.tune", None)  # as if not installed
    path = write_sweep(tmp_path, search=SPACE)
    with pytest.raises(SystemExit) as e:
        sweep.main(["-c", str(path)])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == 'error: a search needs Ray Tune: pip install -e ".[cluster]"'
    assert not (tmp_path / "out").exists()
