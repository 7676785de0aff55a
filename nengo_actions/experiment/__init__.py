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

import functools
import shutil
import time
from pathlib import Path

import numpy as np

from nengo_actions import config as config_mod
from nengo_actions.engine import distribute
from nengo_actions.config import registry
from nengo_actions.config import ConfigError
from nengo_actions.deploy.nir_export import model_graph
from nengo_actions.deploy.nir_import import build_nir_network, graph_dt, read_graph
from nengo_actions.evaluation.energy import count_neurons, device_table
from nengo_actions.errors import DivergedError, OutputError, ParamsError, UserError
from nengo_actions.clips.event_data import is_event_dataset, load_event_data
from nengo_actions.clips.feature_data import ClipData, ensure_features, load_clip_data
from nengo_actions.params import read_params_header
from nengo_actions.evaluation.report import write_report
from nengo_actions.experiment.model import new_engine, params_for, run_model, spiking_builder  # noqa: F401 (the run's API)
from nengo_actions.experiment.results import ModelResult, accuracy_line, dense_figures, flat_split_metrics, loihi_figures, spiking_figures, write_result  # noqa: F401


def check_evaluate_settings(ev, where):
    """The energy devices of ``ev`` (an ``EvaluateConfig``) are ones keras-spiking knows."""
    known = device_table()
    for device in ev.energy_devices:
        if str(device).lower() not in known:
            raise ConfigError(
                f"{where}: key 'evaluate.energy_devices' holds {device!r}; keras-spiking "
                f"knows {', '.join(sorted(known))}"
            )


def check_loihi_ready(cfg, types):
    """Loihi runs a model as its NIR graph: nengo-loihi must be installed and each model
    one that NIR can hold (directly trained, average pooling, raw counts)."""
    from nengo_actions.deploy.loihi import import_nengo_loihi

    import_nengo_loihi()
    for model in types:
        # the untrained network at a small frame size: what NIR refuses does not depend on either
        model_graph(model, cfg.replace(model=config_mod.override(cfg.model, {f"{model}.frame_shape": [32, 32, 2]}, "loihi")),
                    n_features=32 * 32 * 2, n_classes=2, where=f"{cfg.source}: evaluate.simulators holds nengo_loihi, and {model}")




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
    dense_figures(metrics, built, data, ev)
    result = ModelResult("nir", built.description, metrics, [], out_dir=out_dir)
    spiking_figures(result, build, None, cfg, data, cfg.train, log)
    result.test = result.spiking_test
    metrics.update(flat_split_metrics("test_", result.test, ev.top_k))
    if "nengo_loihi" in ev.simulators:
        loihi_figures(result, graph, build, cfg, data, log)
    write_result(result, result.test, data.y_test)
    return result


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
