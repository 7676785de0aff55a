"""What each change to the spiking LMU does: one training run per variant, one table.

Variants, each adding one change to the one before (all other settings from the config):

1. ``seed``: the seed's design: the memory is an ensemble of spiking neurons with Nengo's
   default random tuning and solved decoders, fed back through a one-step delay; no
   firing-rate regularisation;
2. ``onoff``: memory neurons in +/- pairs with intercept 0, so rates are exactly linear
   in the memory state and training through rates trains the exact LMU;
3. ``synaptic state``: the memory state held in a low-pass synapse on the recurrence
   (Nengo's principle 3), so spike quantisation does not accumulate in the state;
4. ``rate regularisation``: a loss term pulling each layer's mean rate to the target.

Each variant is trained with rate neurons (validation selection), then evaluated with
spiking neurons at every number of steps per frame of the config.

    python benchmarks/spiking_lmu_ablation.py [-c configs/config.json] [--set KEY=VALUE]

Writes ``results/spiking_lmu_ablation.md`` and its table into ``benchmarks/README.md``
(``--out`` and ``--readme`` send them elsewhere; ``--set`` also makes the runs small).
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

README = ROOT / "benchmarks" / "README.md"
HEADING = "## Spiking LMU: what each change does (spiking_lmu_ablation.py)"

VARIANTS = (
    ("seed (Nengo tuning, delay feedback)", [
        'model.lmu_spiking.memory_encoding="nengo"', "model.lmu_spiking.memory_tau=0",
        "model.lmu_spiking.rate_regularization=0"]),
    ("+ on/off linear memory neurons", [
        'model.lmu_spiking.memory_encoding="onoff"', "model.lmu_spiking.memory_tau=0",
        "model.lmu_spiking.rate_regularization=0"]),
    ("+ memory state in a low-pass synapse", [
        'model.lmu_spiking.memory_encoding="onoff"', "model.lmu_spiking.memory_tau=1",
        "model.lmu_spiking.rate_regularization=0"]),
    ("+ firing-rate regularisation", [
        'model.lmu_spiking.memory_encoding="onoff"', "model.lmu_spiking.memory_tau=1",
        "model.lmu_spiking.rate_regularization=0.01"]),
)


def main(argv=None):
    from nengo_actions import config as C
    from nengo_actions.io import write_text_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    C.add_config_arguments(parser)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "spiking_lmu_ablation.md", help="the report")
    parser.add_argument("--readme", type=Path, default=README, help="the README whose section is rewritten")
    args = parser.parse_args(argv)

    from readme_section import write_section

    from nengo_actions.experiment import run_model
    from nengo_actions.clips.feature_data import ensure_features, load_clip_data

    base = C.load_config(args.config, args.overrides)
    ensure_features(base, args.overrides)
    rows, ks = [], None
    for name, changes in VARIANTS:
        cfg = C.load_config(args.config, list(args.overrides) + ['model.type="lmu_spiking"', "model.compare=[]"] + changes)
        data = load_clip_data(cfg)
        if cfg.train.standardize:
            data = data.standardized()
        start = time.perf_counter()
        result = run_model("lmu_spiking", cfg, data, tempfile.mkdtemp(prefix="ablation-"), log=lambda s: None)
        seconds = time.perf_counter() - start
        runs = {r.steps_per_frame: r for r in result.spiking_runs}
        ks = sorted(runs)
        top = runs[ks[-1]]
        rows.append((name, result.metrics["test_clip_accuracy"], [runs[k].metrics["clip_accuracy"] for k in ks],
                     top.layer_rates_hz, top.energy.get("loihi"), seconds))
        print(f"{name}: rate {rows[-1][1]:.3f}, spiking {[round(a, 3) for a in rows[-1][2]]}", flush=True)

    load = os.getloadavg()[0]
    lines = [
        HEADING,
        "",
        f"One run on {datetime.date.today():%Y-%m-%d} with `{Path(args.config).name}`"
        + (f" and {' '.join('--set ' + o for o in args.overrides)}" if args.overrides else "")
        + f" ({len(data.y_test)} test clips, so one clip is {100 / len(data.y_test):.1f} points), 2 CPU cores "
        f"shared with other jobs (load average {load:.1f}). Per-clip test accuracy with rate neurons and "
        "with spiking neurons at each number of 1 ms steps per frame; rates and Loihi energy at "
        f"{ks[-1]} steps per frame. Command: `python benchmarks/spiking_lmu_ablation.py`.",
        "",
        "| variant | rate | " + " | ".join(f"spiking, {k} steps/frame" for k in ks)
        + " | memory rate (Hz) | hidden rate (Hz) | Loihi J/clip | seconds |",
        "|---|---:|" + "---:|" * len(ks) + "---:|---:|---:|---:|",
    ]
    for name, rate, spiking, rates, loihi, seconds in rows:
        lines.append(
            f"| {name} | {100 * rate:.1f}% | " + " | ".join(f"{100 * a:.1f}%" for a in spiking)
            + f" | {rates.get('memory', float('nan')):.0f} | {rates.get('hidden', float('nan')):.0f} | "
            f"{loihi:.3g} | {seconds:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_text_atomic(args.out, "# " + text.lstrip("# "))
        write_section(text, HEADING, args.readme)


if __name__ == "__main__":
    main()
