"""Spiking-aware training of the DVS gesture net with keras-spiking, then a Nengo run.

    python scripts/dvs_spiking_aware.py -c configs/dvs_synthetic.json --out results/dvs_synthetic

Trains ``model.dvs_gesture_net`` (its sizes) over the frames with spiking activations and
trainable lowpass time constants, converts it with ``temporal_model=True`` and runs it
with spiking neurons; writes ``spiking_aware.json`` into ``--out``.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nengo_actions.config import PROJECT_ROOT, add_config_arguments, config_from_args, resolve_path, run_command, write_json_atomic  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "dvs_synthetic.json")
    parser.add_argument("--out", default="results/dvs_synthetic", help="folder for spiking_aware.json")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps-per-frame", type=int, default=4)
    parser.add_argument("--input-gain", type=float, default=100.0)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    from nengo_actions.event_data import load_event_data
    from nengo_actions.networks.dvs_temporal import train_spiking_aware

    data = load_event_data(cfg)
    result = train_spiking_aware(
        cfg["model"], data, steps_per_frame=args.steps_per_frame, input_gain=args.input_gain,
        epochs=args.epochs, batch_size=cfg["train"]["minibatch_size"], learning_rate=cfg["train"]["learning_rate"],
        seed=cfg["seed"],
    )
    out = resolve_path(args.out)
    write_json_atomic(out / "spiking_aware.json", {"config": cfg["_source"], "epochs": args.epochs,
                                                   "steps_per_frame": args.steps_per_frame,
                                                   "input_gain": args.input_gain, **result})
    print(result)


if __name__ == "__main__":
    run_command(main)
