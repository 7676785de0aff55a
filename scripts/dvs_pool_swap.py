"""Measure what converting max pooling to average pooling costs a Keras-trained DVS net.

    python scripts/dvs_pool_swap.py -c configs/dvs_synthetic.json --out results/dvs_synthetic

Trains ``model.dvs_gesture_net`` with max pooling in Keras, then scores it, the same
weights with average pooling, and the Nengo network converted from them (rate and
spiking); writes ``pool_swap.json`` and ``pool_swap.md`` into ``--out``.
"""

import argparse

from nengo_actions.config import PROJECT_ROOT, add_config_arguments, config_from_args, resolve_path, run_command
from nengo_actions.io import write_json_atomic, write_text_atomic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "dvs_synthetic.json")
    parser.add_argument("--out", default="results/dvs_synthetic", help="folder for pool_swap.json and pool_swap.md")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    from nengo_actions.event_data import load_event_data
    from nengo_actions.networks.dvs_conv import pool_swap_effect

    data = load_event_data(cfg)
    ks = sorted(set(cfg["evaluate"]["steps_per_frame"]))
    result = pool_swap_effect(cfg["model"], data, epochs=args.epochs, steps_per_frame=ks, seed=cfg["seed"])
    out = resolve_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "pool_swap.json", {"config": cfg["_source"], "epochs": args.epochs, "test_clip_accuracy": result})
    rows = "\n".join(f"| {k} | {100 * v:.2f}% |" for k, v in result.items())
    text = (
        f"# Max pooling -> average pooling on a Keras-trained network ({cfg['name']})\n\n"
        f"`model.dvs_gesture_net` trained in Keras for {args.epochs} epochs on single frames with max "
        "pooling, BN and dropout; test accuracy per sample (frame scores averaged). `keras_avg`: the "
        "same weights with average pooling and BN folded; `nengo_*`: the Nengo network converted from "
        "them by NengoDL (rate neurons; spiking neurons at k steps per frame).\n\n"
        f"| model | test accuracy |\n|---|---:|\n{rows}\n"
    )
    write_text_atomic(out / "pool_swap.md", text)
    print(text)


if __name__ == "__main__":
    run_command(main)
