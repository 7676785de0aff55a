"""One training run: features -> each configured model trained, evaluated -> report.

:func:`run` is what ``python -m nengo_actions.train`` does. For ``model.type`` and each
type in ``model.compare``:

1. build the network with rate neurons (spiking types train through their rate
   function, with identical parameters) and train it (:func:`nengo_actions.engine.training.train`),
   or load given parameters;
2. evaluate the selected epoch on the validation and test clips with rate neurons;
3. for spiking models, evaluate with spiking neurons at each number of steps per frame
   (:mod:`nengo_actions.evaluation.spiking`): accuracy, firing rates, synaptic operations, energy;
4. with ``train.refit``, train a fresh model on training plus validation clips for the
   selected number of epochs and evaluate it on the test clips too (:func:`refit`);
5. write ``<run>/<type>/`` (parameters, history, TensorBoard, ``result.json``).

Then :mod:`nengo_actions.evaluation.report` writes ``metrics.json``, ``report.md`` and the plots.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from pathlib import Path

import numpy as np

from nengo_actions import config as config_mod
from nengo_actions.engine import distribute
from nengo_actions.config import registry
from nengo_actions.config import ConfigError, jsonable, write_json_atomic
from nengo_actions.deploy.nir_export import model_graph
from nengo_actions.deploy.nir_import import build_nir_network, graph_dt, read_graph
from nengo_actions.evaluation.energy import count_neurons, device_table, energy_per_inference, operations_per_inference
from nengo_actions.errors import DivergedError, OutputError, ParamsError, UserError
from nengo_actions.io import write_text_atomic
from nengo_actions.clips.event_data import is_event_dataset, load_event_data, per_epoch_test_tracker
from nengo_actions.clips.feature_data import ClipData, ensure_features, load_clip_data
from nengo_actions.clips.rows import join_clips
from nengo_actions.clips.metrics import evaluate_as_configured
from nengo_actions.networks import model_is_spiking
from nengo_actions.params import read_params_header
from nengo_actions.evaluation.report import write_report

SPIKING_DEVICES_NOTE = "spiking devices use the firing rates measured in the spiking run"


@dataclasses.dataclass
class ModelResult:
    model_type: str
    description: str
    metrics: dict  # flat figures of this model
    history: list
    spiking_runs: list = dataclasses.field(default_factory=list)
    test: dict = dataclasses.field(default_factory=dict)  # rate metrics incl. arrays
    spiking_test: dict = dataclasses.field(default_factory=dict)  # headline spiking metrics
    raster: dict = dataclasses.field(default_factory=dict)
    out_dir: Path = None


def check_evaluate_settings(ev, where):
    """The energy devices of ``ev`` (an ``EvaluateConfig``) are ones keras-spiking knows."""
    known = device_table()
    for device in ev.energy_devices:
        if str(device).lower() not in known:
            raise ConfigError(
                f"{where}: key 'evaluate.energy_devices' holds {device!r}; keras-spiking "
                f"knows {', '.join(sorted(known))}"
            )


def _flat_split_metrics(prefix, m, top_k):
    return {
        f"{prefix}clip_accuracy": m["clip_accuracy"],
        f"{prefix}clip_accuracy_last": m["clip_accuracy_last"],
        f"{prefix}clip_accuracy_mean": m["clip_accuracy_mean"],
        f"{prefix}clip_accuracy_vote": m["clip_accuracy_vote"],
        f"{prefix}top{top_k}_accuracy": m[f"top{top_k}_accuracy"],
        f"{prefix}step_accuracy": m["step_accuracy"],
    }


def check_loihi_ready(cfg, types):
    """Loihi runs a model as its NIR graph: nengo-loihi must be installed and each model
    one that NIR can hold (directly trained, average pooling, raw counts)."""
    from nengo_actions.deploy.loihi import import_nengo_loihi

    import_nengo_loihi()
    for model in types:
        # the untrained network at a small frame size: what NIR refuses does not depend on either
        model_graph(model, cfg.replace(model=config_mod.override(cfg.model, {f"{model}.frame_shape": [32, 32, 2]}, "loihi")),
                    n_features=32 * 32 * 2, n_classes=2, where=f"{cfg.source}: evaluate.simulators holds nengo_loihi, and {model}")


def params_for(params, model_type):
    """The parameter file of ``model_type`` given ``--params`` (a file or a run folder)."""
    path = Path(params)
    if path.is_dir():
        return path / model_type / "params_best.npz"
    return path


def check_params_files(params, types, data):
    """Check ``--params`` before anything is written: one readable parameter file per
    model type, saved from that model type for data of this shape."""
    for model_type in types:
        path = params_for(params, model_type)
        header = read_params_header(path)
        saved = header.get("signature", {})
        expected = {"model": model_type, "n_features": data.n_features, "n_classes": data.n_classes}
        wrong = [f"{k}: file {saved.get(k)!r} vs {v!r}" for k, v in expected.items() if k in saved and saved[k] != v]
        if wrong:
            raise ParamsError(f"{path}: parameters of a different model ({', '.join(wrong)})")


def run_model(model_type, cfg, data: ClipData, out_dir, *, resume=False, params=None, log=print):
    """Train (or load) and evaluate one model type; see the module docstring."""
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
            metrics.update(_flat_split_metrics("val_", val, ev.top_k), val_loss=val_loss)
        else:
            metrics.update(val_clip_accuracy=None, val_step_accuracy=None)
        test_out, rate_rates = engine.predict_layer_rates(data.x_test)

        test = evaluate_as_configured(test_out, data.y_test, data.n_classes, ev)
        metrics.update(_flat_split_metrics("test_", test, ev.top_k))
        for name, hz in rate_rates.items():
            metrics[f"rate_mode_firing_rate_hz_{name}"] = hz
    finally:
        engine.close()
    log(accuracy_line(model_type, metrics, engine.evaluated_as))
    build = spiking_builder(model_type, cfg, data, params_path)
    built = engine.nengo_network(build)
    metrics.setdefault("n_neurons", count_neurons(built))

    _dense_figures(metrics, built, data, ev)
    result = ModelResult(model_type, built.description, metrics, history, test=test, out_dir=out_dir)
    if model_is_spiking(model_type, cfg.model) and ev.spiking:
        _spiking_figures(result, build, params_path, cfg, data, ts, log)
        if "nengo_loihi" in ev.simulators:
            graph = model_graph(model_type, cfg, n_features=data.n_features, n_classes=data.n_classes, params=params_path)
            _loihi_figures(result, graph, build, cfg, data, log)
    else:
        metrics.update(spiking_test_clip_accuracy=None, spiking_test_step_accuracy=None)
    if params is None and refit_epochs:
        metrics.update(refit(model_type, cfg, data, ts, refit_epochs, out_dir / "refit", resume=resume, log=log))
    _write_result(result, test, data.y_test)
    return result


def accuracy_line(model_type, metrics, evaluated_as="rate"):
    """The log line of a model's test and validation accuracy (a validation accuracy of
    0 is a figure; no validation clips is "none"); ``evaluated_as`` names what was
    evaluated (the trainer's ``evaluated_as``)."""
    val = metrics.get("val_clip_accuracy")
    return (f"[{model_type}] {evaluated_as}: test clip accuracy "
            f"{metrics['test_clip_accuracy']:.2%} (step accuracy {metrics['test_step_accuracy']:.2%}), validation "
            + ("none" if val is None else f"{val:.2%}"))


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


def _dense_figures(metrics, built, data, ev):
    """Synapses, ANN operations and the non-spiking devices' energy of one pass per frame."""
    dense_ops = operations_per_inference(built, {}, data.n_frames, 1, ev.dt)
    non_spiking = [d for d in ev.energy_devices if not _device_spiking(d)]
    for device, joules in energy_per_inference(dense_ops, non_spiking).items():
        metrics[f"energy_{device}_joules_per_inference"] = joules
    metrics["synapses"] = dense_ops["synapses"]
    metrics["ann_ops_per_inference"] = dense_ops["dense_synops"]


def _spiking_figures(result, build, params_path, cfg, data, ts, log):
    """The spiking evaluation at every configured step count, its figures in ``result``."""
    from nengo_actions.evaluation.spiking import evaluate_spiking

    ev, metrics = cfg.evaluate, result.metrics
    steps = sorted(set(ev.steps_per_frame) | {ev.spiking_steps_per_frame})
    runs = evaluate_spiking(
        build, params_path, data.x_test, data.y_test, steps, ev, ts.minibatch_size,
        ts.device, cfg.seed, ev.energy_devices, log=log,
    )
    result.spiking_runs = runs
    for run in runs:
        metrics[f"spiking_test_clip_accuracy_k{run.steps_per_frame}"] = run.metrics["clip_accuracy"]
    head = next(r for r in runs if r.steps_per_frame == ev.spiking_steps_per_frame)
    metrics.update(_flat_split_metrics("spiking_test_", head.metrics, ev.top_k))
    metrics["spiking_steps_per_frame"] = head.steps_per_frame
    metrics["spiking_inference_clips_per_second"] = head.clips_per_second
    for name, hz in head.layer_rates_hz.items():
        metrics[f"firing_rate_hz_{name}"] = hz
    metrics["spike_synops_per_inference"] = head.operations["spike_synops"]
    metrics["value_synops_per_inference"] = head.operations["value_synops"]
    for device, joules in head.energy.items():
        if _device_spiking(device):
            metrics[f"energy_{device}_joules_per_inference"] = joules
    result.spiking_test, result.raster = head.metrics, head.raster


def run_graph(graph, path, cfg, data: ClipData, out_dir, *, log=print):
    """Evaluate the NIR graph ``graph`` (read from ``path``; ``--nir``) on the test clips:
    no training, the spiking evaluation at every configured step count, reported as the
    model ``nir`` (its test figures are those at ``evaluate.spiking_steps_per_frame``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ev = cfg.evaluate
    build = functools.partial(
        build_nir_network, graph, path, n_features=data.n_features, n_classes=data.n_classes, dt=ev.dt,
        raster_neurons=ev.raster_neurons,
    )
    built = build()
    log(f"[nir] {built.description}")
    n_parameters = sum(int(np.size(getattr(node, name))) for node in graph.nodes.values()
                       for name in ("weight", "bias") if getattr(node, name, None) is not None)
    metrics = {"n_neurons": count_neurons(built), "n_parameters": n_parameters, "train_seconds": 0.0, "best_epoch": None, "epochs_run": 0,
               "val_clip_accuracy": None, "val_step_accuracy": None}
    _dense_figures(metrics, built, data, ev)
    result = ModelResult("nir", built.description, metrics, [], out_dir=out_dir)
    _spiking_figures(result, build, None, cfg, data, cfg.train, log)
    result.test = result.spiking_test
    metrics.update(_flat_split_metrics("test_", result.test, ev.top_k))
    if "nengo_loihi" in ev.simulators:
        _loihi_figures(result, graph, build, cfg, data, log)
    _write_result(result, result.test, data.y_test)
    return result


def _loihi_figures(result, graph, build, cfg, data, log):
    """The NIR graph ``graph`` of the model run on Loihi (``evaluate.loihi_target``) on the
    first ``evaluate.loihi_max_clips`` test clips at ``evaluate.spiking_steps_per_frame``:
    accuracy beside NengoDL's on the same clips, cores, chips, spikes and energy from the
    spikes Loihi fired."""
    from nengo_actions.deploy.loihi import run_loihi

    ev, metrics = cfg.evaluate, result.metrics
    n, k = min(ev.loihi_max_clips, len(data.y_test)), ev.spiking_steps_per_frame
    x, y = np.asarray(data.x_test[np.arange(n)], np.float32), np.asarray(data.y_test[:n])
    log(f"[{result.model_type}] Loihi ({ev.loihi_target}): {n} test clips, {k} step(s) per frame")
    run = run_loihi(graph, x, steps_per_frame=k, target=ev.loihi_target)
    loihi = evaluate_as_configured(run.outputs, y, data.n_classes, ev)
    reference = np.asarray(result.spiking_test["predictions"][:n])
    built = build(spiking=True, steps_per_frame=k)
    neurons = {layer.name: layer.n_neurons for layer in built.layers}
    steps = data.n_frames * k
    rates = {}
    for name, spikes in run.spikes_per_inference.items():
        layer = name.replace("lif_", "")
        if layer in neurons:
            rates[layer] = spikes / (neurons[layer] * steps * built.dt)
    ops = operations_per_inference(built, rates, data.n_frames, k, built.dt)
    metrics.update(
        loihi_test_clip_accuracy=loihi["clip_accuracy"],
        loihi_reference_clip_accuracy=float(np.mean(reference == y)),
        loihi_agreement=float(np.mean(loihi["predictions"] == reference)),
        loihi_clips=int(n),
        loihi_cores=int(run.n_cores),
        loihi_chips=int(run.n_chips),
        loihi_target=ev.loihi_target,
        loihi_spikes_per_inference=float(sum(run.spikes_per_inference.values())),
        loihi_spike_synops_per_inference=ops["spike_synops"],
        loihi_measured_energy_joules_per_inference=energy_per_inference(ops, ["loihi"])["loihi"],
        loihi_clips_per_second=run.clips_per_second,
    )
    log(f"[{result.model_type}] Loihi: clip accuracy {loihi['clip_accuracy']:.2%} (NengoDL on the same clips "
        f"{metrics['loihi_reference_clip_accuracy']:.2%}), {run.n_cores} cores on {run.n_chips} chip(s)")


def _write_result(result, test, labels):
    """``result.json``, the test confusion matrix and ``predictions_test.csv``: each test
    clip's label and answer (spiking at ``evaluate.spiking_steps_per_frame`` where the
    model spikes)."""
    out = result.out_dir
    write_json_atomic(out / "result.json",
                      jsonable({"model": result.model_type, "description": result.description, "metrics": result.metrics}))
    np.savetxt(out / "confusion_test.csv", test["confusion"], fmt="%d", delimiter=",")
    answers = (result.spiking_test or test)["predictions"]
    rows = "".join(f"{i},{int(y)},{int(p)}\n" for i, (y, p) in enumerate(zip(labels, answers)))
    write_text_atomic(out / "predictions_test.csv", "clip,label,prediction\n" + rows)


def _device_spiking(name):
    return bool(device_table()[str(name).lower()]["spiking"])


def run(cfg, *, overrides=(), run_dir=None, resume=False, params=None, nir=None, log=print):
    """Run the whole job of ``cfg``; returns the run folder.

    A multi-worker run's workers other than the chief run it in a temporary folder
    (:func:`nengo_actions.engine.distribute.scratch_run`).

    Parameters
    ----------
    overrides : sequence of str
        The ``--set`` overrides (passed on to the extraction process).
    run_dir : path or None
        An existing run folder to continue (``resume=True``); ``None`` makes a new one.
    params : path or None
        Evaluate these parameters instead of training (a file, or a run folder holding
        ``<type>/params_best.npz``).
    nir : path or None
        Evaluate this NIR graph instead of the configured models (:func:`run_graph`).
    """
    if resume and run_dir is not None and not Path(run_dir).is_dir():
        raise ConfigError(f"--resume {run_dir}: no such run folder")
    distribute.check(cfg, lambda t: registry.trains_directly(t, cfg.model))
    if not distribute.is_chief(cfg.train.distribute):
        with distribute.scratch_run(cfg, run_dir) as (cfg, run_dir):
            return _run(cfg, overrides, run_dir, resume, params, nir, log)
    return _run(cfg, overrides, run_dir, resume, params, nir, log)


def _run(cfg, overrides, run_dir, resume, params, nir, log):
    start = time.perf_counter()
    distribute.strategy(cfg.train.distribute)  # before any TensorFlow operation (collectives)
    if resume and run_dir is not None:
        config_mod.check_resumed_run(run_dir, cfg)
        trained = config_mod.finished_epochs(run_dir, cfg)
        if trained is not None:
            log(f"{run_dir} is finished ({trained} epochs, metrics.json); nothing to resume and nothing changed "
                f"(--set train.epochs={trained + 1} or more trains it longer)")
            return Path(run_dir)
    types = cfg.model.types
    check_evaluate_settings(cfg.evaluate, cfg.source)
    if "nengo_loihi" in cfg.evaluate.simulators:  # before any work: installed, and each model NIR-ready
        check_loihi_ready(cfg, types if nir is None else ())
    graph = None
    if nir is not None:  # read and checked before any work
        if resume or params is not None:
            raise ConfigError("--nir evaluates a NIR graph; it takes neither --resume nor --params")
        graph, types = read_graph(nir), ["nir"]
        if "nengo_loihi" in cfg.evaluate.simulators:
            from nengo_actions.deploy.loihi import parse_graph

            parse_graph(graph, graph_dt(graph))  # what Loihi cannot hold, named before any work

    if is_event_dataset(cfg):  # DVS recordings: framed events instead of a feature store
        data = load_event_data(cfg, log=log)
    else:
        ensure_features(cfg, overrides, log=log)
        data = load_clip_data(cfg)
    log(f"features: {data.store_dir} ({data.summary()})")
    if graph is not None and cfg.train.standardize:
        log("the NIR graph reads the frames as they are (train.standardize is not applied)")
    elif cfg.train.standardize:
        data = data.standardized()
    if params is not None:
        check_params_files(params, types, data)
    created = run_dir is None
    if created:
        run_dir = config_mod.make_run_dir(cfg)
    run_dir = Path(run_dir)
    log(f"run folder: {run_dir}")
    results = []
    try:
        if graph is not None:
            results.append(run_graph(graph, nir, cfg, data, run_dir / "nir", log=log))
        else:
            for t in types:
                results.append(run_model(t, cfg, data, run_dir / t, resume=resume, params=params, log=log))
    except OutputError as e:  # the epochs done are on disk and worth keeping
        raise OutputError(f"{e}; once it can be written, go on with --resume {run_dir}") from e
    except UserError as e:
        if created and not isinstance(e, DivergedError):  # a run that failed on bad input leaves nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise

    write_report(run_dir, cfg, data, results, total_seconds=time.perf_counter() - start)
    return run_dir


__all__ = ["run", "run_model", "run_graph", "check_evaluate_settings", "refit", "new_engine", "spiking_builder", "ModelResult"]
