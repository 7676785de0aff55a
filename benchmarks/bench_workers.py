"""One training process against N local workers (``--workers N``) on the embedded DVS digits.

    python benchmarks/bench_workers.py                  # writes results/dvs_workers/ and benchmarks/README.md

Each run is the train command on ``configs/dvs128_gesture.json`` at the reduced size of
``benchmarks/bench_dvs_digits.py`` (64x64 frames, T = 8 by event count, 32 channels, 10
epochs, minibatch 16), judged spiking at 1 step per frame; the same global minibatch
with 1 process (``train.distribute: "none"``) and with ``--workers N``
(``MultiWorkerMirroredStrategy`` over localhost). It reports training throughput
(training clips per second over the epochs, validation included) and spiking test
accuracy, into ``<out>/README.md``, ``<out>/results.json``, ``<out>/workers.png`` and a
section of ``benchmarks/README.md`` (``--readme``).

The workers share this machine's cores, so N workers on one machine show the cost of
the collective all-reduce, not a speed-up; see the section's extrapolation.

``--digits N`` makes a small set instead and ``--set KEY=VALUE`` is added to every run
(e.g. a quick check: ``--digits 24 --set train.epochs=1 --set save_dir=/tmp/runs``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from nir_exchange import PREVIOUS_DEFAULT, RUN_SETTINGS, small_spec  # the sibling benchmark's reduced size and recipe

REPO = Path(__file__).resolve().parent.parent

HEADING = "## Multi-worker training (tf.distribute) on the DVS digits"


def train(root, workers, overrides, log_path):
    """Run the train command; returns its metrics.json as a dict and the run folder."""
    settings = [f"data.root={root}", *RUN_SETTINGS, *PREVIOUS_DEFAULT, *overrides, f"name=workers{workers}"]
    command = [sys.executable, "-m", "nengo_actions.train", "-c", str(REPO / "configs" / "dvs128_gesture.json")]
    command += [a for s in settings for a in ("--set", s)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with open(log_path, "w", encoding="utf-8") as log:
        done = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)
    lines = Path(log_path).read_text(encoding="utf-8").splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("run directory: "):
        raise SystemExit(f"{workers} worker(s): the train command failed; see {log_path}")
    run_dir = Path(lines[-1][len("run directory: "):])
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")), run_dir


def table(rows, summary):
    """Per seed and worker count, then the mean accuracy of each worker count."""
    lines = ["| seed | workers | global minibatch | training clips/s | vs 1 process, same seed | spiking test accuracy (1 step/frame) | load average | epochs |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = next(b for b in rows if b["seed"] == r["seed"] and b["workers"] == rows[0]["workers"])
        lines.append(f"| {r['seed']} | {r['workers']} | {r['minibatch']} | {r['clips_per_second']:.1f} | "
                     f"{r['clips_per_second'] / base['clips_per_second']:.2f}x | {r['spiking_accuracy']:.2%} | "
                     f"{r['load_average']:.1f} | {r['epochs']} |")
    means = "; ".join(f"{s['workers']} worker(s) {s['spiking_accuracy']:.2%}" for s in summary)
    diff = summary[-1]["spiking_accuracy"] - summary[0]["spiking_accuracy"]
    return "\n".join(lines) + (f"\n\nMean spiking test accuracy over seeds {', '.join(map(str, summary[0]['seeds']))}: "
                                f"{means} ({100 * diff:+.2f} points).")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nengo_actions.io import save_figure_atomic

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    names = [str(r["workers"]) for r in rows]
    axes[0].bar(names, [r["clips_per_second"] for r in rows])
    axes[0].set(xlabel="workers", ylabel="training clips / s")
    axes[1].bar(names, [100 * r["spiking_accuracy"] for r in rows])
    axes[1].set(xlabel="workers", ylabel="spiking test accuracy (%)", ylim=(0, 100))
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/dvs_digits", help="the generated set (made when missing)")
    parser.add_argument("--out", default="results/dvs_workers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to run (1: one process)")
    parser.add_argument("--digits", type=int, help="generate a small set of this many digits instead")
    parser.add_argument("--readme", default=str(REPO / "benchmarks" / "README.md"), help="the README to write the section into")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of each worker count")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    from nengo_actions.config import resolve_path
    from nengo_actions.data import ensure_synthetic_digits
    from nengo_actions.io import read_json, write_json_atomic, write_text_atomic
    from readme_section import write_section

    root, out = resolve_path(args.root), resolve_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ensure_synthetic_digits(root, small_spec(args.digits) if args.digits else None)
    # finished runs are kept in results.json and reused, so a cut-off benchmark goes on
    kept = {(r["workers"], r["seed"]): r for r in (read_json(out / "results.json") or {}).get("rows", [])
            if r.get("overrides") == args.overrides and (REPO / r["run_dir"] / "metrics.json").is_file()}
    rows = []
    for seed in args.seeds:
        for n in args.workers:
            if (n, seed) in kept:
                rows.append(dict(kept[(n, seed)], run_dir=os.path.relpath(REPO / kept[(n, seed)]["run_dir"], REPO)))
                continue
            print(f"training with {n} worker(s), seed {seed} ...", flush=True)
            m, run_dir = train(root, n, [*args.overrides, f"seed={seed}"], out / f"workers{n}_seed{seed}.log")
            rows.append({
                "workers": int(m["train_workers"]), "seed": seed, "run_dir": os.path.relpath(run_dir, REPO), "minibatch": _minibatch(run_dir),
                "clips_per_second": m["train_clips_per_second"], "train_seconds": m["train_seconds"],
                "spiking_accuracy": m["spiking_test_clip_accuracy"], "test_accuracy": m["test_clip_accuracy"],
                "epochs": m["epochs_run"], "overrides": args.overrides, "load_average": os.getloadavg()[0],
            })
            print(f"  {rows[-1]['clips_per_second']:.1f} training clips/s, spiking test accuracy "
                  f"{rows[-1]['spiking_accuracy']:.2%}", flush=True)
            write_json_atomic(out / "results.json", {"rows": rows, "overrides": args.overrides})
    write_json_atomic(out / "results.json", {"rows": rows, "overrides": args.overrides})
    summary = summarize(rows)
    plot(summary, out / "workers.png")
    text = (f"{HEADING}\n\n{table(rows, summary)}\n\nThe load average is the machine's at the end of each run "
            f"(2 cores): other work on the machine slows a run, so compare throughput within a seed.\n\n{EXPLANATION}")
    write_text_atomic(out / "README.md", text.replace(HEADING, "# Multi-worker training on the DVS digits", 1) + "\n")
    write_section(text, HEADING, Path(args.readme))
    print(f"wrote {out} and the section of {args.readme}", flush=True)


def summarize(rows):
    """One row per worker count: the mean throughput, the accuracies per seed and their mean."""
    out = []
    for n in dict.fromkeys(r["workers"] for r in rows):
        mine = [r for r in rows if r["workers"] == n]
        out.append({"workers": n, "minibatch": mine[0]["minibatch"], "epochs": mine[0]["epochs"],
                    "seeds": [r["seed"] for r in mine],
                    "clips_per_second": sum(r["clips_per_second"] for r in mine) / len(mine),
                    "accuracies": [r["spiking_accuracy"] for r in mine],
                    "spiking_accuracy": sum(r["spiking_accuracy"] for r in mine) / len(mine)})
    return out


def _minibatch(run_dir):
    return json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))["train"]["minibatch_size"]


EXPLANATION = """\
`python benchmarks/bench_workers.py`: the train command on `configs/dvs128_gesture.json` at the
reduced size (64x64, T = 8, 32 channels, 10 epochs, 1,350 training clips less the 15%
validation hold-out), one process (`train.distribute: "none"`) against `--workers N`
(`MultiWorkerMirroredStrategy`, ring all-reduce over localhost), the same global minibatch
and seeds. Batch normalisation takes the statistics of the whole global minibatch
(synchronised), so the replicas compute what one process computes, apart from dropout
masks and the order of sums; the accuracies differ by what one training run's noise moves.

On this machine's 2 cores the workers share the cores, so the throughput shows the cost of
the all-reduce and of running two TensorFlow runtimes side by side, not a speed-up.
Extrapolation (not measured): on N GPUs, one worker per GPU, a step's compute divides by N
and each step adds one all-reduce of the parameters (0.16 M float32 values, 0.6 MB at
this size; the full-size net of the seeds, 128 channels at 128x128, about 1.7 M, 7 MB). Over NVLink or a
10-100 Gbit/s network that is well under a millisecond to a few milliseconds per step,
against tens to hundreds of milliseconds of compute per step of the full-size net, so
throughput should grow nearly N-fold up to the point where the per-replica minibatch
(`train.minibatch_size` / N) gets too small to keep a GPU busy."""


if __name__ == "__main__":
    main()
