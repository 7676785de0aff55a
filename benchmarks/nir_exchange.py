"""NIR exchange with snnTorch and SpikingJelly, and the Loihi emulator, on the embedded DVS digits.

    python benchmarks/nir_exchange.py                     # writes results/dvs_digits_loihi/

Every figure is per test clip on the embedded DVS digits set at the reduced size of
``configs/dvs128_gesture.json`` (64x64 frames, T = 8 by event count, 32 channels, 10
epochs, batch 16), spiking at 1 simulation step per frame. The peer side runs in the peer
kit's venv (``bash ../shared/peers/setup_peers.sh``; ``benchmarks/peer_nir.py``).

1. **Ours, NengoDL and Loihi.** ``configs/dvs128_gesture_loihi.json`` (average pooling, LIF
   tau 2, raw counts) trained directly, evaluated spiking in NengoDL and in the Loihi
   emulator (``evaluate.simulators``); beside it the max-pool default recipe.
2. **Round trip.** The run exported (``python -m nengo_actions.export``) and evaluated with
   ``--nir``: the same spiking accuracy, clip for clip.
3. **Ours in snnTorch.** The exported graph imported by snnTorch's ``import_from_nir`` and
   run on the same frames (``peer_nir.py run-nir``): the share of test clips whose answer
   agrees.
4. **Peers in here.** SpikingJelly's and snnTorch's own training of the same network
   (average pooling, LIF, BN folded at export), exported with their NIR exporters and
   evaluated here with ``--nir``: our accuracy against each peer's own.

Outputs already there (the runs, ``<out>/peers/<framework>/peer.json``) are reused, so a
cut-off run continues; ``--fresh`` recomputes everything.
"""

from __future__ import annotations

import argparse
import json
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
PEERS = ("spikingjelly", "snntorch")


def _log(msg):
    print(msg, flush=True)


def load_cfg(config, root, *extra):
    from nengo_actions.config import load_config

    return load_config(REPO / "configs" / config, [f"data.root={root}", *RUN_SETTINGS, *extra])


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


def export_frames(root, path):
    """The frames every side reads, raw event counts ``(N, T, H, W, 2)`` (uint16)."""
    from nengo_actions.event_data import load_event_data

    d = load_event_data(load_cfg("dvs128_gesture_loihi.json", root), progress=False)
    h, w, _ = d.metadata["frame_shape"]

    def frames(x):
        return np.asarray(x).reshape(len(x), x.shape[1], h, w, 2).astype(np.uint16)

    np.savez(path, x_train=frames(d.x_train), y_train=d.y_train, x_val=frames(d.x_val), y_val=d.y_val,
             x_test=frames(d.x_test), y_test=d.y_test, n_classes=d.n_classes)
    return d.y_test


def peer(python, *args):
    subprocess.run([str(python), str(REPO / "benchmarks" / "peer_nir.py"), *map(str, args)], check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/dvs_digits", help="the generated set (made when missing)")
    parser.add_argument("--out", default="results/dvs_digits_loihi")
    parser.add_argument("--work", default="data/nir_exchange", help="frames, graphs and run folders")
    parser.add_argument("--peers-python", type=Path, default=Path("/tmp/peers-venv/bin/python"))
    parser.add_argument("--epochs", type=int, default=10, help="peer training epochs")
    parser.add_argument("--trained", type=Path, help="a run of configs/dvs128_gesture_loihi.json at this size to evaluate")
    parser.add_argument("--fresh", action="store_true", help="recompute what is already there")
    args = parser.parse_args(argv)
    from nengo_actions.config import resolve_path
    from nengo_actions.data import ensure_synthetic_digits
    from nengo_actions.deploy.nir_export import export_run, write_graph

    root, out, work = resolve_path(args.root), resolve_path(args.out), resolve_path(args.work)
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    ensure_synthetic_digits(root)
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}

    def step(key, fn):
        if key not in state:
            state[key] = str(fn())
            state_path.write_text(json.dumps(state, indent=1))
        return state[key]

    if args.trained:
        loihi_run = Path(step("loihi_run", lambda: evaluate_params(args.trained, root, "digits_loihi")))
    else:
        loihi_run = Path(step("loihi_run", lambda: train_run("dvs128_gesture_loihi.json", root, "digits_loihi")))
    max_run = Path(step("max_pool_run", lambda: train_run("dvs128_gesture.json", root, "digits_max_pool")))
    frames = work / "frames.npz"
    if not frames.exists():
        export_frames(root, frames)
    y_test = np.load(frames, allow_pickle=False)["y_test"]
    graph = work / "ours.nir"
    write_graph(export_run(loihi_run), graph)
    back = Path(step("round_trip_run", lambda: evaluate_nir(graph, root, "digits_loihi_nir")))
    snn_json = work / "ours_in_snntorch.json"
    if not snn_json.exists():
        peer(args.peers_python, "run-nir", "--nir", graph, "--data", frames, "--json", snn_json)
    ours_pred = predictions(loihi_run, "dvs_gesture_net")
    snn_pred = np.asarray(json.loads(snn_json.read_text())["predictions"])

    peers = {}
    for fw in PEERS:
        folder = work / "peers" / fw
        if not (folder / "peer.json").exists():
            peer(args.peers_python, "train", "--framework", fw, "--data", frames, "--out", folder, "--epochs", args.epochs)
        here = Path(step(f"{fw}_run", lambda: evaluate_nir(folder / "model.nir", root, f"digits_{fw}_nir")))
        own = json.loads((folder / "peer.json").read_text())
        here_pred = predictions(here, "nir")
        peers[fw] = {
            "peer_test_accuracy": own["test_accuracy"],
            "here_test_accuracy": metrics(here)["spiking_test_clip_accuracy"],
            "agreement": float(np.mean(here_pred == np.asarray(own["test_predictions"]))),
            "run_dir": str(here),
        }

    m, mx, rt = metrics(loihi_run), metrics(max_run), metrics(back)
    results = {
        "loihi_recipe": {k: m.get(k) for k in (
            "spiking_test_clip_accuracy", "test_clip_accuracy", "loihi_test_clip_accuracy", "loihi_reference_clip_accuracy",
            "loihi_clips", "loihi_cores", "loihi_chips", "loihi_agreement", "loihi_clips_per_second",
            "energy_loihi_joules_per_inference", "loihi_measured_energy_joules_per_inference",
            "spiking_inference_clips_per_second", "train_seconds")},
        "max_pool_recipe": {k: mx.get(k) for k in ("spiking_test_clip_accuracy", "test_clip_accuracy", "train_seconds")},
        "round_trip": {"spiking_test_clip_accuracy": rt["spiking_test_clip_accuracy"],
                       "agreement": float(np.mean(predictions(back, "nir") == ours_pred))},
        "ours_in_snntorch": {"agreement": float(np.mean(snn_pred == ours_pred)),
                             "accuracy": float(np.mean(snn_pred == y_test))},
        "peers_in_here": peers,
        "runs": {"loihi": str(loihi_run), "max_pool": str(max_run), "round_trip": str(back)},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    _log(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
