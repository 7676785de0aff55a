"""Bad input at every entry point: one line naming the file or key, a non-zero exit, no
traceback, and every file already on disk left as it was.

Each case runs a command as a user types it (``runpy`` on the script or module, with
``sys.argv`` set), in this process so that TensorFlow and PyTorch load once.
"""

import hashlib
import json
import re
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from clip_stores import make_ring_store
from feature_extraction import extract
from nengo_actions.config import PROJECT_ROOT, load_config
from nengo_actions.data import make_events, write_aedat2, write_aedat31
from nengo_actions.data.sl_animals import CLASSES as ANIMALS
from nengo_actions.data.sl_animals import DEFINITIONS

GESTURE_LABELS = "class,startTime_usec,endTime_usec\n"
SL_TAGS = "class,startTime_ev,endTime_ev\n"

ENTRIES = {
    "extract": PROJECT_ROOT / "scripts" / "extract_features.py",
    "prepare_events": PROJECT_ROOT / "scripts" / "prepare_events.py",
    "cross_validate": PROJECT_ROOT / "scripts" / "cross_validate.py",
    "train": "nengo_actions.train",
    "sweep": "nengo_actions.sweep",
    "gui": "nengo_actions.gui",
}


# ---------------------------------------------------------------------------------------
# Data every case starts from (written once; each case copies what it breaks)


def uniform_events(t_stop, n, seed):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                       np.sort(rng.integers(0, t_stop, n)))


def write_gesture_layout(root):
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    trials = {"user01_natural": 0, "user02_led": 1, "user24_lab": 2}
    for trial, seed in trials.items():
        write_aedat31(folder / f"{trial}.aedat", uniform_events(3_000_000, 6000, seed), packet_events=1000)
        rows = "".join(f"{c},{c * 200_000},{c * 200_000 + 150_000}\n" for c in range(1, 12))
        (folder / f"{trial}_labels.csv").write_text(GESTURE_LABELS + rows)
    (folder / "trials_to_train.txt").write_text("user01_natural.aedat\nuser02_led.aedat\n")
    (folder / "trials_to_test.txt").write_text("user24_lab.aedat\n")
    return root


def write_sl_layout(root, names=("user01_imse", "user02_dc", "user03_indoor", "user04_sunlight"), per_sign=40):
    (root / "allusers_aedat").mkdir(parents=True)
    (root / "tags_updated_19_08_2020").mkdir()
    # the layout of the download's definitions file (written here: the suite runs without ../shared)
    (root / DEFINITIONS).write_text("class,class Def\n" + "".join(f"{k},{name}\n" for k, name in enumerate(ANIMALS, 1)))
    for i, name in enumerate(names):
        write_aedat2(root / "allusers_aedat" / f"{name}.aedat", uniform_events(10_000_000, 19 * per_sign, i))
        rows = "".join(f"{k + 1},{k * per_sign + 5},{(k + 1) * per_sign}\n" for k in range(19))
        (root / "tags_updated_19_08_2020" / f"{name}.csv").write_text(SL_TAGS + rows)
    return root


TINY_VIDEO = {
    "name": "tiny",
    "seed": 0,
    "data": {
        "dataset": "synthetic_actions",
        "synthetic": {"n_classes": 3, "n_groups": 3, "clips_per_group": 1, "n_frames": 6,
                      "size": [32, 32], "test_groups": [1]},
    },
    "frames": {"policy": "first", "n_frames": 4, "resize": [32, 32]},
    "features": {"backbone": "resnet18", "chunk_size": 4, "batch_size": 16},
}

TINY_MODELS = {
    "ensemble_array": {"n_ensembles": 4, "n_neurons": 4},
    "lmu": {"order": 2, "units": 4, "memory_d": 1, "hidden_to_hidden": False},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """``{name: path}`` of the intact inputs: layouts, a store, a trained params file."""
    root = tmp_path_factory.mktemp("intact")
    videos = root / "ucf"
    cfg_path = root / "video.json"
    cfg_path.write_text(json.dumps(dict(TINY_VIDEO, data=dict(TINY_VIDEO["data"], root=str(videos)))))
    extract.load_dataset(load_config(cfg_path).data, progress=False)  # writes the UCF101 layout
    store = root / "store"
    store.mkdir()
    make_ring_store(store, n_classes=3, n_groups=4, clips_per_group=2, n_frames=6, n_features=8, test_groups=(1,))
    train_cfg = write_json(root / "train.json", {
        "name": "tiny", "save_dir": str(root / "runs"), "features": {"store_dir": str(store)},
        # a store that goes missing is not regenerated from a synthetic set
        "data": {"dataset": "ucf101", "root": str(root / "no-videos")},
        "model": {"type": "lmu", **TINY_MODELS},
        "train": {"epochs": 1, "minibatch_size": 8, "tensorboard": False},
        "evaluate": {"steps_per_frame": [1], "spiking_steps_per_frame": 1, "raster_neurons": 2},
    })
    from nengo_actions.experiment import run

    run_dir = run(load_config(train_cfg), log=lambda *a: None)
    return {
        "videos": videos,
        "gestures": write_gesture_layout(root / "gestures"),
        "sl": write_sl_layout(root / "sl"),
        "store": store,
        "train_cfg": train_cfg,
        "lmu_params": run_dir / "lmu" / "params_best.npz",
        "root": root,
    }


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj))
    return Path(path)


def copy(base, name, tmp):
    """A copy of an intact input in the case's own folder."""
    return Path(shutil.copytree(base[name], tmp / name))


def edit_json(path, tmp, **changes):
    """A copy of the JSON config ``path`` with dotted-key ``changes`` (``a__b`` style)."""
    cfg = json.loads(Path(path).read_text())
    for dotted, value in changes.items():
        value = value(tmp) if callable(value) else value  # a path in the case's folder
        node = cfg
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return write_json(tmp / f"config-{len(list(tmp.glob('config-*.json')))}.json", cfg)


def flip_bits(path, offset, n=8):
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def cut(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


# ---------------------------------------------------------------------------------------
# The cases: (entry point, how to make the bad input, the message that must name it)


def video_config(base, tmp, videos=None, **changes):
    videos = videos or copy(base, "videos", tmp)
    cfg = dict(TINY_VIDEO, data=dict(TINY_VIDEO["data"], dataset="ucf101", root=str(videos)),
               features=dict(TINY_VIDEO["features"], store_dir=str(tmp / "store")))
    return ["-c", str(edit_json(write_json(tmp / "video.json", cfg), tmp, **changes)), "--no-progress"]


def video_case(mutate, **changes):
    def make(base, tmp):
        videos = copy(base, "videos", tmp)
        mutate(videos, tmp)
        return video_config(base, tmp, videos, **changes)
    return make


def lists(videos):
    return videos / "ucfTrainTestlist"


def first_video(videos):
    return sorted((videos / "UCF-101").rglob("*.avi"))[0]


def gesture_config(base, tmp, mutate=None, config="dvs128_gesture_events.json", **changes):
    root = copy(base, "gestures", tmp)
    if mutate:
        mutate(root / "DvsGesture", tmp)
    cfg = json.loads((PROJECT_ROOT / "configs" / config).read_text())
    cfg["data"]["root"] = str(root)
    cfg["save_dir"] = str(tmp / "runs")
    cfg.setdefault("events", {})["cache_dir"] = str(tmp / "cache")
    return ["-c", str(edit_json(write_json(tmp / "gesture.json", cfg), tmp, **changes))]


def gesture_case(mutate=None, config="dvs128_gesture_events.json", **changes):
    return lambda base, tmp: gesture_config(base, tmp, mutate, config, **changes)


def sl_case(mutate=None, config="sl_animals_events.json", extra=(), **changes):
    def make(base, tmp):
        root = copy(base, "sl", tmp)
        if mutate:
            mutate(root, tmp)
        cfg = json.loads((PROJECT_ROOT / "configs" / config).read_text())
        cfg["data"]["root"] = str(root)
        cfg["save_dir"] = str(tmp / "runs")
        cfg.setdefault("events", {})["cache_dir"] = str(tmp / "cache")
        return ["-c", str(edit_json(write_json(tmp / "sl.json", cfg), tmp, **changes)), *extra]
    return make


def train_case(extra=(), **changes):
    def make(base, tmp):
        argv = ["-c", str(edit_json(base["train_cfg"], tmp, save_dir=str(tmp / "runs"), **changes))]
        return argv + [str(a(base, tmp)) if callable(a) else a for a in extra]
    return make


def store_case(mutate, **changes):
    def make(base, tmp):
        store = copy(base, "store", tmp)
        mutate(store, tmp)
        return ["-c", str(edit_json(base["train_cfg"], tmp, save_dir=str(tmp / "runs"),
                                    features__store_dir=str(store), **changes))]
    return make


def text_file(content, name="file.txt"):
    def make(base, tmp):
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path
    return make


def other_model_params(base, tmp):
    return base["lmu_params"]


def store_of_dim(dim):
    def mutate(store, tmp):
        for side in ("train", "test"):
            with np.load(store / f"{side}.npz", allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
            if side == "test":
                arrays["features"] = np.zeros(arrays["features"].shape[:2] + (dim,), arrays["features"].dtype)
            np.savez(store / f"{side}.npz", **arrays)
    return mutate


def sweep_case(sweep):
    def make(base, tmp):
        cfg = {"name": "s", "base": str(base["train_cfg"]), "output_dir": str(tmp / "sweep"), "grid": {}}
        cfg.update(sweep)
        return ["-c", str(write_json(tmp / "sweep.json", cfg))]
    return make


def gui_case(extra=(), **changes):
    def make(base, tmp):
        argv = ["-c", str(edit_json(base["train_cfg"], tmp, save_dir=str(tmp / "runs"), **changes)),
                "--prepare-only", "--out", str(tmp / "gui")]
        return argv + [str(a(base, tmp)) if callable(a) else a for a in extra]
    return make


def write_lines(path, text):
    Path(path).write_text(text)


def wrong_backbone_weights(videos, tmp):
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp / "r34.pth")


def bit_flip_avi_codec(videos, tmp):
    video = first_video(videos)
    flip_bits(video, video.read_bytes().index(b"strh"), 4)  # the stream header's tag


CASES = {
    # --- feature extraction (exit 2: bad config or layout; exit 1: clips that failed)
    "extract/config missing": ("extract", lambda b, t: ["-c", str(t / "absent.json")], r"absent\.json"),
    "extract/config not json": ("extract", lambda b, t: ["-c", str(text_file("{not json")(b, t))], r"file\.txt"),
    "extract/unknown key": ("extract", video_case(lambda v, t: None, frames__n_frame=3), r"frames\.n_frame"),
    "extract/wrong type": ("extract", video_case(lambda v, t: None, frames__n_frames="four"), r"frames\.n_frames"),
    "extract/out of range": ("extract", video_case(lambda v, t: None, features__batch_size=0), r"features\.batch_size"),
    "extract/bad choice": ("extract", video_case(lambda v, t: None, features__backbone="vgg16"), r"features\.backbone"),
    "extract/resize of one value": ("extract", video_case(lambda v, t: None, frames__resize=[32]), r"frames\.resize"),
    "extract/missing testlist": ("extract", video_case(lambda v, t: (lists(v) / "testlist01.txt").unlink()), r"testlist01\.txt"),
    "extract/missing classInd": ("extract", video_case(lambda v, t: (lists(v) / "classInd.txt").unlink()), r"classInd\.txt"),
    "extract/empty trainlist": ("extract", video_case(lambda v, t: write_lines(lists(v) / "trainlist01.txt", "")), r"trainlist01\.txt"),
    "extract/malformed classInd": ("extract", video_case(lambda v, t: write_lines(lists(v) / "classInd.txt", "one MoveUp\n")), r"classInd\.txt"),
    "extract/trainlist names a missing class": (
        "extract",
        video_case(lambda v, t: write_lines(lists(v) / "trainlist01.txt", "Juggling/v_Juggling_g02_c01.avi 1\n")),
        r"trainlist01\.txt.*Juggling|Juggling.*trainlist01\.txt"),
    "extract/trainlist with a bad index": (
        "extract",
        video_case(lambda v, t: write_lines(lists(v) / "trainlist01.txt",
                                            (lists(v) / "trainlist01.txt").read_text().replace(" 1\n", " 9\n", 1))),
        r"trainlist01\.txt"),
    "extract/split names a missing clip": (
        "extract", video_case(lambda v, t: first_video(v).unlink()), r"v_\w+_g\d\d_c\d\d.*(missing|does not exist)"),
    "extract/truncated avi": ("extract", video_case(lambda v, t: cut(first_video(v), 0.3)), r"v_\w+_g\d\d_c\d\d"),
    "extract/bit-flipped avi": ("extract", video_case(bit_flip_avi_codec), r"v_\w+_g\d\d_c\d\d.*undecodable"),
    "extract/weights of another backbone": (
        "extract", video_case(wrong_backbone_weights, features__weights=lambda t: str(t / "r34.pth")), r"r34\.pth.*resnet34"),
    "extract/weights not a state dict": (
        "extract", video_case(lambda v, t: (t / "w.pth").write_bytes(b"\x00garbage" * 100), features__weights=lambda t: str(t / "w.pth")),
        r"w\.pth"),
    "extract/data root missing": ("extract", video_case(lambda v, t: shutil.rmtree(v)), r"data\.root|ucf"),
    "extract/bad shard": ("extract", lambda b, t: video_config(b, t) + ["--shard", "3/2"], r"shard"),
    "extract/malformed --set": ("extract", lambda b, t: video_config(b, t) + ["--set", "frames.n_frames"], r"frames\.n_frames"),
    # --- event slicing and caching (scripts/prepare_events.py)
    "prepare/truncated aedat 3.1": (
        "prepare_events", gesture_case(lambda g, t: cut(g / "user02_led.aedat", 0.6)), r"user02_led\.aedat"),
    "prepare/bit-flipped aedat 3.1 version line": (
        "prepare_events", gesture_case(lambda g, t: flip_bits(g / "user02_led.aedat", 2, 6)), r"user02_led\.aedat"),
    "prepare/bit-flipped aedat 3.1 packet header": (
        "prepare_events", gesture_case(lambda g, t: flip_bits(g / "user01_natural.aedat", len(
            (g / "user01_natural.aedat").read_bytes().split(b"#!END-HEADER\r\n")[0]) + 14 + 4, 4)),
        r"user01_natural\.aedat"),
    "prepare/empty label csv": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "user01_natural_labels.csv", "")), r"user01_natural_labels\.csv"),
    "prepare/label csv with another header": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "user01_natural_labels.csv", "a,b,c\n1,2,3\n")),
        r"user01_natural_labels\.csv"),
    "prepare/label csv with text for a time": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "user01_natural_labels.csv", GESTURE_LABELS + "1,abc,200\n")),
        r"user01_natural_labels\.csv"),
    "prepare/label csv with class 12": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "user02_led_labels.csv", GESTURE_LABELS + "12,100,2000\n")),
        r"user02_led_labels\.csv"),
    "prepare/label csv ending before it starts": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "user02_led_labels.csv", GESTURE_LABELS + "3,5000,100\n")),
        r"user02_led_labels\.csv"),
    "prepare/label csv missing": (
        "prepare_events", gesture_case(lambda g, t: (g / "user24_lab_labels.csv").unlink()), r"user24_lab_labels\.csv"),
    "prepare/missing trials_to_test": (
        "prepare_events", gesture_case(lambda g, t: (g / "trials_to_test.txt").unlink()), r"trials_to_test\.txt"),
    "prepare/trial list names a missing recording": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "trials_to_train.txt", "user09_led.aedat\n")),
        r"user09_led"),
    "prepare/empty test split": (
        "prepare_events", gesture_case(lambda g, t: write_lines(g / "trials_to_test.txt", "\n")), r"trials_to_test\.txt"),
    "prepare/events key of the wrong type": (
        "prepare_events", gesture_case(events__frames__n_frames="sixteen"), r"events\.frames\.n_frames"),
    "prepare/events value out of range": (
        "prepare_events", gesture_case(events__frames__n_frames=0), r"events\.frames\.n_frames"),
    "prepare/unknown frames mode": ("prepare_events", gesture_case(events__frames__mode="average"), r"events\.frames\.mode"),
    "prepare/truncated aedat 2.0": (
        "prepare_events", sl_case(lambda r, t: cut(r / "allusers_aedat" / "user02_dc.aedat", 0.5)), r"user02_dc\.aedat"),
    "prepare/bit-flipped aedat 2.0 header": (
        "prepare_events", sl_case(lambda r, t: flip_bits(r / "allusers_aedat" / "user02_dc.aedat", 0, 10)), r"user02_dc\.aedat"),
    "prepare/tags beyond the recording": (
        "prepare_events", sl_case(lambda r, t: write_lines(r / "tags_updated_19_08_2020" / "user01_imse.csv", SL_TAGS + "1,5,99999\n")),
        r"user01_imse\.csv"),
    "prepare/malformed tags csv": (
        "prepare_events", sl_case(lambda r, t: write_lines(r / "tags_updated_19_08_2020" / "user01_imse.csv", "class;start;end\n")),
        r"user01_imse\.csv"),
    "prepare/missing tags file": (
        "prepare_events", sl_case(lambda r, t: (r / "tags_updated_19_08_2020" / "user03_indoor.csv").unlink()), r"user03_indoor"),
    "prepare/fold out of range": ("prepare_events", sl_case(events__sl_animals__fold=7), r"events\.sl_animals\.fold"),
    # --- training
    "train/config missing": ("train", lambda b, t: ["-c", str(t / "none.json")], r"none\.json"),
    "train/unknown model key": ("train", train_case(model__lmu__unit=3), r"model\.lmu\.unit"),
    "train/epochs of the wrong type": ("train", train_case(train__epochs="ten"), r"train\.epochs"),
    "train/zero epochs": ("train", train_case(train__epochs=0), r"train\.epochs"),
    "train/negative learning rate": ("train", train_case(train__learning_rate=-1), r"train\.learning_rate"),
    "train/unknown model type": ("train", train_case(model__type="transformer"), r"model\.type"),
    "train/empty steps_per_frame": ("train", train_case(evaluate__steps_per_frame=[]), r"evaluate\.steps_per_frame"),
    "train/--params not a parameter file": (
        "train", train_case(extra=["--params", text_file(b"not a parameter file", "p.npz")]), r"p\.npz"),
    "train/--params missing": ("train", train_case(extra=["--params", lambda b, t: t / "absent.npz"]), r"absent\.npz"),
    "train/--params of another model": (
        "train", train_case(model__type="ensemble_array", extra=["--params", other_model_params]), r"params_best\.npz"),
    "train/--params truncated": (
        "train", train_case(extra=["--params", lambda b, t: (t / "cut.npz").write_bytes(b["lmu_params"].read_bytes()[:300]) and t / "cut.npz"]),
        r"cut\.npz"),
    "train/--resume of no run": ("train", lambda b, t: ["--resume", str(t / "norun")], r"norun"),
    "train/store of another dimension": ("train", store_case(store_of_dim(5)), r"test\.npz|train\.npz|dimension|features"),
    "train/store truncated": ("train", store_case(lambda s, t: cut(s / "test.npz", 0.5)), r"test\.npz"),
    "train/store missing": ("train", store_case(lambda s, t: (s / "test.npz").unlink()), r"test\.npz"),
    "train/event split empty": (
        "train", gesture_case(lambda g, t: write_lines(g / "trials_to_train.txt", ""), config="dvs128_gesture.json"),
        r"trials_to_train\.txt"),
    "train/event recording truncated": (
        "train", gesture_case(lambda g, t: cut(g / "user24_lab.aedat", 0.5), config="dvs128_gesture.json"), r"user24_lab\.aedat"),
    "train/lif threshold out of range": (
        "train", gesture_case(config="dvs128_gesture.json", model__dvs_conv__threshold=-1), r"model\.dvs_conv\.threshold"),
    # --- sweeps
    "sweep/config missing": ("sweep", lambda b, t: ["-c", str(t / "sweep-none.json")], r"sweep-none\.json"),
    "sweep/unknown grid key": ("sweep", sweep_case({"grid": {"model.lmu.unitz": [2, 3]}}), r"model\.lmu\.unitz"),
    "sweep/bad neuron type": ("sweep", sweep_case({"grid": {"model.lmu.neuron_type": ["LIFF"]}}), r"LIFF"),
    "sweep/base missing": ("sweep", sweep_case({"base": "nowhere.json"}), r"nowhere\.json"),
    "sweep/repeats zero": ("sweep", sweep_case({"repeats": 0}), r"repeats"),
    # --- the GUI
    "gui/unknown key": ("gui", gui_case(model__lmu__oder=2), r"model\.lmu\.oder"),
    "gui/--params not a parameter file": ("gui", gui_case(extra=["--params", text_file("x", "gui.npz")]), r"gui\.npz"),
    "gui/--params of another model": (
        "gui", gui_case(model__type="ensemble_array", extra=["--params", other_model_params]), r"params_best\.npz"),
    # --- cross-validation
    "cross_validate/not sl_animals": ("cross_validate", train_case(), r"data\.dataset"),
    "cross_validate/unknown set": ("cross_validate", sl_case(config="sl_animals.json", extra=("--sets", "tiny")), r"tiny"),
    "cross_validate/fold out of range": ("cross_validate", sl_case(config="sl_animals.json", extra=("--folds", "9")), r"fold"),
}


def snapshot(*roots):
    """``{path: sha256}`` of every file under ``roots``."""
    out = {}
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def invoke(entry, argv):
    """Run an entry point as ``python <script or -m module> argv``; its exit status."""
    target = ENTRIES[entry]
    saved = sys.argv
    sys.argv = [str(target), *argv]
    try:
        if isinstance(target, Path):
            runpy.run_path(str(target), run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = saved
    return 0


def test_there_are_at_least_fifty_cases_across_every_entry_point():
    assert len(CASES) >= 50
    assert {entry for entry, _, _ in CASES.values()} == set(ENTRIES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_line_naming_it(case, base, tmp_path, capsys):
    entry, make, pattern = CASES[case]
    argv = [str(a) for a in make(base, tmp_path)]
    capsys.readouterr()
    before = snapshot(tmp_path, base["root"])
    status = invoke(entry, argv)
    out, err = capsys.readouterr()
    assert status not in (0, None), f"exit status {status}\n{out}\n{err}"
    assert "Traceback" not in out + err, err
    if status == 2:  # bad config or input: the last line of stderr says what and where
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error: "), err
        assert re.search(pattern, lines[-1]), lines[-1]
    else:  # the run went on past bad clips; the summary names each
        assert re.search(pattern, out), out
    after = snapshot(tmp_path, base["root"])
    changed = sorted(p for p in before if after.get(p) != before[p])
    assert not changed, f"files changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    assert not [p for p in new if "/runs/" in p or "/sweep/" in p], f"a run folder was written: {new}"


def test_the_real_command_prints_one_line_and_writes_no_run_folder(base, tmp_path):
    """The same as a user sees it: a separate process, its stderr, its exit status."""
    import subprocess

    bad = tmp_path / "notes.npz"
    bad.write_text("not parameters")
    config = edit_json(base["train_cfg"], tmp_path, save_dir=str(tmp_path / "runs"))
    proc = subprocess.run([sys.executable, "-m", "nengo_actions.train", "-c", str(config), "--params", str(bad)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == f"error: {bad}: not a parameter file (not an .npz archive)", proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
