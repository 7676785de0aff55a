"""Simulation speed of AdaptiveLIF, AdaptiveLIFRate and Izhikevich in NengoDL.

Runs the same network with the native TensorFlow builders of `nengo_actions.neurons.tf_builders`
and with NengoDL's own Python fallback (the builders unregistered), one timed run each,
and reports simulated steps per second and their ratio. The results table replaces the
"Neuron models" section of ``benchmarks/README.md``.

    python benchmarks/bench_neurons.py [--neurons 1000 10000] [--minibatch 1 32]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import nengo
import numpy as np
from tqdm import tqdm


from nengo_actions.neurons import tf_builders as neurons  # noqa: E402
from nengo_actions.compat import nengo_dl, tf  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
HEADING = "## Neuron models (bench_neurons.py)"
NEURON_TYPES = {
    "AdaptiveLIF": nengo.AdaptiveLIF,
    "AdaptiveLIFRate": nengo.AdaptiveLIFRate,
    "Izhikevich": nengo.Izhikevich,
}
INPUT_DIMS = 16
NOTES = (
    "The fallback calls each neuron type's numpy step once per ensemble and per "
    "minibatch item on every step, so the gain is largest for many small ensembles "
    "(the EnsembleArray layout) and large minibatches. For one big ensemble on the "
    "CPU, numpy's vectorised step is already efficient and both runs share the same "
    "per-step cost of the rest of the network, which bounds the ratio. The fallback "
    "also has no gradients: `Simulator.fit` through these neuron types works only "
    "with the native builders."
)


def benchmark_network(neuron_type, n_neurons, ensemble_size=None, seed=0):
    """Input node -> neurons (random weights) -> filtered readout node, probed.

    With ``ensemble_size`` the neurons are split into ensembles of that size, the
    layout of the project's EnsembleArray classifier (NengoDL merges their neuron
    operators into one group, which its Python fallback then steps one ensemble and
    one minibatch item at a time). Connections go straight to and from the neurons and
    gains and biases are given, so no decoders or tuning curves are solved and the
    network builds quickly at 10,000 neurons.
    """
    rng = np.random.RandomState(seed)
    size = ensemble_size or n_neurons
    if n_neurons % size:
        raise ValueError(f"{n_neurons} neurons do not split into ensembles of {size}")
    gain, bias = neuron_type.gain_bias(
        rng.uniform(200, 400, size), rng.uniform(-1, 0.9, size)
    )
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(rng.uniform(-1, 1, INPUT_DIMS))
        out = nengo.Node(size_in=INPUT_DIMS)
        for _ in range(n_neurons // size):
            ens = nengo.Ensemble(size, 1, neuron_type=neuron_type, gain=gain, bias=bias)
            nengo.Connection(
                inp,
                ens.neurons,
                transform=rng.normal(0, 1 / np.sqrt(INPUT_DIMS), (size, INPUT_DIMS)),
                synapse=None,
            )
            nengo.Connection(
                ens.neurons,
                out,
                transform=rng.normal(0, 1 / n_neurons, (INPUT_DIMS, size)),
                synapse=0.01,
            )
        net.probe = nengo.Probe(out)
    return net


def steps_per_second(net, minibatch_size, n_steps, native):
    """Simulated steps per second of one timed run, after a warm-up run."""
    if native:
        neurons.register()
    else:
        neurons.unregister()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*native TensorFlow.*")
            with nengo_dl.Simulator(
                net, minibatch_size=minibatch_size, progress_bar=False
            ) as sim:
                sim.run_steps(10)  # traces and compiles the graph
                start = time.perf_counter()
                sim.run_steps(n_steps)
                elapsed = time.perf_counter() - start
                assert sim.data[net.probe].shape == (
                    minibatch_size,
                    n_steps + 10,
                    INPUT_DIMS,
                )
    finally:
        neurons.register()
    return n_steps / elapsed


def run(neuron_counts, minibatch_sizes, types, ensemble_size, steps):
    rows = []
    cases = [
        (name, layout, n, batch)
        for name in types
        for layout in (None, ensemble_size)
        for n in neuron_counts
        for batch in minibatch_sizes
    ]
    for name, layout, n_neurons, batch in tqdm(cases, desc="bench_neurons", unit="case"):
        net = benchmark_network(NEURON_TYPES[name](), n_neurons, layout)
        native = steps_per_second(net, batch, steps[0], native=True)
        fallback = steps_per_second(net, batch, steps[1], native=False)
        size = layout or n_neurons
        rows.append(
            (name, f"{n_neurons // size:,} x {size:,}", batch, native, fallback)
        )
    return rows


def markdown_table(rows, native_steps, fallback_steps):
    lines = [
        HEADING,
        "",
        "Simulated steps per second (dt = 1 ms) of each neuron type, as one ensemble "
        "or as an array of small ensembles (the layout of the EnsembleArray "
        f"classifier), {INPUT_DIMS}-d input straight to the neurons and a "
        f"{INPUT_DIMS}-d filtered readout, "
        "with the native TensorFlow builders (`nengo_actions.neurons.tf_builders`) and with "
        "NengoDL 3.6's Python fallback, one timed run each after a warm-up "
        f"({native_steps} native / {fallback_steps} fallback steps). "
        f"Machine: {os.cpu_count()} CPU cores, shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f} at the end of the run), "
        f"TensorFlow {tf.__version__} on "
        f"{'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}. "
        "Command: `python benchmarks/bench_neurons.py`.",
        "",
        "| neuron type | ensembles x neurons | minibatch | native steps/s "
        "| fallback steps/s | speed-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, layout, batch, native, fallback in rows:
        lines.append(
            f"| {name} | {layout} | {batch} | {native:,.0f} | {fallback:,.0f} "
            f"| {native / fallback:.1f}x |"
        )
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


def main(argv=None):
    from readme_section import write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--minibatch", type=int, nargs="+", default=[1, 32])
    parser.add_argument(
        "--types", nargs="+", default=list(NEURON_TYPES), choices=list(NEURON_TYPES)
    )
    parser.add_argument(
        "--ensemble-size",
        type=int,
        default=50,
        help="neurons per ensemble in the ensemble-array layout",
    )
    parser.add_argument("--native-steps", type=int, default=1000)
    parser.add_argument("--fallback-steps", type=int, default=100)
    parser.add_argument(
        "--no-readme", action="store_true", help="print the table only"
    )
    parser.add_argument(
        "--readme", type=Path, default=README, help="the README whose section is rewritten"
    )
    args = parser.parse_args(argv)

    rows = run(
        args.neurons,
        args.minibatch,
        args.types,
        args.ensemble_size,
        (args.native_steps, args.fallback_steps),
    )
    section = markdown_table(rows, args.native_steps, args.fallback_steps)
    print(section)
    if not args.no_readme:
        write_section(section, HEADING, args.readme)
        print(f"wrote {args.readme}")


if __name__ == "__main__":
    main()
