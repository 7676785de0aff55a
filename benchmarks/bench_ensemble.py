"""EnsembleArray classifier at the seed's size: NengoDL against Nengo's reference simulator.

The seed's UCF101 network: 10,000 ensembles x 50 SpikingRectifiedLinear neurons
(500,000 neurons) on 512-d frame features, 101 classes, 28 frames per clip. Both
simulators get the same network object and the same clips (random features):

* training clips/s: NengoDL ``Simulator.fit`` (rate approximation of the neurons,
  backpropagation through all 28 steps), one epoch over the clips after a warm-up epoch.
  Nengo's reference simulator has no gradient training, so it has no figure here;
* spiking inference clips/s: 28 steps per clip (one step per frame) with spiking neurons.
  NengoDL runs whole minibatches; the reference simulator runs one clip at a time and is
  slow, so it is timed over a few steps and the time per clip extrapolated (said so in
  the table).

Writes its table into ``benchmarks/README.md`` under its own heading.

    python benchmarks/bench_ensemble.py [--ensembles 10000] [--clips 32] [--ref-steps 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

README = Path(__file__).resolve().parent / "README.md"
HEADING = "## EnsembleArray at the seed's size: NengoDL vs Nengo (bench_ensemble.py)"


def build(model_cfg, n_features, n_classes, n_frames, spiking):
    from nengo_actions.networks import build_model

    return build_model("ensemble_array", model_cfg, n_features, n_classes, n_frames, spiking=spiking, raster_neurons=0)


def main(argv=None):
    from readme_section import write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensembles", type=int, default=10000)
    parser.add_argument("--neurons", type=int, default=50)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--frames", type=int, default=28)
    parser.add_argument("--clips", type=int, default=32, help="clips per timed NengoDL pass")
    parser.add_argument("--minibatch", type=int, default=16)
    parser.add_argument("--ref-steps", type=int, default=5, help="reference simulator steps timed")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--readme", type=Path, default=README, help="the README whose section is rewritten")
    args = parser.parse_args(argv)

    from nengo_actions import config as C
    from nengo_actions.compat import tf
    from nengo_actions.engine.simulator import Engine
    from nengo_actions.config.schema import TrainConfig

    import nengo

    cfg = C.override(C.load_config(C.DEFAULT_CONFIG).model,
                     {"ensemble_array.n_ensembles": args.ensembles, "ensemble_array.n_neurons": args.neurons},
                     "bench_ensemble.py")
    rng = np.random.RandomState(0)
    x = rng.randn(args.clips, args.frames, args.features).astype(np.float32)
    y = rng.randint(args.classes, size=args.clips)
    n_neurons = args.ensembles * args.neurons
    rows = []

    t0 = time.perf_counter()
    rate_net = build(cfg, args.features, args.classes, args.frames, spiking=False)
    t_net = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = Engine(rate_net, minibatch_size=args.minibatch)
    t_build_dl = time.perf_counter() - t0
    settings = TrainConfig(epochs=1, tensorboard=False)
    engine.compile(settings, len(x))
    engine.fit_epoch(x, y, 0)  # warm-up: traces the training graph
    t0 = time.perf_counter()
    engine.fit_epoch(x, y, 1)
    t_fit = time.perf_counter() - t0
    params = engine.save_params(Path(tempfile.mkdtemp()) / "params.npz")
    engine.close()
    rows.append((f"training (rate neurons, backprop through {args.frames} steps)", "NengoDL", args.clips / t_fit, "measured, one epoch of %d clips" % args.clips))
    print(f"NengoDL training: {args.clips / t_fit:.2f} clips/s", flush=True)

    spk_net = build(cfg, args.features, args.classes, args.frames, spiking=True)
    # as the spiking evaluation does: trained parameters frozen into the network
    engine = Engine.for_inference(spk_net, params, minibatch_size=args.minibatch)
    engine.predict(x[: args.minibatch])  # warm-up
    t0 = time.perf_counter()
    engine.predict(x)
    t_pred = time.perf_counter() - t0
    engine.close()
    rows.append(("spiking inference", "NengoDL", args.clips / t_pred, "measured, %d clips" % args.clips))
    print(f"NengoDL spiking inference: {args.clips / t_pred:.2f} clips/s", flush=True)

    # Nengo's reference simulator on the same network object and the first clip.
    steps = args.ref_steps
    with spk_net.network:
        spk_net.input.output = nengo.processes.PresentInput(x[0], presentation_time=spk_net.dt)
    t0 = time.perf_counter()
    sim = nengo.Simulator(spk_net.network, dt=spk_net.dt, progress_bar=False)
    t_build_ref = time.perf_counter() - t0
    sim.run_steps(1)  # warm-up
    t0 = time.perf_counter()
    sim.run_steps(steps)
    t_steps = time.perf_counter() - t0
    per_clip = t_steps / steps * args.frames
    sim.close()
    rows.append(("spiking inference", "Nengo reference", 1.0 / per_clip,
                 f"extrapolated: {steps} steps timed ({1000 * t_steps / steps:.0f} ms/step) x {args.frames} steps"))
    print(f"Nengo reference spiking inference: {1 / per_clip:.3f} clips/s (extrapolated)", flush=True)
    ratio = (args.clips / t_pred) * per_clip

    load = os.getloadavg()[0]
    lines = [
        HEADING,
        "",
        f"One run on {datetime.date.today():%Y-%m-%d}: {platform.machine()}, {os.cpu_count()} CPU cores shared "
        f"with other jobs (load average {load:.1f} at the end), TensorFlow {tf.__version__} on the "
        f"{'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}, nengo {nengo.__version__}. "
        f"Network: {args.ensembles:,} ensembles x {args.neurons} SpikingRectifiedLinear neurons "
        f"({n_neurons:,} neurons) on {args.features}-d features, {args.classes} classes, "
        f"{args.frames} steps per clip (one per frame); NengoDL minibatch {args.minibatch}; random "
        f"features. Command: `python benchmarks/bench_ensemble.py`.",
        "",
        "| task | simulator | clips/s | how |",
        "|---|---|---:|---|",
    ]
    lines += [f"| {task} | {sim_name} | {rate:,.3g} | {how} |" for task, sim_name, rate, how in rows]
    lines += [
        "| training | Nengo reference | n/a | no gradient training in the reference simulator |",
        "",
        f"NengoDL infers {ratio:,.1f}x as many clips per second as the reference simulator. Build "
        f"times: network {t_net:.1f} s, NengoDL simulator {t_build_dl:.1f} s, reference simulator "
        f"{t_build_ref:.1f} s.",
        "",
        "The 10,000 ensembles are one `nengo.Ensemble` of 500,000 neurons with block-sparse "
        "encoders and decoders (`EnsembleArrayClassifier`), which computes what "
        "`nengo.networks.EnsembleArray` computes; built as 10,000 separate ensembles, Nengo's "
        "builder alone takes about 10 ms per ensemble here (about 100 s), before either "
        "simulator starts.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text, HEADING, args.readme)


if __name__ == "__main__":
    main()
