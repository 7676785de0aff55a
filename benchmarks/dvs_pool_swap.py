"""Measure what converting max pooling to average pooling costs a Keras-trained DVS net.

    python benchmarks/dvs_pool_swap.py -c configs/dvs_synthetic.json --out results/dvs_synthetic

Trains ``model.dvs_gesture_net`` with max pooling in Keras, then scores it, the same
weights with average pooling, and the Nengo network converted from them (rate and
spiking); writes ``pool_swap.json`` and ``pool_swap.md`` into ``--out``.
"""

import argparse

import numpy as np

from nengo_actions.config import PROJECT_ROOT, add_config_arguments, config_from_args, resolve_path, run_command
from nengo_actions.clips.event_data import load_event_data
from nengo_actions.io import write_json_atomic, write_text_atomic
from nengo_actions.networks.conversion import built_from_keras, fold_batch_norm
from nengo_actions.networks.dvs_conv import _frame_shape, gesture_net
from nengo_actions.config.models import ModelConfig


def clip_accuracy(scores, labels):
    """Accuracy of ``(clips, frames, classes)`` scores averaged over frames."""
    return float(np.mean(np.asarray(scores).mean(axis=1).argmax(-1) == np.asarray(labels)))


def pool_swap_effect(model_cfg: ModelConfig, data, *, epochs=5, batch_size=64, learning_rate=3e-3, steps_per_frame=(1, 4), seed=0, log=print):
    """What converting max pooling to average pooling costs a Keras-trained network.

    The engine trains the converted (average-pooled) network itself, so there the
    swap costs nothing. A network trained in Keras with max pooling (and real batch
    statistics, dropout) has to be converted after training; this measures that:

    1. train ``model.dvs_gesture_net`` (``pool="max"``) in Keras on single frames
       (every frame labelled with its sample's class);
    2. test accuracy (frame scores averaged per sample) of the Keras max-pool model,
       of the same weights with average pooling (BN folded), and of the Nengo network
       converted from them, with rate neurons and with spiking neurons at each of
       ``steps_per_frame``.

    Returns
    -------
    dict
        ``{"keras_max", "keras_avg", "nengo_rate", "nengo_spiking_k<k>"}`` accuracies.
    """
    from nengo_actions.compat import tf
    from nengo_actions.engine.simulator import Engine

    g = model_cfg.dvs_gesture_net
    shape = _frame_shape(data.n_features, g.frame_shape)
    tf.keras.utils.set_random_seed(seed)
    keras_max = gesture_net(shape, data.n_classes, g.channels, g.depth, g.dense, g.votes, "max", g.batch_norm, g.dropout, seed)
    keras_max.compile(
        tf.keras.optimizers.Adam(learning_rate),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    frames = data.x_train.reshape(-1, data.n_features)
    labels = np.repeat(data.y_train, data.n_frames)
    keras_max.fit(frames, labels, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)

    def keras_scores(model):
        return model.predict(data.x_test.reshape(-1, data.n_features), verbose=0).reshape(len(data.x_test), data.x_test.shape[1], -1)

    result = {"keras_max": clip_accuracy(keras_scores(keras_max), data.y_test)}
    folded_max = fold_batch_norm(keras_max)
    keras_avg = gesture_net(shape, data.n_classes, g.channels, g.depth, g.dense, g.votes, "avg", False, 0.0, seed)
    keras_avg.set_weights(folded_max.get_weights())
    result["keras_avg"] = clip_accuracy(keras_scores(keras_avg), data.y_test)
    log(f"Keras, max pooling: {result['keras_max']:.2%}; same weights, average pooling: {result['keras_avg']:.2%}")
    # the Nengo network converted from the trained weights (average pooling, BN folded)
    for spiking, k in [(False, 1)] + [(True, int(k)) for k in steps_per_frame]:
        built = built_from_keras(keras_avg, model_cfg.dvs_conv, data.n_classes, spiking=spiking, steps_per_frame=k, raster_neurons=0)
        engine = Engine(built, minibatch_size=16, device="auto", seed=seed)
        try:
            acc = clip_accuracy(engine.predict(data.x_test), data.y_test)
        finally:
            engine.close()
        key = f"nengo_spiking_k{k}" if spiking else "nengo_rate"
        result[key] = acc
        log(f"Nengo, {'spiking, %d step(s) per frame' % k if spiking else 'rate'}: {acc:.2%}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, default=PROJECT_ROOT / "configs" / "dvs_synthetic.json")
    parser.add_argument("--out", default="results/dvs_synthetic", help="folder for pool_swap.json and pool_swap.md")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    data = load_event_data(cfg)
    ks = sorted(set(cfg.evaluate.steps_per_frame))
    result = pool_swap_effect(cfg.model, data, epochs=args.epochs, steps_per_frame=ks, seed=cfg.seed)
    out = resolve_path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "pool_swap.json", {"config": cfg.source, "epochs": args.epochs, "test_clip_accuracy": result})
    rows = "\n".join(f"| {k} | {100 * v:.2f}% |" for k, v in result.items())
    text = (
        f"# Max pooling -> average pooling on a Keras-trained network ({cfg.name})\n\n"
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
