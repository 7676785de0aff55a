"""Smoke tests of the benchmark scripts: nothing else runs them, so they would break
unnoticed. Each runs end to end at a tiny size, as a user runs it
(``python benchmarks/NAME.py ...`` in its own process), writes into a temporary folder
(never ``benchmarks/README.md``, ``benchmarks/results`` or ``results/``), and what it
wrote is checked. The figures are meaningless at these sizes; their presence, type and
range are what is checked.

The peer kit (SpikingJelly, snnTorch, tonic in their own venv) is never needed: each
script is pointed at a peer interpreter or kit that does not exist, and must say that it
skipped the peers and carry on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("NENGO_ACTIONS_FIXTURES", str(ROOT.parent / "shared" / "fixtures")))
#: The tiny DVS digit set of bench_dvs_digits.py and nir_exchange.py (``--digits``).
DIGITS = 24
#: A DVSGestureNet that trains in seconds: 2 frames of 32 x 32, 2 channels, one epoch,
#: judged at 1 step per frame. Without the untrained-network check, which only costs time.
TINY_DVS = [
    "train.epochs=1", "train.initial_accuracy=false", "model.dvs_gesture_net.channels=2",
    "model.dvs_gesture_net.dense=8", "events.frames.n_frames=2", "events.frames.downsample=4",
    "evaluate.steps_per_frame=[1]",
]


def sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def run_benchmark(name, *args, timeout=300):
    """``python benchmarks/<name>.py *args`` from the repository root; its output (stdout
    and stderr together). Fails with the end of the output unless it exits with 0."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *map(str, args)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, f"{name}.py exited with {proc.returncode}:\n{proc.stdout[-6000:]}"
    return proc.stdout


def section_table(readme, heading):
    """The rows of the first Markdown table under ``heading`` in ``readme``, as dicts."""
    text = Path(readme).read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n") and text.count(heading + "\n") == 1
    lines = text.split(heading + "\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("| "):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def number(cell):
    """A table cell as a float: thousands separators, bold, ``%`` and ``x`` suffixes removed."""
    return float(re.sub(r"[,*%x]", "", cell))


def positive(cell):
    value = number(cell)
    assert value > 0, cell
    return value


def fraction(value):
    assert value is not None and 0.0 <= value <= 1.0, value
    return value


@pytest.fixture
def no_peers(tmp_path):
    """A peer interpreter path that does not exist: what a machine without the kit has."""
    return tmp_path / "no-peers-venv" / "bin" / "python"


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    """One tiny digit set for the two benchmarks on it (each makes it when missing)."""
    from nengo_actions.data import SyntheticDigitSpec, ensure_synthetic_digits

    root = tmp_path_factory.mktemp("dvs_digits")
    ensure_synthetic_digits(root, SyntheticDigitSpec(n_users=4, test_users=1, n_samples=DIGITS), progress=False)
    return root


def test_bench_neurons(tmp_path):
    readme = tmp_path / "README.md"
    out = run_benchmark("bench_neurons", "--neurons", 20, "--minibatch", 2, "--types", "AdaptiveLIF",
                        "--ensemble-size", 10, "--native-steps", 20, "--fallback-steps", 5, "--readme", readme)
    rows = section_table(readme, "## Neuron models (bench_neurons.py)")
    assert [(r["neuron type"], r["ensembles x neurons"], r["minibatch"]) for r in rows] == [
        ("AdaptiveLIF", "1 x 20", "2"), ("AdaptiveLIF", "2 x 10", "2")]
    for r in rows:
        native, fallback = positive(r["native steps/s"]), positive(r["fallback steps/s"])
        assert r["speed-up"].endswith("x") and number(r["speed-up"]) == pytest.approx(native / fallback, rel=0.1, abs=0.1)
    assert f"wrote {readme}" in out


def test_bench_ensemble(tmp_path):
    readme = tmp_path / "README.md"
    run_benchmark("bench_ensemble", "--ensembles", 4, "--neurons", 5, "--features", 8, "--classes", 3,
                  "--frames", 3, "--clips", 4, "--minibatch", 2, "--ref-steps", 2, "--readme", readme)
    rows = section_table(readme, "## EnsembleArray at the seed's size: NengoDL vs Nengo (bench_ensemble.py)")
    assert [(r["task"], r["simulator"]) for r in rows] == [
        ("training (rate neurons, backprop through 3 steps)", "NengoDL"), ("spiking inference", "NengoDL"),
        ("spiking inference", "Nengo reference"), ("training", "Nengo reference")]
    for r in rows[:3]:
        positive(r["clips/s"])
    assert rows[3]["clips/s"] == "n/a"
    assert "4 ensembles x 5 SpikingRectifiedLinear neurons (20 neurons)" in readme.read_text()


def test_bench_dvs(tmp_path, no_peers):
    readme, report = tmp_path / "README.md", tmp_path / "bench.json"
    out = run_benchmark("bench_dvs", "--peers-python", no_peers, "--channels", 4, "--hw", 32, "--frames", 2,
                        "--batch", 2, "--batches", 1, "--repeats", 1, "--rounds", 1, "--readme", readme,
                        "--full", "--full-size", "4,32,3,2", "--json", report)
    assert f"peers skipped: no peer venv interpreter at {no_peers}" in out
    rows = section_table(readme, "## DVS128 Gesture network: training and spiking inference (bench_dvs.py)")
    assert [(r["job"], r["library"]) for r in rows] == [
        ("train", "nengo_actions (direct, Keras BPTT)"), ("infer", "nengo_actions (Nengo network, spiking)"),
        ("infer", "nengo_actions (multi-step Keras model, spiking)")]
    for r in rows:
        seconds, rate = positive(r["s per batch"]), positive(r["samples/s"])
        # one batch of 2 per timed run; the seconds are printed to 3 decimals
        assert rate == pytest.approx(2 / seconds, rel=0.05 + 0.0005 / seconds)
    assert [r["nengo_actions / this"] for r in rows[:2]] == ["1.00x", "1.00x"] and positive(rows[2]["nengo_actions / this"])
    text = readme.read_text()
    assert "**reduced**: channels 4, 2x32x32 input, T=2, batch 2" in text and "**full**: channels 4, 2x32x32 input, T=3" in text
    assert "2 CPU cores of " in text and "Against the goals" not in text  # no peers: no ratios to hold to the goals
    sizes = json.loads(report.read_text())["sizes"]
    assert list(sizes) == ["reduced", "full"]
    for record in sizes.values():  # no peers: no ratios, but the keys a later run compares
        assert record["train_vs_best_peer"] is None and record["infer_iso_vs_best_peer"] is None
        assert record["infer_iso_multi_step_vs_best_peer"] is None and record["multi_step_same_outputs"] is True
        assert record["infer_steps"] == 1 and all(v > 0 for v in record["samples_per_second"].values())
    assert sizes["full"]["accuracy"] is None and "no full-size network" in sizes["full"]["accuracy_source"]
    reduced = sizes["reduced"]["accuracy"]
    assert reduced is None or 0 < reduced <= 1


def test_bench_events(tmp_path):
    readme, aedat = tmp_path / "README.md", tmp_path / "events.aedat"
    kit = tmp_path / "no-peer-kit"  # no kit: no peers, and the file comes from nengo_actions' writer
    out = run_benchmark("bench_events", "--peers", kit, "--aedat", aedat, "--events", 20000,
                        "--repeats", 3, "--budget-s", 1, "--readme", readme)
    assert f"peers skipped: no peer kit at {kit}" in out
    assert "with nengo_actions.data.write_aedat31" in out and aedat.stat().st_size > 20000 * 8
    rows = section_table(readme, "## Event data: decoding and framing (bench_events.py)")
    assert [(r["job"], r["library"]) for r in rows] == [
        ("decode", "nengo_actions read_aedat"), ("frame", "nengo_actions to_frames")]
    for r in rows:
        median, minimum = positive(r["median ms"]), positive(r["min ms"])
        positive(r["M events/s"])
        assert minimum <= median and 1 <= int(r["runs"]) <= 3
    assert "20,000 polarity events" in readme.read_text()


def test_bench_extract(tmp_path):
    clip = FIXTURES / "ucf101" / "test.avi"
    if not clip.exists():
        pytest.skip(f"no fixture clip {clip}")
    readme = tmp_path / "README.md"
    demo = ["data.synthetic.n_classes=2", "data.synthetic.n_groups=2", "data.synthetic.clips_per_group=1",
            "data.synthetic.n_frames=4", "data.synthetic.size=[32,32]", "data.synthetic.test_groups=[1]",
            "frames.n_frames=2", "frames.resize=[32,32]"]
    run_benchmark("bench_extract", "--clip", clip, "--backbone", "resnet18", "--size", 32, "--frames", 2,
                  "--naive-frames", 1, "--batch", 2, "--rounds", 1, "--matmul-n", 64, "--threads", 1,
                  *[arg for o in demo for arg in ("--demo-set", o)], "--readme", readme)
    rows = section_table(readme, "## Feature extraction (bench_extract.py)")
    assert [r["contestant"] for r in rows] == ["naive per-frame loop", "extractor, batch 2"]
    for r in rows:
        positive(r["frames/s (best)"])
        positive(r["GFLOP/s"])
    text = readme.read_text()
    assert "ResNet-18 on 32x32 frames" in text and "torch.mm, 64x64" in text
    probe = re.search(r"generation plus extraction \((\d+) clips, (\d+) frames.*?: ([\d.]+)%; .*?alone: ([\d.]+)%", text)
    assert probe, text
    assert (int(probe[1]), int(probe[2])) == (4, 8)  # 2 classes x 2 groups x 1 clip, 2 frames each
    assert 0 <= float(probe[3]) <= 100 and 0 <= float(probe[4]) <= 100


def test_bench_full_size(tmp_path):
    """DVS128 Gesture's full layout with few events (the prepare command, the framing
    caches, a streamed epoch), each command in its own measured process; then
    --from-results. One data set: every train command starts TensorFlow afresh."""
    results, readme = tmp_path / "full_size.json", tmp_path / "README.md"
    run_benchmark("bench_full_size", "--root", tmp_path / "data", "--only", "dvs128_gesture",
                  "--events-per-gesture", 40, *sets(TINY_DVS + ["train.minibatch_size=64"]),
                  "--results", results, "--readme", readme)
    saved = json.loads(results.read_text())
    assert saved["sizes"]["events_per_gesture"] == 40 and saved["extrapolated"] == {}
    entry = saved["results"]["dvs128_gesture"]
    assert entry["prepare"]["rc"] == 0 and entry["prepare"]["peak_rss"] > 0
    run = entry["train_stream_on"]
    assert run["rc"] == 0 and run["peak_rss"] > 0 and run["epoch_seconds"] > 0, run
    assert (run["n_train"], run["n_val"], run["n_test"]) == (1176, 0, 288)  # every training gesture: no hold-out
    fraction(run["test_clip_accuracy"])
    fraction(run["spiking_test_clip_accuracy"])
    heading = "## Full-size data sets: memory and time (bench_full_size.py)"
    rows = section_table(readme, heading)
    assert [r["data set"] for r in rows] == ["dvs128_gesture"]
    readme.unlink()
    run_benchmark("bench_full_size", "--from-results", "--results", results, "--readme", readme)
    again = section_table(readme, heading)
    assert again == rows and "40 events each" in again[0]["layout at full size"]
    for r in rows:
        positive(r["train streamed: peak GiB"])
        positive(r["s/epoch"])
        assert 0 <= number(r["test acc. (spiking)"]) <= 100


def test_bench_dvs_digits(tmp_path, digits_root, no_peers):
    """The rate-conversion run on the tiny digit set, streamed from the frame cache. The
    direct run is the same code on the config's own recipe, which nir_exchange.py's
    max-pool run trains too; leaving it out here saves a training run."""
    out = tmp_path / "out"
    log = run_benchmark("bench_dvs_digits", "--root", digits_root, "--out", out, "--digits", DIGITS,
                        "--peers-python", no_peers, "--only", "rate", "--only", "spikingjelly",
                        *sets(TINY_DVS + [f"save_dir={tmp_path / 'runs'}", "data.stream=on"]))
    assert f"SpikingJelly skipped: no peer venv interpreter at {no_peers}" in log
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"rate"}
    for r in results.values():
        fraction(r["trained_test_clip_accuracy"])
        fraction(r["spiking"]["1"])
        assert r["spiking"]["8"] is None and r["train_seconds"] > 0 and r["wall_seconds"] >= r["train_seconds"]
        assert Path(r["run_dir"]).is_relative_to(tmp_path) and all(v >= 0 for v in r["firing_rates_hz"].values())
    assert (out / "accuracy_vs_steps.png").stat().st_size > 0


def test_bench_dvs_digits_exports_streamed_clips(tmp_path, digits_root, monkeypatch):
    """The peer side's frames: streamed clips (LazyClips) and in-memory ones export alike."""
    import importlib.util

    import numpy as np

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its sibling imports, as when run as a script
    spec = importlib.util.spec_from_file_location("bench_dvs_digits", ROOT / "benchmarks" / "bench_dvs_digits.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    small = ["events.frames.n_frames=2", "events.frames.downsample=4"]
    bench.export_frames(digits_root, tmp_path / "streamed.npz", small + ["data.stream=on"])
    bench.export_frames(digits_root, tmp_path / "in_memory.npz", small + ["data.stream=off"])
    streamed, in_memory = np.load(tmp_path / "streamed.npz"), np.load(tmp_path / "in_memory.npz")
    assert sorted(streamed.files) == sorted(in_memory.files)
    for key in streamed.files:
        assert np.array_equal(streamed[key], in_memory[key]), key
    x = streamed["x_train"]
    assert x.dtype == np.uint16 and x.shape[1:] == (2, 32, 32, 2) and x.max() > 0
    assert len(x) + len(streamed["x_val"]) + len(streamed["x_test"]) == DIGITS


def test_nir_exchange(tmp_path, digits_root, no_peers):
    """Loihi recipe, max-pool recipe, NIR export and re-import, the Loihi emulator; no peers."""
    out = tmp_path / "out"
    log = run_benchmark("nir_exchange", "--root", digits_root, "--out", out, "--work", tmp_path / "work",
                        "--digits", DIGITS, "--peers-python", no_peers,
                        *sets(TINY_DVS + [f"save_dir={tmp_path / 'runs'}", "evaluate.loihi_max_clips=2"]))
    assert f"peers skipped (snnTorch running our graph, the peers' graphs run here): no peer venv interpreter at {no_peers}" in log
    r = json.loads((out / "results.json").read_text())
    lo = r["loihi_recipe"]
    for value in (lo["spiking_test_clip_accuracy"], lo["test_clip_accuracy"], lo["loihi_test_clip_accuracy"],
                  lo["loihi_reference_clip_accuracy"], lo["loihi_agreement"], r["max_pool_recipe"]["spiking_test_clip_accuracy"],
                  r["loihi_float"]["accuracy"], r["loihi_float"]["agreement"]):
        fraction(value)
    assert lo["loihi_clips"] == 2 and lo["loihi_cores"] >= 1 and lo["loihi_chips"] >= 1
    assert lo["energy_loihi_joules_per_inference"] > 0 and lo["loihi_measured_energy_joules_per_inference"] > 0
    # export then import runs the same network: the same answer on every clip
    assert r["round_trip"]["agreement"] == 1.0
    assert r["round_trip"]["spiking_test_clip_accuracy"] == lo["spiking_test_clip_accuracy"]
    assert r["ours_in_snntorch"] is None and r["peers_in_here"] == {} and r["peers_skipped"]
    assert r["test_clips"] == 6  # the one test user's quarter of the digits
    report = (out / "README.md").read_text()
    assert "The peers were skipped in this run" in report and "| 6 |" in report
    for name in ("loihi_recipe", "max_pool_recipe"):
        assert json.loads((out / name / "metrics.json").read_text())
    assert (out / "accuracy.png").stat().st_size > 0


def test_dvs_parity(tmp_path, digits_root, no_peers):
    """Two of our recipes, one seed; SpikingJelly skipped."""
    out = tmp_path / "out"
    log = run_benchmark("dvs_parity", "--root", digits_root, "--out", out, "--work", tmp_path / "work",
                        "--readme", tmp_path / "README.md", "--digits", DIGITS, "--peers-python", no_peers,
                        "--seeds", 0, "--recipes", "sj_exact", "default", *sets(TINY_DVS + [f"save_dir={tmp_path / 'runs'}"]))
    assert f"peers skipped (SpikingJelly): no peer venv interpreter at {no_peers}" in log
    r = json.loads((out / "results.json").read_text())
    assert list(r["recipes"]) == ["sj_exact", "default"] and r["seeds"] == [0]
    for recipe in r["recipes"].values():
        assert recipe["summary"]["n"] == 1 and len(recipe["runs"]) == 1
        for run in recipe["runs"]:
            fraction(run["accuracy"])
    # the recipe reached the runs: every training clip (no hold-out), average pooling, PyTorch's start
    cfg = json.loads((ROOT / r["recipes"]["sj_exact"]["runs"][0]["run_dir"] / "config.json").read_text())
    assert cfg["data"]["val_fraction"] == 0 and cfg["model"]["dvs_gesture_net"]["pool"] == "avg"
    assert cfg["model"]["dvs_conv"]["init"] == "torch" and cfg["train"]["adam_epsilon"] == 1e-8
    assert cfg["train"]["schedule"] == "cosine_epoch" and cfg["train"]["last_batch"] == "short"
    assert cfg["train"]["adam_epsilon_form"] == "torch"
    assert "SpikingJelly was skipped" in (out / "README.md").read_text()
    assert "## Accuracy parity with SpikingJelly's tuned recipe" in (tmp_path / "README.md").read_text()
    assert (out / "accuracy.png").stat().st_size > 0


def test_dvs_pool_swap(tmp_path):
    out = tmp_path / "out"
    run_benchmark("dvs_pool_swap", "-c", ROOT / "configs" / "dvs_synthetic.json", "--out", out, "--epochs", 1,
                  *sets([f"data.root={tmp_path / 'data'}", "events.synthetic.n_classes=3", "events.synthetic.n_users=4",
                         "events.synthetic.test_users=1", "events.synthetic.repeats=1", "events.synthetic.gesture_ms=200",
                         "events.frames.n_frames=2", "model.dvs_gesture_net.channels=2", "model.dvs_gesture_net.dense=8",
                         "evaluate.steps_per_frame=[1]"]))
    saved = json.loads((out / "pool_swap.json").read_text())
    assert saved["epochs"] == 1
    accuracy = saved["test_clip_accuracy"]
    assert list(accuracy) == ["keras_max", "keras_avg", "nengo_rate", "nengo_spiking_k1"]
    for value in accuracy.values():
        fraction(value)
    table = (out / "pool_swap.md").read_text()
    assert all(f"| {key} | {100 * value:.2f}% |" in table for key, value in accuracy.items())


def test_spiking_lmu_ablation(tmp_path):
    from clip_stores import make_ring_store

    store = tmp_path / "store"
    store.mkdir()
    make_ring_store(store, n_classes=2, n_groups=4, clips_per_group=1, n_frames=4, n_features=4, test_groups=(1,))
    report, readme = tmp_path / "ablation.md", tmp_path / "README.md"
    run_benchmark("spiking_lmu_ablation", "--out", report, "--readme", readme,
                  *sets([f"features.store_dir={store}", "train.epochs=1", "train.initial_accuracy=false",
                         "train.minibatch_size=4", "model.lmu.units=4", "model.lmu.order=2", "model.lmu.memory_d=1",
                         "model.lmu_spiking.memory_neurons_per_dim=2", "evaluate.steps_per_frame=[1]",
                         "evaluate.spiking_steps_per_frame=1"]))
    heading = "## Spiking LMU: what each change does (spiking_lmu_ablation.py)"
    rows = section_table(readme, heading)
    assert [r["variant"] for r in rows] == [
        "seed (Nengo tuning, delay feedback)", "+ on/off linear memory neurons",
        "+ memory state in a low-pass synapse", "+ firing-rate regularisation"]
    for r in rows:
        for key in ("rate", "spiking, 1 steps/frame"):
            assert r[key].endswith("%") and 0 <= number(r[key]) <= 100
        assert number(r["memory rate (Hz)"]) >= 0 and number(r["hidden rate (Hz)"]) >= 0
        positive(r["Loihi J/clip"])
    assert "(2 test clips, so one clip is 50.0 points)" in readme.read_text()
    assert report.read_text().startswith("# Spiking LMU: what each change does")


def test_bench_workers(tmp_path, digits_root):
    """One process against two local workers; the section lands in the given README."""
    out = tmp_path / "out"
    log = run_benchmark("bench_workers", "--root", digits_root, "--out", out, "--readme", tmp_path / "README.md",
                        "--digits", DIGITS, "--seeds", 3, *sets(TINY_DVS + [f"save_dir={tmp_path / 'runs'}"]))
    assert "training with 2 worker(s), seed 3" in log
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [r["workers"] for r in rows] == [1, 2] and all(r["minibatch"] == 16 and r["seed"] == 3 for r in rows)
    for r in rows:
        fraction(r["spiking_accuracy"])
        assert r["clips_per_second"] > 0
    table = section_table(tmp_path / "README.md", "## Multi-worker training (tf.distribute) on the DVS digits")
    assert [row["workers"] for row in table] == ["1", "2"] and number(table[0]["vs 1 process, same seed"]) == 1.0
    assert (out / "workers.png").stat().st_size > 0


def test_profile_dvs(tmp_path):
    """Both jobs profiled at a tiny size, with the XLA A/B; shares sum to 1."""
    out, readme = tmp_path / "out", tmp_path / "README.md"
    run_benchmark("profile_dvs", "--channels", 4, "--hw", 32, "--frames", 2, "--batch", 2, "--batches", 1,
                  "--repeats", 1, "--calls", 1, "--xla", "--out", out,
                  "--readme", readme)
    saved = json.loads((out / "profile.json").read_text())
    assert list(saved["sizes"]) == ["reduced"] and saved["load_average"] >= 0
    for record in saved["sizes"].values():
        for job in ("train", "infer"):
            profile = record[job]
            assert profile["ms_per_minibatch"] > 0 and profile["events"] > 0
            assert sum(profile["shares"].values()) == pytest.approx(1.0, abs=1e-6)
            assert all(share >= 0 for share in profile["shares"].values())
            assert any(kind.startswith(("forward", "backward", "conv")) for kind in profile["shares"])
        assert record["train_step_only_ms"] > 0 and record["train_no_set_seed_ms"] > 0
        assert "error" in record["train_xla"] or record["train_xla"]["speedup_step_only"] > 0
    heading = "## Where the time goes (profile_dvs.py)"
    rows = section_table(readme, heading)
    assert rows[-1]["kind"] == "**total**" and positive(rows[-1]["ms per minibatch"])
    assert sum(number(r["share"]) for r in rows[:-1]) == pytest.approx(100, abs=2)  # rows under 0.1% left out
    assert "**reduced, spiking inference (NengoDL)**: channels 4, 2x32x32, T=2, batch 2" in readme.read_text()
    assert (out / "README.md").read_text().startswith("# DVS gesture net: where the time goes\n")
    # the report rewritten from the saved profile names the saved run's command, not the rewriting one
    run_benchmark("profile_dvs", "--from-json", out / "profile.json", "--out", out, "--readme", readme)
    assert "Command: `.venv/bin/python benchmarks/profile_dvs.py --xla`" in readme.read_text()


PEERS_PYTHON = Path(os.environ.get("NENGO_ACTIONS_PEERS_PYTHON", "/tmp/peers-venv/bin/python"))


@pytest.mark.skipif(not PEERS_PYTHON.exists(), reason="parity_step.py's peer side needs the peer kit's venv")
def test_parity_step_takes_spikingjelly_s_steps(tmp_path):
    """From SpikingJelly's weights and minibatches, in float64: the same spikes, gradients
    and (with Adam written out) losses, so a regression in the trainer's maths shows here."""
    rng = np.random.default_rng(0)
    frames = tmp_path / "frames.npz"
    x = rng.poisson(0.6, size=(8, 2, 32, 32, 2)).astype(np.uint16)
    np.savez(frames, x_train=x, y_train=rng.integers(0, 3, 8), x_test=x[:1], y_test=np.zeros(1, int),
             n_classes=3)
    step = tmp_path / "step.npz"
    common = ["--data", frames, "--channels", 4, "--batch", 4, "--steps", 2, "--float64"]
    proc = subprocess.run([str(PEERS_PYTHON), str(ROOT / "benchmarks" / "parity_step.py"), "peer", *map(str, common),
                           "--out", str(step)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run_benchmark("parity_step", "ours", *common, "--step", step, "--exact-adam")
    assert re.search(r"output spikes differ at 0 of \d+", out)
    ratios = [float(v) for v in re.findall(r"max \|ours - peer\| / max \|peer\| = (\S+)", out)]
    assert len(ratios) == 21 and max(ratios) < 1e-8  # 5 conv and 2 dense kernels, each with its BN gamma and beta
    ours, peer = (json.loads(re.search(rf"{side} losses (\[.*\])", out).group(1)) for side in ("ours", "peer"))
    np.testing.assert_allclose(ours, peer, rtol=1e-12)
    # the trainer's own optimizer and BN at SpikingJelly's settings: the same steps in float64
    out = run_benchmark("parity_step", "ours", *common, "--step", step)
    ours = json.loads(re.search(r"ours losses (\[.*\])", out).group(1))
    np.testing.assert_allclose(ours, peer, rtol=1e-12)
    after = re.findall(r"after 2 steps \S+\s+\S+\s+max abs diff (\S+) \(\|peer\| max (\S+)\)", out)
    assert len(after) == 35 and max(float(d) / max(float(m), 1.0) for d, m in after) < 1e-9, after


@pytest.mark.skipif(not PEERS_PYTHON.exists(), reason="the shared-draws pair needs the peer kit's venv")
@pytest.mark.parametrize("float64", [False, True], ids=["float32", "float64"])
def test_dvs_parity_replays_spikingjelly_s_draws(tmp_path, digits_root, float64):
    """SpikingJelly records its initial weights, clip orders and dropout masks; our run
    replaying them ends, after an epoch of the tiny net, with SpikingJelly's answers (in
    float64 with its kernels to 1e-9)."""
    out, work = tmp_path / "out", tmp_path / "work"
    run_benchmark("dvs_parity", "--root", digits_root, "--out", out, "--work", work, "--readme", tmp_path / "README.md",
                  "--digits", DIGITS, "--peers-python", PEERS_PYTHON, "--seeds", 0, "--recipes",
                  "--shared-draws-float64" if float64 else "--shared-draws", 0, "--epochs", 1,
                  *sets([o for o in TINY_DVS if "dense" not in o] + [f"save_dir={tmp_path / 'runs'}"]), timeout=600)
    draws = np.load(work / "peers" / f"spikingjelly_draws{'64' if float64 else ''}_s0" / "draws.npz", allow_pickle=False)
    n_train = len(draws["y_train"])
    assert draws["orders"].shape == (1, n_train) and sorted(draws["orders"][0]) == list(range(n_train))
    batches = -(-n_train // 16)  # one mask per minibatch and layer
    assert draws["mask0_shape"][0] == draws["mask1_shape"][0] == n_train and batches >= 2
    r = json.loads((out / "results.json").read_text())
    (pair,) = r["recipes"]["shared_draws_float64" if float64 else "shared_draws"]["runs"]
    assert pair["same_answers"] == 1.0 and pair["accuracy"] == pair["peer_accuracy"]
    # the trained kernels: SpikingJelly's to the float type's rounding, not merely the same answers
    for drift in (pair["weight_drift"], pair["first_step_drift"]):
        assert set(drift) == {"conv0", "conv1", "conv2", "conv3", "conv4", "fc0", "fc1"}
        assert max(drift.values()) < (1e-9 if float64 else 1e-4), drift
    assert len(pair["drift_by_epoch"]) == 1 and pair["drift_by_epoch"][0] == max(pair["weight_drift"].values())
    assert "Ours minus SpikingJelly" in (out / "README.md").read_text()
