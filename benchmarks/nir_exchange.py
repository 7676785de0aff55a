"""NIR exchange with snnTorch and SpikingJelly, and the Loihi emulator, on the embedded DVS digits.

    python benchmarks/nir_exchange.py                     # writes results/dvs_digits_loihi/

Every figure is per test clip on the embedded DVS digits set at the reduced size of
``configs/dvs128_gesture.json`` (64x64 frames, T = 8 by event count, 32 channels, 10
epochs, batch 16), spiking at 1 simulation step per frame. The peer side runs in the peer
kit's venv (``bash ../shared/peers/setup_peers.sh``; ``benchmarks/peer_nir.py``).

1. **Ours, NengoDL and Loihi.** ``configs/dvs128_gesture_loihi.json`` (average pooling, LIF
   tau 2, raw counts) trained directly, evaluated spiking in NengoDL and in the Loihi
   emulator (``evaluate.simulators``); beside it the previous default recipe (max pooling; ``PREVIOUS_DEFAULT``).
2. **Round trip.** The run exported (``python -m nengo_actions.deploy.export``) and evaluated with
   ``--nir``: the same spiking accuracy, clip for clip.
3. **Ours in snnTorch.** The exported graph imported by snnTorch's ``import_from_nir`` and
   run on the same frames (``peer_nir.py run-nir``): the share of test clips whose answer
   agrees.
4. **Peers in here.** SpikingJelly's and snnTorch's own training of the same network
   (average pooling, LIF, BN folded at export), exported with their NIR exporters and
   evaluated here with ``--nir``: our accuracy against each peer's own.

Outputs already there (the runs, ``<out>/peers/<framework>/peer.json``) are reused, so a
cut-off run continues; ``--fresh`` recomputes everything.

Without the peer kit's venv (or with ``--no-peers``) steps 3 and 4 are skipped and said so.
``--digits N`` generates a small set of N digits instead, and ``--set KEY=VALUE`` is added
to every run's config; e.g. a check that it still runs::

    python benchmarks/nir_exchange.py --root /tmp/n/data --out /tmp/n/out --work /tmp/n/work --digits 24 \
        --no-peers --set train.epochs=1 --set save_dir=/tmp/n/runs ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
#: The reduced size of ``benchmarks/bench_dvs_digits.py``, judged at 1 step per frame.
RUN_SETTINGS = [
    "events.frames.n_frames=8", "events.frames.downsample=2", "model.dvs_gesture_net.channels=32", "train.epochs=10",
    "evaluate.steps_per_frame=[1]", "evaluate.spiking_steps_per_frame=1", "train.tensorboard=false", "data.stream=off",
]
#: The recipe of ``configs/dvs128_gesture.json`` before the search of
#: ``configs/sweep_dvs_recipe.json`` replaced it: max pooling, Adam 1e-2 from Keras' start,
#: MSE on rates, a 15% validation hold-out. The benchmarks whose committed runs used it pin it.
PREVIOUS_DEFAULT = [
    "model.dvs_gesture_net.pool=\"max\"", "model.dvs_conv.init=\"he_uniform\"", "train.learning_rate=0.01",
    "train.adam_epsilon=1e-7", "train.schedule=\"cosine\"", "train.loss=\"mse\"", "train.standardize=true",
    "data.val_fraction=0.15",
]
PEERS = ("spikingjelly", "snntorch")


def _log(msg):
    print(msg, flush=True)


#: ``--set`` overrides of the command line, added to every config after ``RUN_SETTINGS``.
OVERRIDES = []


def load_cfg(config, root, *extra):
    from nengo_actions.config import load_config

    return load_config(REPO / "configs" / config, [f"data.root={root}", *RUN_SETTINGS, *OVERRIDES, *extra])


def train_run(config, root, name, *extra):
    from nengo_actions.experiment import run

    return run(load_cfg(config, root, f"name={name}", *extra), log=_log)


def evaluate_params(run_dir, root, name):
    """A trained run of the Loihi recipe evaluated again (``--params``) with Loihi."""
    from nengo_actions.experiment import run

    return run(load_cfg("dvs128_gesture_loihi.json", root, f"name={name}"), params=run_dir, log=_log)


def evaluate_nir(path, root, name):
    from nengo_actions.experiment import run

    return run(load_cfg("dvs128_gesture_loihi.json", root, f"name={name}"), nir=path, log=_log)


def metrics(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def predictions(run_dir, model):
    rows = np.loadtxt(Path(run_dir) / model / "predictions_test.csv", delimiter=",", skiprows=1, dtype=int)
    return rows[:, 2]


def export_frames(root, path, cfg=None):
    """The frames every side reads, raw event counts ``(N, T, H, W, 2)`` (uint16), split as
    ``cfg`` splits them (default: the Loihi recipe's config)."""
    from nengo_actions.clips.event_data import load_event_data

    d = load_event_data(cfg or load_cfg("dvs128_gesture_loihi.json", root), progress=False)
    h, w, _ = d.metadata["frame_shape"]

    def frames(x):
        return np.asarray(x).reshape(len(x), x.shape[1], h, w, 2).astype(np.uint16)

    np.savez(path, x_train=frames(d.x_train), y_train=d.y_train, x_val=frames(d.x_val), y_val=d.y_val,
             x_test=frames(d.x_test), y_test=d.y_test, n_classes=d.n_classes)
    return d.y_test


def float_loihi(graph, frames, reference, n):
    """The graph on nengo-loihi's float emulation (``simreal``) on the first ``n`` test clips:
    accuracy and the share of answers equal to NengoDL's ``reference``."""
    from nengo_actions.deploy.loihi import run_loihi
    from nengo_actions.deploy.nir_import import read_graph
    from nengo_actions.clips.metrics import evaluate_outputs

    d = np.load(frames, allow_pickle=False)
    x, y = d["x_test"][:n].astype(np.float32), d["y_test"][:n]
    run = run_loihi(read_graph(graph), x.reshape(n, x.shape[1], -1), steps_per_frame=1, target="simreal")
    m = evaluate_outputs(run.outputs, y, int(d["n_classes"]), "mean", x.shape[1], 1)
    return json.dumps({"accuracy": m["clip_accuracy"], "agreement": float(np.mean(m["predictions"] == reference[:n]))})


def peer(python, *args):
    subprocess.run([str(python), str(REPO / "benchmarks" / "peer_nir.py"), *map(str, args)], check=True)


def small_spec(n):
    """A set of ``n`` digits over 4 users (one for testing), for quick runs."""
    from nengo_actions.data import SyntheticDigitSpec

    return SyntheticDigitSpec(n_users=4, test_users=1, n_samples=n)


def workspace(args, peers):
    """What a benchmark on the digits needs from ``args`` (``--root``, ``--out``, ``--work``,
    ``--fresh``, ``--digits``, ``--no-peers``, ``--peers-python``): the three folders, made;
    the digit set, generated when missing; why the ``peers`` step is skipped (``None``: it
    runs); and ``step(key, fn)``, which returns ``fn()`` kept in ``<work>/state.json``
    (paths as strings), so a cut-off run continues where it stopped."""
    from nengo_actions.config import resolve_path
    from nengo_actions.data import ensure_synthetic_digits
    from nengo_actions.io import read_json, write_json_atomic

    root, out, work = resolve_path(args.root), resolve_path(args.out), resolve_path(args.work)
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    ensure_synthetic_digits(root, small_spec(args.digits) if args.digits else None)
    skip = "--no-peers" if args.no_peers else (
        None if args.peers_python.exists() else
        f"no peer venv interpreter at {args.peers_python} (bash ../shared/peers/setup_peers.sh makes it)")
    if skip:
        _log(f"peers skipped ({peers}): {skip}")
    state_path = work / "state.json"
    state = read_json(state_path) or {}

    def step(key, fn):
        if key not in state:
            value = fn()
            state[key] = str(value) if isinstance(value, Path) else value
            write_json_atomic(state_path, state)
        return state[key]

    return root, out, work, skip, step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/dvs_digits", help="the generated set (made when missing)")
    parser.add_argument("--out", default="results/dvs_digits_loihi")
    parser.add_argument("--work", default="data/nir_exchange", help="frames, graphs and run folders")
    parser.add_argument("--peers-python", type=Path, default=Path("/tmp/peers-venv/bin/python"))
    parser.add_argument("--epochs", type=int, default=10, help="peer training epochs")
    parser.add_argument("--trained", type=Path, help="a run of configs/dvs128_gesture_loihi.json at this size to evaluate")
    parser.add_argument("--fresh", action="store_true", help="recompute what is already there")
    parser.add_argument("--no-peers", action="store_true", help="leave snnTorch and SpikingJelly out")
    parser.add_argument("--digits", type=int, help="generate a small set of this many digits in --root (default: all 1,797)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override added to every run (repeatable)")
    args = parser.parse_args(argv)
    OVERRIDES[:] = args.overrides
    from nengo_actions.deploy.nir_export import export_run, write_graph

    root, out, work, skip, step = workspace(args, "snnTorch running our graph, the peers' graphs run here")

    if args.trained:
        loihi_run = Path(step("loihi_run", lambda: evaluate_params(args.trained, root, "digits_loihi")))
    else:
        loihi_run = Path(step("loihi_run", lambda: train_run("dvs128_gesture_loihi.json", root, "digits_loihi")))
    max_run = Path(step("max_pool_run", lambda: train_run("dvs128_gesture.json", root, "digits_max_pool", *PREVIOUS_DEFAULT)))
    frames = work / "frames.npz"
    if not frames.exists():
        export_frames(root, frames)
    y_test = np.load(frames, allow_pickle=False)["y_test"]
    graph = work / "ours.nir"
    write_graph(export_run(args.trained or loihi_run), graph)  # the run that holds the parameters
    back = Path(step("round_trip_run", lambda: evaluate_nir(graph, root, "digits_loihi_nir")))
    ours_pred = predictions(loihi_run, "dvs_gesture_net")
    snn_pred = None
    if not skip:
        snn_json = work / "ours_in_snntorch.json"
        if not snn_json.exists():
            peer(args.peers_python, "run-nir", "--nir", graph, "--data", frames, "--json", snn_json)
        snn_pred = np.asarray(json.loads(snn_json.read_text())["predictions"])

    peers = {}
    channels = load_cfg("dvs128_gesture_loihi.json", root).model.dvs_gesture_net.channels
    for fw in () if skip else PEERS:
        folder = work / "peers" / fw
        if not (folder / "peer.json").exists():
            peer(args.peers_python, "train", "--framework", fw, "--data", frames, "--out", folder, "--epochs", args.epochs,
                 "--channels", channels)
        here = Path(step(f"{fw}_run", lambda: evaluate_nir(folder / "model.nir", root, f"digits_{fw}_nir")))
        own = json.loads((folder / "peer.json").read_text())
        here_pred = predictions(here, "nir")
        mh = metrics(here)
        peers[fw] = {
            "peer_test_accuracy": own["test_accuracy"],
            "here_test_accuracy": mh["spiking_test_clip_accuracy"],
            "here_loihi_clip_accuracy": mh.get("loihi_test_clip_accuracy"),
            "here_loihi_reference_clip_accuracy": mh.get("loihi_reference_clip_accuracy"),
            "agreement": float(np.mean(here_pred == np.asarray(own["test_predictions"]))),
            "run_dir": os.path.relpath(here, REPO),
        }

    m, mx, rt = metrics(loihi_run), metrics(max_run), metrics(back)
    simreal = json.loads(step("simreal", lambda: float_loihi(graph, frames, ours_pred, m["loihi_clips"])))
    results = {
        "loihi_recipe": {k: m.get(k) for k in (
            "spiking_test_clip_accuracy", "test_clip_accuracy", "loihi_test_clip_accuracy", "loihi_reference_clip_accuracy",
            "loihi_clips", "loihi_cores", "loihi_chips", "loihi_agreement", "loihi_clips_per_second",
            "energy_loihi_joules_per_inference", "loihi_measured_energy_joules_per_inference",
            "spiking_inference_clips_per_second", "train_seconds")},
        "max_pool_recipe": {k: mx.get(k) for k in ("spiking_test_clip_accuracy", "test_clip_accuracy", "train_seconds")},
        "loihi_float": simreal,
        "round_trip": {"spiking_test_clip_accuracy": rt["spiking_test_clip_accuracy"],
                       "loihi_test_clip_accuracy": rt.get("loihi_test_clip_accuracy"),
                       "agreement": float(np.mean(predictions(back, "nir") == ours_pred))},
        "ours_in_snntorch": None if snn_pred is None else {"agreement": float(np.mean(snn_pred == ours_pred)),
                                                           "accuracy": float(np.mean(snn_pred == y_test))},
        "peers_in_here": peers,
        "test_clips": len(y_test),
        "runs": {name: os.path.relpath(path, REPO) for name, path in
                 (("loihi", loihi_run), ("max_pool", max_run), ("round_trip", back))},
    }
    if skip:
        results["peers_skipped"] = skip
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for name, run_dir in (("loihi_recipe", loihi_run), ("max_pool_recipe", max_run)):
        (out / name).mkdir(exist_ok=True)
        for f in ("metrics.json", "report.md", "config.json"):
            if (run_dir / f).exists():  # paths inside the repository, relative to it
                text = (run_dir / f).read_text().replace(f"{REPO}/", "")
                (out / name / f).write_text(text)
    plot(results, out / "accuracy.png")
    (out / "README.md").write_text(report(results))
    _log(json.dumps(results, indent=1))
    return results


def _pct(v):
    return "-" if v is None else f"{100 * v:.2f}%"


def report(r):
    """The Markdown table of ``results.json``."""
    lo, mx, rt, sn, peers = r["loihi_recipe"], r["max_pool_recipe"], r["round_trip"], r["ours_in_snntorch"], r["peers_in_here"]
    n, n_test = lo["loihi_clips"], r.get("test_clips", 447)
    rows = [
        "| system | test clips | accuracy, 1 step per frame | cores / chips | energy per inference |",
        "|---|---:|---:|---:|---:|",
        f"| max-pool recipe (`configs/dvs128_gesture.json`), NengoDL | {n_test} | {_pct(mx['spiking_test_clip_accuracy'])} | - | - |",
        f"| Loihi-ready recipe (`configs/dvs128_gesture_loihi.json`), NengoDL | {n_test} | {_pct(lo['spiking_test_clip_accuracy'])} | - | "
        f"{lo['energy_loihi_joules_per_inference']:.3g} J (Loihi, from NengoDL's rates) |",
        f"| the same, NengoDL | first {n} | {_pct(lo['loihi_reference_clip_accuracy'])} | - | - |",
        f"| the same, Loihi emulator (8-bit, `sim`) | first {n} | {_pct(lo['loihi_test_clip_accuracy'])} | "
        f"{lo['loihi_cores']} / {lo['loihi_chips']} | {lo['loihi_measured_energy_joules_per_inference']:.3g} J (measured spikes) |",
        f"| the same, Loihi emulator in float (`simreal`) | first {n} | {_pct(r['loihi_float']['accuracy'])} | - | - |",
        f"| the same, exported and imported here (`--nir`) | {n_test} | {_pct(rt['spiking_test_clip_accuracy'])} | - | - |",
    ]
    if sn is not None:
        rows.append(f"| the same, exported and run by snnTorch (`import_from_nir`) | {n_test} | {_pct(sn['accuracy'])} | - | - |")
    peer_rows = [
        "| trained by | its own test accuracy | its NIR graph run here (`--nir`) | difference | same answer "
        f"| on the Loihi emulator, first {n} clips (NengoDL on them) |",
        "|---|---:|---:|---:|---:|---:|",
    ] + [
        f"| {fw} | {_pct(p['peer_test_accuracy'])} | {_pct(p['here_test_accuracy'])} | "
        f"{100 * (p['here_test_accuracy'] - p['peer_test_accuracy']):+.2f} points | {_pct(p['agreement'])} | "
        f"{_pct(p.get('here_loihi_clip_accuracy'))} ({_pct(p.get('here_loihi_reference_clip_accuracy'))}) |"
        for fw, p in peers.items()
    ]
    return "\n".join([
        "# DVS digits: NengoDL, the Loihi emulator and NIR exchange with snnTorch and SpikingJelly",
        "",
        "`python benchmarks/nir_exchange.py` (see its docstring). The embedded DVS digits set at the reduced",
        "size (64x64 frames, T = 8 by event count, 32 channels, 10 epochs, batch 16), per test clip, spiking at",
        "1 simulation step per frame.",
        "",
        *rows,
        "",
        f"- Loihi against NengoDL on the same {n} clips: {100 * (lo['loihi_test_clip_accuracy'] - lo['loihi_reference_clip_accuracy']):+.2f} "
        f"points; {_pct(lo['loihi_agreement'])} of the clips get the same answer. That is what Loihi's 8-bit weights, 12-bit",
        "  decays and integer voltages cost: the float emulation (`loihi_target: \"simreal\"`) gives the same answer as NengoDL",
        f"  on {_pct(r['loihi_float']['agreement'])} of the clips.",
        f"- Loihi-ready recipe against the max-pool recipe in NengoDL: {100 * (lo['spiking_test_clip_accuracy'] - mx['spiking_test_clip_accuracy']):+.2f} points.",
        f"- Export then import here: {_pct(rt['agreement'])} of the clips get the same answer (the network runs bit for bit).",
        *([f"- snnTorch running our exported graph: {_pct(sn['agreement'])} of the clips get the same answer as NengoDL."]
          if sn is not None else []),
        "",
        *(["Networks trained by the peers (the same layers, average pooling, LIF tau 2, Adam 3e-3 cosine, MSE on",
           "rates, `benchmarks/peer_nir.py`), exported with their own NIR exporters and evaluated here:",
           "",
           *peer_rows]
          if peers else [f"The peers were skipped in this run ({r.get('peers_skipped')})."]),
        "",
        "![accuracy](accuracy.png)",
        "",
        "Files: `results.json` (every figure), `loihi_recipe/` and `max_pool_recipe/` (each run's `metrics.json`,",
        "`report.md`, config).",
        "",
    ])


def plot(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = r["loihi_recipe"]
    bars = [
        ("max pool\nNengoDL", r["max_pool_recipe"]["spiking_test_clip_accuracy"]),
        ("Loihi-ready\nNengoDL", lo["spiking_test_clip_accuracy"]),
        (f"Loihi-ready\nNengoDL\n{lo['loihi_clips']} clips", lo["loihi_reference_clip_accuracy"]),
        (f"Loihi emulator\n{lo['loihi_clips']} clips", lo["loihi_test_clip_accuracy"]),
        *([("NIR in\nsnnTorch", r["ours_in_snntorch"]["accuracy"])] if r["ours_in_snntorch"] else []),
        *[(f"{fw}\nNIR here", p["here_test_accuracy"]) for fw, p in r["peers_in_here"].items()],
    ]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(range(len(bars)), [100 * v for _, v in bars], color="tab:blue")
    ax.set_xticks(range(len(bars)), [name for name, _ in bars], fontsize=7)
    ax.set_ylabel("test clip accuracy (%), 1 step per frame")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
