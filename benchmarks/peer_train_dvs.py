#!/usr/bin/env python3
"""Train and test SpikingJelly's DVS128 Gesture network on framed event data from an .npz file.

This is the peer side of a training comparison: the same frames, network size, T and
number of epochs can be given to another toolkit and both timed on one machine. It runs
in the peer kit's virtual environment (``bash ../shared/peers/setup_peers.sh`` makes
``/tmp/peers-venv``) and needs only torch, numpy and spikingjelly::

    /tmp/peers-venv/bin/python benchmarks/peer_train_dvs.py --data frames.npz --epochs 10 --json out.json

Input (``np.load(path, allow_pickle=False)``):

* ``x_train`` (N, T, H, W, 2): event counts per frame, channels last with polarity last;
  float32, uint8 or uint16. ``y_train`` (N,): integer labels.
* ``x_val`` / ``y_val``: the same, possibly empty (N=0); ``x_test`` / ``y_test``.
* ``n_classes`` (optional scalar); otherwise the largest label + 1 over all splits.

Each batch is converted to SpikingJelly's layout ``[T, B, 2, H, W]`` float32.

Network: ``parametric_lif_net.DVSGestureNet`` built as the peer kit's ``bench_peers.py``
builds it: {Conv3x3(channels) - BN - LIFNode(tau=2, ATan surrogate, detach_reset=True) -
MaxPool2d(2)} x 5 - Flatten - Dropout(0.5) - Linear(512) - LIF - Dropout(0.5) -
Linear(n_classes*10) - LIF - VotingLayer(10), step mode 'm'. The first Linear is sized for
the actual H, W (``C * (H // 32) * (W // 32)``) and the last for ``n_classes``;
``--neuron plif`` uses ``ParametricLIFNode(init_tau=2)`` instead of ``LIFNode``.

Training follows SpikingJelly's ``activation_based/examples/classify_dvsg.py``: Adam
(``--lr``, default 1e-3), CosineAnnealingLR stepped once per epoch over ``--epochs``, batch
size ``--batch-size`` (16), loss ``F.mse_loss(out_fr, one_hot)`` with ``out_fr`` the output
firing rate averaged over T, ``functional.reset_net`` after every batch. The training set
is shuffled every epoch by a generator seeded with ``--seed`` (which also seeds torch).
The last, smaller batch is kept unless ``--drop-last`` (the example's DataLoader drops it).
torch uses ``--threads`` threads (2, as in the peer kit).

After each epoch's training pass, val (if any) and test are evaluated with ``net.eval()``
under ``torch.inference_mode``; the prediction is the argmax of the mean output rate.

JSON (``--json``, rewritten atomically after every epoch, via a temp file and os.replace):

* ``config``: arguments, data shapes and dtypes, n_classes, parameter count, torch
  threads, library versions, CPU, date.
* ``epochs``: per epoch ``epoch``, ``lr``, ``train_loss``, ``train_acc``, ``train_s``,
  ``val_acc`` (null without val), ``test_acc``, ``eval_s`` (val + test).
* ``summary``: ``train_s_total`` (training passes only), ``wall_s_total`` (whole run,
  including data loading and network construction), ``selected_epoch`` and
  ``selected_test_acc`` (the epoch with the best val accuracy, the first one on ties; the
  last epoch without val), ``max_test_acc`` and its epoch, ``train_samples_per_s`` and
  ``infer_samples_per_s`` (samples over the seconds of all training / evaluation passes),
  ``epochs_done``.

With the reduced first Linear (e.g. 128 inputs at c=32, 64x64) the FC layers are silent at
the start, so the loss sits at its no-spike value (1 / n_classes) until a few dozen Adam
steps have passed.

Training seconds cover the batch conversion from numpy, forward, loss, backward, the Adam
step and the reset; evaluation seconds cover conversion, forward and reset.
"""
import argparse
import datetime
import inspect
import json
import logging
import os
import platform
import sys
import tempfile
import time

T_START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# spikingjelly registers ops at import; the CPU torch build then warns "Triton not available"
logging.getLogger("torch._library.triton").setLevel(logging.ERROR)

from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model import parametric_lif_net  # noqa: E402


def build_net(channels, h, w, n_classes, neuron_kind="lif"):
    """DVSGestureNet with the first Linear resized for (h, w) and the last for n_classes."""
    kw = dict(surrogate_function=surrogate.ATan(), detach_reset=True)
    if neuron_kind == "plif":
        node, kw["init_tau"] = neuron.ParametricLIFNode, 2.0
    else:
        node, kw["tau"] = neuron.LIFNode, 2.0
    if "backend" in inspect.signature(node.__init__).parameters:
        kw["backend"] = "torch"  # older spikingjelly; 2.x picks its CPU (pure torch) kernel by device
    net = parametric_lif_net.DVSGestureNet(channels=channels, spiking_neuron=node, **kw)
    functional.set_step_mode(net, "m")
    flat = channels * (h // 32) * (w // 32)  # after 5 max-pools of 2 (floor each time)
    if flat == 0:
        raise SystemExit(f"input {h}x{w} is too small for 5 max-pools of 2 (needs at least 32x32)")
    lin = [i for i, m in enumerate(net.conv_fc) if isinstance(m, nn.Linear)]
    first, last = lin[0], lin[-1]
    if net.conv_fc[first].in_features != flat:
        net.conv_fc[first] = layer.Linear(flat, net.conv_fc[first].out_features, step_mode="m")
    if net.conv_fc[last].out_features != n_classes * 10:
        net.conv_fc[last] = layer.Linear(net.conv_fc[last].in_features, n_classes * 10, step_mode="m")
    return net


def to_sj(x_np):
    """(B, T, H, W, 2) counts -> [T, B, 2, H, W] float32 tensor."""
    x = torch.from_numpy(np.ascontiguousarray(x_np, dtype=np.float32))
    return x.permute(1, 0, 4, 2, 3).contiguous()


def load(path, max_train, max_val, max_test):
    z = np.load(path, allow_pickle=False)
    data = {}
    for split, cap in (("train", max_train), ("val", max_val), ("test", max_test)):
        kx, ky = f"x_{split}", f"y_{split}"
        if kx in z.files and ky in z.files:
            x, y = z[kx], z[ky].astype(np.int64).reshape(-1)
        elif split == "val":
            x, y = np.zeros((0,), np.float32), np.zeros((0,), np.int64)
        else:
            raise SystemExit(f"{path}: missing {kx} / {ky}")
        if cap is not None:
            x, y = x[:cap], y[:cap]
        if len(y) and (x.ndim != 5 or x.shape[-1] != 2 or len(x) != len(y)):
            raise SystemExit(f"{path}: {kx} has shape {x.shape}, expected (N, T, H, W, 2) with N = len({ky})")
        data[split] = (x, y)
    n_classes = int(z["n_classes"]) if "n_classes" in z.files else None
    if n_classes is None:
        n_classes = int(max(y.max() for _, y in data.values() if len(y))) + 1
    if not len(data["train"][1]):
        raise SystemExit(f"{path}: no training samples")
    return data, n_classes


def evaluate(net, x, y, batch_size):
    """Accuracy (argmax of the mean output rate) and seconds; None, 0 for an empty split."""
    if not len(y):
        return None, 0.0
    net.eval()
    t0 = time.perf_counter()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(y), batch_size):
            out_fr = net(to_sj(x[i:i + batch_size])).mean(0)
            correct += int((out_fr.argmax(1) == torch.from_numpy(y[i:i + batch_size])).sum())
            functional.reset_net(net)
    return correct / len(y), time.perf_counter() - t0


def train_epoch(net, opt, x, y, n_classes, batch_size, rng, drop_last):
    net.train()
    order = rng.permutation(len(y))
    stop = len(y) - len(y) % batch_size if drop_last else len(y)
    t0 = time.perf_counter()
    loss_sum, correct, seen = 0.0, 0, 0
    for i in range(0, stop, batch_size):
        idx = np.sort(order[i:i + batch_size])  # sorted: faster gather, same batch content
        frames, labels = to_sj(x[idx]), torch.from_numpy(y[idx])
        opt.zero_grad()
        out_fr = net(frames).mean(0)
        loss = F.mse_loss(out_fr, F.one_hot(labels, n_classes).float())
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(idx)
        correct += int((out_fr.argmax(1) == labels).sum())
        seen += len(idx)
        functional.reset_net(net)
    dt = time.perf_counter() - t0
    return loss_sum / max(seen, 1), correct / max(seen, 1), dt, seen


def versions():
    import importlib.metadata as md
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for pkg in ("spikingjelly", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        return platform.processor() or "?"


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help=".npz with x_train, y_train, x_val, y_val, x_test, y_test")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--json", help="write config, per-epoch results and summary here")
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--neuron", choices=("lif", "plif"), default="lif")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--drop-last", action="store_true", help="drop the last partial training batch")
    ap.add_argument("--max-train", type=int, help="use only the first N training samples")
    ap.add_argument("--max-val", type=int, help="use only the first N validation samples")
    ap.add_argument("--max-test", type=int, help="use only the first N test samples")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data, n_classes = load(args.data, args.max_train, args.max_val, args.max_test)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = data["train"], data["val"], data["test"]
    _, T, H, W, _ = x_tr.shape
    net = build_net(args.channels, H, W, n_classes, args.neuron)
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)

    config = dict(
        args=vars(args), data=os.path.abspath(args.data), n_classes=n_classes, T=T, H=H, W=W,
        n_train=len(y_tr), n_val=len(y_va), n_test=len(y_te),
        x_dtype=str(x_tr.dtype), n_params=n_params, torch_threads=torch.get_num_threads(),
        versions=versions(), cpu=cpu_name(), cores=os.cpu_count(),
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        network=f"spikingjelly DVSGestureNet ({args.neuron}), c={args.channels}, 2x{H}x{W}, "
                f"T={T}, B={args.batch_size}, {n_classes} classes")
    print(f"{config['network']}: {n_params / 1e6:.3f} M params; train {len(y_tr)}, val {len(y_va)}, "
          f"test {len(y_te)}; torch threads {torch.get_num_threads()}; "
          f"spikingjelly {config['versions']['spikingjelly']}, torch {torch.__version__}", flush=True)

    epochs = []
    result = dict(config=config, epochs=epochs, summary=None)
    train_s = eval_s = 0.0
    train_n = eval_n = 0
    for ep in range(args.epochs):
        lr = opt.param_groups[0]["lr"]
        loss, tr_acc, dt, seen = train_epoch(net, opt, x_tr, y_tr, n_classes, args.batch_size, rng,
                                             args.drop_last)
        sched.step()
        va_acc, va_s = evaluate(net, x_va, y_va, args.batch_size)
        te_acc, te_s = evaluate(net, x_te, y_te, args.batch_size)
        train_s, train_n = train_s + dt, train_n + seen
        eval_s, eval_n = eval_s + va_s + te_s, eval_n + len(y_va) + len(y_te)
        epochs.append(dict(epoch=ep + 1, lr=lr, train_loss=loss, train_acc=tr_acc, train_s=dt,
                           val_acc=va_acc, test_acc=te_acc, eval_s=va_s + te_s))
        va_txt = "  -   " if va_acc is None else f"{va_acc:.4f}"
        te_txt = "  -   " if te_acc is None else f"{te_acc:.4f}"
        print(f"epoch {ep + 1:3d}/{args.epochs}  loss {loss:.5f}  train_acc {tr_acc:.4f}  "
              f"val_acc {va_txt}  test_acc {te_txt}  train {dt:7.2f} s ({seen / dt:6.1f} samples/s)  "
              f"eval {va_s + te_s:6.2f} s", flush=True)

        if len(y_va):
            sel = max(epochs, key=lambda e: (e["val_acc"], -e["epoch"]))
        else:
            sel = epochs[-1]
        best = max(epochs, key=lambda e: (-1 if e["test_acc"] is None else e["test_acc"], -e["epoch"]))
        result["summary"] = dict(
            epochs_done=ep + 1, train_s_total=train_s, wall_s_total=time.perf_counter() - T_START,
            eval_s_total=eval_s, selected_by="val_acc" if len(y_va) else "last_epoch",
            selected_epoch=sel["epoch"], selected_val_acc=sel["val_acc"], selected_test_acc=sel["test_acc"],
            max_test_acc=best["test_acc"], max_test_acc_epoch=best["epoch"],
            train_samples_per_s=train_n / train_s if train_s else None,
            infer_samples_per_s=eval_n / eval_s if eval_s else None)
        if args.json:
            write_json(args.json, result)

    s = result["summary"]
    if s is None:
        print("no epochs run")
        return
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"done: train {s['train_s_total']:.1f} s, wall {s['wall_s_total']:.1f} s; "
          f"test acc at epoch {s['selected_epoch']} ({s['selected_by']}) {fmt(s['selected_test_acc'])}, "
          f"max {fmt(s['max_test_acc'])} (epoch {s['max_test_acc_epoch']}); "
          f"train {s['train_samples_per_s']:.1f} samples/s, "
          f"infer {'-' if s['infer_samples_per_s'] is None else format(s['infer_samples_per_s'], '.1f')} samples/s",
          flush=True)
    if args.json:
        print("wrote", args.json)


if __name__ == "__main__":
    sys.exit(main())
