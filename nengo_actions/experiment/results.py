"""A trained model's results: its figures (rate, spiking, Loihi, energy) and the files
of ``<run>/<type>/``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from nengo_actions.config import jsonable, write_json_atomic
from nengo_actions.evaluation.energy import device_table, energy_per_inference, operations_per_inference
from nengo_actions.io import write_text_atomic
from nengo_actions.clips.metrics import evaluate_as_configured



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


def flat_split_metrics(prefix, m, top_k):
    return {
        f"{prefix}clip_accuracy": m["clip_accuracy"],
        f"{prefix}clip_accuracy_last": m["clip_accuracy_last"],
        f"{prefix}clip_accuracy_mean": m["clip_accuracy_mean"],
        f"{prefix}clip_accuracy_vote": m["clip_accuracy_vote"],
        f"{prefix}top{top_k}_accuracy": m[f"top{top_k}_accuracy"],
        f"{prefix}step_accuracy": m["step_accuracy"],
    }


def accuracy_line(model_type, metrics, evaluated_as="rate"):
    """The log line of a model's test and validation accuracy (a validation accuracy of
    0 is a figure; no validation clips is "none"); ``evaluated_as`` names what was
    evaluated (the trainer's ``evaluated_as``)."""
    val = metrics.get("val_clip_accuracy")
    return (f"[{model_type}] {evaluated_as}: test clip accuracy "
            f"{metrics['test_clip_accuracy']:.2%} (step accuracy {metrics['test_step_accuracy']:.2%}), validation "
            + ("none" if val is None else f"{val:.2%}"))


def dense_figures(metrics, built, data, ev):
    """Synapses, ANN operations and the non-spiking devices' energy of one pass per frame."""
    dense_ops = operations_per_inference(built, {}, data.n_frames, 1, ev.dt)
    non_spiking = [d for d in ev.energy_devices if not device_spiking(d)]
    for device, joules in energy_per_inference(dense_ops, non_spiking).items():
        metrics[f"energy_{device}_joules_per_inference"] = joules
    metrics["synapses"] = dense_ops["synapses"]
    metrics["ann_ops_per_inference"] = dense_ops["dense_synops"]


def spiking_figures(result, build, params_path, cfg, data, ts, log):
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
    metrics.update(flat_split_metrics("spiking_test_", head.metrics, ev.top_k))
    metrics["spiking_steps_per_frame"] = head.steps_per_frame
    metrics["spiking_inference_clips_per_second"] = head.clips_per_second
    for name, hz in head.layer_rates_hz.items():
        metrics[f"firing_rate_hz_{name}"] = hz
    metrics["spike_synops_per_inference"] = head.operations["spike_synops"]
    metrics["value_synops_per_inference"] = head.operations["value_synops"]
    for device, joules in head.energy.items():
        if device_spiking(device):
            metrics[f"energy_{device}_joules_per_inference"] = joules
    result.spiking_test, result.raster = head.metrics, head.raster


def loihi_figures(result, graph, build, cfg, data, log):
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


def write_result(result, test, labels):
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


def device_spiking(name):
    return bool(device_table()[str(name).lower()]["spiking"])
