"""A trained spiking conv net, given as a NIR graph, run on the Loihi emulator (nengo-loihi).

:func:`loihi_network` builds the graph natively in Nengo for nengo-loihi; :func:`run_loihi`
runs clips through ``nengo_loihi.Simulator(net, target="sim")``, the bit-level numpy
emulator of Loihi 1 (``"simreal"``: the same model in float32, nothing discretised).

Graphs: a chain ``Input (C, H, W) -> {[AvgPool2d] Conv2d | [AvgPool2d] [Flatten]
Affine/Linear...} -> LIF/IF -> ... -> LIF/IF -> [AvgPool2d] [Flatten] [Affine/Linear...] ->
Output``, at least two neuron layers. Anything else (``Scale``, ``CubaLIF``, ``SumPool2d``,
branches, dilation, groups, ``v_reset != 0``, ``tau``/``r``/``v_threshold`` varying within
a layer) is refused with a one-line :class:`~nengo_actions.errors.NIRError` naming the node.

Neurons. NIR's LIF under forward Euler with the graph's ``dt`` is, per step, with
``tau_steps = tau / dt``: ``v <- v + (r*I + v_leak - v) / tau_steps``, a spike (value 1)
when ``v >= v_threshold``, then ``v <- 0``. Divided by the threshold: ``v <- k*v + (1-k)*J``,
``k = 1 - 1/tau_steps``, ``J = W's + b'`` with ``W' = r*W/v_threshold``, ``b' = (r*b +
v_leak)/v_threshold``, threshold 1. On chip this is ``nengo.LIF(tau_rc=-dt/ln(k),
tau_ref=0, min_voltage=-inf, amplitude=dt)`` fed with ``synapse=None``: nengo-loihi gives
it decayU = 1 (the current is each step's input), decayV = 1 - k, folds the ``1 - k``
input scale into the weights, and ``amplitude=dt`` makes a spike worth 1, so the chip
weights are ``W'``. ``IF`` (``v <- v + dt*r*I``) is ``SpikingRectifiedLinear``. In float
("simreal") this is the NIR step exactly, except ``v > 1`` for ``v >= 1``. Approximate on
chip ("sim"): 8-bit weights per core (the largest is 255), 12-bit biases, decayV
``round(4095/tau_steps)/4096`` (exact for tau_steps = 2), integer voltages floored at each
decay, ``1/4096`` of a step's current left over into the next, IF voltages clamped at 0,
and the input of one step summed in 21 bits (it wraps, warning "Overflow", beyond about
128 largest-weight spikes at once).

Layout. The first neuron layer runs on the host (a convolution fed by a host node cannot
be on chip) with :class:`DiscreteNeurons` (NIR's step, float64) and sends its spikes to
the chip. A spike reaches the next layer one step later, so chip layer ``k`` (1, 2, ...)
computes clip step ``t`` at step ``t + k``: a clip runs ``T*steps_per_frame + k_last``
steps and layer ``k``'s spikes are read from step ``k`` on. A bias would charge a layer
while its input is still in flight, so biases arrive as spikes of a clock (one host
neuron firing every step and a chain of chip neurons, each one step behind the last),
which keeps every layer exactly in step with NIR. An AvgPool2d (``k x k``, stride ``k``,
no padding) is folded into the next layer, since nengo-loihi cannot pool spikes: before a
``K x K`` conv with stride ``s`` and padding ``p`` it becomes one ``kK x kK`` conv with
stride ``ks`` and padding ``kp`` on the pre-pool map, weights ``W[a // k, b // k] / k^2``;
before Flatten and a matrix, each column spreads over its ``k x k`` pixels divided by
``k^2``. Layers are ``nengo.Convolution`` (``channels_last=False``, NIR's order) or dense
transforms between ``Ensemble.neurons``, split over cores by ``nengo_loihi.BlockShape``.
What follows the last layer (the voting ``Linear``) is one matrix applied on the host to
the probed spikes.

Data: ``x`` is ``(clips, T, H*W*C)``, each frame a channels-last ``(H, W, C)`` count image
flattened in C order. ``outputs`` is ``(clips, T, n_outputs)``: per frame, the readout of
the last layer's spikes averaged over the frame's steps. Between clips the state is reset
in place (nengo-loihi 1.1 has no ``Simulator.reset``; for ``target="loihi"`` a simulator
is built per clip).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings

import nengo
import numpy as np
from nengo.dists import Choice
from nengo.params import NumberParam

from nengo_actions.errors import DataError, NIRError, UserError

MISSING = 'nengo-loihi is not installed; install it with: pip install -e ".[loihi]"'
NIR_DT = 1e-4  # seconds per step when the graph's metadata has no dt (nir_export.NIR_DT)
NEURONS, LINEAR = ("LIF", "IF"), ("Conv2d", "AvgPool2d", "Flatten", "Affine", "Linear")
MAX_CORE = 1024  # compartments per Loihi core
ZERO = {"voltage": Choice([0.0])}  # Loihi starts every voltage at 0 (nengo's LIF: uniform)


def _nengo_loihi():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # nengo-loihi imports TensorFlow
    try:
        import nengo_loihi
    except ImportError:
        raise UserError(MISSING) from None
    return nengo_loihi


class DiscreteNeurons(nengo.neurons.NeuronType):
    """NIR's neuron step for the host layer: ``v <- keep*v + scale*J``; when ``v >= 1`` a
    spike (output ``amplitude / dt``) and ``v <- 0``."""

    state = {"voltage": Choice([0.0])}
    spiking = True
    keep = NumberParam("keep", low=0, high=1)
    scale = NumberParam("scale", low=0, low_open=True)
    amplitude = NumberParam("amplitude", low=0, low_open=True)

    def __init__(self, keep, scale, amplitude=1.0, initial_state=None):
        super().__init__(initial_state)
        self.keep, self.scale, self.amplitude = keep, scale, amplitude

    def max_rates_intercepts(self, gain, bias):  # nengo's default simulates every neuron
        return np.zeros_like(gain), np.zeros_like(gain)

    def step(self, dt, J, output, voltage):
        voltage *= self.keep
        voltage += self.scale * J
        spiked = voltage >= 1
        output[...] = spiked * (self.amplitude / dt)
        voltage[spiked] = 0


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

    @property
    def size(self):
        return int(np.prod(self.shape))


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
    feeder: object  # the input node's output: the current clip, a row per step


def _pair(v):
    return tuple(int(i) for i in np.broadcast_to(np.asarray(v).ravel(), (2,)))


def _pool(name, node):
    k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
    if k[0] != k[1] or s != k or p != (0, 0):
        raise NIRError(f"NIR node {name!r}: only a square AvgPool2d with stride = kernel and no padding can be folded (kernel {k}, stride {s}, padding {p})")
    return k[0]


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


def _fold_dense(name, weight, shape, pool):
    """The matrix of avgpool ``pool``, Flatten (C order) and ``weight`` on a (C, H, W) map."""
    c, h, w = shape
    if weight.shape[1] != c * (h // pool) * (w // pool):
        raise NIRError(f"NIR node {name!r}: expects {weight.shape[1]} inputs, gets {c * (h // pool) * (w // pool)}")
    m = weight.reshape(-1, c, h // pool, w // pool)
    full = np.zeros((m.shape[0], c, h, w))
    full[:, :, : h // pool * pool, : w // pool * pool] = np.repeat(np.repeat(m, pool, 2), pool, 3) / pool**2
    return full.reshape(m.shape[0], -1)


def _fold(ops, shape):
    """The linear nodes between two neuron layers as ``(weight, bias, out shape, stride,
    padding)``: a conv kernel, or a matrix over the flattened input."""
    pool, conv, mat, bias, flat = 1, None, None, 0.0, len(shape) == 1
    for name, node in ops:
        kind = type(node).__name__
        if conv is not None:
            raise NIRError(f"NIR node {name!r}: a {kind} after a Conv2d, with no neuron layer between")
        if kind == "AvgPool2d":
            if pool > 1 or mat is not None or flat:
                raise NIRError(f"NIR node {name!r}: one AvgPool2d on a (C, H, W) map, before a Conv2d or Flatten, is supported")
            pool = _pool(name, node)
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
            mat = _fold_dense(name, w, shape, pool) if len(shape) == 3 else w
            if mat.shape[1] != int(np.prod(shape)):
                raise NIRError(f"NIR node {name!r}: expects {mat.shape[1]} inputs, gets {int(np.prod(shape))}")
            bias = b * np.ones(mat.shape[0])
    if conv is not None:
        return conv, bias, out, stride, padding
    if mat is None:
        raise NIRError(f"NIR node {ops[-1][0] if ops else 'input'!r}: a neuron layer or the output needs a Conv2d, Affine or Linear before it")
    return mat, bias, (mat.shape[0],), (1, 1), "valid"


def _uniform(name, node, attr):
    v = np.asarray(getattr(node, attr), dtype=np.float64).ravel()
    if not np.allclose(v, v[0]):
        raise NIRError(f"NIR node {name!r}: {attr} must be one value for the whole layer on Loihi")
    return float(v[0])


def parse_graph(graph, dt):
    """``(layers, readout, offset, input shape)`` of a NIR graph (see the module)."""
    from nengo_actions.deploy.nir_import import topological_order

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
        r, vth = _uniform(name, node, "r"), _uniform(name, node, "v_threshold")
        tau = _uniform(name, node, "tau") / dt if kind == "LIF" else math.inf
        if tau < 1:
            raise NIRError(f"NIR node {name!r}: tau is {tau:g} steps of dt = {dt:g} s; it must be >= 1")
        leak = np.asarray(getattr(node, "v_leak", 0.0), dtype=np.float64).ravel() * np.ones(n)
        layers.append(Layer(name, tuple(out), kind, tau, w * r / vth, (r * b + leak) / vth, shape, stride, padding))
        shape, ops = tuple(out), []
    if len(layers) < 2:
        raise NIRError(f"NIR graph: {len(layers)} LIF/IF layers; Loihi needs two or more (the first runs on the host)")
    if ops:
        readout, offset, _, _, padding = _fold(ops, shape)
        if readout.ndim != 2:
            raise NIRError(f"NIR node {ops[-1][0]!r}: a Conv2d after the last neuron layer")
    else:
        readout, offset = np.eye(layers[-1].size), 0.0
    return layers, readout, offset * np.ones(readout.shape[0]), in_shape


def default_block_shape(layer):
    """A per-core shape within a core's 1024 compartments and ~1 Mbit of synapse memory.
    nengo-loihi stores ~12 distinct weight sets per conv block (the tile's border cases),
    each ``C_in * ceil(K/stride)^2 * filters`` weights of ~16 bits: so few filters and a
    square tile of pixels per core. A dense block holds ``inputs * n`` weights, <= 8 bits."""
    if len(layer.shape) == 1:
        return (max(1, min(layer.shape[0], MAX_CORE, 2**17 // layer.weight.shape[1])),)
    c, h, w = layer.shape
    reach = math.ceil(layer.weight.shape[2] / layer.stride[0]) * math.ceil(layer.weight.shape[3] / layer.stride[1])
    filters = min(c, MAX_CORE, 2 ** int(math.log2(max(1, 2**20 // (12 * 16 * layer.weight.shape[1] * reach)))))
    room = MAX_CORE // filters
    rows = min(h, 2 ** (int(math.log2(room)) // 2))
    return (filters, rows, min(w, room // rows))


class _Feeder:
    """The input node's output at time ``t``: row ``step - start - 1`` of ``frames``, else 0."""

    def __init__(self, size, dt):
        self.frames, self.start, self.dt, self.zeros = np.zeros((0, size)), 0, dt, np.zeros(size)

    def __call__(self, t):
        i = int(round(t / self.dt)) - self.start - 1
        return self.frames[i] if 0 <= i < len(self.frames) else self.zeros


def _neuron_type(layer, dt, host):
    if host:
        return DiscreteNeurons(1 - 1 / layer.tau_steps, 1 / layer.tau_steps if layer.kind == "LIF" else dt, amplitude=dt)
    if layer.kind == "IF":
        return nengo.SpikingRectifiedLinear(amplitude=dt)
    keep = max(1 - 1 / layer.tau_steps, 1e-12)  # tau_steps 1: no memory (decayV 4095/4096)
    return nengo.LIF(tau_rc=-dt / math.log(keep), tau_ref=0.0, min_voltage=-np.inf, amplitude=dt, initial_state=ZERO)


def _transform(layer):
    if layer.weight.ndim == 2:
        return layer.weight
    return nengo.Convolution(layer.weight.shape[0], layer.in_shape, kernel_size=layer.weight.shape[2:], strides=layer.stride,
                             padding=layer.padding, channels_last=False, init=layer.weight.transpose(2, 3, 1, 0))


def loihi_network(graph, *, dt=None, block_shapes=None, seed=0):
    """Build the ``nir.NIRGraph`` ``graph`` for nengo-loihi (see the module).

    ``dt``: seconds per step, NIR's and the simulator's (None: the graph's metadata ``dt``,
    else 1e-4). ``block_shapes``: chip layer name -> per-core shape in the layer's (C, H, W)
    or (N,) order; the others get :func:`default_block_shape`.
    """
    nengo_loihi = _nengo_loihi()
    dt = float((getattr(graph, "metadata", None) or {}).get("dt", NIR_DT) if dt is None else dt)
    layers, readout, offset, in_shape = parse_graph(graph, dt)
    shapes = {x.name: tuple((block_shapes or {}).get(x.name) or default_block_shape(x)) for x in layers[1:]}
    feeder = _Feeder(int(np.prod(in_shape)), dt)
    with nengo.Network(seed=seed, label="NIR graph on Loihi") as net:
        nengo_loihi.add_params(net)
        node = nengo.Node(feeder, size_out=int(np.prod(in_shape)), label="input")

        def ensemble(n, neuron_type, bias, label, host=False):
            e = nengo.Ensemble(n, 1, neuron_type=neuron_type, gain=np.ones(n), bias=bias, encoders=Choice([[1.0]]),
                               n_eval_points=2, label=label)
            if host:
                net.config[e].on_chip = False
            return e

        # the clock: clock0 (host) spikes every step; clock[j] (chip) is j + 1 steps behind
        biased = [k for k, x in enumerate(layers) if k and np.any(x.bias != 0)]
        clock0 = ensemble(1, DiscreteNeurons(0.0, 1.0, amplitude=dt), np.array([2.0]), "clock0", host=True) if biased else None
        if biased and max(biased) > 1:
            n = max(biased) - 1
            clock = ensemble(n, nengo.LIF(tau_rc=dt / math.log(2), tau_ref=0.0, amplitude=dt, initial_state=ZERO), np.zeros(n), "clock")
            nengo.Connection(clock0.neurons, clock.neurons, transform=4.0 * np.eye(n, 1), synapse=None)  # v = 2 > 1
            if n > 1:
                nengo.Connection(clock.neurons, clock.neurons, transform=4.0 * np.eye(n, k=-1), synapse=None)
        ens, probes, pre = {}, {}, node
        for k, x in enumerate(layers):
            e = ensemble(x.size, _neuron_type(x, dt, k == 0), x.bias if k == 0 else np.zeros(x.size), x.name, host=k == 0)
            if k and shapes[x.name] != x.shape:
                net.config[e].block_shape = nengo_loihi.BlockShape(shapes[x.name], x.shape)
            nengo.Connection(pre, e.neurons, transform=_transform(x), synapse=None)
            if k in biased:  # layer k's bias from the clock neuron k - 1 steps behind clock0
                nengo.Connection(clock0.neurons if k == 1 else clock.neurons[k - 2], e.neurons, transform=x.bias[:, None], synapse=None)
            ens[x.name], probes[x.name], pre = e, nengo.Probe(e.neurons, synapse=None), e.neurons
    return LoihiNet(net, node, probes[layers[-1].name], readout.shape[0], ens, probes, readout, offset, in_shape, dt, shapes, feeder)


def board_size(model):
    """``(n_cores, n_chips)`` of a built nengo-loihi model: a core per block after splitting,
    placed on 128-core chips by nengo-loihi's ``Greedy`` allocator (hardware's own)."""
    from nengo_loihi.hardware.allocators import Greedy

    n = len(model.blocks)
    if not n or next(iter(model.blocks)).compartment.vth.dtype != np.int32:
        return n, -(-n // 128)  # not discretised ("simreal"): the allocator's rule by hand
    board = Greedy()(model, n_chips=n)
    return int(sum(board.n_cores_per_chip)), int(board.n_chips)


def _reset(sim):
    """Zero the emulator's and host's neuron state and drop spikes in flight (nengo-loihi
    1.1 has no ``Simulator.reset``); time and probes go on."""
    state = sim.sims["emulator"].compartment
    for a in (state.input, state.current, state.voltage, state.ref_count, state.spiked):
        a[...] = 0
    for spike_input in sim.model.inputs:
        spike_input.spikes.clear()  # host spikes of the last step, not yet delivered
    for host in ("host_pre", "host"):
        if host in sim.sims:
            for obj, sig in sim.sims[host].model.sig.items():
                if isinstance(obj, nengo.ensemble.Neurons) and "voltage" in sig:
                    sim.sims[host].signals[sig["voltage"]][...] = 0


def _simulator(nengo_loihi, net, target):
    with warnings.catch_warnings(), np.errstate(divide="ignore"):  # LIF intercepts at gain 1, bias 0
        warnings.filterwarnings("ignore", "invalid value encountered in cast")  # emulator's NaN init
        try:
            return nengo_loihi.Simulator(net.network, dt=net.dt, target=target, precompute=True, progress_bar=False)
        except nengo.exceptions.BuildError as e:
            raise NIRError(f"nengo-loihi cannot place the network ({e}); pass smaller block_shapes") from None


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
    """Run clips ``x`` (clips, T, H*W*C) through ``graph`` on nengo-loihi (see the module);
    ``net``: a :class:`LoihiNet` of ``graph`` already built."""
    from tqdm import tqdm

    nengo_loihi = _nengo_loihi()
    t0 = time.perf_counter()
    net = net or loihi_network(graph, dt=dt, block_shapes=block_shapes)
    c, h, w = net.input_shape if len(net.input_shape) == 3 else (net.input_shape[0], 1, 1)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != c * h * w:
        raise DataError(f"x: shape {x.shape}, expected (clips, T, {c * h * w}) for the graph's input {net.input_shape}")
    if int(steps_per_frame) < 1:
        raise DataError(f"steps_per_frame: {steps_per_frame}, must be >= 1")
    clips, frames, spf = x.shape[0], x.shape[1], int(steps_per_frame)
    names = list(net.layers)
    steps, lag = frames * spf, len(names) - 1  # chip layer k is k steps behind
    outputs, spikes = np.zeros((clips, frames, net.n_outputs)), dict.fromkeys(names, 0.0)
    sim = _simulator(nengo_loihi, net, target) if target != "loihi" else None
    model, build_seconds, t1 = sim and sim.model, time.perf_counter() - t0, time.perf_counter()
    with tqdm(total=clips, desc=f"loihi {target}", unit="clip", disable=not progress, dynamic_ncols=True) as bar:
        for i in range(clips):
            if target == "loihi":  # the chip's state cannot be reset in place
                sim = _simulator(nengo_loihi, net, target)
                model = sim.model
            elif i:
                _reset(sim)
            clip = x[i].reshape(frames, h, w, c).transpose(0, 3, 1, 2).reshape(frames, -1)  # channels first
            net.feeder.frames, net.feeder.start = np.repeat(clip, spf, axis=0), sim.n_steps
            sim.run_steps(steps + lag)
            for k, name in enumerate(names):
                s = sim.data[net.probes[name]][k : k + steps]  # 1 per spike (amplitude = dt)
                spikes[name] += s.sum() / clips
            rates = s.reshape(frames, spf, -1).mean(axis=1)
            outputs[i] = rates @ net.readout.T + net.offset
            sim.clear_probes()
            if target == "loihi":
                sim.close()
            bar.update()
    seconds = time.perf_counter() - t1
    sim.close()
    n_cores, n_chips = board_size(model)
    return LoihiRun(outputs, n_cores, n_chips, spikes, seconds, clips / max(seconds, 1e-9), build_seconds, steps + lag)


__all__ = ["DiscreteNeurons", "Layer", "LoihiNet", "LoihiRun", "MISSING", "board_size", "default_block_shape",
           "loihi_network", "parse_graph", "run_loihi"]
