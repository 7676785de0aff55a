"""DVS128 Gesture network: training and spiking inference samples/s against SpikingJelly
and snnTorch, in one run, on the same shapes; at the reduced size and (``--full``) the
seeds' full size.

Sizes (the peer kit's, ``../shared/peers``): five conv blocks, FC 512, FC 110, voting over
10, 11 classes; **reduced** channels 32, 2x64x64 input, T=8 frames, batch 16; **full**
channels 128, 2x128x128, T=16, batch 16.

* **peers** (run in the peer kit's venv, timed by its own ``bench_net``): SpikingJelly's
  ``DVSGestureNet`` (multi-step LIF, BN, max pooling) and the same stack in snnTorch;
  a training step is forward over T steps, MSE on the firing rate, backward, Adam step;
  inference is the forward pass over T steps.
* **nengo_actions**, the default route (``model.dvs_conv.method: "direct"``): training is
  ``DirectEngine.fit_epoch`` (multi-step LIF in Keras, MSE on the output rate, BPTT with
  the ATan surrogate, Adam) over ``--batches`` minibatches; inference is
  ``Engine.predict`` of the Nengo network built from the trained parameters
  (``build_direct_network``, ``Engine.for_inference``, as spiking evaluation runs it), one
  simulation step per frame: T steps, the peers' T.

Iso-accuracy: the directly trained network is trained at one step per frame and its
Nengo network at one step per frame is the trained model itself (the test suite checks
them equal), so its accuracy holds at 1 step per frame, the peers' own latency; the
inference figures are compared there. The accuracy at that step count is read from
``results/dvs_digits/results.json`` (``bench_dvs_digits.py``, the reduced size trained on
the embedded DVS digits); no full-size network has been trained on this machine, so the
full size reports none.

Every figure is the median of the timed repeats after one warm-up. Run::

    bash ../shared/peers/setup_peers.sh       # the peers' venv, once
    .venv/bin/python benchmarks/bench_dvs.py [--full] [--json OUT]

and the table is written into this benchmark's section of ``benchmarks/README.md``;
``--json OUT`` also writes, per size, ``train_vs_best_peer``, ``infer_iso_vs_best_peer``,
``infer_steps`` (steps per frame) and ``accuracy`` (at those steps). Without the peer kit
or its venv (or with ``--no-peers``) only nengo_actions is timed and the ratios are null.
``--channels``, ``--hw``, ``--frames``, ``--batch`` and ``--batches`` shrink the reduced
network and the runs (the peers, when they run, get the same shapes); ``--full-size
C,HW,T,B`` does so for the full one::

    .venv/bin/python benchmarks/bench_dvs.py --no-peers --channels 4 --hw 32 --frames 2 --batch 2 \
        --batches 1 --repeats 1 --rounds 1 --readme /tmp/README.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "README.md"
HEADING = "## DVS128 Gesture network: training and spiking inference (bench_dvs.py)"
SIZE = dict(channels=32, hw=64, T=8, B=16, classes=11)
FULL = dict(channels=128, hw=128, T=16, B=16, classes=11)
#: The accuracy of the reduced size at 1 step per frame (bench_dvs_digits.py's direct run).
ACCURACY_SOURCE = ROOT / "results" / "dvs_digits" / "results.json"
HOW = (
    "How the Nengo network's inference got here: before these changes the same network trained at 5.2 samples/s and inferred at 6.1 "
    "(0.14x and 0.07x the faster peer on this machine). (1) NengoDL's default planner merges "
    "operators of the same kind into one TensorFlow op and lays the signals out for it, so every "
    "step gathered and scattered whole layers of 10^5 neurons; every network of `build_model` is "
    "now built unmerged (`networks.unmerged_ops`): 3-4x in training and inference. (2) The "
    "converter adds conv biases through a fixed `nengo.Sparse` broadcast, which NengoDL runs as a "
    "sparse product with transposes, forward and backward; a `ChannelBroadcast` node does it with "
    "`tf.tile` (same trainable parameters), and layer mean rates are one `tf.reduce_mean` "
    "(`MeanRate`) instead of a (1, n) dense transform that transposed each layer's output every "
    "step. Both are plain Nengo nodes, so the reference simulator and the GUI run them too. (3) For "
    "inference, `Engine.for_inference` folds the then-constant bias inputs into the neurons' biases "
    "(`networks.constant_inputs`), and `Engine.predict` calls `predict_on_batch` per minibatch, "
    "not Keras' `predict`, which set up a dataset pipeline per call. What is left in a spiking "
    "batch: the convolutions about 60%, the spiking neuron update 25%, the rate probes 7%. (4) TensorFlow "
    "2.15 runs its oneDNN kernels by default only on CPUs with AVX-512 VNNI or BF16 or AMX; "
    "`nengo_actions.compat` turns them on everywhere (`TF_ENABLE_ONEDNN_OPTS=0` still turns them off). On "
    "an AVX2 CPU the reduced net's direct training went from 29.8 to 61.4 samples/s and the multi-step "
    "model's inference from 114 to 227; the Nengo network's, 116 to 120, gains little."
)
#: Issue 22's speed goals: ours over the faster peer.
GOALS = {"train": 2.0, "infer": 1.5}
#: The second inference row of ours: the trained multi-step model.
MULTI_STEP = "nengo_actions (multi-step Keras model, spiking)"
#: Minibatches per timed run of ours: an epoch of 4 batches and a prediction over 64
#: samples, so that the per-call setup of Keras' fit is spread as in real use.
BATCHES = 4

PEER_SCRIPT = """
import json, sys, types
import bench_peers as bp
bp.SIZES["reduced"] = {size!r}
args = types.SimpleNamespace(repeats={repeats}, budget_s={budget})
bp.run("spikingjelly reduced", bp.bench_net, "spikingjelly", "reduced", args)
bp.run("snntorch reduced", bp.bench_net, "snntorch", "reduced", args)
print("PEER_ROWS " + json.dumps(bp.ROWS))
"""


def peers(kit, python, size, repeats, budget):
    """The peers' train and infer rows, from their own timer in their venv."""
    shape = {k: size[k] for k in ("channels", "hw", "T", "B")}
    code = PEER_SCRIPT.format(kit=str(kit), size=shape, repeats=repeats, budget=budget)
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=str(kit))
    for line in proc.stdout.splitlines():
        if line.startswith("PEER_ROWS "):
            return json.loads(line[len("PEER_ROWS "):])
    raise RuntimeError(f"peer benchmark failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def median_time(fn, repeats, budget):
    """``(median seconds, timed calls, the last call's result)`` of ``fn`` after a warm-up."""
    fn()  # warm-up (graph building, first-call costs)
    times = []
    while len(times) < repeats:
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if sum(times) + times[-1] > budget:
            break
    return statistics.median(times), len(times), result


def peers_missing(kit, python):
    """Why the peers cannot run here (``None`` when they can)."""
    if not (Path(kit) / "bench_peers.py").is_file():
        return f"no peer kit at {kit}"
    if not Path(python).exists():
        return f"no peer venv interpreter at {python} (bash ../shared/peers/setup_peers.sh makes it)"
    return None


def setup(size, batches, seed=0, compile=True):
    """The direct route's trainer of the DVSGestureNet at ``size``, compiled, and
    ``batches`` minibatches of event-like clips: ``(model config, trainer, x, y)``
    (without ``compile``, no trainer: ``None``)."""
    from nengo_actions.engine.direct import DirectEngine
    from nengo_actions.networks.dvs_direct import build_temporal
    from nengo_actions.config.schema import TrainConfig
    from nengo_actions.config.models import ModelConfig

    m = ModelConfig()
    hw = size["hw"]
    m = m.replace(dvs_gesture_net=m.dvs_gesture_net.replace(
        channels=size["channels"], depth=5, dense=512, votes=10, frame_shape=(hw, hw, 2)))
    n_features, T, B, classes = hw * hw * 2, size["T"], size["B"], size["classes"]
    n = B * batches
    rng = np.random.default_rng(seed)
    x = (rng.random((n, T, n_features)) < 0.1).astype(np.float32)  # event counts: about 10% of pixels active
    y = rng.integers(0, classes, n)
    if not compile:
        return m, None, x, y
    net = build_temporal("dvs_gesture_net", m, n_features=n_features, n_classes=classes)
    engine = DirectEngine(net, minibatch_size=B, device="cpu")
    engine.compile(TrainConfig(minibatch_size=B, loss="mse", learning_rate=3e-3), n)
    return m, engine, x, y


def inference_engine(m, params, size):
    """The Nengo network of the parameter file ``params``, spiking, as spiking evaluation runs it."""
    from nengo_actions.engine.simulator import Engine
    from nengo_actions.networks.dvs_direct import build_direct_network

    hw = size["hw"]
    built = build_direct_network("dvs_gesture_net", m, n_features=hw * hw * 2, n_classes=size["classes"], params_path=params)
    return Engine.for_inference(built, None, minibatch_size=size["B"], device="cpu")


def sizes(args):
    """``{"reduced": size, "full": size}`` from the command line (``full`` with ``--full``)."""
    chosen = {"reduced": dict(SIZE, channels=args.channels, hw=args.hw, T=args.frames, B=args.batch)}
    if args.full:
        full = dict(FULL)
        if args.full_size:
            full.update(zip(("channels", "hw", "T", "B"), (int(v) for v in args.full_size.split(","))))
        chosen["full"] = full
    return chosen


def ours(size, batches, repeats, budget):
    """nengo_actions' rows: training, then inference of the Nengo network and of the trained
    multi-step model. Training and inference run in two fresh processes: at the full size
    the trainer's memory (about 20 GB) stays with TensorFlow's allocator until its process
    ends, and the Nengo network built beside it does not fit in 24 GB."""
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            train_row, multi_row, multi_out = pool.submit(_train, size, batches, repeats, budget, tmp).result()
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            infer_row, nengo_out = pool.submit(_infer, size, batches, repeats, budget, tmp).result()
    multi_row["same_outputs"] = bool(np.array_equal(multi_out, nengo_out))
    return [train_row, infer_row, multi_row]


def _train(size, batches, repeats, budget, folder):
    """The training row and, from the trained weights (saved in ``folder``), the
    multi-step model's inference row and outputs."""
    m, engine, x, y = setup(size, batches)
    n, epoch = len(y), iter(range(10**6))
    med, runs, _ = median_time(lambda: engine.fit_epoch(x, y, next(epoch)), repeats, budget)
    train = dict(job="train", library="nengo_actions (direct, Keras BPTT)", median_s=med / batches, repeats=runs, throughput=n / med)
    # the trained multi-step model: the same LIF spikes as the Nengo network, each layer's
    # convolutions over all B x T frames at once, as in training
    med, runs, outputs = median_time(lambda: engine.predict(x), repeats, budget)
    multi = dict(job="infer", library=MULTI_STEP, median_s=med / batches, repeats=runs, throughput=n / med)
    engine.save_params(Path(folder) / "params.npz")
    return train, multi, outputs


def _infer(size, batches, repeats, budget, folder):
    """The Nengo network's inference row and outputs, from the parameters in ``folder``."""
    m, _, x, y = setup(size, batches, compile=False)
    nengo = inference_engine(m, Path(folder) / "params.npz", size)
    try:
        med, runs, outputs = median_time(lambda: nengo.predict(x), repeats, budget)
        row = dict(job="infer", library="nengo_actions (Nengo network, spiking)", median_s=med / batches, repeats=runs,
                   throughput=len(y) / med)
        return row, outputs
    finally:
        nengo.close()


def reduced_accuracy(path=ACCURACY_SOURCE):
    """The reduced net's spiking test accuracy at 1 step per frame, and where it is from."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))["direct"]["spiking"]["1"]
    except (OSError, ValueError, KeyError):
        return None, f"no {path.relative_to(ROOT)} (run benchmarks/bench_dvs_digits.py)"
    return float(value), f"{path.relative_to(ROOT)}: the direct run on the embedded DVS digits"


def bench_size(name, size, args, skip):
    """Time one size in ``args.rounds`` rounds; returns its Markdown lines and JSON record."""
    rounds = []  # the machine's speed drifts: each round times every contestant once
    batches = args.batches if name == "reduced" else 1
    for _ in range(args.rounds):
        peer_rows = [] if skip else [
            r for r in peers(args.peers, args.peers_python, size, args.repeats, args.budget_s) if r["job"] in ("train", "infer")]
        rounds.append(ours(size, batches, args.repeats, args.budget_s) + peer_rows)
    lines = [
        f"**{name}**: channels {size['channels']}, 2x{size['hw']}x{size['hw']} input, T={size['T']}, batch {size['B']}, "
        "11 classes.",
        "",
        "| job | library | s per batch | samples/s | nengo_actions / this | per round |",
        "|---|---|---:|---:|---:|---:|",
    ]
    keys = [(r["job"], r["library"]) for r in rounds[0]]
    per_round = {k: [r for rows in rounds for r in rows if (r["job"], r["library"]) == k] for k in keys}
    mine_keys = [k for k in keys if k[1].startswith("nengo_actions")]
    ours_key = {job: next(k for k in mine_keys if k[0] == job) for job, _ in mine_keys}  # each job's first row
    best, multi_step = {}, {}
    for key in keys:
        rows = per_round[key]
        mine = per_round[ours_key[key[0]]]
        ratios = [m["throughput"] / r["throughput"] for m, r in zip(mine, rows)]
        throughput = statistics.median(r["throughput"] for r in rows)
        ratio = statistics.median(m["throughput"] for m in mine) / throughput
        if key not in mine_keys:
            best[key[0]] = min(best.get(key[0], float("inf")), ratio)  # against the faster peer
            if (key[0], MULTI_STEP) in per_round:
                fast = statistics.median(m["throughput"] for m in per_round[(key[0], MULTI_STEP)]) / throughput
                multi_step[key[0]] = min(multi_step.get(key[0], float("inf")), fast)
        spread = "-" if key in mine_keys else f"{min(ratios):.2f}-{max(ratios):.2f}x"
        lines.append(
            f"| {key[0]} | {key[1]} | {statistics.median(r['median_s'] for r in rows):.3f} | {throughput:.1f} | "
            f"{ratio:.2f}x | {spread} |"
        )
    lines += ["", "Samples/s in each round: " + "; ".join(
        f"{job} {library}: " + " / ".join(f"{r['throughput']:.1f}" for r in per_round[(job, library)])
        for job, library in keys
    ) + "."]
    accuracy, source = reduced_accuracy() if name == "reduced" else (
        None, "no full-size network has been trained on this machine (about 0.34 h per epoch on 2 cores)")
    same = [r["same_outputs"] for r in per_round.get(("infer", MULTI_STEP), [])]
    if same:
        lines += ["", f"The multi-step model's outputs equal the Nengo network's in {sum(same)} of {len(same)} rounds "
                  "(the same spikes: the two rows are one network run two ways)."]
    record = {
        "size": size, "train_vs_best_peer": best.get("train"), "infer_iso_vs_best_peer": best.get("infer"),
        "infer_iso_multi_step_vs_best_peer": multi_step.get("infer"), "multi_step_same_outputs": all(same) if same else None,
        "infer_steps": 1, "accuracy": accuracy, "accuracy_source": source,
        "samples_per_second": {f"{job} {library}": statistics.median(r["throughput"] for r in per_round[(job, library)])
                               for job, library in keys},
    }
    lines += ["", "Spiking accuracy at 1 step per frame (the inference figure's latency): "
              + (f"{accuracy:.2%} ({source})." if accuracy is not None else f"not measured: {source}.")]
    if best:
        lines += ["", f"Against the goals, {name} size, by the medians over rounds: " + "; ".join(
            f"{what} {value:.2f}x the faster peer (goal {goal}x: {'met' if value >= goal else 'not met'})"
            for what, value, goal in (("training", best.get("train"), GOALS["train"]),
                                      ("the Nengo network's spiking inference", best.get("infer"), GOALS["infer"]),
                                      ("the multi-step model's", multi_step.get("infer"), GOALS["infer"]))
            if value is not None) + "."]
    return lines, record


def cpu_name():
    """The CPU's model name and whether it has AVX-512, which decides TensorFlow's and
    torch's kernels (the ratios move between machines with and without it)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "an unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "an unknown CPU")
    return f"{model} ({'with' if 'avx512f' in info else 'without'} AVX-512)"


def main(argv=None):
    from readme_section import write_section

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "peers", help="peer benchmark kit")
    parser.add_argument("--peers-python", type=Path, default=Path("/tmp/peers-venv/bin/python"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of peers then ours")
    parser.add_argument("--no-peers", action="store_true", help="time nengo_actions only")
    parser.add_argument("--channels", type=int, default=SIZE["channels"])
    parser.add_argument("--hw", type=int, default=SIZE["hw"], help="input height and width (at least 32: five pools of 2)")
    parser.add_argument("--frames", type=int, default=SIZE["T"], help="T, frames per sample")
    parser.add_argument("--batch", type=int, default=SIZE["B"])
    parser.add_argument("--batches", type=int, default=BATCHES, help="minibatches per timed run of ours")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    parser.add_argument("--readme", type=Path, default=README, help="the README whose section is rewritten")
    parser.add_argument("--full", action="store_true", help="also time the seeds' full size (slow: minutes per contestant)")
    parser.add_argument("--full-size", metavar="C,HW,T,B", help="the full size's channels, input side, frames and batch")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the ratios per size as JSON")
    args = parser.parse_args(argv)
    skip = "--no-peers" if args.no_peers else peers_missing(args.peers, args.peers_python)
    if skip:
        print(f"peers skipped: {skip}; timing nengo_actions only", flush=True)
    t0 = time.time()
    body, records = [], {}
    for name, size in sizes(args).items():
        lines, records[name] = bench_size(name, size, args, skip)
        body += lines + [""]
        print("\n".join(lines), flush=True)  # each size as it is done: a long run shows what it has
    load = os.getloadavg()[0]
    lines = [
        HEADING,
        "",
        f"{args.rounds} rounds in one run, each round timing the peers and then nengo_actions (median of up to "
        f"{args.repeats} timed repeats after a warm-up); each table gives the median over rounds and, in the last "
        "column, the range of the per-round ratios. "
        f"2 CPU cores of {cpu_name()} (load average {load:.1f} at the end). "
        "Peers are timed by the peer kit's own `bench_net` in its venv (torch, 2 threads); nengo_actions "
        f"trains directly with spikes (the default route: Keras BPTT through T frames; an epoch of {args.batches} "
        "batches at the reduced size, 1 at the full size) and infers with the Nengo network of the trained "
        "parameters, spiking, one step per frame (T steps, as the peers). "
        f"Command: `.venv/bin/python benchmarks/bench_dvs.py{''.join(' ' + a for a in (argv or sys.argv[1:]))}`."
        + (f" The full size runs at batch {records['full']['size']['B']}, not the seeds' {FULL['B']}: at {FULL['B']} "
           "our trainer holds about 20 GB and was killed on a 24 GB machine." if records.get("full", {}).get("size", {}).get("B", FULL["B"]) != FULL["B"] else "")
        + (f" Peers skipped in this run ({skip})." if skip else ""),
        "",
        *body,
        f"Total time {time.time() - t0:.0f} s.", "", HOW, "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_readme:
        write_section(text, HEADING, args.readme)
    if args.json:
        from nengo_actions.io import write_json_atomic

        write_json_atomic(args.json, {"peers_skipped": skip, "load_average": load, "sizes": records})
    return records


if __name__ == "__main__":
    main()
