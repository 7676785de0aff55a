"""kill -9 in the middle of the long jobs, then the same command again: the outputs equal
those of an uninterrupted run, byte for byte.

The killed process is the real command (script or ``-m`` module) started by
:data:`KILLER`, which first wraps one function of the project so that its N-th call
sends SIGKILL to its own process: before the call ("before"), or half way through it
("inside": a write that has put half of its bytes on disk, an epoch half trained).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clip_stores import make_ring_store
from nengo_actions.config import PROJECT_ROOT

KILLER = r"""
import importlib, os, runpy, signal, sys

target, n, how, entry, *argv = sys.argv[1:]
module_name, attr = target.split(":")
module = importlib.import_module(module_name)
owner, name = module, attr
if "." in attr:
    cls, name = attr.split(".")
    owner = getattr(module, cls)
original = getattr(owner, name)
calls = [0]


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def wrapped(*args, **kwargs):
    calls[0] += 1
    if calls[0] <= int(n):
        return original(*args, **kwargs)
    if how == "before":
        die()
    if how == "inside-write":  # the temporary file of an atomic write, half written
        path = args[0]
        from nengo_actions.io import TEMP_MARK

        partial = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + TEMP_MARK + "killed")
        with open(partial, "wb") as f:
            f.write(b"PK\x03\x04 half of an archive")
        die()
    if how == "inside-epoch":  # train on half of the clips, then die
        engine, x, y, *rest = args
        half = len(y) // 2
        original(engine, x[:half], y[:half], *rest, **kwargs)
        die()
    raise SystemExit(f"unknown kill mode {how}")


setattr(owner, name, wrapped)
sys.argv = [entry, *argv]
if entry.endswith(".py"):
    runpy.run_path(entry, run_name="__main__")
else:
    runpy.run_module(entry, run_name="__main__", alter_sys=True)
"""


def run(argv, timeout=300):
    return subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def killed(target, n, how, entry, *argv):
    """Run ``entry argv`` with ``target`` set to SIGKILL its process at call ``n + 1``."""
    proc = run([sys.executable, "-c", KILLER, target, str(n), how, str(entry), *map(str, argv)])
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def command(entry, *argv):
    prefix = [sys.executable, str(entry)] if str(entry).endswith(".py") else [sys.executable, "-m", entry]
    proc = run(prefix + [str(a) for a in argv])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def npz_arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def assert_same_npz(a, b):
    x, y = npz_arrays(a), npz_arrays(b)
    assert sorted(x) == sorted(y), (a, b)
    for key in x:
        assert x[key].dtype == y[key].dtype and x[key].shape == y[key].shape, (a, key)
        # fields one by one: np.savez does not keep the padding bytes of structured
        # (event) arrays, which hold no data
        for field in x[key].dtype.names or [None]:
            u, v = (x[key], y[key]) if field is None else (x[key][field], y[key][field])
            assert np.ascontiguousarray(u).tobytes() == np.ascontiguousarray(v).tobytes(), (a, key, field)


def no_temp_files(folder):
    return [p for p in Path(folder).rglob(".*") if ".tmp" in p.name]


# ---------------------------------------------------------------------------------------
# Feature extraction

EXTRACT = PROJECT_ROOT / "scripts" / "extract_features.py"


@pytest.fixture(scope="module")
def video_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    cfg = {
        "name": "faults", "seed": 0,
        "data": {"dataset": "synthetic_actions", "root": str(root / "data"),
                 "synthetic": {"n_classes": 3, "n_groups": 4, "clips_per_group": 2, "n_frames": 6,
                               "size": [32, 32], "test_groups": [1]}},
        "frames": {"policy": "first", "n_frames": 4, "resize": [32, 32]},
        "features": {"backbone": "resnet18", "chunk_size": 4, "batch_size": 8},
    }
    path = root / "config.json"
    path.write_text(json.dumps(cfg))
    command(EXTRACT, "-c", path, "--no-progress", "--set", f"features.store_dir={root / 'reference'}")
    return path, root / "reference"


@pytest.mark.parametrize("target, how", [
    ("feature_extraction.extract:_write_chunk", "before"),  # between chunks
    ("feature_extraction.extract:_encode", "before"),  # inside a chunk, frames decoded
])
def test_extraction_killed_then_rerun_equals_an_uninterrupted_run(video_config, tmp_path, target, how):
    path, reference = video_config
    store = tmp_path / "store"
    argv = ["-c", path, "--no-progress", "--set", f"features.store_dir={store}"]
    killed(target, 2, how, EXTRACT, *argv)
    assert len(list((store / "chunks").glob("chunk_*.npz"))) == 2 and not (store / "train.npz").exists()
    out = command(EXTRACT, *argv).stdout
    assert "24 done (16 in this run)" in out  # the two chunks written before are kept
    for side in ("train", "test"):
        ours, theirs = npz_arrays(store / f"{side}.npz"), npz_arrays(reference / f"{side}.npz")
        meta = [json.loads(str(m.pop("metadata"))) for m in (ours, theirs)]
        for m in meta:  # the one difference: where each store is
            m["config"]["features"].pop("store_dir")
        assert meta[0] == meta[1]
        assert sorted(ours) == sorted(theirs)
        for key in ours:
            assert ours[key].dtype == theirs[key].dtype and ours[key].tobytes() == theirs[key].tobytes(), key


# ---------------------------------------------------------------------------------------
# Event slicing and caching

PREPARE = PROJECT_ROOT / "scripts" / "prepare_events.py"


@pytest.fixture(scope="module")
def gesture_layout(tmp_path_factory):
    from test_bad_inputs import write_gesture_layout

    root = write_gesture_layout(tmp_path_factory.mktemp("gestures"))
    reference = root / "reference-cache"
    command(PREPARE, *gesture_argv(root, reference))
    return root, reference


def gesture_argv(root, cache):
    return ["-c", PROJECT_ROOT / "configs" / "dvs128_gesture_events.json",
            "--set", f"data.root={root}", "--set", f"events.cache_dir={cache}"]


@pytest.mark.parametrize("how", ["before", "inside-write"])
def test_event_caching_killed_then_rerun_equals_an_uninterrupted_run(gesture_layout, tmp_path, how):
    root, reference = gesture_layout
    cache = tmp_path / "cache"
    # the 15th sample file: the second recording is half cached, without its manifest
    killed("nengo_actions.data.dataset:save_npz_atomic", 14, how, PREPARE, *gesture_argv(root, cache))
    assert len(list(cache.rglob("*.npz"))) == 14
    command(PREPARE, *gesture_argv(root, cache))
    assert not no_temp_files(cache)
    ours = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
    assert ours == theirs and len(ours) == 3 * 11 + 3
    for rel in ours:
        if rel.suffix == ".npz":
            assert_same_npz(cache / rel, reference / rel)
        else:
            assert (cache / rel).read_bytes() == (reference / rel).read_bytes(), rel


# ---------------------------------------------------------------------------------------
# Training

TRAIN = "nengo_actions.train"


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    store = root / "store"
    store.mkdir()
    make_ring_store(store, n_classes=3, n_groups=5, clips_per_group=4, n_frames=6, n_features=8, test_groups=(1,))
    config = root / "train.json"
    config.write_text(json.dumps({
        "name": "faults", "seed": 0, "save_dir": str(root / "runs"), "features": {"store_dir": str(store)},
        "data": {"dataset": "ucf101", "root": str(root / "no-videos")},
        "model": {"type": "lmu", "lmu": {"order": 2, "units": 8, "memory_d": 1}},
        "train": {"epochs": 4, "minibatch_size": 8, "tensorboard": False, "schedule": "cosine"},
        "evaluate": {"steps_per_frame": [1], "spiking_steps_per_frame": 1, "raster_neurons": 2},
    }))
    reference = run_dir_of(command(TRAIN, "-c", config).stdout)
    return config, reference


def run_dir_of(stdout):
    return Path(next(line for line in stdout.splitlines() if line.startswith("run folder: "))[len("run folder: "):])


@pytest.mark.parametrize("target, how", [
    ("nengo_actions.engine.training:_save_checkpoint", "before"),  # epoch 3 trained, its checkpoint not written
    ("nengo_actions.engine.simulator:fit_epoch_in_chunks", "inside-epoch"),  # half of epoch 3
    ("nengo_actions.engine.training:_save_checkpoint", "inside-write"),  # checkpoint 3 half written
])
def test_training_killed_then_resumed_equals_an_uninterrupted_run(training, tmp_path, target, how):
    config, reference = training
    proc = killed(target, 2, how, TRAIN, "-c", config, "--set", f"save_dir={tmp_path / 'runs'}")
    run_dir = run_dir_of(proc.stdout)
    assert (run_dir / "lmu" / "checkpoint.npz").exists() and not (run_dir / "metrics.json").exists()
    out = command(TRAIN, "--resume", run_dir).stdout
    assert "resuming from epoch 2" in out
    assert_same_npz(run_dir / "lmu" / "params_best.npz", reference / "lmu" / "params_best.npz")
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, reference))
    for key in ("best_epoch", "test_clip_accuracy", "val_clip_accuracy"):
        assert ours[key] == theirs[key], key
    assert not no_temp_files(run_dir)


def test_resume_with_a_config_naming_another_model_stops_and_changes_nothing(tmp_path, capsys):
    from nengo_actions import config as C
    from nengo_actions.train import main

    run_dir = C.make_run_dir(C.load_config(C.PROJECT_ROOT / "configs" / "config.json",
                                           [f"save_dir={tmp_path}", "model.compare=[]"]))
    (run_dir / "metrics.json").write_text("{}")
    cfg = json.loads((run_dir / "config.json").read_text())
    made_for = cfg["model"]["type"]
    cfg["model"]["type"] = "keras_lmu" if made_for != "keras_lmu" else "lmu"
    (run_dir / "config.json").write_text(json.dumps(cfg))
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(SystemExit) as e:
        main(["--resume", str(run_dir)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "key 'model.type'" in err[0] and made_for in err[0]
    assert sorted(p.name for p in run_dir.iterdir()) == before and (run_dir / "metrics.json").read_text() == "{}"


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_resuming_a_finished_run_says_so_and_changes_nothing(training, tmp_path):
    import shutil

    _, reference = training
    run_dir = tmp_path / reference.name
    shutil.copytree(reference, run_dir)
    before = snapshot(run_dir)
    out = command(TRAIN, "--resume", run_dir).stdout
    assert f"{run_dir} is finished (4 epochs, metrics.json); nothing to resume" in out
    assert "train.epochs=5" in out and snapshot(run_dir) == before


@pytest.mark.parametrize("override, key", [
    ("data.val_fraction=0.5", "data.val_fraction"),
    ("model.lmu.units=16", "model.lmu.units"),
    ("seed=3", "seed"),
])
def test_resume_with_other_data_or_sizes_stops_naming_the_key(training, tmp_path, override, key):
    import shutil

    _, reference = training
    run_dir = tmp_path / reference.name
    shutil.copytree(reference, run_dir)
    (run_dir / "metrics.json").unlink()  # an unfinished run
    before = snapshot(run_dir)
    line = failed(TRAIN, "--resume", run_dir, "--set", override)
    assert f"key '{key}'" in line and "the run was made with" in line
    assert snapshot(run_dir) == before


def test_a_validation_accuracy_of_zero_prints_as_a_figure():
    from nengo_actions.experiment import accuracy_line

    line = accuracy_line("lmu", {"test_clip_accuracy": 0.5, "test_step_accuracy": 0.25, "val_clip_accuracy": 0.0})
    assert line.endswith("validation 0.00%") and "nan" not in line
    assert accuracy_line("lmu", {"test_clip_accuracy": 0.5, "test_step_accuracy": 0.25}).endswith("validation none")


def test_two_runs_made_in_the_same_instant_get_a_folder_each(tmp_path):
    import datetime
    from concurrent.futures import ThreadPoolExecutor

    from nengo_actions import config as C

    cfg = C.load_config(C.PROJECT_ROOT / "configs" / "config.json", [f"save_dir={tmp_path}"])
    now = datetime.datetime(2026, 12, 7, 1, 2, 3)
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: C.make_run_dir(cfg, now=now), range(8)))
    assert len(set(folders)) == 8 and all((f / "config.json").exists() for f in folders)


# ---------------------------------------------------------------------------------------
# Out of space and read-only outputs: a tmpfs of the test's own, nearly filled or
# remounted read-only, under the real commands


class SmallDisk:
    """A 4 MiB tmpfs at ``path``; ``fill(leave)`` takes all but ``leave`` bytes of it."""

    def __init__(self, path):
        self.path = Path(path)
        self.filler = self.path / "filler"

    def mount(self, options):
        return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)],
                              capture_output=True, text=True)

    def remount(self, options):
        proc = subprocess.run(["mount", "-o", f"remount,{options}", str(self.path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr

    def fill(self, leave):
        self.free()
        stat = os.statvfs(self.path)
        with open(self.filler, "wb") as f:
            f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))

    def free(self):
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path / "disk")
    disk.path.mkdir()
    proc = disk.mount("size=4m") if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    if proc is None or proc.returncode:
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN; this machine does not allow it")
    yield disk
    subprocess.run(["umount", "-l", str(disk.path)], capture_output=True)


def failed(entry, *argv):
    """Run a command that must stop with exit 2 and one error line (after TensorFlow's
    start-up noise and progress bars); returns that line."""
    prefix = [sys.executable, str(entry)] if str(entry).endswith(".py") else [sys.executable, "-m", entry]
    proc = run(prefix + [str(a) for a in argv])
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr[-3000:]
    return errors[0]


def test_extraction_on_a_full_disk_stops_naming_the_file_and_a_rerun_completes(video_config, small_disk):
    path, reference = video_config
    store = small_disk.path / "store"
    argv = ["-c", path, "--no-progress", "--set", f"features.store_dir={store}"]
    small_disk.fill(leave=40_000)  # the first chunks fit, the store does not
    line = failed(EXTRACT, *argv)
    assert f"cannot write {store}/" in line and "No space left on device" in line
    small_disk.free()
    out = command(EXTRACT, *argv).stdout
    assert "24 done" in out and not no_temp_files(store)
    for side in ("train", "test"):
        ours, theirs = npz_arrays(store / f"{side}.npz"), npz_arrays(reference / f"{side}.npz")
        for key in ("features", "labels", "clip_ids", "groups"):
            assert ours[key].tobytes() == theirs[key].tobytes(), key


def test_training_on_a_full_disk_stops_naming_the_file_and_resumes(training, small_disk):
    config, reference = training
    runs = small_disk.path / "runs"
    small_disk.fill(leave=60_000)  # the run folder and the first epochs fit, not the whole run
    line = failed(TRAIN, "-c", config, "--set", f"save_dir={runs}")
    assert f"cannot write {runs}/" in line and "No space left on device" in line
    (run_dir,) = runs.iterdir()
    assert not (run_dir / "metrics.json").exists() and not no_temp_files(run_dir)
    small_disk.free()
    command(TRAIN, "--resume", run_dir)
    ours, theirs = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, reference))
    for key in ("best_epoch", "test_clip_accuracy", "val_clip_accuracy"):
        assert ours[key] == theirs[key], key


def test_read_only_outputs_stop_with_one_line_naming_the_path(training, video_config, small_disk):
    config, reference = training
    small_disk.remount("ro")
    line = failed(TRAIN, "-c", config, "--set", f"save_dir={small_disk.path / 'runs'}")
    assert f"cannot write {small_disk.path / 'runs'}" in line and "Read-only file system" in line
    path, _ = video_config
    line = failed(EXTRACT, "-c", path, "--no-progress", "--set", f"features.store_dir={small_disk.path / 'store'}")
    assert str(small_disk.path / "store") in line and "Read-only file system" in line
    import nir

    from nengo_actions.deploy.nir_export import write_graph
    from nengo_actions.errors import OutputError

    graph = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)))
    with pytest.raises(OutputError, match=f"cannot write {small_disk.path / 'model.nir'}: .*Read-only file system"):
        write_graph(graph, small_disk.path / "model.nir")


def test_frame_cache_on_a_full_disk_stops_naming_the_file_and_a_rerun_completes(tmp_path, small_disk):
    from nengo_actions.data import ToFrames, make_events, to_frames
    from nengo_actions.data.dataset import EventDataset, SliceCache
    from nengo_actions.data.frame_cache import cached_frames
    from nengo_actions.errors import OutputError

    rng = np.random.default_rng(0)
    cache = SliceCache(tmp_path / "slices")
    samples = [{"id": f"s{i}", "label": 0, "recording": "r", "group": "g",
                "events": make_events(rng.integers(0, 32, 500), rng.integers(0, 32, 500), rng.integers(0, 2, 500),
                                      np.arange(500))} for i in range(100)]
    dataset = EventDataset("noise", ("a",), (32, 32, 2), cache.store("r", {"test": 1}, samples), cache)
    framing = ToFrames(sensor_size=(32, 32, 2), n_frames=8)  # 16 KB of uint8 counts per sample
    small_disk.fill(leave=300_000)
    with pytest.raises(OutputError, match=f"cannot write {small_disk.path / 'frames'}/.*No space left on device"):
        cached_frames(dataset, framing, small_disk.path / "frames", "train", progress=False)
    small_disk.free()
    cached = cached_frames(dataset, framing, small_disk.path / "frames", "train", progress=False)
    expected = np.stack([to_frames(dataset.events(i), (32, 32, 2), 8) for i in range(len(samples))])
    np.testing.assert_array_equal(np.load(cached.path, mmap_mode="r", allow_pickle=False), expected)
