"""Where the time goes: TensorFlow's profiler on the DVS gesture net's two slow jobs.

(a) **train**: the direct trainer's training step (``DirectEngine.fit_epoch``: forward
over T frames, MSE on the output rate, BPTT with the ATan surrogate, Adam), set up as
``bench_dvs.py`` sets it up; (b) **infer**: the spiking inference of the Nengo network of
the trained parameters (``Engine.for_inference`` and ``Engine.predict``, one simulation
step per frame), as ``evaluate_spiking`` runs it.

Method: ``tf.profiler.experimental.start``/``stop`` around a few calls after a warm-up
writes an XSpace trace (``*.xplane.pb``); it is read with the protobuf classes that ship
with TensorFlow (``tensorflow.tsl.profiler.protobuf.xplane_pb2``; no
``tensorboard_plugin_profile`` needed). Every TensorFlow kernel appears on the host
plane as an event ``op_name:OpType``; control-flow containers (``While``,
``PartitionedCall``...) are left out so that nothing is counted twice. Each kernel is put
in a kind by its name scope (the Keras layer, ``gradient_tape/`` for the backward pass,
the optimizer; NengoDL's builder scopes and the signals' gathers and scatters in the
inference loop) and by its op type. A kind's share is its share of the summed kernel time
times the fraction of the wall time in which some kernel ran; the rest of the wall time
is "outside TF kernels" (Python, Keras' and NengoDL's per-call work, dispatch, idle
threads). Milliseconds per minibatch come from separate, unprofiled timed calls (median).
With 2 threads the kernels can overlap, so kinds are shares of kernel time, not of
a critical path.

Sizes: **reduced** channels 32, 2x64x64, T=8, batch 16; ``--full`` adds the seeds' full
size, channels 128, 2x128x128, T=16, batch 16 (one minibatch per call). ``--xla`` also
times the training step compiled with ``jit_compile=True`` (an A/B, same weights).
Run::

    .venv/bin/python benchmarks/profile_dvs.py [--full] [--xla] [--out results/dvs_profile]

Writes ``<out>/README.md``, ``<out>/profile.json`` and the section of
``benchmarks/README.md`` (``--readme PATH`` elsewhere, ``--no-readme`` not at all).
Tiny (the smoke test)::

    .venv/bin/python benchmarks/profile_dvs.py --channels 4 --hw 32 --frames 2 --batch 2 --no-readme --out /tmp/p
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import bench_dvs  # the sibling benchmark: the network, its clips and the sizes it times

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "README.md"
HEADING = "## Where the time goes (profile_dvs.py)"
#: Control-flow and call ops whose events contain other kernels' events.
CONTAINERS = {
    "While", "StatelessWhile", "If", "StatelessIf", "PartitionedCall", "StatefulPartitionedCall",
    "__inference", "Enter", "Exit",
}
INSTANTIATE = "function instantiation (TF runtime, before any kernel)"
OP_EVENT = re.compile(r"^([^:\s]+):([A-Za-z0-9_]+)$")


# -- profiling -----------------------------------------------------------------------------


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def trace(fn, calls, logdir):
    """Run ``fn`` ``calls`` times under the profiler; returns (wall seconds, kernel events)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(str(logdir))
    t0 = time.perf_counter()
    try:
        for _ in range(calls):
            fn()
    finally:
        wall = time.perf_counter() - t0
        tf.profiler.experimental.stop()
    files = sorted(glob.glob(str(Path(logdir) / "**" / "*.xplane.pb"), recursive=True), key=os.path.getmtime)
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(files[-1]).read_bytes())
    events = []  # (name, type, start_ps, duration_ps)
    instantiate = 0  # eager calls of a function less their kernels' execution: instantiation, caching
    for plane in space.planes:
        if not plane.name.startswith("/host:"):
            continue
        for line in plane.lines:
            for e in line.events:
                label = plane.event_metadata[e.metadata_id].name
                if label.startswith("EagerLocalExecute: __inference"):
                    instantiate += e.duration_ps
                elif label == "EagerKernelExecute":
                    instantiate -= e.duration_ps
                match = OP_EVENT.match(label)
                if match is None or match.group(2) in CONTAINERS:
                    continue
                start = line.timestamp_ns * 1000 + e.offset_ps
                events.append((match.group(1), match.group(2), start, e.duration_ps))
    return wall, events, max(0, instantiate) / 1e12


def busy_ps(events):
    """Length of the union of the kernels' intervals (some kernel running)."""
    spans = sorted((s, s + d) for _, _, s, d in events)
    total, end = 0, None
    for s, e in spans:
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


TRAIN_LAYER = [
    (re.compile(r"(^|/)bn_"), "batch norm"),
    (re.compile(r"(^|/)conv\d"), "conv"),
    (re.compile(r"(^|/)lif_"), "LIF"),
    (re.compile(r"(^|/)pool\d"), "max pooling"),
    (re.compile(r"(^|/)fc\d"), "dense"),
    (re.compile(r"(^|/)(voting|dropout)"), "voting, dropout"),
    (re.compile(r"(^|/)(image|flatten)"), "reshapes"),
]


def train_kind(name, optype):
    if name.startswith(("Adam", "adam")) or "/Adam/" in name or optype.startswith("ResourceApply"):
        return "optimizer (Adam)"
    phase = "backward" if name.startswith("gradient_tape") or "/gradients/" in name or name.startswith("gradients") else "forward"
    for pattern, kind in TRAIN_LAYER:
        if pattern.search(name):
            return f"{phase}: {kind}"
    if "/" not in name:
        # the LIF layers' hand-written BPTT (tf.custom_gradient's grad function) builds its ops
        # outside any name scope, as the loss does (a few small ops on B x T x classes)
        return "backward: LIF (custom BPTT gradient), with the loss"
    return f"{phase}: other"


CONV_TYPES = ("Conv2D", "_FusedConv2D", "Conv2DBackpropInput", "DepthwiseConv2dNative")


def base_op(optype):
    """The op type without oneDNN's prefix: TensorFlow swaps in ``_MklNativeConv2D``,
    ``_MklTranspose``, ``_MklNativeFusedConv2D`` and the like on CPUs where oneDNN is on
    by default (AVX-512), ``Conv2D``, ``Transpose`` and ``_FusedConv2D`` elsewhere."""
    for prefix in ("_MklNative", "_Mkl"):
        if optype.startswith(prefix):
            rest = optype[len(prefix):]
            return f"_{rest}" if rest.startswith("Fused") else rest
    return optype


def infer_kind(name, optype):
    if optype in CONV_TYPES or "conv" in name.lower() and optype in ("BiasAdd", "MatMul", "_FusedMatMul"):
        return "conv"
    if optype in ("MatMul", "_FusedMatMul", "BatchMatMulV2", "SparseTensorDenseMatMul"):
        return "dense"
    if "SimNeurons" in name:
        return "LIF update (neurons)"
    if optype in ("MaxPool", "MaxPoolV2") or "MaxPool2D" in name or re.search(r"(^|/)pool\d", name):
        return "max pooling"
    if optype == "Mean" or "MeanRate" in name:
        return "probes, rates"
    if "CopyBuilder" in name:
        return "signal copies (CopyBuilder)"
    if "ChannelBroadcast" in name:
        return "bias broadcast"
    if "Probe" in name or "MeanRate" in name or "rate" in name.lower() or optype.startswith(("TensorList", "TensorArray")):
        return "probes, rates"
    if optype in ("GatherV2", "ResourceGather", "ScatterNd", "TensorScatterUpdate", "TensorScatterAdd",
                  "ResourceScatterUpdate", "Slice", "StridedSlice", "ConcatV2", "Reshape", "Identity", "Pack",
                  "Unpack", "Split", "SplitV", "Transpose", "DynamicStitch"):
        return "signal reads/writes (gather, scatter, reshape)"
    if optype in ("Merge", "Switch", "NextIteration", "LoopCond", "Less", "AddV2", "Add") and "while" in name and "Builder" not in name:
        return "step loop control"
    if "Builder" in name:
        return "other builders"
    return "other"


def profile_job(fn, calls, repeats, logdir, classify, per_call):
    """Median ms per minibatch (unprofiled) and the shares of wall time by kind."""
    fn()  # warm-up: tracing, graph building
    med, times = timed(fn, repeats)
    wall, events, instantiate = trace(fn, calls, logdir)
    kernel = sum(d for *_, d in events)
    busy = busy_ps(events) / 1e12
    by_kind = collections.Counter()
    by_type = collections.Counter()
    for name, optype, _, d in events:
        by_kind[classify(name, base_op(optype))] += d
        by_type[optype] += d
    inside = min(1.0, busy / wall) if wall > 0 else 0.0
    shares = {k: inside * v / kernel for k, v in by_kind.most_common()} if kernel else {}
    outside = 1.0 - inside
    inst = min(outside, instantiate / wall) if wall > 0 else 0.0
    if inst > 0:
        shares[INSTANTIATE] = inst
    shares["outside TF kernels (Python, framework, dispatch, idle)"] = outside - inst
    return {
        "ms_per_minibatch": 1000 * med / per_call,
        "timed_calls_s": times,
        "minibatches_per_call": per_call,
        "profiled_wall_s": wall,
        "kernel_busy_fraction": inside,
        "kernel_overlap": (kernel / 1e12) / busy if busy else 0.0,
        "shares": shares,
        "top_op_types": {t: v / kernel for t, v in by_type.most_common(12)} if kernel else {},
        "events": len(events),
    }


def profile_size(name, size, args, logroot):
    import tensorflow as tf

    batches = args.batches if name == "reduced" else 1
    reduced = name == "reduced"
    repeats, calls = (args.repeats, args.calls) if reduced else (args.full_repeats, 1)
    m, engine, x, y = bench_dvs.setup(size, batches)
    epoch = iter(range(10**6))
    record = {"size": size, "minibatches_per_call": batches}
    record["train"] = profile_job(lambda: engine.fit_epoch(x, y, next(epoch)), calls, repeats,
                                  logroot / f"{name}_train", train_kind, batches)
    # the step alone, without fit_epoch's per-epoch work; and fit_epoch without its
    # tf.random.set_seed, which clears TensorFlow's kernel cache (context._set_global_seed)
    # so that the step's function is instantiated again in every epoch
    xb, yb = tf.constant(x[: size["B"]]), tf.constant(np.asarray(y[: size["B"]], np.int32))
    record["train_step_only_ms"] = 1000 * timed(lambda: engine._train_step(xb, yb), repeats)[0]
    if not reduced and not args.full_ab:
        args_xla = False
    else:
        args_xla = args.xla
        set_seed = tf.random.set_seed
        tf.random.set_seed = lambda seed: None
        try:
            engine.fit_epoch(x, y, next(epoch))
            record["train_no_set_seed_ms"] = 1000 * timed(lambda: engine.fit_epoch(x, y, next(epoch)), repeats)[0] / batches
        finally:
            tf.random.set_seed = set_seed
    if args_xla:  # the same step compiled by XLA (same model and optimizer)
        plain = engine._train_step
        engine._train_step = tf.function(plain.python_function, jit_compile=True, reduce_retracing=True)
        try:
            engine._train_step(xb, yb)  # compile
            step = timed(lambda: engine._train_step(xb, yb), repeats)[0]
            epoch_xla = timed(lambda: engine.fit_epoch(x, y, next(epoch)), repeats)[0]
            record["train_xla"] = {"step_only_ms_xla": 1000 * step, "step_only_ms_plain": record["train_step_only_ms"],
                                   "speedup_step_only": record["train_step_only_ms"] / (1000 * step),
                                   "fit_epoch_ms_per_minibatch_xla": 1000 * epoch_xla / batches}
        except Exception as err:  # noqa: BLE001 - a failed compile is a result too
            record["train_xla"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
        finally:
            engine._train_step = plain
    infer = bench_dvs.inference_engine(m, engine.save_params(logroot / f"{name}_params.npz"), size)
    try:
        record["infer"] = profile_job(lambda: infer.predict(x), calls, repeats, logroot / f"{name}_infer",
                                      infer_kind, batches)
    finally:
        infer.close()
    return record


# -- report --------------------------------------------------------------------------------


def table(job):
    ms = job["ms_per_minibatch"]
    lines = ["| kind | share | ms per minibatch |", "|---|---:|---:|"]
    for kind, share in sorted(job["shares"].items(), key=lambda kv: -kv[1]):
        if share >= 0.001:
            lines.append(f"| {kind} | {share:.1%} | {share * ms:.1f} |")
    lines.append(f"| **total** | 100% | **{ms:.1f}** |")
    return lines


def share(job, *prefixes):
    return sum(v for k, v in job["shares"].items() if k.startswith(prefixes))


#: The candidates of issue 22 and what was measured of them; ``{xla}`` is this run's XLA figure.
CANDIDATES = [
    "* *Measured, not a candidate of the issue, done: oneDNN on every CPU*: TensorFlow 2.15 runs its "
    "oneDNN kernels by default only on x86 CPUs with AVX-512 VNNI or BF16 or AMX, and Eigen's elsewhere. "
    "On an AVX2 CPU (AMD EPYC, 2 cores, 2026-12-07) Eigen's convolution gradients ran far below its "
    "forward convolutions: the second convolution's filter gradient took 127 ms per minibatch against 29 "
    "ms for its forward pass, on the same arithmetic. `nengo_actions.compat` now sets "
    "`TF_ENABLE_ONEDNN_OPTS=1` unless the user has set it. In one `bench_dvs.py` run each way, the "
    "reduced net's direct training went from 29.8 to 61.4 samples/s (0.88x to 1.82x snnTorch), the "
    "multi-step model's inference from 114 to 227 clips/s, and the Nengo network's from 116 to 120 (its "
    "per-step convolutions and neuron updates gain little). The Nengo network's spiking outputs for the "
    "same parameters are equal either way; the main job's test accuracies moved by one clip of 96 in two "
    "of its five models (float rounding in training, as between machines).",
    "* *Measured, not a candidate of the issue, the largest item, done*: `DirectEngine.fit_epoch` called "
    "`tf.random.set_seed` every epoch, which clears TensorFlow's kernel cache, so the training step was "
    "instantiated and optimised again in every epoch, seconds at these sizes. It did not even reseed the "
    "dropout masks: Keras' seeded masks come from stateful ops whose seeds are fixed when the step is "
    "traced, so every epoch drew the same sequence of masks, and a resumed run other masks than an "
    "uninterrupted one. The masks now come from a stateless draw of a seed that the trainer sets per "
    "epoch and minibatch (`networks.dvs_direct.SeededDropout`): new masks every epoch, a resumed run's "
    "masks equal to an uninterrupted run's (tested), no cleared caches. Measured 2026-12-07 at the "
    "reduced size, epochs of 4 minibatches as `bench_dvs.py` times them, alternated in one process on a "
    "loaded machine: 1.43 s per epoch against 2.87 s with the per-epoch reseed (2.0x); over a DVS digits "
    "epoch (85 minibatches) the saving is about 1.4 s of some 20. The figures move with the masks: the "
    "DVS digits direct run gives 93.51% at 1 step per frame instead of 93.29% (`results/dvs_digits`).",
    "* *XLA for the training step*: {xla}; the convolutions and their backward passes dominate and XLA on"
    " the CPU does not run them better than oneDNN, and the LIF loop's element-wise chains are already "
    "hand-fused per step. Not worth keeping on this CPU.",
    "* *Channels-first vs channels-last*: TensorFlow's CPU convolutions take NHWC (NCHW is not supported "
    "by most of its CPU kernels) and oneDNN reorders internally; at most a part of the conv shares could "
    "move, and no gain is expected.",
    "* *Fusing BN and LIF into the convolution's epilogue*: in inference BN is already folded into the "
    "weights and the LIF update is several separate element-wise kernels per step (divide, subtract, "
    "compare, cast, multiply over every neuron); one fused kernel could take most of the neuron-update "
    "share off inference. *Measured* (2026-12-07, reduced size, `Engine.for_inference` as `bench_dvs.py` "
    "builds it, 64 clips, medians of 9 alternated rounds in one process on a quiet machine, outputs equal"
    " in every variant): the `DiscreteLIF` update compiled by XLA into one pass "
    "(`tf.function(jit_compile=True)` inside NengoDL's step; alone on the first layer's 16 x 131,072 "
    "neurons it ran 3.8 ms against 6.5 ms per step) and, before it, the converter's passthrough nodes "
    "bypassed (each conv and dense layer writes into a node that a second connection copies into the "
    "neurons: one full-layer copy per layer and step fewer, 7 nodes removed): 146 and 150 clips/s against"
    " 154 without either. The per-round times ranged 0.31-0.86 s, so neither is a measurable gain inside "
    "NengoDL's step loop; not kept. NengoDL's whole prediction function under XLA (`jit_compile` on its "
    "Keras model) aborts the process (\"Update dim size 1 greater than dynamic slice dimension\"). In "
    "training, BN and the LIF forward are the candidates (their shares above), and the hand-written BPTT "
    "gradient is element-wise too; fusion saves memory traffic, not arithmetic, so expect a part of those"
    " shares, not all. *Measured again with oneDNN on* (an AVX2 CPU, reduced size, same outputs, engines "
    "alternated in one process, medians of 15): the neuron update written with `tf.where` instead of a "
    "cast and two multiplies 126.3 clips/s, and a prediction-only engine without the layer rate and "
    "raster probes (7 mean reductions and 14 probe writes per step fewer) 125.4, against 126.0 as built; "
    "in training, each step of the LIF layers' BPTT backward pass compiled by XLA (the time slices taken "
    "inside it) 65.6 and 61.8 samples/s against 64.0 and 66.7. No gain; not kept.",
    "* *NengoDL's `unroll_simulation`*: removes the while loop's per-step control and lets the scheduler "
    "see more kernels at once; bounded by the no-kernel-running share of inference, of which the per-call"
    " work stays. *Measured* (2026-12-07, reduced size, `Engine.for_inference` as `bench_dvs.py` builds "
    "it, 64 clips, medians of 5 (7 for the second) after a warm-up, the settings alternated on a loaded "
    "machine): `unroll_simulation=8` (one clip's 8 steps) 115 and 111 clips/s against 120 and 123 with 1,"
    " the same outputs: no gain, not kept. NengoDL's `stateful=False` beside `inference_only`: 63.5 "
    "against 63.3 clips/s (same outputs), no gain either.",
    "* *Batched convolutions over T at inference*: bounded by the conv share of inference; the per-step "
    "convolutions already run on the minibatch, so larger batches gain a fraction of that share, and it "
    "needs the convolutions moved out of NengoDL's step loop.",
    "* *float16/bfloat16*: the CPU of the profile (AMD EPYC, AVX2/FMA/F16C, no AVX512-BF16 or AMX) has no"
    " fast half-precision arithmetic, so oneDNN would convert; no gain expected there. The machines of "
    "this project vary: the one of 2026-12-07 reports AVX512-BF16 (no AMX), where bfloat16 convolutions "
    "could pay; not measured, and the spikes' thresholds would then see bfloat16 weights, which moves "
    "figures.",
]


def interpretation(records):
    """What the candidates of issue 22 could gain, with the shares of this profile."""
    r = records["reduced"]
    t, i = r["train"], r["infer"]
    inst = t["shares"].get(INSTANTIATE, 0.0)
    steady = 1.0 - inst  # the training step without the per-epoch instantiation
    conv_t = share(t, "forward: conv", "backward: conv") / steady
    lif_t = share(t, "forward: LIF", "backward: LIF") / steady
    bn_t = share(t, "forward: batch norm", "backward: batch norm") / steady
    pool_t = share(t, "forward: max pooling", "backward: max pooling") / steady
    lines = [
        "**Reading it.** Reduced size, training: without the per-epoch function instantiation "
        f"({inst:.0%} of `fit_epoch` at {r['minibatches_per_call']} minibatches per epoch), the step's time is "
        f"convolutions {conv_t:.0%} (forward and backward), LIF {lif_t:.0%} (most of it the hand-written BPTT "
        f"gradient), batch norm {bn_t:.0%}, max pooling {pool_t:.0%}; dense layers, voting and Adam are under 1%. "
        "Inference: the neuron update "
        f"{share(i, 'LIF'):.0%}, the convolutions {share(i, 'conv'):.0%}, pooling {share(i, 'max pooling'):.0%}, "
        f"probes and rates {share(i, 'probes'):.0%}, and {share(i, 'outside'):.0%} of the wall time with no kernel "
        "running (NengoDL's and Keras' per-call work, the while loop's scheduling between kernels).",
    ]
    if "full" in records:
        f = records["full"]
        ft, fi = f["train"], f["infer"]
        finst = ft["shares"].get(INSTANTIATE, 0.0)
        lines += ["", "Full size: training "
                  f"{ft['ms_per_minibatch'] / 1000:.1f} s per minibatch (one minibatch per epoch here, so the "
                  f"instantiation is {finst:.0%} of it), convolutions "
                  f"{share(ft, 'forward: conv', 'backward: conv') / (1 - finst):.0%} and LIF "
                  f"{share(ft, 'forward: LIF', 'backward: LIF') / (1 - finst):.0%} of the rest; inference "
                  f"{fi['ms_per_minibatch']:.0f} ms per minibatch, convolutions {share(fi, 'conv'):.0%}, neuron update "
                  f"{share(fi, 'LIF'):.0%}, no kernel running {share(fi, 'outside'):.0%}."]
    xla = r.get("train_xla", {})
    xla_text = (f"measured here at {xla['speedup_step_only']:.2f}x the plain step (under load)"
                if "speedup_step_only" in xla else "not measured in this run")
    lines += [
        "",
        "**What the candidates of issue 22 could gain, given these shares** (expectations, except where "
        "marked measured):",
        "",
        *(candidate.format(xla=xla_text) for candidate in CANDIDATES),
    ]
    return "\n".join(lines) + "\n"


def report(records, args, load, total_s):
    lines = [
        HEADING,
        "",
        "TensorFlow's profiler (`tf.profiler.experimental`) around the direct trainer's training step "
        "(`DirectEngine.fit_epoch`) and the spiking inference of the Nengo network (`Engine.for_inference`, "
        "`Engine.predict`, one step per frame); the trace (`*.xplane.pb`) is read with TensorFlow's own "
        "`xplane_pb2`, each kernel put in a kind by its name scope and op type. A share is the kind's part "
        "of the summed kernel time times the fraction of wall time in which some kernel ran; the rest is "
        "\"outside TF kernels\". Milliseconds per minibatch: median of unprofiled calls. "
        f"2 CPU cores shared with other jobs (load average {load:.1f} at the end), so absolute times are "
        f"inflated; the shares hold better. Command: `.venv/bin/python benchmarks/profile_dvs.py"
        f"{' --full' if args.full else ''}{' --xla' if args.xla else ''}`; total {total_s:.0f} s.",
        "",
    ]
    for name, rec in records.items():
        s = rec["size"]
        for job, title in (("train", "training step (Keras BPTT)"), ("infer", "spiking inference (NengoDL)")):
            j = rec[job]
            lines += [
                f"**{name}, {title}**: channels {s['channels']}, 2x{s['hw']}x{s['hw']}, T={s['T']}, batch {s['B']}; "
                f"{j['ms_per_minibatch']:.0f} ms per minibatch; kernels busy {j['kernel_busy_fraction']:.0%} of the "
                f"wall time, {j['kernel_overlap']:.2f} kernels running on average when busy.",
                "",
                *table(j),
                "",
            ]
        lines += [] if "train_no_set_seed_ms" not in rec else [
            f"Measured under load, {name}: `fit_epoch` {rec['train']['ms_per_minibatch']:.0f} ms per minibatch "
            f"({rec['minibatches_per_call']} per epoch); the compiled step alone, called again and again, "
            f"{rec['train_step_only_ms']:.0f} ms; `fit_epoch` with `tf.random.set_seed` made a no-op "
            f"{rec['train_no_set_seed_ms']:.0f} ms per minibatch. `fit_epoch` sets the global seed every epoch "
            "(for the dropout masks), and TensorFlow clears its kernel cache when the global seed is set, so the "
            "step's function is instantiated and optimised again at the first minibatch of every epoch "
            "(the \"function instantiation\" row).",
            "",
        ]
        if "train_xla" in rec:
            x = rec["train_xla"]
            lines += [(f"Measured under load, {name}: the step alone with `jit_compile=True` "
                       f"{x['step_only_ms_xla']:.0f} ms against {x['step_only_ms_plain']:.0f} without "
                       f"({x['speedup_step_only']:.2f}x); `fit_epoch` with the XLA step "
                       f"{x['fit_epoch_ms_per_minibatch_xla']:.0f} ms per minibatch (XLA's compiled cluster "
                       "survives the cleared kernel cache).") if "error" not in x else
                      f"Measured, {name}: `jit_compile=True` on the training step fails: {x['error']}", ""]
    lines += [interpretation(records)]
    return "\n".join(lines)


def main(argv=None):
    from readme_section import write_section  # the same folder (sys.path[0] when run as a script)

    from nengo_actions.io import write_json_atomic, write_text_atomic

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "dvs_profile")
    parser.add_argument("--channels", type=int, default=bench_dvs.SIZE["channels"])
    parser.add_argument("--hw", type=int, default=bench_dvs.SIZE["hw"], help="input height and width (at least 32)")
    parser.add_argument("--frames", type=int, default=bench_dvs.SIZE["T"], help="T, frames per sample")
    parser.add_argument("--batch", type=int, default=bench_dvs.SIZE["B"])
    parser.add_argument("--batches", type=int, default=2, help="minibatches per call at the reduced size")
    parser.add_argument("--repeats", type=int, default=3, help="unprofiled timed calls")
    parser.add_argument("--calls", type=int, default=2, help="profiled calls")
    parser.add_argument("--full", action="store_true", help="also the seeds' full size (one minibatch per call)")
    parser.add_argument("--full-size", metavar="C,HW,T,B", help="the full size's channels, input side, frames and batch")
    parser.add_argument("--xla", action="store_true", help="also time the training step with jit_compile=True")
    parser.add_argument("--full-repeats", type=int, default=1, help="unprofiled timed calls at the full size (1 profiled)")
    parser.add_argument("--full-ab", action="store_true", help="the set_seed and --xla A/Bs at the full size too")
    parser.add_argument("--from-json", type=Path, metavar="PROFILE", help="rewrite the reports of a saved profile.json, profiling nothing")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    sizes = bench_dvs.sizes(args)
    if args.from_json:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        records, load = saved["sizes"], saved["load_average"]
        # the report names the command of the saved run, not this one
        args.full, args.xla = "full" in records, "train_xla" in records["reduced"]
        text = report(records, args, load, saved.get("total_s", 0.0))
        write_text_atomic(args.out / "README.md", "# DVS gesture net: where the time goes\n\n" + text.split("\n", 1)[1])
        if not args.no_readme:
            write_section(text, HEADING, args.readme)
        print(text)
        return records
    t0 = time.time()
    records = {}
    with tempfile.TemporaryDirectory() as logroot:
        for name, size in sizes.items():
            print(f"profiling {name} {size}", flush=True)
            records[name] = profile_size(name, size, args, Path(logroot))
            # written after every size, so that a run stopped during the full size keeps the reduced one
            load = os.getloadavg()[0]
            text = report(records, args, load, time.time() - t0)
            args.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.out / "README.md", "# DVS gesture net: where the time goes\n\n" + text.split("\n", 1)[1])
            write_json_atomic(args.out / "profile.json", {"load_average": load, "total_s": time.time() - t0, "sizes": records})
            if not args.no_readme:
                write_section(text, HEADING, args.readme)
    print(text)
    return records


if __name__ == "__main__":
    main()
