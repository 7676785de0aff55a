"""Spiking evaluation: trained parameters run with spiking neurons, frames held 1..k steps.

Rate networks are trained with one simulation step per frame. Here the same network is
rebuilt with spiking neurons and each frame held for ``k`` steps (synaptic time
constants and LMU windows scale with ``k``, see :mod:`nengo_actions.networks`), the
trained parameters are loaded, and for each ``k``:

* accuracy (per clip and per step, the outputs of a frame's steps averaged);
* the mean firing rate of every layer (Hz);
* a spike raster of the first neurons of each layer for one clip;
* synaptic operations and energy per inference (:mod:`nengo_actions.evaluation.energy`).
"""

from __future__ import annotations

import dataclasses
import time

from nengo_actions.evaluation.energy import energy_per_inference, operations_per_inference
from nengo_actions.engine.simulator import Engine
from nengo_actions.clips.metrics import evaluate_as_configured
from nengo_actions.networks.base import layer_probes, layer_readings
from nengo_actions.config.schema import ENERGY_DEVICES, EvaluateConfig


@dataclasses.dataclass
class SpikingRun:
    steps_per_frame: int
    metrics: dict
    layer_rates_hz: dict
    operations: dict
    energy: dict
    raster: dict  # layer -> (steps, neurons) spike counts of one clip
    seconds: float
    clips_per_second: float


def evaluate_spiking(
    build,
    params_path,
    x,
    y,
    steps_per_frame=(1, 2, 4, 8),
    eval_settings=None,
    minibatch_size=32,
    device="auto",
    seed=0,
    devices=ENERGY_DEVICES,
    log=print,
):
    """Run the spiking network for each number of steps per frame.

    Parameters
    ----------
    build : callable
        ``build(spiking=True, steps_per_frame=k) -> BuiltNetwork``.
    params_path : path
        Trained parameters (:meth:`Engine.save_params`).
    x, y : arrays
        Clips ``(clips, frames, features)`` and labels ``(clips,)``.

    Returns
    -------
    list of SpikingRun
    """
    eval_settings = eval_settings or EvaluateConfig()
    runs = []
    for k in steps_per_frame:
        built = build(spiking=True, steps_per_frame=int(k))
        engine = Engine.for_inference(built, params_path, minibatch_size=minibatch_size, device=device, seed=seed)
        try:
            start = time.perf_counter()
            outputs, extra = engine.predict(x, layer_probes(built))
            seconds = time.perf_counter() - start
        finally:
            engine.close()
        metrics = evaluate_as_configured(outputs, y, built.n_classes, eval_settings)
        rates, raster = layer_readings(built, extra)
        ops = operations_per_inference(built, rates, x.shape[1], int(k), built.dt)
        run = SpikingRun(
            steps_per_frame=int(k),
            metrics=metrics,
            layer_rates_hz=rates,
            operations=ops,
            energy=energy_per_inference(ops, devices),
            raster=raster,
            seconds=seconds,
            clips_per_second=len(x) / seconds if seconds > 0 else float("nan"),
        )
        log(
            f"  spiking, {k} step(s) per frame: clip accuracy {metrics['clip_accuracy']:.2%}, "
            + ", ".join(f"{name} {hz:.0f} Hz" for name, hz in rates.items())
        )
        runs.append(run)
    return runs
