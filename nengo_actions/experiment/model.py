"""One model type of a run: trained (or loaded), evaluated, refitted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nengo_actions.engine import distribute
from nengo_actions.config import registry
from nengo_actions.deploy.nir_export import model_graph
from nengo_actions.evaluation.energy import count_neurons
from nengo_actions.clips.event_data import per_epoch_test_tracker
from nengo_actions.clips.feature_data import ClipData
from nengo_actions.clips.rows import join_clips
from nengo_actions.clips.metrics import evaluate_as_configured
from nengo_actions.networks import model_is_spiking
from nengo_actions.experiment.results import ModelResult, accuracy_line, dense_figures, flat_split_metrics, loihi_figures, spiking_figures, write_result


def run_model(model_type, cfg, data: ClipData, out_dir, *, resume=False, params=None, log=print):
    """Train (or load) and evaluate one model type (steps 1-5 of :mod:`nengo_actions.experiment`)."""
    from nengo_actions.engine.training import evaluate_split, train

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ev, ts, seed = cfg.evaluate, cfg.train.for_model(model_type), cfg.seed
    if params is None and 0 < len(data.y_train) < ts.minibatch_size:
        log(f"[{model_type}] train.minibatch_size {ts.minibatch_size} is more than the {len(data.y_train)} "
            f"training clips; using minibatches of {len(data.y_train)}")
        ts = ts.replace(minibatch_size=len(data.y_train))
    engine = new_engine(model_type, cfg, data, ts)
    log(f"[{model_type}] {engine.description}")
    # neurons are counted on the Nengo network as soon as there is one: the trained
    # network, or the one built from the trained parameters (below)
    metrics = {} if engine.network is None else {"n_neurons": count_neurons(engine.network)}
    refit_epochs = 0
    try:
        metrics["n_parameters"] = int(sum(np.prod(v.shape) for v in engine.trainable_variables()))
        if params is not None:
            path = params_for(params, model_type)
            engine.load_params(path)
            log(f"[{model_type}] evaluating parameters from {path}")
            history, params_path = [], path
            metrics.update(train_seconds=0.0, best_epoch=None, epochs_run=0)
        else:
            # event datasets: test accuracy per epoch for the max-over-epochs figure
            tracker = per_epoch_test_tracker(cfg, engine, data, ev, out_dir, resume)
            result = train(
                engine, data.x_train, data.y_train, data.x_val, data.y_val, ts, ev, out_dir,
                resume=resume, seed=seed, log=lambda s: log(f"[{model_type}] {s}"),
                on_epoch_end=tracker,
            )
            history, params_path = result.history, result.params_path
            engine.load_params(params_path)
            metrics.update(
                train_seconds=result.train_seconds,
                train_clips_per_second=len(history) * len(data.y_train) / max(result.train_seconds, 1e-9),
                best_epoch=result.best_epoch,
                epochs_run=len(history),
                initial_val_clip_accuracy=result.initial_val_clip_accuracy,
                stopped_early=result.stopped_early,
                train_workers=distribute.workers(ts.distribute),
            )
            if tracker is not None:
                metrics.update(tracker.metrics())
            refit_epochs = result.best_epoch if ts.refit and len(data.y_val) else 0
        loss_kind, loss_steps = ts.loss, ts.loss_steps
        if len(data.y_val):
            _, val, val_loss = evaluate_split(engine, data.x_val, data.y_val, ev, loss_kind, loss_steps)
            metrics.update(flat_split_metrics("val_", val, ev.top_k), val_loss=val_loss)
        else:
            metrics.update(val_clip_accuracy=None, val_step_accuracy=None)
        test_out, rate_rates = engine.predict_layer_rates(data.x_test)

        test = evaluate_as_configured(test_out, data.y_test, data.n_classes, ev)
        metrics.update(flat_split_metrics("test_", test, ev.top_k))
        for name, hz in rate_rates.items():
            metrics[f"rate_mode_firing_rate_hz_{name}"] = hz
    finally:
        engine.close()
    log(accuracy_line(model_type, metrics, engine.evaluated_as))
    build = spiking_builder(model_type, cfg, data, params_path)
    built = engine.nengo_network(build)
    metrics.setdefault("n_neurons", count_neurons(built))

    dense_figures(metrics, built, data, ev)
    result = ModelResult(model_type, built.description, metrics, history, test=test, out_dir=out_dir)
    if model_is_spiking(model_type, cfg.model) and ev.spiking:
        spiking_figures(result, build, params_path, cfg, data, ts, log)
        if "nengo_loihi" in ev.simulators:
            graph = model_graph(model_type, cfg, n_features=data.n_features, n_classes=data.n_classes, params=params_path)
            loihi_figures(result, graph, build, cfg, data, log)
    else:
        metrics.update(spiking_test_clip_accuracy=None, spiking_test_step_accuracy=None)
    if params is None and refit_epochs:
        metrics.update(refit(model_type, cfg, data, ts, refit_epochs, out_dir / "refit", resume=resume, log=log))
    write_result(result, test, data.y_test)
    return result


def new_engine(model_type, cfg, data, ts):
    """The untrained trainer of ``model_type`` (:class:`nengo_actions.engine.trainer.Trainer`),
    of the class the registry names for it as configured."""
    return registry.trainer(model_type, cfg.model).for_model(model_type, cfg, data, ts)


def spiking_builder(model_type, cfg, data, params_path=None):
    """``build(spiking, steps_per_frame=...) -> BuiltNetwork`` of the Nengo network, from
    the trainer of ``model_type`` (a directly trained type's is built from its parameters
    at ``params_path``)."""
    return registry.trainer(model_type, cfg.model).nengo_builder(model_type, cfg, data, params_path)


def refit(model_type, cfg, data, ts, epochs, out_dir, *, resume=False, log=print):
    """Train a fresh ``model_type`` on the training and validation clips together for
    ``epochs`` (the number selected on validation), then evaluate it on the test clips.

    The standardisation keeps the training clips' statistics, so the test clips are
    scaled as for the selected model. Returns the ``refit_*`` metrics.
    """
    from nengo_actions.evaluation.spiking import evaluate_spiking
    from nengo_actions.engine.training import train

    ev = cfg.evaluate
    x, y = join_clips(data.x_train, data.x_val), np.concatenate([data.y_train, data.y_val])
    log(f"[{model_type}] refit: {len(y)} training and validation clips, {epochs} epochs")
    engine = new_engine(model_type, cfg, data, ts)
    try:
        result = train(engine, x, y, None, None, ts.replace(epochs=epochs, early_stopping=0), ev, out_dir,
                       resume=resume, seed=cfg.seed, log=lambda s: log(f"[{model_type}] refit: {s}"))
        engine.load_params(result.params_path)
        test_out = engine.predict(data.x_test)
    finally:
        engine.close()
    test = evaluate_as_configured(test_out, data.y_test, data.n_classes, ev)
    metrics = {"refit_epochs": epochs, "refit_train_clips": int(len(y)), "refit_train_seconds": result.train_seconds,
               "refit_test_clip_accuracy": test["clip_accuracy"], "refit_test_step_accuracy": test["step_accuracy"]}
    if model_is_spiking(model_type, cfg.model) and ev.spiking:
        (run,) = evaluate_spiking(
            spiking_builder(model_type, cfg, data, result.params_path), result.params_path, data.x_test, data.y_test,
            [ev.spiking_steps_per_frame], ev, ts.minibatch_size, ts.device, cfg.seed, (), log=log,
        )
        metrics["refit_spiking_test_clip_accuracy"] = run.metrics["clip_accuracy"]
    log(f"[{model_type}] refit: test clip accuracy {metrics['refit_test_clip_accuracy']:.2%}"
        + (f", spiking {metrics['refit_spiking_test_clip_accuracy']:.2%}" if "refit_spiking_test_clip_accuracy" in metrics else ""))
    return metrics


def params_for(params, model_type):
    """The parameter file of ``model_type`` given ``--params`` (a file or a run folder)."""
    path = Path(params)
    if path.is_dir():
        return path / model_type / "params_best.npz"
    return path
