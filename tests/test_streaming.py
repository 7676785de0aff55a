"""Streamed data: frame caches, rows read from disk, training equal to the in-memory path."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from clip_stores import make_ring_store
from nengo_actions.clips import streaming
from nengo_actions.config import load_config
from nengo_actions.data import SyntheticGestureSpec, ToFrames, generate_synthetic_gestures, make_events, to_frames
from nengo_actions.data.dataset import EventDataset, SliceCache
from nengo_actions.data.frame_cache import cached_frames
from nengo_actions.clips.event_data import load_event_data
from nengo_actions.clips.feature_data import load_clip_data
from nengo_actions.clips.rows import LazyClips, RowFile
from nengo_actions.store import save_split

REPO = Path(__file__).resolve().parents[1]
TINY = SyntheticGestureSpec(sensor_size=16, n_classes=4, n_users=3, test_users=1, repeats=2, gesture_ms=300.0, fps=60.0)
FRAMINGS = {
    "sum": [],
    "sum_norm, channels first": ["events.frames.mode=sum_norm", "events.frames.channels=first"],
    "or, downsampled": ["events.frames.mode=or", "events.frames.downsample=3"],
    "random crop": ["events.frames.crop_us=150000", "events.frames.random_crop=true", "events.frames.mode=sum_norm"],
}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_gestures")
    generate_synthetic_gestures(root, TINY, progress=False)
    return root


def tiny_overrides(root, cache):
    return [f"data.root={root}", "data.generate=false", "data.val_fraction=0.5", f"events.cache_dir={cache}"] + [
        f"events.synthetic.{k}={v}" for k, v in TINY.__dict__.items()
    ]


def quiet(_):
    pass


def test_rows_are_read_in_any_order_from_npy_and_store_files(tmp_path):
    data = np.random.default_rng(0).normal(size=(9, 3, 5)).astype(np.float16)
    np.save(tmp_path / "a.npy", data)
    order = [4, 5, 6, 0, 8, 8, 2]
    np.testing.assert_array_equal(RowFile.npy(tmp_path / "a.npy").read(order), data[order])
    save_split(tmp_path / "s.npz", data, np.arange(9), [f"c/{i}" for i in range(9)], np.arange(9), {})
    clips = streaming.store_clips(tmp_path / "s.npz")
    assert clips.shape == (9, 3, 5) and clips.dtype == np.float32
    np.testing.assert_array_equal(clips[np.array(order)], data[order].astype(np.float32))
    np.testing.assert_array_equal(clips.subset(np.arange(9) % 2 == 0)[1:3], data[[2, 4]].astype(np.float32))
    with pytest.raises(IndexError, match="s.npz: row index out of range"):
        clips.rows.read([9])


def test_feature_statistics_equal_numpys_to_the_last_bit():
    x = (np.random.default_rng(1).gamma(0.3, 2.0, size=(37, 5, 700)) * 3).astype(np.float32)
    flat = np.asarray(x, np.float64).reshape(-1, 700)
    mean, std = streaming.feature_stats(x, clips_per_pass=4)
    assert np.array_equal(mean, flat.mean(axis=0)) and np.array_equal(std, flat.std(axis=0))


@pytest.mark.parametrize("features", [1, 700])
def test_clips_in_memory_are_standardised_with_numpys_statistics(features):
    """One standardiser (streaming.standardized) serves clips in memory and on disk; in
    memory it scales by NumPy's mean and std over the training frames, bit for bit."""
    from nengo_actions.clips.feature_data import ClipData

    x = (np.random.default_rng(2).gamma(0.3, 2.0, size=(40, 5, features)) * 3).astype(np.float32)
    x[:, :, 0] = 1.5  # a constant feature keeps its scale
    sides = {"train": x[:24], "val": x[24:30], "test": x[30:]}
    data = ClipData(**{f"x_{k}": v for k, v in sides.items()}, **{f"y_{k}": np.zeros(len(v), int) for k, v in sides.items()},
                    **{f"groups_{k}": np.arange(len(v)) for k, v in sides.items()}, class_names=["a"], store_dir=None,
                    metadata={})
    flat = np.asarray(sides["train"], np.float64).reshape(-1, features)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 1e-6 * max(float(std.max()), 1e-30), std, 1.0)
    scaled = data.standardized()
    for k, v in sides.items():
        np.testing.assert_array_equal(getattr(scaled, f"x_{k}"), ((v - mean) / std).astype(np.float32))
        assert getattr(scaled, f"x_{k}").dtype == np.float32


@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_streamed_event_frames_equal_the_in_memory_frames(tiny_root, tmp_path, framing):
    cfg = load_config(REPO / "configs" / "dvs_synthetic_events.json", tiny_overrides(tiny_root, tmp_path) + FRAMINGS[framing])
    memory = load_event_data(cfg, progress=False, stream=False)
    for attempt in ("built", "reused"):
        streamed = load_event_data(cfg, progress=False, stream=True, log=quiet)
        for side in ("train", "val", "test"):
            x = getattr(streamed, f"x_{side}")
            assert isinstance(x, LazyClips) and x.shape == getattr(memory, f"x_{side}").shape
            np.testing.assert_array_equal(np.asarray(x), getattr(memory, f"x_{side}"), err_msg=f"{attempt} {side}")
            np.testing.assert_array_equal(getattr(streamed, f"y_{side}"), getattr(memory, f"y_{side}"))
    stored = {np.dtype(json.loads(p.read_text())["dtype"]) for p in (tmp_path / "synthetic_gestures-frames").glob("*.json")}
    assert stored == {np.dtype(np.uint8 if framing.startswith("or") else np.uint16)}
    a, b = memory.standardized(), streamed.standardized()
    for side in ("train", "val", "test"):
        np.testing.assert_array_equal(np.asarray(getattr(b, f"x_{side}")), getattr(a, f"x_{side}"))


def test_streamed_feature_store_equals_the_loaded_one(tmp_path):
    make_ring_store(tmp_path, dtype=np.float16)
    cfg = load_config(overrides=[f"features.store_dir={tmp_path}", "data.val_fraction=0.25"])
    memory, streamed = load_clip_data(cfg, folder=tmp_path), load_clip_data(cfg, mmap=True, folder=tmp_path)
    assert isinstance(memory.x_train, np.ndarray) and isinstance(streamed.x_train, LazyClips)
    a, b = memory.standardized(), streamed.standardized()
    for side in ("train", "val", "test"):
        np.testing.assert_array_equal(np.asarray(getattr(b, f"x_{side}")), getattr(a, f"x_{side}"))
    assert streaming.stream_wanted(load_config(overrides=["data.stream_above_mb=1"]).data, 2 * 2**20)
    assert not streaming.stream_wanted(load_config(overrides=["data.stream=off"]).data, 2**40)


def _one_pixel_dataset(tmp_path, counts):
    cache = SliceCache(tmp_path / "slices")
    samples = [
        {"id": f"s{i}", "events": make_events(np.full(n, 1), np.full(n, 2), np.ones(n), np.arange(n)), "label": 0, "recording": "r", "group": "g"}
        for i, n in enumerate(counts)
    ]
    entries = cache.store("r", {"test": 1}, samples)
    return EventDataset("pixels", ("a",), (4, 4, 2), entries, cache)


@pytest.mark.parametrize("counts, dtype", [((200, 255), np.uint8), ((300, 65535), np.uint16), ((300, 70000), np.uint32)])
def test_counts_are_stored_in_the_smallest_exact_type(tmp_path, counts, dtype):
    dataset = _one_pixel_dataset(tmp_path, counts)
    framing = ToFrames(sensor_size=(4, 4, 2), n_frames=1, channels="last")
    cached = cached_frames(dataset, framing, tmp_path / "frames", "train", progress=False)
    stored = np.load(cached.path, mmap_mode="r", allow_pickle=False)
    assert stored.dtype == dtype and stored.max() == max(counts)
    expected = np.stack([to_frames(dataset.events(i), (4, 4, 2), 1, channels="last") for i in range(len(counts))])
    np.testing.assert_array_equal(stored, expected)


def test_processes_framing_into_one_cache_take_turns(tmp_path, monkeypatch):
    """The workers of a multi-worker run frame into the same cache: one builds it, the
    others wait for the lock and then read the finished file."""
    import threading

    from nengo_actions.data import frame_cache

    dataset = _one_pixel_dataset(tmp_path, (5, 7, 9))
    framing = ToFrames(sensor_size=(4, 4, 2), n_frames=2, channels="last")
    builds, real_build = [], frame_cache._build

    def slow_build(*args):
        builds.append(threading.get_ident())
        time.sleep(0.5)  # long enough for the other thread to reach the check
        return real_build(*args)

    monkeypatch.setattr(frame_cache, "_build", slow_build)
    results = [None, None]

    def frame(i):
        results[i] = cached_frames(dataset, framing, tmp_path / "frames", "train", progress=False)

    threads = [threading.Thread(target=frame, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and results[0].path == results[1].path
    expected = np.stack([to_frames(dataset.events(i), (4, 4, 2), 2, channels="last") for i in range(3)])
    np.testing.assert_array_equal(np.load(results[0].path, allow_pickle=False), expected)


# The frame-cache file names of the configs, as the dict configs gave them (commit
# 081a09f): a framing setting read differently (a tuple for a list, an int for a
# float) changes repr(transform) and would orphan every cache built before.
PINNED_KEYS = {
    ("dvs128_gesture", "training", (128, 128, 2)): "29d1fe565e587629",
    ("dvs_synthetic", "test", (32, 32, 2)): "fb426cc2e9e90e46",
    ("sl_animals", "training", (128, 128, 2)): "6211fe3c40445c75",
}


@pytest.mark.parametrize("name, role, sensor", list(PINNED_KEYS))
def test_frame_cache_names_of_the_configs_are_unchanged(name, role, sensor):
    from types import SimpleNamespace

    from nengo_actions.data.frame_cache import cache_key, key_name
    from nengo_actions.data.prepare import frame_transforms

    cfg = load_config(REPO / "configs" / f"{name}.json")
    train, test = frame_transforms(cfg.events.frames, sensor, rng=np.random.default_rng(cfg.seed))
    samples = [{"id": f"s{i}", "n_events": 100 + i, "t_first": 0, "t_last": 1_000_000 + i} for i in range(5)]
    extra = {"seed": cfg.seed, "random_crop": cfg.events.frames.random_crop, "role": role}
    key = cache_key(SimpleNamespace(samples=samples), train if role == "training" else test, extra)
    assert key_name(key) == PINNED_KEYS[name, role, sensor], key["transform"]


KILLED_BUILD = """
import os, signal, sys
from nengo_actions.config import load_config
from nengo_actions.data import frame_cache
from nengo_actions.data.dataset import EventDataset
from nengo_actions.clips.event_data import load_event_data

frame_cache.PROGRESS_SECONDS = 0.0
original, calls = EventDataset.events, []

def events(self, i):
    calls.append(i)
    if len(calls) > int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, i)

EventDataset.events = events
load_event_data(load_config(sys.argv[2], sys.argv[3:]), progress=False, stream=True, log=lambda s: None)
"""


def test_a_cache_build_killed_with_sigkill_continues_where_it_stopped(tiny_root, tmp_path, monkeypatch):
    overrides = tiny_overrides(tiny_root, tmp_path) + FRAMINGS["random crop"]
    config = str(REPO / "configs" / "dvs_synthetic_events.json")
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, "3", config, *overrides], cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    progress = list((tmp_path / "synthetic_gestures-frames").glob("*.progress.json"))
    assert len(progress) == 1 and json.loads(progress[0].read_text())["done"] == 3

    calls = []
    original = EventDataset.events
    monkeypatch.setattr(EventDataset, "events", lambda self, i: calls.append(i) or original(self, i))
    cfg = load_config(config, overrides)
    resumed = load_event_data(cfg, progress=False, stream=True, log=quiet)
    memory = load_event_data(cfg, progress=False, stream=False)
    n_train = len(memory.y_train)
    assert len(calls) == n_train - 3 + len(memory.y_val) + len(memory.y_test)  # samples 0..2 not framed again
    assert not list((tmp_path / "synthetic_gestures-frames").glob("*.progress.json"))
    for side in ("train", "val", "test"):
        np.testing.assert_array_equal(np.asarray(getattr(resumed, f"x_{side}")), getattr(memory, f"x_{side}"))


@pytest.mark.parametrize("method", ["rate", "direct"])
def test_a_streamed_run_trains_and_scores_as_the_in_memory_run(tiny_root, tmp_path, method, monkeypatch):
    from nengo_actions.experiment import run

    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1)  # one minibatch per NengoDL fit call
    overrides = tiny_overrides(tiny_root, tmp_path / "cache") + [
        f"model.dvs_conv.method={method}", "model.dvs_gesture_net.channels=4", "model.dvs_gesture_net.depth=1",
        "model.dvs_gesture_net.dense=16", "model.dvs_gesture_net.dropout=0.0", "train.epochs=2",
        "train.minibatch_size=4", "train.tensorboard=false", "evaluate.steps_per_frame=[1]",
        "evaluate.spiking_steps_per_frame=1", 'evaluate.energy_devices=["loihi"]',
    ]
    runs = {}
    for stream in ("off", "on"):
        cfg = load_config(REPO / "configs" / "dvs_synthetic.json", overrides + [f"data.stream={stream}", f"save_dir={tmp_path / stream}"])
        if stream == "on" and method == "direct":  # killed in its second epoch, then resumed
            run_dir = _interrupted_then_resumed(run, cfg, tmp_path / stream, monkeypatch)
        else:
            run_dir = run(cfg, log=quiet)
        runs[stream] = (json.loads((run_dir / "metrics.json").read_text()), run_dir / "dvs_gesture_net" / "params_best.npz")
    (m_off, p_off), (m_on, p_on) = runs["off"], runs["on"]
    keys = [k for k in m_off if k.endswith("clip_accuracy") or k in ("n_parameters", "best_epoch")]
    assert "test_clip_accuracy" in str(keys) and "spiking_test_clip_accuracy" in str(keys)
    assert {k: m_on[k] for k in keys} == {k: m_off[k] for k in keys}
    with np.load(p_off, allow_pickle=False) as a, np.load(p_on, allow_pickle=False) as b:
        names = [n for n in a.files if n.startswith("param_")]
        assert names and names == [n for n in b.files if n.startswith("param_")]
        for name in names:
            np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-6, err_msg=name)


def _interrupted_then_resumed(run, cfg, save_dir, monkeypatch):
    from nengo_actions.engine.direct import DirectEngine

    fit_epoch = DirectEngine.fit_epoch

    def dies_in_epoch_two(self, x, y, epoch, seed=0):
        if epoch == 1:
            raise SystemExit("killed")
        return fit_epoch(self, x, y, epoch, seed)

    with monkeypatch.context() as patch:
        patch.setattr(DirectEngine, "fit_epoch", dies_in_epoch_two)
        with pytest.raises(SystemExit):
            run(cfg, log=quiet)
    (run_dir,) = save_dir.iterdir()
    assert not (run_dir / "metrics.json").exists()
    return run(cfg, run_dir=run_dir, resume=True, log=quiet)
