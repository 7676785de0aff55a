"""One training step of the same network, from the same weights, on both sides.

    /tmp/peers-venv/bin/python benchmarks/parity_step.py peer --data FRAMES --out STEP.npz
    python benchmarks/parity_step.py ours --data FRAMES --step STEP.npz

The peer side builds SpikingJelly's net of ``peer_nir.py`` (dropout off, so nothing
random is left), runs ``--steps`` Adam steps of its recipe on the first minibatches of
the training frames and writes the initial weights (in Keras' layout), the per-step
losses, the output spikes of the first step and the gradients of the first step. Our
side loads those weights into the directly trained model of ``dvs_parity``'s
``sj_exact`` recipe, runs the same steps and prints the largest differences of the
layer outputs, the first step's gradients and the parameters after the last step.

Measured with ``--float64`` on both sides: equal spikes, gradients equal to 1e-11
relative, and with ``--exact-adam`` the 8 losses of ``--steps 8`` equal to 1e-15. The
trainer's own optimizer (``train.adam_epsilon_form: "torch"``) and batch norm
(``model.dvs_conv.batch_norm_variance: "unbiased"``, set here as in SpikingJelly) take
the same steps: after 3 steps every parameter and BN statistic agrees to 1e-12. Before
the optimizer kept its betas in float64 and that BN setting existed, the trainer was 2e-8
of a weight off per step (Keras' float32 betas), the spikes that this flips moved the
second step's loss by 0.7% and left whole Adam steps between the parameters after three,
and the dense layers' moving variances lacked PyTorch's n / (n - 1). With
``--adam-epsilon-form keras`` weights whose gradients are below about 1e-6 move up to
0.7 of a step less at the first step.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np


def _peer(args):
    import torch
    import torch.nn.functional as F
    from peer_nir import build_net, reset
    from peer_train_dvs import load, to_sj
    from spikingjelly.activation_based import layer

    torch.manual_seed(args.seed)
    data, n_classes = load(args.data, args.batch * args.steps, 0, 1)
    x, y = data["train"]
    _, T, H, W, _ = x.shape
    net = build_net("spikingjelly", args.channels, H, W, n_classes)
    for m in net.modules():
        if isinstance(m, layer.Dropout):
            m.p = 0.0
    if args.float64:
        net = net.double()
    init = {name: p.detach().numpy().copy() for name, p in net.state_dict().items()}
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    out, losses, grads = {}, [], {}
    net.train()
    acts = {}

    def keep(k):
        def hook(module, inputs, output):  # returns None: the output stays as it is
            acts.setdefault(f"act/{k}", output.detach().numpy().copy())
        return hook

    hooks = [m.register_forward_hook(keep(k)) for k, m in enumerate(net)]
    for s in range(args.steps):
        xb, yb = x[s * args.batch:(s + 1) * args.batch], torch.from_numpy(y[s * args.batch:(s + 1) * args.batch])
        opt.zero_grad()
        spikes = net(to_sj(xb).to(torch.float64 if args.float64 else torch.float32))  # [T, B, classes]
        loss = F.mse_loss(spikes.mean(0), F.one_hot(yb, n_classes).to(spikes.dtype))
        loss.backward()
        if s == 0:
            out["spikes"] = spikes.detach().numpy().transpose(1, 0, 2)
            grads = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
            for h in hooks:
                h.remove()
        opt.step()
        reset(net)
        losses.append(loss.item())
    arrays = {f"init/{k}": v for k, v in init.items()}
    arrays.update({f"grad/{k}": v for k, v in grads.items()})
    after = {f"after/{k}": v.detach().numpy() for k, v in net.state_dict().items()}
    np.savez(args.out, losses=np.array(losses), n_classes=n_classes, **out, **arrays, **after, **acts)
    print("peer losses", losses)


def _keras_layout(z, prefix, flat_chw):
    """SpikingJelly's Sequential indices -> our layer names and Keras kernels."""
    keys = list(z.keys())
    idx = sorted({int(k.split("/")[1].split(".")[0]) for k in keys if k.startswith(prefix)})
    weighted = [i for i in idx if f"{prefix}{i}.weight" in keys and z[f"{prefix}{i}.weight"].ndim > 1]
    bns = [i for i in idx if f"{prefix}{i}.running_mean" in keys]
    names = [f"conv{k}" for k in range(len(weighted) - 2)] + ["fc0", "fc1"]
    out = {}
    for name, wi, bi in zip(names, weighted, bns):
        w = z[f"{prefix}{wi}.weight"]
        if w.ndim == 4:
            k = w.transpose(2, 3, 1, 0)
        else:
            k = w.T
            if name == "fc0":  # torch flattens (C, H, W), Keras (H, W, C)
                c, h, wd = flat_chw
                k = k.reshape(c, h, wd, -1).transpose(1, 2, 0, 3).reshape(c * h * wd, -1)
        out[name] = k
        out[f"bn_{name}"] = [z[f"{prefix}{bi}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")]
    return out


def exact_adam(state, variables, grads, lr, t, b1=0.9, b2=0.999, eps=1e-8):
    """torch.optim.Adam's update written out with exact hyperparameters (Keras keeps its
    learning rate and betas in float32, a 1e-5 relative difference per step)."""
    for var, g in zip(variables, grads):
        m, v = state.get(var.name, (0.0, 0.0))
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        state[var.name] = (m, v)
        var.assign_sub(lr / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + eps))


def _ours(args):
    import nir_exchange
    from dvs_parity import RECIPES, SJ_BN

    from nengo_actions.engine import trainer
    from nengo_actions.compat import tf
    from nengo_actions.engine.losses import rate_loss
    from nengo_actions.networks.dvs_direct import build_temporal

    if args.float64:
        tf.keras.backend.set_floatx("float64")
    z = np.load(args.step, allow_pickle=False)
    frames = np.load(args.data, allow_pickle=False)
    n_classes = int(z["n_classes"])
    cfg = nir_exchange.load_cfg("dvs128_gesture.json", args.root, *RECIPES["sj_exact"], *SJ_BN, "model.dvs_gesture_net.dropout=0",
                                f"model.dvs_gesture_net.channels={args.channels}", f"train.learning_rate={args.lr}",
                                f"train.adam_epsilon_form=\"{args.adam_epsilon_form}\"")
    x, y = frames["x_train"][: args.batch * args.steps], frames["y_train"][: args.batch * args.steps]
    n, T, H, W, _ = x.shape
    net = build_temporal("dvs_gesture_net", cfg.model, n_features=H * W * 2, n_classes=n_classes, seed=args.seed)
    model = net.keras_model
    c = args.channels
    weights = _keras_layout(z, "init/", (c, H // 32, W // 32))
    for name, value in weights.items():
        layer = model.get_layer(name).layer
        layer.set_weights(value if isinstance(value, list) else [value])
    loss_fn = rate_loss(n_classes, "mse")
    opt = trainer.make_optimizer(cfg.train, math.ceil(len(frames["y_train"]) / args.batch), mixed=False)
    losses, adam_state = [], {}
    for s in range(args.steps):
        xb = tf.constant(x[s * args.batch:(s + 1) * args.batch].reshape(args.batch, T, -1).astype(tf.keras.backend.floatx()))
        yb = tf.constant(y[s * args.batch:(s + 1) * args.batch].astype(np.int32))
        with tf.GradientTape() as tape:
            spikes = model(xb, training=True)
            loss = loss_fn(yb, spikes)
        grads = tape.gradient(loss, model.trainable_weights)
        if s == 0:
            probe = tf.keras.Model(model.inputs, [l.output for l in model.layers[2:]])
            saved = model.get_weights()  # the probe's pass updates the BN statistics once more
            mine = [o.numpy() for o in probe(xb, training=True)]
            model.set_weights(saved)
            theirs = [z[f"act/{k}"] for k in range(len(mine) - 2)]
            for l, o, t in zip(model.layers[2:], mine, theirs):
                t = np.moveaxis(t, 0, 1)
                if t.ndim == 5:
                    t = t.transpose(0, 1, 3, 4, 2)
                if t.shape != o.shape:
                    print(l.name, o.shape, t.shape); continue
                print(f"{l.name:12s} max abs diff {np.abs(o - t).max():.3e}  mean {np.abs(o - t).mean():.3e}  |peer| mean {np.abs(t).mean():.3e}")
            print("output spikes differ at", int(np.sum(spikes.numpy() != z["spikes"])), "of", spikes.numpy().size)
            peer_grads = _keras_layout({f"g/{k[5:]}": z[k] for k in z.files if k.startswith("grad/")}
                                       | {f"g/{k[5:]}": z[k] for k in z.files if k.startswith("init/") and "running" in k},
                                       "g/", (c, H // 32, W // 32))
            for w, g in zip(model.trainable_weights, grads):
                lname = w.name.split("/")[0]
                ref = peer_grads.get(lname)
                if ref is None:
                    continue
                ref = ref if not isinstance(ref, list) else ref[0 if "gamma" in w.name else 1]
                scale = np.abs(ref).max() or 1.0
                print(f"grad {w.name:40s} max |ours - peer| / max |peer| = {np.abs(g.numpy() - ref).max() / scale:.2e}"
                      f"  (|peer| max {scale:.2e})")
        if args.exact_adam:
            exact_adam(adam_state, model.trainable_weights, grads, args.lr, s + 1)
        else:
            opt.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    c_hw = (c, H // 32, W // 32)
    after = _keras_layout({f"a/{k[6:]}": z[k] for k in z.files if k.startswith("after/")}, "a/", c_hw)
    for name, value in after.items():
        mine = model.get_layer(name).layer.get_weights()
        theirs = value if isinstance(value, list) else [value]
        for label, a, b in zip(("weight", "beta", "mean", "var") if len(theirs) > 1 else ("kernel",), mine, theirs):
            print(f"after {args.steps} steps {name:8s} {label:6s} max abs diff {np.abs(a - b).max():.3e} (|peer| max {np.abs(b).max():.3e})")
    print("ours losses", losses)
    print("peer losses", z["losses"].tolist())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("side", choices=("peer", "ours"))
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default="parity_step.npz")
    parser.add_argument("--step", default="parity_step.npz")
    parser.add_argument("--root", default="data/dvs_digits")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--adam-epsilon-form", default="torch", help="our side's train.adam_epsilon_form")
    parser.add_argument("--exact-adam", action="store_true",
                        help="our side steps with torch's Adam written out in float64, not the trainer's optimizer")
    parser.add_argument("--float64", action="store_true", help="both sides in double precision")
    args = parser.parse_args(argv)
    (_peer if args.side == "peer" else _ours)(args)


if __name__ == "__main__":
    sys.exit(main())
