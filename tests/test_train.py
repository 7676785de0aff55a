"""``python -m nengo_actions.train`` end to end on a tiny store, and its bad-input errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clip_stores import make_ring_store
from nengo_actions.config import PROJECT_ROOT
from nengo_actions.store import load_split, save_split

REQUIRED = ("test_clip_accuracy", "test_step_accuracy", "val_clip_accuracy", "spiking_test_clip_accuracy", "train_seconds")


def write_config(folder, store, **changes):
    cfg = {
        "name": "tiny",
        "seed": 0,
        "save_dir": str(folder / "runs"),
        "features": {"store_dir": str(store)},
        "model": {
            "type": "lmu_spiking",
            "compare": ["ensemble_array"],
            "ensemble_array": {"n_ensembles": 16, "n_neurons": 8},
            "lmu": {"order": 3, "units": 16, "memory_d": 2, "hidden_to_hidden": False},
            "lmu_spiking": {"memory_neurons_per_dim": 4},
        },
        "train": {"epochs": 3, "learning_rate": 0.01, "minibatch_size": 8, "loss_steps": 2},
        "evaluate": {"steps_per_frame": [1, 2], "spiking_steps_per_frame": 2, "raster_neurons": 5},
    }
    for key, value in changes.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = folder / f"config{len(list(folder.glob('config*.json')))}.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store")
    return make_ring_store(folder, n_classes=3, n_groups=5, clips_per_group=2, n_frames=6, n_features=8,
                           test_groups=(1,), class_offset=0.5)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, store):
    """One real run of the command line, as a user types it."""
    folder = tmp_path_factory.mktemp("cli")
    config = write_config(folder, store)
    proc = subprocess.run(
        [sys.executable, "-m", "nengo_actions.train", "-c", str(config)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("run directory: ")
    return Path(last[len("run directory: "):]), folder, config


def test_the_command_writes_a_complete_run_folder(finished_run):
    run, _, _ = finished_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in REQUIRED:
        assert isinstance(metrics[key], (int, float)), key
        assert isinstance(metrics[f"ensemble_array.{key}"], (int, float)), key
    assert metrics["model_type"] == "lmu_spiking" and metrics["n_test_clips"] == 6
    assert 0 <= metrics["test_clip_accuracy"] <= 1 and metrics["spiking_steps_per_frame"] == 2
    assert metrics["firing_rate_hz_memory"] > 0 and metrics["energy_loihi_joules_per_inference"] > 0
    assert metrics["energy_cpu_joules_per_inference"] > metrics["energy_gpu_joules_per_inference"]
    for name in ("report.md", "config.json", "learning_curves.png", "accuracy_vs_steps.png",
                 "confusion_lmu_spiking.png", "raster_lmu_spiking.png", "accuracy_per_frame.png"):
        assert (run / name).stat().st_size > 0, name
    for model in ("lmu_spiking", "ensemble_array"):
        assert (run / model / "history.csv").read_text().count("\n") == 4
        assert (run / model / "params_best.npz").exists() and (run / model / "checkpoint.npz").exists()
        assert any((run / model / "tensorboard").iterdir())
    report = (run / "report.md").read_text()
    assert "lmu_spiking" in report and "![Learning curves](learning_curves.png)" in report
    assert "the seed's UCF101 split-1 figures" in report


def test_params_evaluate_a_trained_run_without_training(finished_run, capsys):
    from nengo_actions.train import main

    run, _, config = finished_run
    assert main(["-c", str(config), "--params", str(run), "--set", "model.compare=[]"]) == 0
    again = Path(capsys.readouterr().out.strip().splitlines()[-1][len("run directory: "):])
    before, after = (json.loads((r / "metrics.json").read_text()) for r in (run, again))
    assert after["test_clip_accuracy"] == before["test_clip_accuracy"]
    assert after["spiking_test_clip_accuracy"] == before["spiking_test_clip_accuracy"]
    assert after["train_seconds"] == 0


def test_resume_continues_a_run(finished_run, capsys):
    from nengo_actions.train import main

    run, _, _ = finished_run
    assert main(["--resume", str(run), "--set", "train.epochs=4", "--set", 'model.compare=[]']) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"run directory: {run}"
    assert (run / "lmu_spiking" / "history.csv").read_text().count("\n") == 5


def test_params_of_another_model_fail_by_name_and_leave_nothing(finished_run, capsys):
    from nengo_actions.train import main

    run, folder, config = finished_run
    wrong = run / "ensemble_array" / "params_best.npz"
    runs_before = sorted((folder / "runs").iterdir())
    with pytest.raises(SystemExit) as e:
        main(["-c", str(config), "--params", str(wrong), "--set", "model.compare=[]"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(wrong) in err and "different model" in err
    assert sorted((folder / "runs").iterdir()) == runs_before


@pytest.mark.parametrize("problem", ["empty", "labels", "features", "nan"])
def test_bad_stores_are_clear_errors(tmp_path, store, capsys, problem):
    from nengo_actions.train import main

    bad = tmp_path / "bad"
    bad.mkdir()
    train, test = load_split(Path(store) / "train.npz"), load_split(Path(store) / "test.npz")
    if problem == "empty":
        test = test.subset(np.zeros(len(test), bool))
    elif problem == "labels":
        test.labels[0] = 7
    elif problem == "nan":
        test.features = np.array(test.features)
        test.features[2, 1, 3] = np.nan
    else:
        test.features = test.features[:, :, :5]
    for name, split in (("train", train), ("test", test)):
        save_split(bad / f"{name}.npz", split.features, split.labels, split.clip_ids, split.groups, split.metadata)
    config = write_config(tmp_path, bad)
    with pytest.raises(SystemExit) as e:
        main(["-c", str(config)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(bad / "test.npz") in err
    expected = {"empty": "holds no clips", "labels": r"labels must be in 0..2", "features": "clips are",
                "nan": "(row 2) holds values that are not finite"}[problem]
    assert expected in err
    assert not (tmp_path / "runs").exists()


def test_a_missing_store_is_extracted_by_a_separate_process(tmp_path, store, monkeypatch, capsys):
    """The command runs the extraction command with the same -c and --set, streams its
    output, and trains on what it wrote."""
    from nengo_actions.clips import feature_data

    script = tmp_path / "extract_features.py"
    script.write_text(
        "import shutil, sys\n"
        "print('extracting with', sys.argv[1:], flush=True)\n"
        f"shutil.copytree({str(store)!r}, {str(tmp_path / 'made')!r})\n"
    )
    monkeypatch.setattr(feature_data, "EXTRACT_COMMAND", (sys.executable, str(script)))
    config = write_config(tmp_path, tmp_path / "made", **{"model.compare": [], "evaluate.spiking": False})
    from nengo_actions.train import main

    assert main(["-c", str(config), "--set", "train.epochs=1"]) == 0
    out = capsys.readouterr().out
    assert f"extracting with ['-c', '{config}', '--set', 'train.epochs=1']" in out
    assert (tmp_path / "made" / "train.npz").exists()

    script.write_text("import sys\nprint('cannot decode'); sys.exit(3)\n")
    config = write_config(tmp_path, tmp_path / "never")
    with pytest.raises(SystemExit) as e:
        main(["-c", str(config)])
    assert e.value.code == 2
    assert "extraction that makes it failed (exit status 3)" in capsys.readouterr().err


def test_refit_reports_both_figures(tmp_path, store):
    config = write_config(tmp_path, store, **{"model.compare": [], "train.refit": True, "train.epochs": 2})
    proc = subprocess.run([sys.executable, "-m", "nengo_actions.train", "-c", str(config)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = Path(proc.stdout.strip().splitlines()[-1][len("run directory: "):])
    m = json.loads((run / "metrics.json").read_text())
    n_train, n_val = m["n_train_clips"], m["n_val_clips"]
    assert m["refit_train_clips"] == n_train + n_val and n_val > 0
    assert m["refit_epochs"] == m["best_epoch"]
    for key in ("refit_test_clip_accuracy", "refit_spiking_test_clip_accuracy", "test_clip_accuracy"):
        assert 0 <= m[key] <= 1, key
    assert (run / "lmu_spiking" / "refit" / "params_best.npz").exists()
    assert "Refit (`train.refit`)" in (run / "report.md").read_text()
