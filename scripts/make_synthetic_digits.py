"""Generate the synthetic DVS digit set (handwritten digits seen by an emulated DVS) in
the DVS128 Gesture layout, unless the folder already holds one with the same settings.

    python scripts/make_synthetic_digits.py --root data/dvs_digits

Prints the ``DvsGesture`` folder; read it with ``data.dataset = "dvs128_gesture"`` and
``data.root`` set to ``--root``. A sensor other than 128 x 128 scales the digit size and
the motion with it.
"""

import argparse

from nengo_actions.data.synthetic_digits import N_IMAGES, SyntheticDigitSpec, ensure_synthetic_digits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = SyntheticDigitSpec()
    parser.add_argument("--root", default="data/dvs_digits", help="folder to hold DvsGesture/ (default: %(default)s)")
    parser.add_argument(
        "--sensor-size", type=int, default=defaults.sensor_size,
        help="sensor width and height, pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--n-users", type=int, default=defaults.n_users,
        help="users (trials); the last quarter form the test split (default: %(default)s)",
    )
    parser.add_argument(
        "--n-samples", type=int, default=None, help=f"use only this many of the {N_IMAGES} images (default: all)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="(default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        spec = SyntheticDigitSpec.for_sensor(
            args.sensor_size, n_users=args.n_users, test_users=max(1, round(args.n_users / 4)),
            n_samples=args.n_samples, seed=args.seed,
        )
    except ValueError as e:
        parser.error(str(e))
    folder, generated = ensure_synthetic_digits(args.root, spec)
    print(f"{folder} ({'generated' if generated else 'already up to date'})")
    return folder


if __name__ == "__main__":
    main()
