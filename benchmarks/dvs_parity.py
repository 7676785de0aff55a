"""Accuracy parity with SpikingJelly at its tuned recipe, on the embedded DVS digits.

    python benchmarks/dvs_parity.py                       # writes results/dvs_parity/

Both sides train the same network on the same frames (the embedded DVS digits at the
reduced size of ``configs/dvs128_gesture.json``: 64x64, T = 8 by event count, 32
channels, depth 5, batch 16, 10 epochs) with SpikingJelly's tuned recipe: LIF tau 2,
ATan surrogate, detach_reset, average pooling, BN on the conv and dense layers, dropout
0.5, Adam 3e-3 with a cosine schedule, MSE on the output rates, voting over 10, raw event
counts, trained on every training clip and judged at the last epoch (no hold-out). The
figure is the test clip accuracy, mean and sample std over seeds; ours is the Nengo
network run spiking in NengoDL at 1 step per frame.

Recipes on our side:

* ``sj_exact``: ``sj_recipe`` with SpikingJelly's schedule and batching too: the cosine
  stepped once per epoch (``train.schedule: "cosine_epoch"``, PyTorch's
  ``CosineAnnealingLR``) and the epoch's short last minibatch trained as it is
  (``train.last_batch: "short"``, ``drop_last=False``), and PyTorch's unbiased BN
  moving variance (``model.dvs_conv.batch_norm_variance: "unbiased"``). From the same weights and
  minibatches it takes SpikingJelly's steps (``benchmarks/parity_step.py``);
* ``sj_exact_keras_adam``: the same with Keras' Adam update (epsilon before the bias
  correction, ``train.adam_epsilon_form: "keras"``);
* ``sj_recipe``: that recipe with PyTorch's initialisation (``model.dvs_conv.init:
  "torch"``) and Adam (``train.adam_epsilon: 1e-8``, ``train.adam_epsilon_form:
  "torch"``), as SpikingJelly starts;
* ``sj_recipe_keras_init``: the same with Keras' HeUniform and epsilon 1e-7 (the defaults);
* ``default``: ``configs/dvs128_gesture.json`` as shipped (PLIF, max pooling, Adam 1e-2,
  a 15% validation hold-out that picks the epoch).

Shared draws (``--shared-draws SEEDS``): SpikingJelly records its initial weights, clip
orders and dropout masks and ours replays them (``shared_draws.py``), so that only the
two frameworks' arithmetic differs; ``--shared-draws-float64 SEEDS`` runs those pairs
with both sides in double precision, where rounding flips a spike much later; the drift of the kernels by epoch
shows how long the two runs stay together.

The peer side is ``benchmarks/peer_nir.py train --framework spikingjelly`` in the peer
kit's venv (``bash ../shared/peers/setup_peers.sh``); without it (or with
``--no-peers``) it is skipped and said so. Finished runs are kept in ``--work`` and
reused, so a cut-off run continues; ``--fresh`` starts again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import numpy as np

import nir_exchange  # the sibling benchmark: its run helpers and the reduced size
from readme_section import write_section

REPO = Path(__file__).resolve().parent.parent

#: SpikingJelly's tuned recipe in this project's keys (the reduced size comes from
#: nir_exchange.RUN_SETTINGS).
SJ_RECIPE = [
    "model.dvs_gesture_net.pool=\"avg\"", "model.dvs_conv.plif=false", "model.dvs_conv.lif_tau=2",
    "model.dvs_gesture_net.batch_norm=true", "model.dvs_gesture_net.dense_batch_norm=true",
    "model.dvs_gesture_net.dropout=0.5", "model.dvs_gesture_net.votes=10", "train.loss=\"mse\"",
    "train.learning_rate=0.003", "train.schedule=\"cosine\"", "train.minibatch_size=16", "train.standardize=false",
    "data.val_fraction=0",
]
TORCH_START = ["model.dvs_conv.init=\"torch\"", "train.adam_epsilon=1e-8", "train.adam_epsilon_form=\"torch\""]
SJ_SCHEDULE = ["train.schedule=\"cosine_epoch\"", "train.last_batch=\"short\""]
#: PyTorch's BN moving variance (unbiased on every layer)
SJ_BN = ["model.dvs_conv.batch_norm_variance=\"unbiased\""]
RECIPES = {
    "sj_exact": SJ_RECIPE + TORCH_START + SJ_SCHEDULE + SJ_BN,
    "sj_exact_keras_adam": SJ_RECIPE + TORCH_START + SJ_SCHEDULE + SJ_BN + ["train.adam_epsilon_form=\"keras\""],
    "sj_recipe": SJ_RECIPE + TORCH_START,
    "sj_recipe_keras_init": SJ_RECIPE,
    "default": [],
}
HEADING = "## Accuracy parity with SpikingJelly's tuned recipe (dvs_parity.py)"


def _log(msg):
    print(msg, flush=True)


def ours(root, recipe, seed, name=None, extra=()):
    run_dir = nir_exchange.train_run("dvs128_gesture.json", root, name or f"parity_{recipe}_s{seed}", f"seed={seed}",
                                     *RECIPES[recipe], *extra)
    m = nir_exchange.metrics(run_dir)
    return {"accuracy": m["spiking_test_clip_accuracy"], "rate_accuracy": m["test_clip_accuracy"],
            "train_seconds": m["train_seconds"], "run_dir": os.path.relpath(run_dir, REPO)}


def spikingjelly(python, frames, folder, seed, epochs, channels, draws=False, float64=False):
    """SpikingJelly's run of ``seed``; with ``draws``, also its random draws in
    ``folder/draws.npz`` (``peer_nir.py --draws``); with ``float64`` in double precision."""
    done = (folder / "peer.json").exists() and (not draws or (folder / "draws.npz").exists())
    if not done:
        subprocess.run([str(python), str(REPO / "benchmarks" / "peer_nir.py"), "train", "--framework", "spikingjelly",
                        "--data", str(frames), "--out", str(folder), "--seed", str(seed), "--epochs", str(epochs),
                        "--channels", str(channels), "--lr", "3e-3", "--batch-size", "16", "--no-export",
                        *(["--draws", str(folder / "draws.npz")] if draws else []),
                        *(["--float64"] if float64 else [])], check=True)
    own = json.loads((folder / "peer.json").read_text())
    return {"accuracy": own["test_accuracy"], "train_seconds": own["train_s"]}


def shared_draws_pair(python, frames, folder, root, seed, epochs, channels, float64=False):
    """SpikingJelly's run of ``seed`` and ours replaying its draws (initial weights, clip
    orders, dropout masks; ``shared_draws.py``) at the ``sj_exact`` recipe; with
    ``float64`` both train in double precision."""
    from shared_draws import replayed

    peer = spikingjelly(python, frames, folder, seed, epochs, channels, draws=True, float64=float64)
    with replayed(folder / "draws.npz", float64=float64) as replay:
        mine = ours(root, "sj_exact", seed, name=f"parity_shared_draws{'64' if float64 else ''}_s{seed}")
        drift = replay.drift()
        # draws recorded before the snapshots were: no first-step or per-epoch check
        first = replay.drift("step1") if replay.recorded("step1") else None
        by_epoch = [max(replay.drift(f"epoch{e}").values()) for e in range(1, epochs + 1) if replay.recorded(f"epoch{e}")]
    theirs = np.asarray(json.loads((folder / "peer.json").read_text())["test_predictions"])
    same = nir_exchange.predictions(REPO / mine["run_dir"], "dvs_gesture_net") == theirs
    return {**mine, "peer_accuracy": peer["accuracy"], "peer_train_seconds": peer["train_seconds"],
            "same_answers": float(same.mean()), "weight_drift": drift, "first_step_drift": first,
            "drift_by_epoch": by_epoch}


def summary(values):
    a = np.asarray(values, float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/dvs_digits", help="the generated set (made when missing)")
    parser.add_argument("--out", default="results/dvs_parity")
    parser.add_argument("--work", default="data/dvs_parity", help="frames, peer runs and state")
    parser.add_argument("--readme", type=Path, default=None, help="the benchmarks README to write the table into")
    parser.add_argument("--peers-python", type=Path, default=Path("/tmp/peers-venv/bin/python"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--shared-draws", type=int, nargs="*", default=[], metavar="SEED",
                        help="also these seeds of SpikingJelly with ours replaying their draws, paired")
    parser.add_argument("--shared-draws-float64", type=int, nargs="*", default=[], metavar="SEED",
                        help="the same pairs with both sides training in double precision")
    parser.add_argument("--epochs", type=int, default=10, help="peer training epochs (ours: train.epochs)")
    parser.add_argument("--fresh", action="store_true", help="recompute what is already there")
    parser.add_argument("--no-peers", action="store_true", help="leave SpikingJelly out")
    parser.add_argument("--digits", type=int, help="generate a small set of this many digits in --root")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override added to every run of ours (repeatable)")
    args = parser.parse_args(argv)
    nir_exchange.OVERRIDES[:] = args.overrides
    from nengo_actions.io import write_json_atomic, write_text_atomic

    root, out, work, skip, step = nir_exchange.workspace(args, "SpikingJelly")
    frames = work / "frames.npz"
    if not frames.exists():  # every training clip (no hold-out), raw counts: what SpikingJelly trains on
        nir_exchange.export_frames(root, frames, nir_exchange.load_cfg("dvs128_gesture.json", root, *SJ_RECIPE))
    channels = nir_exchange.load_cfg("dvs128_gesture.json", root).model.dvs_gesture_net.channels
    runs = {}
    if not skip:
        runs["spikingjelly"] = [step(f"spikingjelly_s{s}", lambda s=s: spikingjelly(
            args.peers_python, frames, work / "peers" / f"spikingjelly_s{s}", s, args.epochs, channels)) for s in args.seeds]
    for recipe in args.recipes:
        runs[recipe] = [step(f"{recipe}_s{s}", lambda s=s, r=recipe: ours(root, r, s)) for s in args.seeds]
    if args.shared_draws and not skip:
        runs["shared_draws"] = [step(f"shared_draws_s{s}", lambda s=s: shared_draws_pair(
            args.peers_python, frames, work / "peers" / f"spikingjelly_draws_s{s}", root, s, args.epochs, channels))
            for s in args.shared_draws]
    if args.shared_draws_float64 and not skip:
        runs["shared_draws_float64"] = [step(f"shared_draws_float64_s{s}", lambda s=s: shared_draws_pair(
            args.peers_python, frames, work / "peers" / f"spikingjelly_draws64_s{s}", root, s, args.epochs, channels,
            float64=True)) for s in args.shared_draws_float64]
    results = {"seeds": args.seeds, "seeds_shared": args.shared_draws, "seeds_shared_float64": args.shared_draws_float64, "test_clips": int(len(np.load(frames, allow_pickle=False)["y_test"])),
               "recipes": {name: {"summary": summary([r["accuracy"] for r in rs]), "runs": rs} for name, rs in runs.items()}}
    if skip:
        results["peers_skipped"] = skip
    write_json_atomic(out / "results.json", results)
    text = report(results)
    write_text_atomic(out / "README.md", text)
    plot(results, out / "accuracy.png")
    section = HEADING + "\n" + text.split("\n", 1)[1]  # the report under the README's own heading level
    write_section(section, HEADING, **({"readme": args.readme} if args.readme else {}))
    _log(text)
    return results


NAMES = {
    "spikingjelly": "SpikingJelly 2.0, tuned recipe (`peer_nir.py`)",
    "sj_exact": "nengo_actions, the same recipe, PyTorch's start, Adam and BN variance, per-epoch cosine, short last batch",
    "sj_exact_keras_adam": "the same with Keras' Adam update (epsilon before the bias correction)",
    "sj_recipe": "nengo_actions, the same recipe, PyTorch's initialisation and Adam epsilon",
    "sj_recipe_keras_init": "nengo_actions, the same recipe, Keras' HeUniform and epsilon 1e-7",
    "default": "nengo_actions, `configs/dvs128_gesture.json` as shipped (its own recipe: `results/sweep_dvs_recipe`)",
    "shared_draws": "nengo_actions at `sj_exact`, replaying SpikingJelly's draws of the same seed (`shared_draws.py`)",
    "shared_draws_float64": "the same pairs, both sides trained in float64 (SpikingJelly's own accuracy in the text)",
}


def report(r):
    seeds = ", ".join(map(str, r["seeds"]))
    lines = [
        "# Accuracy parity with SpikingJelly's tuned recipe (dvs_parity.py)",
        "",
        f"Embedded DVS digits, reduced size (64x64, T = 8, 32 channels, depth 5, batch 16, 10 epochs), "
        f"{r['test_clips']} test clips, seeds {seeds}. Test clip accuracy, mean +- sample std over seeds; ours is "
        "the Nengo network run spiking in NengoDL at 1 step per frame, SpikingJelly's its own net. Both train on "
        "every training clip and are judged at the last epoch. "
        "Command: `python benchmarks/dvs_parity.py`.",
        "",
        "| recipe | accuracy | per seed | vs SpikingJelly |",
        "|---|---:|---|---:|",
    ]
    ref = r["recipes"].get("spikingjelly", {}).get("summary", {}).get("mean")
    for name, rs in r["recipes"].items():
        s = rs["summary"]
        diff = "" if ref is None or name == "spikingjelly" else f"{100 * (s['mean'] - ref):+.2f} points"
        if name.startswith("shared_draws"):
            diff = f"{100 * np.mean([x['accuracy'] - x['peer_accuracy'] for x in rs['runs']]):+.2f} points, paired"
        per = ", ".join(f"{100 * x['accuracy']:.2f}" for x in rs["runs"])
        lines.append(f"| {NAMES[name]} | {100 * s['mean']:.2f}% +- {100 * s['std']:.2f} | {per} | {diff} |")
    if "peers_skipped" in r:
        lines += ["", f"SpikingJelly was skipped: {r['peers_skipped']}."]
    lines += [
        "",
        "Aligned between the two sides: the frames (one file), PyTorch's initialisation and Adam update "
        "(epsilon 1e-8 added after the bias correction; `sj_recipe`), BN momentum 0.1 and epsilon 1e-5 on the conv and dense layers, convolutions and dense "
        "layers without a bias before BN, one dropout mask for all T steps of a sample, LIF tau 2 with a hard "
        "reset to 0 and the reset detached, the ATan surrogate, MSE between the output rate averaged over T and "
        "the one-hot label, voting over 10, the last epoch; in `sj_exact` also the cosine stepped once per epoch "
        "(`train.schedule: \"cosine_epoch\"`, PyTorch's `CosineAnnealingLR`) and the short last minibatch of an "
        "epoch trained as it is (`train.last_batch: \"short\"`), and PyTorch's unbiased BN moving variance "
        "(`model.dvs_conv.batch_norm_variance: \"unbiased\"`, which changes the folded BN of the trained network, "
        "not the training). The other recipes decay the cosine every step "
        "(Keras' `CosineDecay`) and fill the last minibatch up with the first clips of the epoch's order.",
        "",
        "Step for step: `benchmarks/parity_step.py` loads SpikingJelly's initial weights into our model and "
        "feeds both the same minibatches with dropout off. In float64 the output spikes are equal, every "
        "gradient agrees to 1e-11 relative, and with the trainer's own optimizer every parameter and BN "
        "statistic agrees to 1e-12 after 3 steps. Two differences were found that way and are aligned: the "
        "torch Adam form had Keras' float32 betas (2e-8 of a weight per step; now float64 numbers, which "
        "leaves float32 models as they were), and Keras' BN moving variance is biased outside its fused kernel "
        "(the dense layers: 0.8% less than PyTorch's running_var over 128 samples; "
        "`model.dvs_conv.batch_norm_variance: \"unbiased\"`, part of `sj_exact`). "
        "Keras' own Adam adds epsilon before the bias correction (epsilon / sqrt(1 - 0.999^t), 32x larger at "
        "the first step), so weights with gradients below about 1e-6 move up to 0.7 of a step less early on "
        "(`sj_exact_keras_adam`). Without shared draws, what remains between SpikingJelly and `sj_exact` is "
        "the seeds' draws (initial weights, dropout masks, clip order).",
    ]
    spread = [_difference(r, a, b) for a, b in (("sj_exact", "spikingjelly"), ("sj_exact_keras_adam", "sj_exact"))]
    lines += [line for line in spread if line]
    if "shared_draws" in r["recipes"]:
        lines += ["", _paired(r["recipes"]["shared_draws"]["runs"], r["seeds_shared"])]
        first = dict(zip(r["seeds"], r["recipes"].get("spikingjelly", {}).get("runs", [])))
        again = [f"seed {s}: {100 * first[s]['accuracy']:.2f}, then {100 * x['peer_accuracy']:.2f}"
                 for s, x in zip(r["seeds_shared"], r["recipes"]["shared_draws"]["runs"]) if s in first]
        if again:
            lines += ["", "SpikingJelly itself, the same seed run twice on frames of the same generator (its table row, "
                      "kept from an earlier run, then the shared-draws run, which only records what it draws): "
                      f"{'; '.join(again)}."]
    if "shared_draws_float64" in r["recipes"]:
        runs = r["recipes"]["shared_draws_float64"]["runs"]
        # before the runs part: the epochs whose kernels still agree to far below a step
        together = [d for x in runs for d in x.get("drift_by_epoch") or () if d < 1e-3]
        agree = f"to {min(together):.0e} to {max(together):.0e}" if together else "closely"
        lines += ["", "In float64 on both sides (`--shared-draws-float64`). "
                  + _paired(runs, r["seeds_shared_float64"], intro=False)
                  + " The replay is exact until a spike flips: while the two sides' rounding differences stay far below "
                  f"every neuron's distance from its threshold, the kernels agree {agree}. Once one threshold "
                  "crossing comes out the other way, that neuron's surrogate gradient changes, and Adam, which divides "
                  "each step by the gradient's running scale, turns the changed gradients of weights with small "
                  "gradients into whole steps; within an epoch the runs share nothing but their start. The chance of a "
                  "flip grows with the difference and with the neuron-steps of an epoch (1,350 clips x 8 steps x about "
                  "175,000 neurons here), so float64 only delays it. Whole runs of this recipe are therefore chaotic in "
                  "their rounding, and only the seeds' spread compares two trainers' accuracies."]
    return "\n".join(lines) + "\n"


def _paired(runs, seeds, intro=True):
    """The shared-draws pairs: per seed, SpikingJelly and ours from the same draws, and the
    mean paired difference with its standard error."""
    diffs = np.array([x["accuracy"] - x["peer_accuracy"] for x in runs])
    se = 100 * float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
    pairs = "; ".join(f"seed {s}: {100 * x['peer_accuracy']:.2f} and {100 * x['accuracy']:.2f} "
                      f"(the same answer on {100 * x['same_answers']:.1f}% of the test clips; trained kernels apart by "
                      f"up to {max(x['weight_drift'].values()):.1e} of their largest weight)" for s, x in zip(seeds, runs))
    spread = f" over {len(diffs)} seeds, paired standard error {se:.2f}" if len(diffs) > 1 else " (one seed)"
    figures = f"Per seed, SpikingJelly and ours: {pairs}. Ours minus SpikingJelly: {100 * diffs.mean():+.2f} points{spread}."
    grown = [(s, x["first_step_drift"], x["drift_by_epoch"]) for s, x in zip(seeds, runs) if x.get("drift_by_epoch")]
    if grown:
        figures += " How far apart the kernels are (largest over layers, relative): " + "; ".join(
            f"seed {s}: {max(first.values()):.0e} after the first step, then after each epoch "
            + ", ".join(f"{d:.0e}" for d in by_epoch) for s, first, by_epoch in grown) + "."
    if not intro:
        return figures
    return (
        "Shared draws (SpikingJelly's, then ours replaying them): both sides start from SpikingJelly's initial "
        "parameters, take its clip order and minibatches and drop the units its dropout masks drop; the "
        f"frameworks' arithmetic is all that differs. {figures} "
        "The drift says how far apart the two trained networks end: near 0 they stayed together; near 1 the "
        "rounding of two frameworks (summation orders, fused operations) has grown through the spikes' thresholds "
        "until the runs share nothing but their start, and the pairs are then as independent as two seeds."
    )


def _difference(r, a, b):
    """A sentence on the difference of two rows' means and its standard error (from the
    seeds' spread), or ``""`` when either row is missing."""
    if a not in r["recipes"] or b not in r["recipes"]:
        return ""
    sa, sb = r["recipes"][a]["summary"], r["recipes"][b]["summary"]
    se = 100 * float(np.sqrt(sa["std"] ** 2 / sa["n"] + sb["std"] ** 2 / sb["n"]))
    return (f"\n`{a}` minus `{b}`: {100 * (sa['mean'] - sb['mean']):+.2f} points over {sa['n']} and {sb['n']} seeds, "
            f"with a standard error of {se:.2f} points from the seeds' spread.")


def plot(r, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nengo_actions.io import save_figure_atomic

    names = list(r["recipes"])
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, name in enumerate(names):
        acc = [100 * x["accuracy"] for x in r["recipes"][name]["runs"]]
        ax.bar(i, np.mean(acc), 0.6, color="tab:orange" if name == "spikingjelly" else "tab:blue", alpha=0.6)
        ax.plot([i] * len(acc), acc, "ko", ms=4)
    ax.set_xticks(range(len(names)), names, rotation=15, ha="right")
    ax.set_ylabel("test clip accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("DVS digits, reduced size: seeds as dots")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure_atomic(fig, path)
    plt.close(fig)


if __name__ == "__main__":
    main()
