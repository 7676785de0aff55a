#!/usr/bin/env python3
"""Peer side of a NIR exchange benchmark: train, export and run NIR graphs with SpikingJelly / snnTorch.

Runs in the peer kit's venv (``/tmp/peers-venv``: torch, spikingjelly, snntorch, nir, nirtorch) on
the ``.npz`` of ``peer_train_dvs.py`` (x: (N, T, H, W, 2) counts, channels last; y; n_classes)::

    python benchmarks/peer_nir.py train --framework spikingjelly --data frames.npz --out runs/sj
    python benchmarks/peer_nir.py train --framework snntorch --data frames.npz --out runs/snn
    python benchmarks/peer_nir.py run-nir --nir runs/sj/model.nir --data frames.npz --json sj_in_snn.json
    python benchmarks/peer_nir.py selftest --out selftest_dir

``train``: DVSGestureNet's stack with average pooling: {Conv3x3(C, no bias) - BN2d - LIF -
AvgPool2d(2)} x 5 - Flatten - Dropout(0.5) - Linear(C*(H//32)*(W//32) -> 512, no bias) - BN1d -
LIF - Dropout(0.5) - Linear(512 -> 10n, no bias) - BN1d - LIF - Voting(10). SpikingJelly: LIFNode(
tau=2, decay_input, v_reset=0, v_th=1, ATan, detach_reset), step mode 'm' (one Dropout mask for all
T, BN statistics over T*B); snnTorch: Leaky(beta=0.5, threshold=1, reset "zero", atan,
init_hidden=True) in a Python loop over T (Dropout mask and BN statistics per step). Adam,
CosineAnnealingLR per epoch, MSE(mean-over-T output, one-hot), reset after each batch; x_train
only, x_test after the last epoch. Export: eval mode, BN folded into the preceding Conv2d/Linear,
Dropout dropped, Voting -> fixed ``Linear(10n -> n)`` of 1/10 blocks, AvgPool2d with (2, 2) pairs.
The folded net and both importers re-run x_test; their agreement with the trained net
(predictions, output sums) goes to ``DIR/peer.json`` with versions, config, losses, seconds,
accuracy, predictions, NIR node types, edges and LIF tau/r. ``run-nir``: ``nir.read`` + snnTorch's
``import_from_nir``; per x_test clip one unbatched (2, H, W) float32 frame per step, reset between
clips; prediction = argmax of the output summed over T, rounded to 1e-5 so float-order noise does
not break voting ties (ties -> lowest index). ``selftest``: a small random graph in the project's
conventions (Input (2,H,W); Conv2d pad 1; LIF tau = tau_steps*1e-4, r=1, v_leak=v_reset=0, v_th=1;
AvgPool2d; Flatten; Affine; voting Linear; Output) through run-nir's code and a numpy reference of
v <- v + (I - v)/tau_steps, spike at v >= 1, reset to 0 (exit 1 on disagreement).

Quirks (snntorch 1.0.0, nirtorch 2.6, spikingjelly 2.0.0, nir 1.0.8):

* snnTorch's importer returns a ``torch.fx.GraphModule`` (nirtorch ``nir_to_torch``): ``out, state
  = gm(x, state)``, but ``state`` stays a dict of Nones: its ``Leaky`` modules have
  ``init_hidden=True``, so membranes live in the modules; reset them (``reset_mem()`` on each
  ``snn.Leaky``) between clips, state=None is not enough.
* NIR LIF -> ``Leaky(beta = 1 - dt/tau, threshold = v_th / (r*dt/tau), reset "zero",
  reset_delay=False)``, dt = 1e-4 fixed, per-neuron beta (Input shape must match the data). r = 1
  (SpikingJelly, project) gives a membrane scaled by tau_steps (threshold 2 at tau 2) and prints a
  "[warning] scaling weights" block per LIF. Fires at mem > thr (SpikingJelly, project: >=).
* Its ``Flatten`` keeps NIR's batch-less start_dim 0, flattening any batch too: feed unbatched
  frames. SpikingJelly's importer (``nir_exchange.from_nir``) shifts dims and batches fine.
* snnTorch's exporter (deprecated ``nirtorch.extract_nir_graph``, forward hooks) wants a Sequential
  of ``init_hidden=True`` Leaky, ``ignore_dims=[0]`` (else Input keeps the batch) and per-neuron
  beta/threshold (scalars give 0-d LIF params: ``infer_types`` type mismatch). It writes LIF tau =
  dt/(1-beta) (float32: 1.9999999e-4), r = tau/dt = 2 (mem = beta*mem + x); Affine / Linear for
  Linear with / without bias; nodes "0".."20", "input", "output".
* SpikingJelly's exporter traces with torch.fx in step mode 's' (fold BN first); LIF r = 1, tau =
  2e-4; nodes "_0".."_20", "input_1", "output". Neither exporter takes ``nn.Identity``
  (SpikingJelly: KeyError; nirtorch hooks: cyclic edge), so Dropout is dropped, not replaced.
* torch with 2 threads on a busy 2-core machine ran these unbatched steps 10-20x slower than with
  1: run-nir defaults to --threads 1.
"""
import argparse
import contextlib
import copy
import io
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_train_dvs import cpu_name, load, to_sj, write_json  # same folder (sys.path[0])

import nir  # noqa: E402
import snntorch as snn  # noqa: E402
from snntorch import surrogate as snn_surrogate  # noqa: E402
from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402

DT = 1e-4
BN = nn.modules.batchnorm._BatchNorm


class Voting(nn.Module):
    def forward(self, x):  # mean of each consecutive group of 10 (last dim)
        return x.reshape(*x.shape[:-1], -1, 10).mean(-1)


def build_net(framework, c, h, w, n_classes):
    flat = c * (h // 32) * (w // 32)
    if flat == 0:
        raise SystemExit(f"input {h}x{w} is too small for 5 pools of 2 (needs at least 32x32)")
    sj = framework == "spikingjelly"
    L = layer if sj else nn

    def lif():
        if sj:
            return neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                  surrogate_function=surrogate.ATan(), detach_reset=True)
        return snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", spike_grad=snn_surrogate.atan(),
                         init_hidden=True)
    mods = []
    for i in range(5):
        mods += [L.Conv2d(2 if i == 0 else c, c, 3, padding=1, bias=False), L.BatchNorm2d(c), lif(),
                 L.AvgPool2d((2, 2), (2, 2), (0, 0))]  # pairs: snnTorch's importer calls tuple() on them
    mods += [L.Flatten(), L.Dropout(0.5), L.Linear(flat, 512, bias=False), L.BatchNorm1d(512), lif(),
             L.Dropout(0.5), L.Linear(512, n_classes * 10, bias=False), L.BatchNorm1d(n_classes * 10),
             lif(), layer.VotingLayer(10) if sj else Voting()]
    net = nn.Sequential(*mods)
    if sj:
        functional.set_step_mode(net, "m")
    return net


def reset(net):
    functional.reset_net(net)  # SpikingJelly neurons and Dropout masks
    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron) and hasattr(m, "reset_mem"):
            m.reset_mem()  # snnTorch init_hidden neurons keep mem in the module


def forward_seq(net, x_seq, multi_step):
    """[T, B, ...] -> [T, B, out]: one call (SpikingJelly 'm') or a Python loop over T."""
    return net(x_seq) if multi_step else torch.stack([net(x) for x in x_seq])


def argmax_votes(total):
    return np.argmax(np.round(np.asarray(total, np.float64), 5), axis=-1)


def predict(net, x, multi_step, batch_size=16):
    """(predictions, output sums over T) per clip."""
    net.eval()
    totals = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            x_seq = to_sj(x[i:i + batch_size]).to(next(net.parameters()).dtype)
            totals.append(forward_seq(net, x_seq, multi_step).double().sum(0).numpy())
            reset(net)
    totals = np.concatenate(totals)
    return argmax_votes(totals), totals


def parameters(net):
    """``{name: array}``, a copy of ``net``'s parameters and BN statistics as they are now."""
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def train(net, x, y, n_classes, args, multi_step, orders=None, snapshots=None):
    """Trains ``net``; each epoch's clip order is appended to ``orders`` and the parameters
    after the first optimizer step and after each epoch are put in ``snapshots``
    (``"step1"``, ``"epoch1"``, ...) when given."""
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    dtype = next(net.parameters()).dtype
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    rng = np.random.default_rng(args.seed)
    epochs = []
    for ep in range(args.epochs):
        net.train()
        lr, order, t0 = opt.param_groups[0]["lr"], rng.permutation(len(y)), time.perf_counter()
        if orders is not None:
            orders.append(order)
        loss_sum = correct = 0.0
        for i in range(0, len(y), args.batch_size):
            idx = np.sort(order[i:i + args.batch_size])
            labels = torch.from_numpy(y[idx])
            opt.zero_grad()
            out_fr = forward_seq(net, to_sj(x[idx]).to(dtype), multi_step).mean(0)
            loss = F.mse_loss(out_fr, F.one_hot(labels, n_classes).to(dtype))
            loss.backward()
            opt.step()
            if snapshots is not None and "step1" not in snapshots:
                snapshots["step1"] = parameters(net)
            reset(net)
            loss_sum += loss.item() * len(idx)
            correct += int((out_fr.argmax(1) == labels).sum())
        sched.step()
        if snapshots is not None:
            snapshots[f"epoch{ep + 1}"] = parameters(net)
        e = dict(epoch=ep + 1, lr=lr, train_loss=loss_sum / len(y), train_acc=correct / len(y),
                 train_s=time.perf_counter() - t0)
        epochs.append(e)
        print("epoch {epoch} lr {lr:.2e} loss {train_loss:.5f} train_acc {train_acc:.4f} {train_s:.1f} s"
              .format(**e), flush=True)
    return epochs


def fold_bn(lin, bn):
    """Conv2d/Linear followed by eval BN -> one plain Conv2d/Linear with bias."""
    s = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    b = bn.bias.detach() - bn.running_mean * s + (0 if lin.bias is None else lin.bias.detach() * s)
    if isinstance(lin, nn.Conv2d):
        new = nn.Conv2d(lin.in_channels, lin.out_channels, lin.kernel_size, lin.stride, lin.padding)
    else:
        new = nn.Linear(lin.in_features, lin.out_features)
    new.weight.data = lin.weight.detach() * s.view(-1, *[1] * (lin.weight.dim() - 1))
    new.bias.data = b.clone()
    return new


def fold_net(net, n_classes):
    """Exportable copy: BN folded, Dropout dropped, voting as a fixed Linear, plain torch layers."""
    mods, out = list(net), []
    for m, nxt in zip(mods, mods[1:] + [None]):
        if isinstance(m, (BN, nn.Dropout, layer.Dropout)):
            continue
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            out.append(fold_bn(m, nxt) if isinstance(nxt, BN) else copy.deepcopy(m))
        elif isinstance(m, (Voting, layer.VotingLayer)):
            out.append(nn.Linear(n_classes * 10, n_classes, bias=False))
            out[-1].weight.data = torch.kron(torch.eye(n_classes), torch.full((1, 10), 0.1))
        elif isinstance(m, nn.AvgPool2d):
            out.append(nn.AvgPool2d(m.kernel_size, m.stride, m.padding))
        elif isinstance(m, nn.Flatten):
            out.append(nn.Flatten(m.start_dim, m.end_dim))
        elif isinstance(m, (neuron.BaseNode, snn.SpikingNeuron)):
            out.append(copy.deepcopy(m))
        else:
            raise SystemExit(f"fold_net: unexpected module {m}")
    folded = nn.Sequential(*out).eval()
    functional.set_step_mode(folded, "s")
    reset(folded)
    return folded


def export(framework, folded, h, w):
    example = torch.zeros(1, 2, h, w)
    if framework == "spikingjelly":
        from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir
        return export_to_nir(folded, example, dt=DT)
    from snntorch.export_nir import export_to_nir
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.update({m: i[0].shape[1:]}))
             for m in folded if isinstance(m, snn.Leaky)]
    with torch.no_grad():
        folded(example)
    for hk in hooks:
        hk.remove()
    for m, shape in shapes.items():  # per-neuron params: scalars export as 0-d and fail infer_types
        m.beta, m.threshold = torch.full(shape, float(m.beta)), torch.full(shape, float(m.threshold))
    reset(folded)
    graph = export_to_nir(folded, example, ignore_dims=[0])
    reset(folded)
    return graph


def import_snntorch(graph):
    from snntorch.import_nir import import_from_nir
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):  # it prints a "[warning] scaling weights" block per LIF
        gm = import_from_nir(graph)
    return gm.eval(), buf.getvalue().count("[warning] scaling weights")


def run_snntorch_import(gm, x):
    """Per clip, per step one unbatched (2, H, W) frame; (predictions, output sums over T)."""
    totals = []
    with torch.inference_mode():
        for clip in x:
            reset(gm)
            state, total = None, 0.0
            for frame in clip:  # (H, W, 2) -> (2, H, W)
                out, state = gm(torch.from_numpy(np.ascontiguousarray(frame.transpose(2, 0, 1), np.float32)), state)
                total = total + out.double()
            totals.append(total.numpy())
    return argmax_votes(np.array(totals)), np.array(totals)


def run_sj_import(graph, x, batch_size=16):
    from spikingjelly.activation_based.nir_exchange.from_nir import import_from_nir
    gm = import_from_nir(graph, dt=DT, step_mode="s").eval()
    totals = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            state, total = None, 0.0
            for frame in to_sj(x[i:i + batch_size]):
                out, state = gm(frame, state)  # explicit state: pass it back every step
                total = total + out.double()
            totals.append(total.numpy())
    return argmax_votes(np.concatenate(totals)), np.concatenate(totals)


def graph_info(g):
    return dict(node_types={k: type(v).__name__ for k, v in g.nodes.items()}, edges=sorted(map(list, g.edges)),
                lif={k: dict(tau=float(np.unique(v.tau)[0]), r=float(np.unique(v.r)[0]),
                             v_threshold=float(np.unique(v.v_threshold)[0]))
                     for k, v in sorted(g.nodes.items()) if isinstance(v, nir.LIF)})


def versions():
    import importlib.metadata as md
    import platform
    return dict(python=platform.python_version(), torch=torch.__version__,
                **{p: md.version(p) for p in ("spikingjelly", "snntorch", "nir", "nirtorch", "numpy")})


def recorded_draws(net):
    """What a training run draws at random, recorded as it happens: the initial
    parameters, each epoch's clip order (``train`` appends it), every dropout mask, in
    call order (one per minibatch and Dropout layer, shared by the T steps), and the
    parameters after the first step and each epoch (``train`` fills ``snapshots``), which
    the replay compares its own with."""
    draws = {"init": parameters(net), "orders": [], "masks": [],
             "snapshots": {}}
    for k, m in enumerate(m for m in net.modules() if isinstance(m, layer.Dropout)):
        draws["masks"].append([])

        def create_mask(x, m=m, kept=draws["masks"][k]):
            mask = layer.Dropout.create_mask(m, x)
            kept.append(mask.detach().numpy() != 0)
            return mask

        m.create_mask = create_mask
    return draws


def save_draws(path, draws, y_train, net):
    """``draws`` as one .npz: ``init/<name>``, ``orders`` (epochs, clips), per Dropout layer
    ``mask<k>`` (its masks stacked, packed bits) with ``mask<k>_shape``, and the trained
    parameters ``final/<name>`` that a replay is compared with."""
    arrays = {f"init/{k}": v for k, v in draws["init"].items()}
    for name, state in draws["snapshots"].items():
        arrays.update({f"{name}/{k}": v for k, v in state.items()})
    arrays.update({f"final/{k}": v for k, v in parameters(net).items()})
    for k, masks in enumerate(draws["masks"]):
        stacked = np.concatenate(masks)
        arrays[f"mask{k}"], arrays[f"mask{k}_shape"] = np.packbits(stacked), np.array(stacked.shape)
    np.savez_compressed(path, orders=np.array(draws["orders"]), y_train=y_train, **arrays)


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    data, n_classes = load(args.data, args.max_train, 0, args.max_test)
    (x_tr, y_tr), (x_te, y_te) = data["train"], data["test"]
    _, T, H, W, _ = x_tr.shape
    sj, jpath = args.framework == "spikingjelly", os.path.join(args.out, "peer.json")
    net = build_net(args.framework, args.channels, H, W, n_classes)
    if args.float64:
        net = net.double()  # torch's initial draws are float32, so this keeps them exactly
    res = dict(framework=args.framework, versions=versions(), cpu=cpu_name(), cores=os.cpu_count(),
               config=dict(vars(args), n_classes=n_classes, T=T, H=H, W=W, n_train=len(y_tr), n_test=len(y_te),
                           n_params=sum(p.numel() for p in net.parameters()), torch_threads=torch.get_num_threads()))
    print(args.framework, {k: res["config"][k] for k in ("n_params", "n_train", "n_test", "T", "H", "W")}, flush=True)
    draws = recorded_draws(net) if args.draws else None
    t0 = time.perf_counter()
    res["epochs"] = train(net, x_tr, y_tr, n_classes, args, multi_step=sj, orders=draws and draws["orders"],
                          snapshots=draws and draws["snapshots"])
    if draws:
        save_draws(args.draws, draws, y_tr, net)
    res["train_s"], t0 = time.perf_counter() - t0, time.perf_counter()
    pred, tot = predict(net, x_te, multi_step=sj)
    res.update(test_eval_s=time.perf_counter() - t0, test_accuracy=float((pred == y_te).mean()),
               test_predictions=pred.tolist(), test_labels=y_te.tolist(),
               test_silent_clips=int((tot == 0).all(1).sum()), test_mean_output_sum=float(tot.sum(1).mean()))
    print(f"test accuracy {res['test_accuracy']:.4f}; {res['test_silent_clips']} silent clips", flush=True)
    write_json(jpath, res)
    if args.no_export:
        return

    folded = fold_net(net, n_classes)
    path = os.path.join(args.out, "model.nir")
    nir.write(path, export(args.framework, folded, H, W))
    g2 = nir.read(path)
    res["nir"] = dict(file="model.nir", dt=DT, **graph_info(g2))
    res["export_agreement"] = agree = {}
    checks = [("folded_torch", lambda: predict(folded, x_te, multi_step=False)),
              ("snntorch_import", lambda: run_snntorch_import(import_snntorch(g2)[0], x_te)),
              ("spikingjelly_import", lambda: run_sj_import(g2, x_te))]
    for name, fn in checks:
        try:
            p, t = fn()
            agree[name] = dict(agreement=float((p == pred).mean()), accuracy=float((p == y_te).mean()),
                               max_abs_output_sum_diff=float(np.abs(t - tot).max()),
                               clips_with_output_diff=int((np.abs(t - tot) > 1e-5).any(1).sum()))
        except Exception as e:  # record it; the other checks still say something
            agree[name] = dict(error=f"{type(e).__name__}: {e}")
        print(f"export check {name}: {agree[name]}", flush=True)
    write_json(jpath, res)
    print("wrote", path, "and", jpath)


def cmd_run_nir(args):
    torch.set_num_threads(args.threads)
    z = np.load(args.data, allow_pickle=False)
    x, y = z["x_test"][:args.max_test], z["y_test"].astype(np.int64)[:args.max_test]
    graph = nir.read(args.nir)
    inp = [np.asarray(v.output_type["output"]).tolist() for v in graph.nodes.values() if isinstance(v, nir.Input)]
    if inp != [[2, *x.shape[2:4]]]:
        raise SystemExit(f"{args.nir}: Input {inp} does not take (2, H, W) = {[2, *x.shape[2:4]]} frames")
    gm, n_warn = import_snntorch(graph)
    t0 = time.perf_counter()
    pred = run_snntorch_import(gm, x)[0]
    res = dict(nir=args.nir, data=args.data, importer="snntorch.import_nir.import_from_nir", versions=versions(),
               torch_threads=torch.get_num_threads(), import_scaling_warnings=n_warn, n_clips=len(y),
               seconds=time.perf_counter() - t0, accuracy=float((pred == y).mean()), predictions=pred.tolist(),
               labels=y.tolist(), **graph_info(graph))
    write_json(args.json, res)
    print(f"{args.nir}: accuracy {res['accuracy']:.4f} on {len(y)} clips, {res['seconds']:.1f} s; wrote {args.json}")


def make_project_graph(rng, h=16, w=16, c=4, n_classes=3, tau_steps=(2.0, 3.0, 2.0, 4.0)):
    """Chain graph in the project exporter's conventions, random weights sized for some spiking."""
    def lif(shape, ts):
        return nir.LIF(tau=np.full(shape, ts * DT), r=np.ones(shape), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape), v_reset=np.zeros(shape))

    def conv(cin, hw):
        return nir.Conv2d(input_shape=hw, weight=rng.normal(0, 1 / np.sqrt(cin), (c, cin, 3, 3)).astype(np.float32),
                          stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1,
                          bias=rng.normal(0.8, 0.3, c).astype(np.float32))

    def affine(n_out, n_in, scale, bias):
        return nir.Affine(weight=rng.normal(0, scale / np.sqrt(n_in), (n_out, n_in)).astype(np.float32),
                          bias=rng.normal(bias, 0.3, n_out).astype(np.float32))

    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nflat, nh = c * (h // 4) * (w // 4), n_classes * 10
    nodes = {"input": nir.Input(input_type=np.array([2, h, w])),
             "conv0": conv(2, (h, w)), "lif0": lif((c, h, w), tau_steps[0]), "pool0": nir.AvgPool2d(**pool),
             "conv1": conv(c, (h // 2, w // 2)), "lif1": lif((c, h // 2, w // 2), tau_steps[1]),
             "pool1": nir.AvgPool2d(**pool),
             "flat": nir.Flatten(input_type={"input": np.array([c, h // 4, w // 4])}, start_dim=0, end_dim=-1),
             "fc0": affine(24, nflat, 3, 1.0), "lif2": lif((24,), tau_steps[2]),
             "fc1": affine(nh, 24, 6, 0.9), "lif3": lif((nh,), tau_steps[3]),
             "vote": nir.Linear(weight=np.kron(np.eye(n_classes), np.full((1, 10), 0.1)).astype(np.float32)),
             "output": nir.Output(output_type=np.array([n_classes]))}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(list(nodes)[:-1], list(nodes)[1:])))


def numpy_reference(graph, clip):
    """Discrete-time run of a chain graph: (per-step outputs [T, out], mean spike rate per LIF)."""
    order, nxt = [], dict(graph.edges)
    k = next(n for n, v in graph.nodes.items() if isinstance(v, nir.Input))
    while k in nxt:
        k = nxt[k]
        order.append(k)
    v = {n: 0.0 for n in order if isinstance(graph.nodes[n], nir.LIF)}
    outs, rates = [], dict.fromkeys(v, 0.0)
    for frame in clip:
        a = frame.transpose(2, 0, 1).astype(np.float64)
        for n in order:
            nd = graph.nodes[n]
            if isinstance(nd, nir.Conv2d):  # stride 1, 'same' padding (3x3, pad 1)
                assert np.all(np.asarray(nd.stride) == 1) and np.all(np.asarray(nd.padding) == 1)
                ap, (_, hh, ww) = np.pad(a, ((0, 0), (1, 1), (1, 1))), a.shape
                a = nd.bias[:, None, None] + sum(np.einsum("oc,chw->ohw", nd.weight[:, :, i, j],
                                                           ap[:, i:i + hh, j:j + ww])
                                                 for i in range(3) for j in range(3))
            elif isinstance(nd, nir.AvgPool2d):
                s = int(np.asarray(nd.kernel_size).flat[0])
                assert np.all(np.asarray(nd.stride) == s) and not np.any(nd.padding)
                C, hh, ww = a.shape
                a = a[:, :hh // s * s, :ww // s * s].reshape(C, hh // s, s, ww // s, s).mean((2, 4))
            elif isinstance(nd, nir.Flatten):
                a = a.reshape(-1)
            elif isinstance(nd, (nir.Affine, nir.Linear)):
                a = nd.weight @ a + (nd.bias if isinstance(nd, nir.Affine) else 0)
            elif isinstance(nd, nir.LIF):
                v[n] = v[n] + (nd.r * a + nd.v_leak - v[n]) / (nd.tau / DT)
                a = (v[n] >= nd.v_threshold).astype(np.float64)
                v[n] = np.where(a > 0, nd.v_reset, v[n])
                rates[n] += a.mean() / len(clip)
        outs.append(a)
    return np.array(outs), rates


def cmd_selftest(args):
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "project_style.nir")
    nir.write(path, make_project_graph(rng))
    graph = nir.read(path)
    rate = rng.uniform(0.1, 1.5, (args.clips, 1, 4, 4, 2)).repeat(4, 2).repeat(4, 3)  # per-clip 4x4 pattern
    x = rng.poisson(rate, (args.clips, 6, 16, 16, 2)).astype(np.uint16)
    ref, rates = zip(*(numpy_reference(graph, clip) for clip in x))
    ref_sum = np.array([r.sum(0) for r in ref])
    ref_pred = argmax_votes(ref_sum)
    gm, n_warn = import_snntorch(graph)
    pred, totals = run_snntorch_import(gm, x)
    sj_pred, sj_totals = run_sj_import(graph, x)
    res = dict(graph=path, clips=args.clips, ref_predictions=ref_pred.tolist(),
               agreement_snntorch=float((pred == ref_pred).mean()),
               max_abs_output_sum_diff_snntorch=float(np.abs(totals - ref_sum).max()),
               agreement_spikingjelly=float((sj_pred == ref_pred).mean()),
               max_abs_output_sum_diff_spikingjelly=float(np.abs(sj_totals - ref_sum).max()),
               distinct_ref_predictions=len(set(ref_pred.tolist())),
               spike_rates={n: float(np.mean([r[n] for r in rates])) for n in rates[0]},
               import_scaling_warnings=n_warn, **graph_info(graph))
    write_json(os.path.join(args.out, "selftest.json"), res)
    print("spike rates {spike_rates}\nnumpy vs snntorch import: agreement {agreement_snntorch:.4f}, max |output sum "
          "diff| {max_abs_output_sum_diff_snntorch:.2e}; numpy vs spikingjelly import: {agreement_spikingjelly:.4f}, "
          "{max_abs_output_sum_diff_spikingjelly:.2e}; {clips} clips, {distinct_ref_predictions} classes predicted"
          .format(**res))
    return 0 if res["agreement_snntorch"] == 1.0 and res["max_abs_output_sum_diff_snntorch"] < 1e-4 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train, test, fold, export to NIR, check the export")
    t.add_argument("--framework", choices=("spikingjelly", "snntorch"), required=True)
    t.add_argument("--out", required=True, help="folder for model.nir and peer.json")
    for name, typ, default in (("--epochs", int, 10), ("--seed", int, 0), ("--channels", int, 32),
                               ("--lr", float, 3e-3), ("--batch-size", int, 16), ("--threads", int, 2),
                               ("--max-train", int, None), ("--max-test", int, None)):
        t.add_argument(name, type=typ, default=default)
    t.add_argument("--no-export", action="store_true", help="train and test only (no NIR file, no export checks)")
    t.add_argument("--float64", action="store_true", help="train and test in double precision")
    t.add_argument("--draws", help="also write the run's random draws (initial weights, clip orders, dropout masks) "
                   "to this .npz, for a replay by benchmarks/shared_draws.py")
    r = sub.add_parser("run-nir", help="run a NIR graph on x_test with snnTorch's importer")
    r.add_argument("--nir", required=True)
    r.add_argument("--json", required=True)
    r.add_argument("--max-test", type=int)
    s = sub.add_parser("selftest", help="hand-made project-style graph: importers vs a numpy reference")
    s.add_argument("--out", required=True)
    s.add_argument("--clips", type=int, default=40)
    s.add_argument("--seed", type=int, default=0)
    for p in (t, r):
        p.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test, n_classes")
    for p in (r, s):
        p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    return {"train": cmd_train, "run-nir": cmd_run_nir, "selftest": cmd_selftest}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
