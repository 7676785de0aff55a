"""The extraction pipeline and command: the store against an independent reference,
resumption, shards, bad input, config errors, the seed's pickles, the script itself."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from feature_extraction import extract

from nengo_actions.config import paths
from feature_extraction.cli import main
from feature_extraction.merge import merge
from feature_extraction.synthetic import write_video
from nengo_actions import config as config_module
from nengo_actions.config import IMAGENET_MEAN, IMAGENET_STD, PROJECT_ROOT, ConfigError, load_config, settings
from nengo_actions.splits import check_group_leak
from nengo_actions.store import load_split

FIXTURES = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(Path(__file__).resolve().parents[2] / "shared" / "fixtures"))) / "ucf101"
SCRIPT = PROJECT_ROOT / "scripts" / "extract_features.py"

TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {
        "dataset": "synthetic_actions",
        "synthetic": {"n_classes": 4, "n_groups": 4, "clips_per_group": 2, "n_frames": 8,
                      "size": [32, 32], "test_groups": [1]},
    },
    "frames": {"policy": "uniform", "n_frames": 6, "resize": [32, 32]},
    "features": {"backbone": "resnet18", "chunk_size": 5, "batch_size": 16, "dtype": "float16"},
}


def write_config(folder, base=TINY, **overrides):
    """A config file; ``overrides`` are dotted keys (``features__chunk_size`` style)."""
    cfg = json.loads(json.dumps(base))
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = Path(folder) / f"config-{len(list(Path(folder).glob('config-*.json')))}.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """The tiny synthetic set, generated once (extraction runs use their own store folders)."""
    root = tmp_path_factory.mktemp("tiny_data")
    cfg = load_config(write_config(root, data__root=str(root)))
    extract.load_dataset(cfg.data, progress=False)
    return root


def config(tmp_path, data_root, **overrides):
    overrides.setdefault("data__root", str(data_root))
    overrides.setdefault("features__store_dir", str(tmp_path / "store"))
    return load_config(write_config(tmp_path, **overrides))


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory, data_root):
    """One uninterrupted run that other runs are compared with."""
    folder = tmp_path_factory.mktemp("reference")
    summary = extract.extract(config(folder, data_root), progress=False)
    assert summary.exit_code == 0 and summary.complete
    return summary.store_dir


def read_store(folder):
    return {side: load_split(Path(folder) / f"{side}.npz") for side in ("train", "test")}


def assert_same_store(a, b):
    a, b = read_store(a), read_store(b)
    for side in ("train", "test"):
        x, y = a[side], b[side]
        assert x.features.dtype == y.features.dtype
        assert x.features.tobytes() == y.features.tobytes()  # bit for bit
        assert np.array_equal(x.labels, y.labels) and np.array_equal(x.groups, y.groups)
        assert np.array_equal(x.clip_ids, y.clip_ids)
        strip = lambda m: {k: v for k, v in m.items() if k != "config"}  # noqa: E731
        assert strip(x.metadata) == strip(y.metadata)


def test_store_holds_both_official_sides_with_metadata(reference_store, data_root):
    store = read_store(reference_store)
    train, test = store["train"], store["test"]
    assert train.features.shape == (24, 6, 512) and test.features.shape == (8, 6, 512)
    assert train.features.dtype == np.float16
    assert set(test.groups.tolist()) == {1} and set(train.groups.tolist()) == {2, 3, 4}
    check_group_leak(train.groups, test.groups)
    names = ["MoveLeft", "MoveRight", "MoveUp", "MoveDown"]
    assert train.class_names == names
    for split in (train, test):
        for clip_id, label in zip(split.clip_ids, split.labels):
            assert clip_id.split("/")[0] == names[label]  # 0-based classInd index
    meta = train.metadata
    assert meta["backbone"] == "resnet18" and meta["weights"] is None and meta["weights_sha256"] is None
    assert meta["random_init"] is True and meta["warnings"][0].startswith("RANDOM WEIGHTS")
    assert meta["sampling"] == {"policy": "uniform", "n_frames": 6, "short_clips": "pad"}
    assert meta["feature_dim"] == 512 and meta["steps"] == 6
    assert meta["clips_failed"] == {} and meta["clips_skipped"] == {}
    assert meta["config"]["features"]["backbone"] == "resnet18"
    assert meta["config"]["frames"]["resize"] == [32, 32]  # plain JSON: a list, as written
    # loads without pickles, and memory-mapped
    mapped = load_split(Path(reference_store) / "train.npz", mmap=True)
    assert isinstance(mapped.features, np.memmap) and np.array_equal(mapped.features, train.features)
    assert not (Path(reference_store) / "chunks").exists()  # removed once assembled


def test_features_equal_an_independent_torchvision_reference(reference_store, data_root):
    """Decode with OpenCV, pick segment centres, normalise by hand, run torchvision's resnet18."""
    test = read_store(reference_store)["test"]
    torch.manual_seed(0)  # the extractor's random initialisation for seed 0
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Identity()
    model.eval()
    for row in (0, 5):
        capture = cv2.VideoCapture(str(data_root / "UCF-101" / f"{test.clip_ids[row]}.avi"))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame[:, :, ::-1])
        picked = np.stack([frames[int((i + 0.5) * len(frames) / 6)] for i in range(6)])
        x = torch.from_numpy(picked.astype(np.float32) / 255).permute(0, 3, 1, 2)
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(test.features[row].astype(np.float32), want, rtol=2e-3, atol=2e-3)


def test_killed_and_rerun_equals_an_uninterrupted_run(tmp_path, data_root, reference_store):
    cfg = config(tmp_path, data_root)

    class Killed(Exception):
        pass

    def kill_after_three(k):
        if k == 2:
            raise Killed

    with pytest.raises(Killed):
        extract.extract(cfg, progress=False, on_chunk=kill_after_three)
    chunks = sorted(p.name for p in (tmp_path / "store" / "chunks").glob("chunk_*.npz"))
    assert chunks == ["chunk_000000.npz", "chunk_000001.npz", "chunk_000002.npz"]
    assert not (tmp_path / "store" / "train.npz").exists()
    # a half-written chunk (the temporary file of a killed write) is not mistaken for one
    (tmp_path / "store" / "chunks" / ".chunk_000003.npz.tmp999").write_bytes(b"partial")
    summary = extract.extract(cfg, progress=False)
    assert summary.clips_this_run == 32 - 15 and summary.complete
    assert_same_store(tmp_path / "store", reference_store)
    # complete: a third run has nothing to do
    again = extract.extract(cfg, progress=False)
    assert again.clips_this_run == 0 and "nothing to do" in again.note


def test_changed_settings_do_not_mix_with_old_chunks(tmp_path, data_root):
    with pytest.raises(RuntimeError):
        extract.extract(config(tmp_path, data_root), progress=False,
                        on_chunk=lambda k: (_ for _ in ()).throw(RuntimeError("stop")))
    with pytest.raises(ConfigError, match=r"other settings \(changed: frames.resize\)"):
        extract.extract(config(tmp_path, data_root, frames__resize=[40, 40]), progress=False)


def test_two_shards_and_merge_equal_a_single_run(tmp_path, data_root, reference_store):
    # shard 1 here, shard 2 "on another machine" (another folder), then merge
    first = config(tmp_path, data_root)
    second = config(tmp_path, data_root, features__store_dir=str(tmp_path / "other"))
    s1 = extract.extract(first, shard=(1, 2), progress=False)
    assert not s1.complete and s1.chunks_done == 4 and s1.chunks_total == 7
    assert "incomplete: 4 of 7 chunks" in "\n".join(s1.lines())
    with pytest.raises(ConfigError, match="3 of 7 chunks are missing"):
        merge(first, progress=False)
    extract.extract(second, shard=(2, 2), progress=False)
    merged = merge(first, [tmp_path / "other"], progress=False)
    assert merged.complete and merged.sides == {"train": 24, "test": 8}
    assert_same_store(tmp_path / "store", reference_store)


def test_store_dir_default_encodes_the_settings(tmp_path, data_root):
    a = config(tmp_path, data_root, features__store_dir=None)
    name = paths.store_dir(a).name
    assert paths.store_dir(a).parent == data_root / "features"
    assert name.startswith("resnet18-uniform6-") and len(name.split("-")[-1]) == 8
    b = config(tmp_path, data_root, features__store_dir=None, features__pool_grid=2)
    assert paths.store_dir(b).name.startswith("resnet18-uniform6-grid2-")
    c = config(tmp_path, data_root, features__store_dir=None, frames__resize=[64, 64])
    assert paths.store_dir(c) != paths.store_dir(a)
    d = config(tmp_path, data_root, features__store_dir=None, features__batch_size=3)
    assert paths.store_dir(d) == paths.store_dir(a)  # batching does not change what is stored
    assert "torch" not in subprocess.run(
        [sys.executable, "-c", "import nengo_actions.config.paths, sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, check=True,
    ).stdout.split()


SYNTHETIC_DEMO_SETTINGS = {
    "data.dataset": "synthetic_actions", "data.frames_dir": None, "data.root": "/checkout/data/synthetic_actions",
    "data.split": 1,
    "data.synthetic": {"clips_per_group": 2, "fps": 25, "n_classes": 8, "n_frames": 32, "n_groups": 40, "seed": 0,
                       "size": [64, 64], "test_groups": [1, 2, 3, 4, 5, 6]},
    "features.backbone": "resnet18", "features.dtype": "float16", "features.output": "pool", "features.pool_grid": 2,
    "features.weights": None, "frames.mean": [0.485, 0.456, 0.406], "frames.n_frames": 8, "frames.policy": "uniform",
    "frames.resize": [112, 112], "frames.short_clips": "pad", "frames.std": [0.229, 0.224, 0.225],
}


@pytest.mark.parametrize("name, store, settings_pinned", [
    ("config.json", "synthetic_actions/features/resnet18-uniform8-grid2-9cd933bf", SYNTHETIC_DEMO_SETTINGS),
    ("ucf101_lmu.json", "ucf101/features/resnet152-first28-seedhead-5f15c4d1", None),
    ("ucf101_ensemble.json", "ucf101/features/resnet152-first28-seedhead-5f15c4d1", None),
])
def test_store_names_of_the_shipped_configs_are_pinned(monkeypatch, name, store, settings_pinned):
    """A changed name would orphan every user's extracted features. The names are those
    the dict-based config gave, for a checkout at /checkout: the hash covers the absolute
    data.root, so the root is fixed here."""
    path = PROJECT_ROOT / "configs" / name
    monkeypatch.setattr(config_module, "PROJECT_ROOT", Path("/checkout"))
    cfg = load_config(path)
    assert paths.store_dir(cfg) == Path("/checkout/data") / store
    if settings_pinned is not None:
        assert paths.feature_settings(cfg) == settings_pinned
    # what is hashed and what a store records are plain JSON (lists, not tuples)
    assert json.loads(json.dumps(paths.feature_settings(cfg))) == paths.feature_settings(cfg)
    assert json.loads(json.dumps(settings(cfg))) == settings(cfg)


@pytest.fixture
def damaged_data(tmp_path, data_root):
    root = tmp_path / "damaged"
    shutil.copytree(data_root, root, ignore=shutil.ignore_patterns("features"))
    (root / "UCF-101/MoveUp/v_MoveUp_g02_c01.avi").unlink()
    (root / "UCF-101/MoveLeft/v_MoveLeft_g03_c02.avi").write_bytes(b"RIFF....AVI garbage" * 50)
    return root


def test_bad_videos_are_recorded_and_the_run_goes_on(tmp_path, damaged_data, capsys):
    path = write_config(tmp_path, data__root=str(damaged_data), features__store_dir=str(tmp_path / "s"))
    assert main(["-c", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "30 done" in out and "2 failed" in out
    assert "failed: MoveUp/v_MoveUp_g02_c01: missing:" in out
    assert "failed: MoveLeft/v_MoveLeft_g03_c02: undecodable" in out
    train = load_split(tmp_path / "s" / "train.npz")
    assert len(train) == 22 and "MoveUp/v_MoveUp_g02_c01" not in train.clip_ids
    assert set(train.metadata["clips_failed"]) == {"MoveUp/v_MoveUp_g02_c01", "MoveLeft/v_MoveLeft_g03_c02"}
    assert load_split(tmp_path / "s" / "test.npz").metadata["clips_failed"] == {}
    # allowed failures exit 0
    path = write_config(tmp_path, data__root=str(damaged_data), features__store_dir=str(tmp_path / "t"),
                        features__allow_failures=True)
    assert main(["-c", str(path), "--no-progress"]) == 0


def test_a_cut_download_counts_as_failed_unless_short_reads_are_allowed(tmp_path, data_root, capsys):
    root = tmp_path / "cut"
    shutil.copytree(data_root, root, ignore=shutil.ignore_patterns("features"))
    video = root / "UCF-101/MoveUp/v_MoveUp_g02_c01.avi"
    # a longer, noisier clip than the set's, so that half of its bytes still holds the
    # 4.6 kB header and some frames
    noise = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    write_video(video, noise, 25)
    whole = video.read_bytes()
    video.write_bytes(whole[: len(whole) // 2])
    for policy in ("uniform", "first"):  # "first" reads 6 of 8 frames, then checks the last
        store = tmp_path / f"s-{policy}"
        path = write_config(tmp_path, data__root=str(root), features__store_dir=str(store),
                            frames__policy=policy)
        assert main(["-c", str(path), "--no-progress"]) == 1
        out = capsys.readouterr().out
        assert "31 done" in out and "1 failed" in out
        line = next(x for x in out.splitlines() if "v_MoveUp_g02_c01" in x)
        decoded = int(line.split("decoded ")[1].split()[0])
        assert 0 < decoded < 40 and "of the 40 frames the container" in line, line
        assert "v_MoveUp_g02_c01" not in load_split(store / "train.npz").clip_ids
    path = write_config(tmp_path, data__root=str(root), features__store_dir=str(tmp_path / "allowed"),
                        frames__allow_short_reads=True)
    assert main(["-c", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "32 done" in out and "0 failed" in out and "1 damaged" in out
    train = load_split(tmp_path / "allowed" / "train.npz")
    assert "MoveUp/v_MoveUp_g02_c01" in train.clip_ids
    assert f"decoded {decoded} of the 40" in train.metadata["clips_damaged"]["MoveUp/v_MoveUp_g02_c01"]


@pytest.mark.parametrize(
    "problem, message",
    [
        ("testlist", "split file not found: .*testlist01.txt"),
        ("root", "key 'data.root': data folder not found: .*nowhere"),
        ("videos", "key 'data.videos_dir': video folder not found"),
        ("weights", r"r34.pth: holds resnet34 weights, but features.backbone is resnet18"),
        ("weights_missing", "key 'features.weights' names a path that does not exist"),
        ("shard", "shards are numbered 1..n"),
        ("key", "unknown key 'features.pool_gird' \\(did you mean 'features.pool_grid'\\?\\)"),
    ],
)
def test_input_errors_exit_2_naming_the_file_before_any_work(tmp_path, data_root, capsys, problem, message):
    root = tmp_path / "data"
    shutil.copytree(data_root, root, ignore=shutil.ignore_patterns("features"))
    overrides = {"data__root": str(root), "features__store_dir": str(tmp_path / "store")}
    argv = []
    if problem == "testlist":
        (root / "ucfTrainTestlist" / "testlist01.txt").unlink()
        overrides["data__generate"] = False
        # the marker says the set is complete, so nothing regenerates the list
    elif problem == "root":
        overrides.update(data__dataset="ucf101", data__root=str(tmp_path / "nowhere"))
    elif problem == "videos":
        overrides.update(data__dataset="ucf101", data__videos_dir=str(tmp_path / "novideos"))
    elif problem == "weights":
        torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
        overrides["features__weights"] = str(tmp_path / "r34.pth")
    elif problem == "weights_missing":
        overrides["features__weights"] = str(tmp_path / "absent.pth")
    elif problem == "shard":
        argv = ["--shard", "0/2"]
    elif problem == "key":
        overrides["features__pool_gird"] = 2
    path = write_config(tmp_path, **overrides)
    with pytest.raises(SystemExit) as e:
        main(["-c", str(path), "--no-progress", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "store").exists()  # no work started


def test_seed_pickles_export_and_guarded_import(tmp_path, data_root, reference_store, capsys):
    path = write_config(tmp_path, data__root=str(data_root), features__store_dir=str(reference_store))
    assert main(["-c", str(path), "--no-progress", "--export-seed-pickles", str(tmp_path / "pk")]) == 0
    import pickle

    with open(tmp_path / "pk" / "train_labels.pickle", "rb") as f:
        labels = pickle.load(f)  # written by this test's own run
    with open(tmp_path / "pk" / "train_data.pickle", "rb") as f:
        data = pickle.load(f)
    train = read_store(reference_store)["train"]
    assert data.dtype == np.float64 and data.shape == (24, 6, 512)
    assert labels.shape == (24, 6, 1) and np.array_equal(labels[:, 3, 0], train.labels)

    pickles = {name: str(tmp_path / "pk" / f"{name}.pickle")
               for name in ("train_data", "test_data", "train_labels", "test_labels")}
    refused = write_config(tmp_path, data__root=str(data_root), features__store_dir=str(tmp_path / "imp"),
                           features__seed_pickles=pickles)
    with pytest.raises(SystemExit) as e:
        main(["-c", str(refused), "--no-progress"])
    assert e.value.code == 2
    assert "refused unless the config sets allow_pickle: true" in capsys.readouterr().err
    assert not (tmp_path / "imp").exists()

    allowed = write_config(tmp_path, data__root=str(data_root), features__store_dir=str(tmp_path / "imp"),
                           features__seed_pickles=pickles, allow_pickle=True)
    assert main(["-c", str(allowed), "--no-progress"]) == 0
    imported = read_store(tmp_path / "imp")["train"]
    assert np.array_equal(imported.features, train.features) and np.array_equal(imported.labels, train.labels)
    assert imported.class_names == train.class_names
    assert len(np.unique(imported.groups)) == 24  # no groups in the pickles: one per clip


@pytest.mark.skipif(not (FIXTURES / "test.avi").exists(), reason="no UCF101 clips in the fixtures")
def test_real_clips_all_frames_and_short_clips(tmp_path):
    """Two real UCF101 clips in the UCF101 layout: the 'all' policy and short-clip skipping."""
    root = tmp_path / "ucf"
    (root / "UCF-101" / "ApplyEyeMakeup").mkdir(parents=True)
    (root / "UCF-101" / "Basketball").mkdir()
    shutil.copy(FIXTURES / "test.avi", root / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi")
    shutil.copy(FIXTURES / "v_Basketball_g01_c01.avi", root / "UCF-101/Basketball/v_Basketball_g08_c01.avi")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 Basketball\r\n")
    (lists / "trainlist01.txt").write_bytes(b"Basketball/v_Basketball_g08_c01.avi 2\r\n")
    (lists / "testlist01.txt").write_bytes(b"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\n")
    base = {"data": {"dataset": "ucf101", "root": str(root)},
            "frames": {"resize": [32, 32]}, "features": {"backbone": "resnet18", "batch_size": 64}}
    cfg = load_config(write_config(tmp_path, base, frames__policy="all", features__store_dir=str(tmp_path / "all")))
    summary = extract.extract(cfg, progress=False)
    train, test = read_store(tmp_path / "all").values()
    assert summary.frames_this_run == 141 + 164
    assert train.features.shape == (1, 164, 512) and test.features.shape == (1, 164, 512)
    assert train.metadata["lengths"] == [141] and test.metadata["lengths"] == [164]
    # the shorter clip repeats its last step
    assert np.array_equal(train.features[0, 141:], np.repeat(train.features[0, 140:141], 23, axis=0))

    cfg = load_config(write_config(tmp_path, base, frames__policy="first", frames__n_frames=150,
                                   frames__short_clips="skip", features__store_dir=str(tmp_path / "skip")))
    summary = extract.extract(cfg, progress=False)
    assert list(summary.clips_skipped) == ["Basketball/v_Basketball_g08_c01"]
    assert "141 frames < frames.n_frames=150" in summary.clips_skipped["Basketball/v_Basketball_g08_c01"]
    assert summary.exit_code == 0
    train, test = read_store(tmp_path / "skip").values()
    assert len(train) == 0 and test.features.shape == (1, 150, 512)
    assert train.metadata["clips_skipped"] and "skipped" in "\n".join(summary.lines())

    cfg = load_config(write_config(tmp_path, base, frames__policy="first", frames__n_frames=150,
                                   features__store_dir=str(tmp_path / "pad")))
    summary = extract.extract(cfg, progress=False)
    assert summary.clips_padded == {"Basketball/v_Basketball_g08_c01": 141}


def test_script_runs_by_absolute_path_from_another_folder(tmp_path, data_root, reference_store):
    path = write_config(tmp_path, data__root=str(data_root), features__store_dir=str(reference_store))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(SCRIPT), "-c", str(path)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout and str(reference_store) in result.stdout


def test_synthetic_classes_are_told_apart_by_motion_not_by_one_frame(tmp_path):
    """The demo's premise on a small set: a random ResNet-18 with a 2x2 grid keeps where
    the object is, so the change of the features over time gives the class (probe), while
    one frame alone gives little more than chance."""
    from feature_extraction.probe import motion_probe

    cfg = load_config(write_config(
        tmp_path, data__root=str(tmp_path / "data"), features__store_dir=str(tmp_path / "store"),
        data__synthetic={"n_classes": 4, "n_groups": 6, "clips_per_group": 2, "n_frames": 8,
                         "size": [48, 48], "test_groups": [1, 2]},
        frames__n_frames=8, frames__resize=[48, 48], features__pool_grid=2, features__chunk_size=48,
        features__batch_size=96,
    ))
    summary = extract.extract(cfg, progress=False)
    train, test = read_store(summary.store_dir).values()
    assert train.features.shape == (32, 8, 2048) and len(test) == 16
    scores = motion_probe(train, test)
    assert scores["motion"] >= 0.85, scores
    assert scores["single_frame"] <= 0.5, scores
