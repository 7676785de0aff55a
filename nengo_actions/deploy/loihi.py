"""A trained spiking conv net, given as a NIR graph, run on the Loihi emulator (nengo-loihi).

:func:`loihi_network` builds the graph natively in Nengo for nengo-loihi; :func:`run_loihi`
runs clips on ``nengo_loihi.Simulator(net, target="sim")``, the bit-level numpy emulator of
Loihi 1 (``"simreal"``: the same model in float32, nothing discretised). Graphs: chains
``Input (C, H, W) -> ([AvgPool2d] Conv2d | [AvgPool2d] [Flatten] Affine/Linear..) -> LIF/IF ->
... -> LIF/IF -> [[AvgPool2d] Flatten] [Affine/Linear..] -> Output``, >= 2 neuron layers; any
other node or form is refused with a one-line :class:`~nengo_actions.errors.NIRError`.

Neurons. NIR's LIF under forward Euler with ``dt`` (``tau_steps = tau/dt``) is per step ``v <-
v + (r*I + v_leak - v)/tau_steps``, a spike (1) when ``v >= v_threshold``, then ``v <- 0``; in units
of the threshold, ``v <- k*v + (1-k)*J``, ``k = 1 - 1/tau_steps``, ``J = W's + b'``, ``W' =
r*W/v_threshold``, ``b' = (r*b + v_leak)/v_threshold``, threshold 1. On chip that is
``nengo.LIF(tau_rc=-dt/ln k, tau_ref=0, min_voltage=-inf, amplitude=dt)`` with ``synapse=None``:
nengo-loihi sets decayU = 1 (the current is the step's input), decayV = 1 - k and folds the
``1 - k`` into the weights; ``amplitude=dt`` makes a spike worth 1, so chip weights are ``W'``.
``IF`` (``v <- v + dt*r*I``) is ``SpikingRectifiedLinear``. Float ("simreal") is NIR's step
exactly but for ``v > 1`` (not ``>=``) and IF voltages clamped at 0. The chip ("sim") adds
8-bit weights per core (largest 255), 12-bit biases, decayV ``round(4095/tau_steps)/4096``
(exact for 2, 4), integer voltages floored at each decay, 1/4096 of a step's current carried
over, and each step's input summed in 21 bits (it wraps, warning "Overflow").

Layout. The first neuron layer runs on the host (a convolution from a host node cannot be on
chip) as :class:`~nengo_actions.networks.nir_layers.EulerLIF` neurons (NIR's step, float64). A spike reaches the next layer a step
later, so chip layer ``k`` (1, 2, ..) computes step ``t`` at step ``t + k``: a clip runs
``T*steps_per_frame + k_last`` steps, layer ``k`` read from step ``k`` on; biases come as
spikes of a clock (a host neuron firing every step, then chip neurons each a step behind), so
no layer charges before its input arrives. nengo-loihi cannot pool spikes: AvgPool2d (``k x
k``, stride ``k``) before a ``K x K`` conv of stride ``s``, padding ``p`` is one ``kK x kK``
conv of stride ``ks``, padding ``kp`` on the pre-pool map, weights ``W[a//k, b//k]/k^2``;
before Flatten and a matrix, each column spreads over its ``k x k`` pixels, /k^2. Convs are
``nengo.Convolution(channels_last=False)`` (NIR's order) split over cores by ``BlockShape``;
what follows the last layer (voting) is a matrix applied to its probed spikes.

Data: ``x`` (clips, T, H*W*C), frames channels-last (H, W, C) count images flattened in C
order; ``outputs`` (clips, T, n_outputs): per frame, the readout of the last layer's spikes
averaged over the frame's steps. The state is zeroed in place between clips (nengo-loihi 1.1
has no ``Simulator.reset``), so only the emulator targets are run.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import nengo
import numpy as np
from nengo.dists import Choice
from tqdm import tqdm

from nengo_actions.deploy.nir_import import graph_dt, topological_order
from nengo_actions.errors import DataError, NIRError, UserError
from nengo_actions.networks.nir_layers import EulerLIF

MISSING = 'nengo-loihi is not installed; install it with: pip install -e ".[loihi]"'

NEURONS, LINEAR = ("LIF", "IF"), ("Conv2d", "AvgPool2d", "Flatten", "Affine", "Linear")
MAX_CORE = 1024  # compartments per Loihi core
ZERO = {"voltage": Choice([0.0])}  # Loihi starts every voltage at 0 (nengo's LIF: uniform)


def import_nengo_loihi():
    """nengo_loihi, or :class:`UserError` saying how to install it."""
    # nengo-loihi imports NengoDL if it can: unshimmed, that fails halfway on TF 2.15 and
    # leaves a broken ``nengo_dl`` in sys.modules for every later import of it
    from nengo_actions import compat  # noqa: F401
    try:
        import nengo_loihi
    except ImportError:
        raise UserError(MISSING) from None
    return nengo_loihi


@dataclasses.dataclass
class Layer:
    """A neuron layer and its (folded) input connection, in NIR's channel-first order."""
    name: str
    shape: tuple  # (C, H, W) or (N,)
    kind: str  # "LIF" or "IF"
    tau_steps: float
    weight: np.ndarray  # W': conv kernel (C_out, C_in, kH, kW) or matrix (N, inputs)
    bias: np.ndarray  # b', (N,)
    in_shape: tuple
    stride: tuple = (1, 1)
    padding: str = "valid"  # nengo's name for NIR's padding
    size = property(lambda self: int(np.prod(self.shape)))


@dataclasses.dataclass
class LoihiNet:
    network: nengo.Network
    input_node: nengo.Node
    output_probe: nengo.Probe  # the last layer's spikes, a row per step, 1 per spike
    n_outputs: int
    layers: dict  # layer name -> nengo.Ensemble (the first on the host, then on chip)
    probes: dict  # layer name -> nengo.Probe of its spikes
    readout: np.ndarray  # (n_outputs, last layer size): scores = readout @ spikes + offset
    offset: np.ndarray
    input_shape: tuple  # the graph's Input, (C, H, W)
    dt: float  # seconds per step (NIR's and the simulator's)
    block_shapes: dict  # chip layer name -> per-core shape
    clip: dict  # what the input node plays: {"frames": (steps, C*H*W), "start": step before}


def _pair(v):
    return tuple(int(i) for i in np.broadcast_to(np.asarray(v).ravel(), (2,)))


def _fold_conv(name, node, shape, pool):
    """Kernel, stride, nengo padding and output shape of [avgpool ``pool``] + conv."""
    w = np.asarray(node.weight, dtype=np.float64)
    if node.groups != 1 or _pair(node.dilation) != (1, 1) or w.ndim != 4 or w.shape[1] != shape[0]:
        raise NIRError(f"NIR node {name!r}: only a Conv2d with groups 1, dilation 1 and {shape[0]} input channels is supported")
    stride, pad = _pair(node.stride), node.padding
    if isinstance(pad, str):
        if pad == "same" and (stride != (1, 1) or not w.shape[2] % 2 or not w.shape[3] % 2):
            raise NIRError(f"NIR node {name!r}: padding 'same' needs stride 1 and an odd kernel here")
        pad = (0, 0) if pad == "valid" else ((w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2)
    pad = _pair(pad)
    if pool > 1:  # pool k/k, conv K/s/p == conv kK/ks/kp on the pre-pool map
        w = np.repeat(np.repeat(w, pool, 2), pool, 3) / pool**2
        stride, pad = (stride[0] * pool, stride[1] * pool), (pad[0] * pool, pad[1] * pool)
    out, modes = [], set()
    for i, size in enumerate(shape[1:]):
        k, s, p = w.shape[2 + i], stride[i], pad[i]
        out.append((size + 2 * p - k) // s + 1)
        same = -(-size // s)  # nengo's 'same': ceil(size / s) outputs, floor(total / 2) in front
        if p and not (out[-1] == same and max((same - 1) * s + k - size, 0) // 2 == p):
            raise NIRError(f"NIR node {name!r}: padding {p} (kernel {k}, stride {s}, size {size}) is neither nengo's 'same' nor 'valid'")
        modes.add("same" if p else "valid")
    if len(modes) > 1:
        raise NIRError(f"NIR node {name!r}: rows and columns are padded differently")
    return w, stride, modes.pop(), (w.shape[0], *out)


def _fold(ops, shape):
    """The linear nodes between two neuron layers as ``(weight, bias, out shape, stride,
    padding)``: a conv kernel, or a matrix over the flattened input."""
    pool, conv, mat, bias, flat = 1, None, None, 0.0, len(shape) == 1
    for name, node in ops:
        kind = type(node).__name__
        if conv is not None:
            raise NIRError(f"NIR node {name!r}: a {kind} after a Conv2d, with no neuron layer between")
        if kind == "AvgPool2d":
            k, st, pad = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
            if pool > 1 or mat is not None or flat or k[0] != k[1] or st != k or pad != (0, 0):
                raise NIRError(f"NIR node {name!r}: only one square AvgPool2d (stride = kernel, no padding) on a (C, H, W) map before a Conv2d or Flatten can be folded")
            pool = k[0]
        elif kind == "Conv2d":
            if mat is not None or flat:
                raise NIRError(f"NIR node {name!r}: a Conv2d after a Flatten or a matrix")
            conv, stride, padding, out = _fold_conv(name, node, shape, pool)
            bias = np.repeat(np.asarray(node.bias, dtype=np.float64).ravel(), out[1] * out[2])
        elif kind == "Flatten":
            flat = True
        else:
            w = np.asarray(node.weight, dtype=np.float64)
            b = np.asarray(getattr(node, "bias", 0.0), dtype=np.float64)
            if mat is not None:
                mat, bias = w @ mat, w @ bias + b
                continue
            if not flat:
                raise NIRError(f"NIR node {name!r}: a {kind} on a (C, H, W) map needs a Flatten first")
            mat, c, h, wd = w, *(shape if len(shape) == 3 else (0, 0, 0))
            if pool > 1 and w.shape[1] == c * (h // pool) * (wd // pool):  # spread columns over their k x k pixels
                mat = np.zeros((w.shape[0], c, h, wd))
                mat[:, :, : h // pool * pool, : wd // pool * pool] = np.repeat(np.repeat(
                    w.reshape(-1, c, h // pool, wd // pool), pool, 2), pool, 3) / pool**2
                mat = mat.reshape(w.shape[0], -1)
            if mat.shape[1] != int(np.prod(shape)):
                raise NIRError(f"NIR node {name!r}: expects {mat.shape[1]} inputs, gets {int(np.prod(shape))}")
            bias = b * np.ones(mat.shape[0])
    if conv is not None:
        return conv, bias, out, stride, padding
    if mat is None:
        raise NIRError(f"NIR node {ops[-1][0] if ops else 'input'!r}: a neuron layer or the output needs a Conv2d, Affine or Linear before it")
    return mat, bias, (mat.shape[0],), (1, 1), "valid"


def parse_graph(graph, dt):
    """``(layers, readout, offset, input shape)`` of a NIR graph (see the module)."""
    for name, node in graph.nodes.items():
        if type(node).__name__ not in NEURONS + LINEAR + ("Input", "Output"):
            raise NIRError(f"NIR node {name!r} is a {type(node).__name__}, which the Loihi runner cannot build (it builds {', '.join(NEURONS + LINEAR)})")
    order, inputs = topological_order(graph, "NIR graph")
    for name in order[1:]:
        if len(inputs[name]) != 1:
            raise NIRError(f"NIR node {name!r} has {len(inputs[name])} inputs; the Loihi runner builds chains only")
    in_shape = shape = tuple(int(s) for s in graph.nodes[order[0]].input_type["input"])
    ops, layers = [], []
    for name in order[1:-1]:
        node, kind = graph.nodes[name], type(graph.nodes[name]).__name__
        if kind not in NEURONS:
            ops.append((name, node))
            continue
        w, b, out, stride, padding = _fold(ops, shape)
        n = int(np.asarray(node.r).size)
        if n != int(np.prod(out)):
            raise NIRError(f"NIR node {name!r}: {n} neurons after an op with {int(np.prod(out))} outputs")
        if np.any(np.asarray(node.v_reset) != 0):
            raise NIRError(f"NIR node {name!r}: v_reset must be 0 (Loihi resets to 0)")
        r, vth, tau = (np.asarray(getattr(node, a, 0.0), dtype=np.float64).ravel() for a in ("r", "v_threshold", "tau"))
        if any(not np.allclose(v, v[0]) for v in (r, vth, tau)):  # Loihi sets them per core
            raise NIRError(f"NIR node {name!r}: r, v_threshold and tau must each be one value for the layer on Loihi")
        r, vth, tau = r[0], vth[0], (tau[0] / dt if kind == "LIF" else math.inf)
        if tau < 1:
            raise NIRError(f"NIR node {name!r}: tau is {tau:g} steps of dt = {dt:g} s; it must be >= 1")
        leak = np.asarray(getattr(node, "v_leak", 0.0), dtype=np.float64).ravel() * np.ones(n)
        layers.append(Layer(name, tuple(out), kind, tau, w * r / vth, (r * b + leak) / vth, shape, stride, padding))
        shape, ops = tuple(out), []
    if len(layers) < 2:
        raise NIRError(f"NIR graph: {len(layers)} LIF/IF layers; Loihi needs two or more (the first runs on the host)")
    if ops:
        readout, offset, *_ = _fold(ops, shape)
        if readout.ndim != 2:
            raise NIRError(f"NIR node {ops[-1][0]!r}: a Conv2d after the last neuron layer")
    else:
        readout, offset = np.eye(layers[-1].size), 0.0
    return layers, readout, offset * np.ones(readout.shape[0]), in_shape


def default_block_shape(layer):
    """A per-core shape within 1024 compartments and ~1 Mbit of synapse memory: a conv block
    holds ~12 distinct weight sets (its tile's border cases in nengo-loihi's layout) of
    ``C_in * ceil(K/stride)^2 * filters`` ~16-bit weights; a dense one ``inputs * n`` <= 8-bit."""
    if len(layer.shape) == 1:
        return (max(1, min(layer.shape[0], MAX_CORE, 2**17 // layer.weight.shape[1])),)
    c, h, w = layer.shape
    reach = math.ceil(layer.weight.shape[2] / layer.stride[0]) * math.ceil(layer.weight.shape[3] / layer.stride[1])
    filters = min(c, MAX_CORE, 2 ** int(math.log2(max(1, 2**20 // (12 * 16 * layer.weight.shape[1] * reach)))))
    room = MAX_CORE // filters
    rows = min(h, 2 ** (int(math.log2(room)) // 2))
    return (filters, rows, min(w, room // rows))


def _neuron_type(layer, dt, host):
    if host:
        if layer.kind == "LIF":
            return EulerLIF(tau=layer.tau_steps, amplitude=dt)
        return EulerLIF(tau=1.0, r=dt, leak=0.0, amplitude=dt)
    if layer.kind == "IF":
        return nengo.SpikingRectifiedLinear(amplitude=dt, initial_state=ZERO)
    keep = max(1 - 1 / layer.tau_steps, 1e-12)  # tau_steps 1: no memory (decayV 4095/4096)
    return nengo.LIF(tau_rc=-dt / math.log(keep), tau_ref=0.0, min_voltage=-np.inf, amplitude=dt, initial_state=ZERO)


def loihi_network(graph, *, dt=None, block_shapes=None, seed=0):
    """Build the ``nir.NIRGraph`` ``graph`` for nengo-loihi (see the module). ``dt``: seconds
    per step, NIR's and the simulator's (None: the graph's metadata ``dt``, else 1e-4).
    ``block_shapes``: chip layer name -> per-core shape in the layer's (C, H, W) or (N,)
    order; the others get :func:`default_block_shape`."""
    nengo_loihi = import_nengo_loihi()
    dt = graph_dt(graph) if dt is None else float(dt)
    layers, readout, offset, in_shape = parse_graph(graph, dt)
    shapes = {x.name: tuple((block_shapes or {}).get(x.name) or default_block_shape(x)) for x in layers[1:]}
    size, clip = int(np.prod(in_shape)), {"frames": np.zeros((0, 1)), "start": 0}

    def feed(t):  # row `step - start - 1` of the clip's frames, zeros around it
        i = int(round(t / dt)) - clip["start"] - 1
        return clip["frames"][i] if 0 <= i < len(clip["frames"]) else np.zeros(size)

    with nengo.Network(seed=seed, label="NIR graph on Loihi") as net:
        nengo_loihi.add_params(net)
        node = nengo.Node(feed, size_out=size, label="input")

        def ensemble(n, neuron_type, bias, label, on_chip=True):
            e = nengo.Ensemble(n, 1, neuron_type=neuron_type, gain=np.ones(n), bias=bias, encoders=Choice([[1.0]]),
                               n_eval_points=2, label=label)
            net.config[e].on_chip = on_chip
            return e

        # the clock: clock0 (host) spikes every step; clock[j] (chip) is j + 1 steps behind
        biased = [k for k, x in enumerate(layers) if k and np.any(x.bias != 0)]
        clock0 = ensemble(1, EulerLIF(tau=1.0, amplitude=dt), np.array([2.0]), "clock0", False) if biased else None
        if biased and max(biased) > 1:
            n = max(biased) - 1
            clock = ensemble(n, nengo.LIF(tau_rc=dt / math.log(2), tau_ref=0.0, amplitude=dt, initial_state=ZERO), np.zeros(n), "clock")
            nengo.Connection(clock0.neurons, clock.neurons, transform=4.0 * np.eye(n, 1), synapse=None)  # v = 2 > 1
            if n > 1:
                nengo.Connection(clock.neurons, clock.neurons, transform=4.0 * np.eye(n, k=-1), synapse=None)
        ens, probes, pre = {}, {}, node
        for k, x in enumerate(layers):
            e = ensemble(x.size, _neuron_type(x, dt, k == 0), x.bias if k == 0 else np.zeros(x.size), x.name, k > 0)
            if k and shapes[x.name] != x.shape:
                net.config[e].block_shape = nengo_loihi.BlockShape(shapes[x.name], x.shape)
            transform = x.weight if x.weight.ndim == 2 else nengo.Convolution(
                x.shape[0], x.in_shape, kernel_size=x.weight.shape[2:], strides=x.stride, padding=x.padding,
                channels_last=False, init=x.weight.transpose(2, 3, 1, 0))  # nengo: (kH, kW, C_in, C_out)
            nengo.Connection(pre, e.neurons, transform=transform, synapse=None)
            if k in biased:  # layer k's bias from the clock neuron k - 1 steps behind clock0
                nengo.Connection(clock0.neurons if k == 1 else clock.neurons[k - 2], e.neurons, transform=x.bias[:, None], synapse=None)
            ens[x.name], probes[x.name], pre = e, nengo.Probe(e.neurons, synapse=None), e.neurons
    return LoihiNet(net, node, probes[layers[-1].name], readout.shape[0], ens, probes, readout, offset, in_shape, dt, shapes, clip)


def board_size(model):
    """``(n_cores, n_chips)`` of a built nengo-loihi model: a core per block after splitting,
    placed on 128-core chips by nengo-loihi's ``Greedy`` allocator (hardware's own)."""
    from nengo_loihi.hardware.allocators import Greedy
    n = len(model.blocks)
    if next(iter(model.blocks)).compartment.vth.dtype != np.int32:  # "simreal": not discretised
        return n, -(-n // 128)  # the allocator's rule by hand
    board = Greedy()(model, n_chips=n)
    return int(sum(board.n_cores_per_chip)), int(board.n_chips)


def _reset(sim):
    """Zero the neuron state on chip and host and drop spikes in flight (nengo-loihi 1.1 has
    no ``Simulator.reset``); time and probes go on."""
    state = sim.sims["emulator"].compartment
    for a in (state.input, state.current, state.voltage, state.ref_count, state.spiked):
        a[...] = 0
    for spike_input in sim.model.inputs:
        spike_input.spikes.clear()  # the host's spikes of the last step, not yet delivered
    host = sim.sims["host_pre"]  # precompute: the host layer runs before the chip
    for obj, sig in host.model.sig.items():
        if isinstance(obj, nengo.ensemble.Neurons):
            host.signals[sig["voltage"]][...] = 0


@dataclasses.dataclass
class LoihiRun:
    outputs: np.ndarray  # (clips, T, n_outputs) class scores per frame
    n_cores: int
    n_chips: int
    spikes_per_inference: dict  # layer name -> mean spikes per clip
    seconds: float  # running the clips, build excluded
    clips_per_second: float
    build_seconds: float
    steps_per_clip: int  # simulated, the pipeline's flush included


def run_loihi(graph, x, *, steps_per_frame=1, target="sim", progress=True, dt=None, block_shapes=None, net=None):
    """Run clips ``x`` (clips, T, H*W*C) through ``graph`` on nengo-loihi's emulator, ``target``
    "sim" or "simreal" (see the module); ``net``: a :class:`LoihiNet` of ``graph``."""
    nengo_loihi = import_nengo_loihi()
    if target not in ("sim", "simreal"):
        raise UserError(f"target {target!r}: the runner resets the emulator's state between clips; use 'sim' or 'simreal'")
    t0 = time.perf_counter()
    net = net or loihi_network(graph, dt=dt, block_shapes=block_shapes)
    c, h, w = net.input_shape if len(net.input_shape) == 3 else (net.input_shape[0], 1, 1)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != c * h * w or int(steps_per_frame) < 1:
        raise DataError(f"x: shape {x.shape} (steps_per_frame {steps_per_frame}), expected (clips, T, {c * h * w}) for the graph's input {net.input_shape}")
    clips, frames, spf = x.shape[0], x.shape[1], int(steps_per_frame)
    names = list(net.layers)
    steps, lag = frames * spf, len(names) - 1  # chip layer k is k steps behind
    outputs, spikes = np.zeros((clips, frames, net.n_outputs)), dict.fromkeys(names, 0.0)
    with warnings.catch_warnings(), np.errstate(divide="ignore"):  # nengo's LIF intercepts at gain 1, bias 0
        warnings.filterwarnings("ignore", "invalid value encountered in cast")  # the emulator's NaN init
        try:
            sim = nengo_loihi.Simulator(net.network, dt=net.dt, target=target, precompute=True, progress_bar=False)
        except nengo.exceptions.BuildError as e:
            raise NIRError(f"nengo-loihi cannot place the network ({e}); pass smaller block_shapes") from None
    build_seconds, t1 = time.perf_counter() - t0, time.perf_counter()
    with sim, tqdm(total=clips, desc=f"loihi {target}", unit="clip", disable=not progress, dynamic_ncols=True) as bar:
        for i in range(clips):
            if i:
                _reset(sim)
            frames_cf = x[i].reshape(frames, h, w, c).transpose(0, 3, 1, 2).reshape(frames, -1)  # channels first
            net.clip.update(frames=np.repeat(frames_cf, spf, axis=0), start=sim.n_steps)
            sim.run_steps(steps + lag)
            for k, name in enumerate(names):
                s = sim.data[net.probes[name]][k : k + steps]  # 1 per spike (amplitude = dt)
                spikes[name] += s.sum() / clips
            outputs[i] = s.reshape(frames, spf, -1).mean(axis=1) @ net.readout.T + net.offset
            sim.clear_probes()
            bar.update()
    seconds = time.perf_counter() - t1
    n_cores, n_chips = board_size(sim.model)
    return LoihiRun(outputs, n_cores, n_chips, spikes, seconds, clips / max(seconds, 1e-9), build_seconds, steps + lag)


__all__ = ["import_nengo_loihi", "Layer", "LoihiNet", "LoihiRun", "MISSING", "board_size", "default_block_shape",
           "loihi_network", "parse_graph", "run_loihi"]
