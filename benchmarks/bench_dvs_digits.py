"""Direct spiking training against rate conversion and SpikingJelly on the embedded DVS digits.

    python benchmarks/bench_dvs_digits.py                       # writes results/dvs_digits/

The set (:mod:`nengo_actions.data.synthetic_digits`, generated when missing): the 1,797
scikit-learn digits seen by an emulated 128x128 DVS, in the DVS128 Gesture layout. Every
run uses ``configs/dvs128_gesture.json`` with the reduced size (64x64 frames, T = 8 by
event count, 32 channels, 10 epochs) and:

* **direct**: the config's recipe (LIF neurons over the frames, surrogate gradients);
* **rate**: ``model.dvs_conv.method = "rate"`` with the rate recipe (ReLU trained in
  NengoDL, spiking neurons swapped in, firing rates x100, 0.5-frame synapses, rate
  regularisation, cross-entropy, Adam 1e-3) over the config's previous recipe (max
  pooling, a 15% validation hold-out; ``nir_exchange.PREVIOUS_DEFAULT``);
* **SpikingJelly** (when the peer kit's venv exists): ``benchmarks/peer_train_dvs.py`` on
  the same frames, its DVS128 Gesture example's recipe (LIF, MSE on rates, Adam 1e-3).

Each is judged per test clip at 1, 2, 4 and 8 simulation steps per frame; the report
(``README.md``, ``accuracy_vs_steps.png``, ``results.json``) also gives training time.

``--digits N`` generates a small set of N digits instead, ``--set KEY=VALUE`` is added to
every run's config (after the reduced size) and ``--no-peers`` leaves SpikingJelly out
(as happens when the peer kit's venv is missing); e.g. a check that it still runs::

    python benchmarks/bench_dvs_digits.py --root /tmp/d/data --out /tmp/d/out --digits 24 \
        --set train.epochs=1 --set save_dir=/tmp/d/runs ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from nir_exchange import PREVIOUS_DEFAULT

REPO = Path(__file__).resolve().parent.parent
REDUCED = [
    "events.frames.n_frames=8",
    "events.frames.downsample=2",
    "model.dvs_gesture_net.channels=32",
    "train.epochs=10",
    "evaluate.steps_per_frame=[1,2,4,8]",
    "evaluate.spiking_steps_per_frame=1",
    "train.tensorboard=false",
]
RATE = [
    *PREVIOUS_DEFAULT,  # the recipe the rate route's committed figures were measured on
    "model.dvs_conv.method=rate",
    "model.dvs_gesture_net.dense_batch_norm=false",
    "model.dvs_conv.scale_firing_rates=100.0",
    "model.dvs_conv.synapse=0.5",
    "model.dvs_conv.rate_target=100.0",
    "model.dvs_conv.rate_regularization=0.01",
    "train.loss=sparse_categorical_crossentropy",
    "train.learning_rate=0.001",
]
STEPS = (1, 2, 4, 8)


def run_ours(root, extra, name, log, overrides=()):
    from nengo_actions.config import load_config
    from nengo_actions.experiment import run

    cfg = load_config(REPO / "configs" / "dvs128_gesture.json",
                      [f"data.root={root}", f"name=dvs_digits_{name}", *REDUCED, *extra, *overrides])
    start = time.perf_counter()
    run_dir = run(cfg, log=log)
    wall = time.perf_counter() - start
    m = json.loads((run_dir / "metrics.json").read_text())
    return {
        "run_dir": str(run_dir),
        "trained_test_clip_accuracy": m["test_clip_accuracy"],
        "spiking": {k: m.get(f"spiking_test_clip_accuracy_k{k}") for k in STEPS},
        "train_seconds": m["train_seconds"],
        "wall_seconds": wall,
        "firing_rates_hz": {k[len("firing_rate_hz_"):]: v for k, v in m.items() if k.startswith("firing_rate_hz_")},
    }


def peer_settings(overrides=()):
    """``(epochs, channels)`` of our runs, for the peer's training to match."""
    from nengo_actions.config import load_config

    cfg = load_config(REPO / "configs" / "dvs128_gesture.json", [*REDUCED, *overrides])
    return cfg.train.epochs, cfg.model.dvs_gesture_net.channels


def small_spec(n):
    """A set of ``n`` digits over 4 users (one for testing), for quick runs."""
    from nengo_actions.data import SyntheticDigitSpec

    return SyntheticDigitSpec(n_users=4, test_users=1, n_samples=n)


def export_frames(root, path, overrides=()):
    from nengo_actions.config import load_config
    from nengo_actions.clips.event_data import load_event_data

    cfg = load_config(REPO / "configs" / "dvs128_gesture.json", [f"data.root={root}", *REDUCED, *overrides])
    d = load_event_data(cfg, progress=False)
    h, w, _ = d.metadata["frame_shape"]

    def frames(x):  # streamed clips (LazyClips) are read whole here: the peer side takes one .npz
        return np.asarray(x).reshape(len(x), x.shape[1], h, w, 2).astype(np.uint16)

    np.savez(path, x_train=frames(d.x_train), y_train=d.y_train, x_val=frames(d.x_val), y_val=d.y_val,
             x_test=frames(d.x_test), y_test=d.y_test, n_classes=d.n_classes)


def run_spikingjelly(python, npz, out_json, epochs=10, channels=32):
    start = time.perf_counter()
    subprocess.run([str(python), str(REPO / "benchmarks" / "peer_train_dvs.py"), "--data", str(npz), "--epochs", str(epochs),
                    "--channels", str(channels), "--json", str(out_json)], check=True)
    wall = time.perf_counter() - start
    r = json.loads(Path(out_json).read_text())
    return {"result": r, "wall_seconds": wall}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        if "spiking" in r:
            ks = [k for k in STEPS if r["spiking"][k] is not None]
            ax.plot([8 * k for k in ks], [100 * r["spiking"][k] for k in ks], "o-", label=f"{name}, Nengo spiking")
            ax.axhline(100 * r["trained_test_clip_accuracy"], ls=":", color=ax.lines[-1].get_color(), label=f"{name}, trained model")
    if "spikingjelly" in results:
        ax.plot([8], [100 * results["spikingjelly"]["test_accuracy"]], "s", label="SpikingJelly (T = 8)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("simulation steps per clip (8 frames)")
    ax.set_ylabel("test clip accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/dvs_digits", help="the generated set (made when missing)")
    parser.add_argument("--out", default="results/dvs_digits")
    parser.add_argument("--peers-python", type=Path, default=Path("/tmp/peers-venv/bin/python"))
    parser.add_argument("--no-peers", action="store_true", help="leave SpikingJelly out")
    parser.add_argument("--only", choices=("direct", "rate", "spikingjelly"), action="append")
    parser.add_argument("--digits", type=int, help="generate a small set of this many digits in --root (default: all 1,797)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override added to every run (repeatable)")
    args = parser.parse_args(argv)
    from nengo_actions.config import resolve_path
    from nengo_actions.data import ensure_synthetic_digits

    root, out = resolve_path(args.root), resolve_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ensure_synthetic_digits(root, small_spec(args.digits) if args.digits else None)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    which = args.only or ["direct", "rate", "spikingjelly"]
    for name, extra in (("direct", []), ("rate", RATE)):
        if name in which:
            results[name] = run_ours(root, extra, name, print, args.overrides)
            results[name]["spiking"] = {str(k): v for k, v in results[name]["spiking"].items()}
            _write(results_path, results)
    skip = "--no-peers" if args.no_peers else (
        None if args.peers_python.exists() else
        f"no peer venv interpreter at {args.peers_python} (bash ../shared/peers/setup_peers.sh makes it)")
    if "spikingjelly" in which and skip:
        print(f"SpikingJelly skipped: {skip}", flush=True)
    elif "spikingjelly" in which:
        npz = out / ".frames.npz"
        export_frames(root, npz, args.overrides)
        try:
            sj = run_spikingjelly(args.peers_python, npz, out / ".spikingjelly.json", *peer_settings(args.overrides))
        finally:
            npz.unlink(missing_ok=True)
        r = sj["result"]
        results["spikingjelly"] = {"test_accuracy": r["summary"]["selected_test_acc"], "max_test_accuracy": r["summary"]["max_test_acc"],
                                   "train_seconds": r["summary"]["train_s_total"],
                                   "raw": r, "wall_seconds": sj["wall_seconds"]}
        _write(results_path, results)
    for r in results.values():
        if "spiking" in r:
            r["spiking"] = {int(k): v for k, v in r["spiking"].items()}
    plot(results, out / "accuracy_vs_steps.png")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "raw"} for k, v in results.items()}, indent=1, default=str))


def _write(path, obj):
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
