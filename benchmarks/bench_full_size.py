"""Full-size dry runs: peak memory and time of prepare + one epoch + spiking evaluation.

Writes the real layouts at their real size (:mod:`nengo_actions.data.full_size`:
DVS128 Gesture 1,176 + 288 gestures of 20,000 events; SL-Animals 59 recordings x 19
signs; the UCF101 split-1 feature store of 13,320 clips) under ``--root`` (default the
ignored ``data/full_size/``), then for each runs, as separate processes:

1. ``prepare``: slicing the recordings into the sample cache (event sets;
   ``scripts/prepare_events.py``), from an empty cache;
2. ``train``: ``python -m nengo_actions.train`` with a small network, one epoch and the
   spiking evaluation at 1 step per frame: framing into the count caches, training,
   validation, test and spiking test. Streamed (``data.stream=auto``), and with
   ``--in-memory`` also with ``data.stream=off`` (the figures before streaming);
3. with ``--extrapolate``: the seeds' networks (the full DVSGestureNet at 128 x 128,
   T = 16, and the EnsembleArray of 500,000 neurons) timed on a few minibatches, and the
   measured time per sample multiplied by the sample counts of one epoch.

Peak resident memory of each process is ``ru_maxrss`` of a wrapper process that runs
only that command (``resource.getrusage(RUSAGE_CHILDREN)``). The table goes into
``benchmarks/README.md`` under its own heading and the raw figures into
``benchmarks/results/full_size.json``.

    python benchmarks/bench_full_size.py [--only dvs128_gesture,sl_animals,ucf101] [--in-memory] [--extrapolate]

``--events-per-gesture``, ``--events-per-second``, ``--ucf-features``, ``--ucf-frames`` and
``--set KEY=VALUE`` (added to every train command) make the runs small, and ``--results``
and ``--readme`` send the figures elsewhere, e.g. for a check that it still runs::

    python benchmarks/bench_full_size.py --root /tmp/fs --events-per-gesture 40 --events-per-second 20 \
        --ucf-features 4 --ucf-frames 2 --set events.frames.n_frames=2 ... \
        --results /tmp/fs/full_size.json --readme /tmp/fs/README.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEADING = "## Full-size data sets: memory and time (bench_full_size.py)"
RESULTS = ROOT / "benchmarks" / "results" / "full_size.json"
README = ROOT / "benchmarks" / "README.md"
GIB = 2**30
#: Sizes of the synthetic data: the real ones unless the command line shrinks them.
SIZES = {"events_per_gesture": 20000, "events_per_second": 10000, "ucf_features": 512, "ucf_frames": 28}

#: dataset -> (config, overrides of the small network and the one-epoch run)
RUNS = {
    "dvs128_gesture": (
        "configs/dvs128_gesture.json",
        ["model.dvs_gesture_net.channels=4", "train.epochs=1", "evaluate.steps_per_frame=[1]"],
    ),
    "sl_animals": ("configs/sl_animals.json", ["train.epochs=1", "evaluate.steps_per_frame=[1]"]),
    "ucf101": (
        "configs/ucf101_ensemble.json",
        ["model.ensemble_array.n_ensembles=100", "train.epochs=1", "train.early_stopping=0",
         "evaluate.steps_per_frame=[1]", "evaluate.spiking_steps_per_frame=1"],
    ),
}

MEASURE = r"""
import resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
print("@@", rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - start)
"""


def measured(argv, log_path):
    """``(exit status, peak RSS bytes, seconds)`` of ``argv`` run alone in a wrapper."""
    with open(log_path, "w") as log:
        out = subprocess.run([sys.executable, "-c", MEASURE, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    line = [s for s in out.stdout.splitlines() if s.startswith("@@ ")][-1].split()
    with open(log_path, "a") as log:
        log.write(out.stdout)
    return int(line[1]), int(line[2]) * 1024, float(line[3])


def generate(name, root, sizes=SIZES):
    from nengo_actions.data.full_size import write_dvs128_gesture, write_sl_animals, write_ucf101_store

    start = time.perf_counter()
    if name == "dvs128_gesture":
        path = write_dvs128_gesture(root / name, events_per_gesture=sizes["events_per_gesture"])
    elif name == "sl_animals":
        path = write_sl_animals(root / name, events_per_second=sizes["events_per_second"])
    else:
        path = write_ucf101_store(root / "ucf101_store", n_features=sizes["ucf_features"], n_frames=sizes["ucf_frames"])
    return path, time.perf_counter() - start


def data_overrides(name, root):
    if name == "ucf101":
        return [f"features.store_dir={root / 'ucf101_store'}"]
    return [f"data.root={root / name}"]


def run_dir_of(log_path):
    for line in reversed(Path(log_path).read_text(errors="replace").splitlines()):
        if line.startswith("run directory: "):
            return Path(line.split(": ", 1)[1].strip())
    return None


def train_figures(run_dir):
    """Seconds of epoch 1 (training + validation), accuracies, clip counts."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = next(p for p in run_dir.iterdir() if (p / "history.csv").exists())
    rows = (model / "history.csv").read_text().splitlines()
    header, first = rows[0].split(","), rows[1].split(",")
    return {
        "epoch_seconds": float(first[header.index("seconds")]),
        "train_seconds": metrics.get("train_seconds"),
        "test_clip_accuracy": metrics.get("test_clip_accuracy"),
        "spiking_test_clip_accuracy": metrics.get("spiking_test_clip_accuracy"),
        "spiking_clips_per_second": metrics.get("spiking_inference_clips_per_second"),
        "n_train": metrics.get("n_train_clips"),
        "n_val": metrics.get("n_val_clips"),
        "n_test": metrics.get("n_test_clips"),
    }


def bench(name, root, logs, in_memory, sizes=SIZES, extra_overrides=()):
    config, small = RUNS[name]
    path, gen_seconds = generate(name, root, sizes)
    entry = {"data": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name, "generate_seconds": gen_seconds}
    overrides = data_overrides(name, root)
    if name != "ucf101":
        shutil.rmtree(root / name / "cache", ignore_errors=True)
        argv = [sys.executable, "scripts/prepare_events.py", "-c", config] + sum((["--set", o] for o in overrides), [])
        rc, rss, seconds = measured(argv, logs / f"{name}-prepare.log")
        entry["prepare"] = {"rc": rc, "peak_rss": rss, "seconds": seconds}
    for mode in ("on", "off") if in_memory else ("on",):
        extra = overrides + small + [f"data.stream={mode}", f"save_dir={logs / 'runs'}", *extra_overrides]
        argv = [sys.executable, "-m", "nengo_actions.train", "-c", config] + sum((["--set", o] for o in extra), [])
        log_path = logs / f"{name}-train-stream-{mode}.log"
        rc, rss, seconds = measured(argv, log_path)
        figures = {"rc": rc, "peak_rss": rss, "seconds": seconds}
        run_dir = run_dir_of(log_path)
        if rc == 0 and run_dir is not None:
            figures.update(train_figures(run_dir))
        entry[f"train_stream_{mode}"] = figures
        print(f"{name} stream={mode}: exit {rc}, peak {rss / GIB:.2f} GiB, {seconds:.0f} s", flush=True)
    return entry


# ---------------------------------------------------------------------------------------
# The seeds' networks: time per sample on a few minibatches (run in its own process)


def measure_network(kind, batches, batch):
    """Seconds per training sample and per predicted sample of a seed network."""
    import numpy as np

    from nengo_actions import config as C

    rng = np.random.default_rng(0)
    if kind == "dvs_gesture_net":
        from nengo_actions.engine.direct import DirectEngine
        from nengo_actions.networks.dvs_direct import build_temporal

        cfg = C.load_config(ROOT / "configs" / "dvs128_gesture.json")
        net = build_temporal("dvs_gesture_net", cfg.model, n_features=128 * 128 * 2, n_classes=11, seed=0)
        engine = DirectEngine(net, minibatch_size=batch, device="cpu")
        x = rng.poisson(0.05, (batch * (batches + 1), 16, 128 * 128 * 2)).astype(np.float32)
        y = rng.integers(0, 11, len(x))
    else:
        from nengo_actions.engine.simulator import Engine
        from nengo_actions.networks import build_model

        cfg = C.load_config(ROOT / "configs" / "ucf101_ensemble.json")
        built = build_model("ensemble_array", cfg.model, 512, 101, 28, seed=0, spiking=False)
        engine = Engine(built, minibatch_size=batch, device="cpu")
        x = rng.normal(size=(batch * (batches + 1), 28, 512)).astype(np.float32)
        y = rng.integers(0, 101, len(x))
    settings = cfg.train.replace(epochs=1)
    engine.compile(settings, len(x))
    engine.fit_epoch(x[:batch], y[:batch], 0)  # warm-up: tracing and graph building
    start = time.perf_counter()
    engine.fit_epoch(x[batch:], y[batch:], 1)
    train = (time.perf_counter() - start) / (batch * batches)
    engine.predict(x[:batch])
    start = time.perf_counter()
    engine.predict(x[batch:])
    predict = (time.perf_counter() - start) / (batch * batches)
    engine.close()
    return {"train_seconds_per_sample": train, "predict_seconds_per_sample": predict, "batches": batches, "batch": batch}


def extrapolate(logs, results):
    out = {}
    for kind, batches, batch, dataset in (("dvs_gesture_net", 1, 2, "dvs128_gesture"), ("ensemble_array", 2, 16, "ucf101")):
        argv = [sys.executable, str(Path(__file__).resolve()), "--measure", kind, "--batches", str(batches), "--batch", str(batch)]
        rc, rss, seconds = measured(argv, logs / f"measure-{kind}.log")
        text = (logs / f"measure-{kind}.log").read_text()
        line = [s for s in text.splitlines() if s.startswith("MEASURED ")]
        if rc != 0 or not line:
            out[kind] = {"rc": rc}
            continue
        figures = json.loads(line[-1][len("MEASURED "):])
        counts = results.get(dataset, {}).get("train_stream_on", {})
        n_train, n_eval = counts.get("n_train") or 0, (counts.get("n_val") or 0)
        figures.update(
            rc=rc, peak_rss=rss, n_train=n_train, n_val=n_eval,
            epoch_seconds=figures["train_seconds_per_sample"] * n_train + figures["predict_seconds_per_sample"] * n_eval,
        )
        out[kind] = figures
        print(f"{kind}: {figures['train_seconds_per_sample']:.3f} s per training sample, peak {rss / GIB:.2f} GiB", flush=True)
    return out


# ---------------------------------------------------------------------------------------
# Report


def _gib(value):
    return f"{value / GIB:.2f}" if value else "-"


def _s(value, digits=0):
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def table(results, extra, sizes=SIZES):
    rows = [
        "| data set | layout at full size | prepare: s, peak GiB | train streamed: peak GiB | s/epoch | whole run s | in memory: peak GiB | test acc. (spiking) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    layouts = {
        "dvs128_gesture": f"122 trials, 1,176 + 288 gestures, {sizes['events_per_gesture']:,} events each, 128x128, T=16 (`sum`)",
        "sl_animals": f"59 recordings x 19 signs (1,121), {sizes['events_per_second']:,} events/s, 50 bins of 30 ms, 32x32 (`or`, downsample 4)",
        "ucf101": f"split 1 store: 9,537 + 3,783 clips x {sizes['ucf_frames']} x {sizes['ucf_features']} float16",
    }
    for name, r in results.items():
        prep = r.get("prepare", {})
        on, off = r.get("train_stream_on", {}), r.get("train_stream_off", {})
        acc = on.get("spiking_test_clip_accuracy")
        rows.append(
            f"| {name} | {layouts[name]} | {_s(prep.get('seconds'))}, {_gib(prep.get('peak_rss'))} | "
            f"**{_gib(on.get('peak_rss'))}** | {_s(on.get('epoch_seconds'), 1)} | {_s(on.get('seconds'))} | "
            f"{_gib(off.get('peak_rss'))} | {_s(acc * 100 if acc is not None else None, 1)}% |"
        )
    lines = rows
    if extra:
        lines += [
            "",
            "The seeds' networks, timed on a few minibatches in their own process and extrapolated to one epoch "
            "(training samples x s/sample + validation samples x s/predicted sample, on the same 2 CPU cores; the data "
            "are streamed as above, so peak memory does not grow with the data set):",
            "",
            "| network | s per training sample | s per predicted sample | one epoch, extrapolated | peak GiB (measuring process) |",
            "|---|---:|---:|---:|---:|",
        ]
        names = {
            "dvs_gesture_net": "DVSGestureNet 128 channels x 5, dense 512, 128x128, T=16 (DVS128 Gesture, minibatch 2)",
            "ensemble_array": "EnsembleArray 10,000 x 50 = 500,000 neurons, 512-d, 28 frames (UCF101, minibatch 16)",
        }
        for kind, f in extra.items():
            if f.get("rc") != 0:
                lines.append(f"| {names[kind]} | failed (exit {f.get('rc')}) | | | |")
                continue
            lines.append(
                f"| {names[kind]} | {f['train_seconds_per_sample']:.3f} | {f['predict_seconds_per_sample']:.3f} | "
                f"{f['epoch_seconds'] / 3600:.2f} h ({f['n_train']} + {f['n_val']} samples) | {_gib(f['peak_rss'])} |"
            )
    return "\n".join(lines)


def _epoch_note(results):
    pairs = [
        f"{name} {r['train_stream_on']['epoch_seconds']:.1f} s against {r['train_stream_off']['epoch_seconds']:.1f} s"
        for name, r in results.items()
        if r.get("train_stream_on", {}).get("epoch_seconds") and r.get("train_stream_off", {}).get("epoch_seconds")
    ]
    if not pairs:
        return ""
    return (
        "Epoch time streamed against in memory: " + "; ".join(pairs) + ". A streamed minibatch is read from the "
        "cache, decoded to float32 and standardised as it is needed, which the in-memory path did once for the "
        "whole set; what changes is peak memory, not the figures of the run.\n"
    )


def write_readme(results, extra, seconds, load=None, day=None, sizes=SIZES, readme=README, overrides=()):
    from readme_section import write_section

    at_end = f" (load average {load:.1f} at the end)" if load is not None else ""
    text = "\n".join([
        HEADING,
        "",
        f"One run on {day or datetime.date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} CPU cores shared with "
        f"other jobs{at_end}, no GPU. Synthetic events and features in the real layouts at the real "
        "sizes (`nengo_actions.data.full_size`); each command runs as its own process and its peak resident set size is "
        "measured alone (`ru_maxrss`). `prepare` slices the recordings into the sample cache; the train command then "
        "frames each side once into integer count caches (uint16 for DVS128 Gesture, uint8 for SL-Animals), trains one "
        "epoch with a small network (DVSGestureNet with 4 channels; the SL-Animals net of the config; an EnsembleArray of "
        "100 x 50 neurons) and evaluates the test side with rate and spiking neurons (1 step per frame). "
        "\"s/epoch\" is the epoch row of `history.csv` (training plus validation); \"whole run\" includes the frame "
        "caches, the spiking evaluation and TensorFlow's start. \"In memory\" is the same command with `data.stream=off`, "
        "what every run did before streaming. The accuracies are of synthetic data after one epoch and show only that "
        "each stage ran (the class patterns of the UCF101 store are easy, SL-Animals has not left chance after one "
        "epoch at its learning rate). Command: `python benchmarks/bench_full_size.py --in-memory --extrapolate` "
        "(`--from-results` rewrites this section from `benchmarks/results/full_size.json`)."
        + (f" Every train command had {' '.join('--set ' + o for o in overrides)}." if overrides else ""),
        "",
        table(results, extra, sizes),
        "",
        _epoch_note(results),
        f"Total time {seconds:.0f} s.",
    ])
    write_section(text, HEADING, readme)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT / "data" / "full_size"))
    parser.add_argument("--only", default="dvs128_gesture,sl_animals,ucf101")
    parser.add_argument("--in-memory", action="store_true", help="also run with data.stream=off")
    parser.add_argument("--extrapolate", action="store_true", help="time the seeds' networks")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--readme", type=Path, default=README, help="the README whose section is rewritten")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the raw figures go (and --from-results reads them)")
    parser.add_argument("--events-per-gesture", type=int, default=SIZES["events_per_gesture"], help="DVS128 Gesture")
    parser.add_argument("--events-per-second", type=int, default=SIZES["events_per_second"], help="SL-Animals")
    parser.add_argument("--ucf-features", type=int, default=SIZES["ucf_features"], help="UCF101 store: features per frame")
    parser.add_argument("--ucf-frames", type=int, default=SIZES["ucf_frames"], help="UCF101 store: frames per clip")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override added to every train command (repeatable)")
    parser.add_argument("--from-results", action="store_true", help="only rewrite the README section from the saved figures")
    args = parser.parse_args(argv)
    if args.measure:
        print("MEASURED " + json.dumps(measure_network(args.measure, args.batches, args.batch)), flush=True)
        return 0
    if args.from_results:
        saved = json.loads(args.results.read_text())
        write_readme(saved["results"], saved["extrapolated"], saved["seconds"], saved.get("load_average"), saved.get("date"),
                     saved.get("sizes", SIZES), args.readme, saved.get("overrides", ()))
        return 0
    sizes = {k: getattr(args, k) for k in SIZES}
    start = time.perf_counter()
    root = Path(args.root)
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only.split(","):
        if name not in RUNS:
            raise SystemExit(f"error: --only: unknown data set {name!r}; use {', '.join(RUNS)}")
        results[name] = bench(name, root, logs, args.in_memory, sizes, args.overrides)
    extra = extrapolate(logs, results) if args.extrapolate else {}
    seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    day = datetime.date.today().isoformat()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.results.with_name(f".{args.results.name}.tmp{os.getpid()}")
    saved = {"results": results, "extrapolated": extra, "seconds": seconds, "load_average": load, "date": day}
    if sizes != SIZES or args.overrides:  # the saved figures say what they are of
        saved.update(sizes=sizes, overrides=args.overrides)
    tmp.write_text(json.dumps(saved, indent=1) + "\n")
    os.replace(tmp, args.results)
    print(table(results, extra, sizes))
    if not args.no_readme:
        write_readme(results, extra, seconds, load, day, sizes, args.readme, args.overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
