"""Data-parallel training of the directly trained networks with ``tf.distribute``.

``train.distribute`` picks the strategy:

* ``"none"``: one process, one device (the default);
* ``"mirrored"``: ``MirroredStrategy``, every GPU of this machine (the CPU alone is one
  replica);
* ``"multi_worker"``: ``MultiWorkerMirroredStrategy``, one process per machine or per
  device. The workers find each other through ``TF_CONFIG``, set as TensorFlow's own
  multi-worker guide sets it, so SLURM, Kubernetes or Ray can start them;
  ``python -m nengo_actions.train --workers N`` starts N on this machine
  (:mod:`nengo_actions.engine.workers`).

Every worker runs the same command on the same data. Each global minibatch of
``train.minibatch_size`` clips is split evenly over the replicas, gradients are summed
across them, and batch normalisation uses the statistics of the whole global batch (as
PyTorch's ``SyncBatchNorm``), so that N replicas compute what one process computes, up
to the order of floating-point sums and the dropout masks each replica draws.

Only the chief (worker 0, or the ``chief`` task) writes the run folder; the other
workers write theirs into a temporary folder that is removed at the end, as TensorFlow's
guide has non-chief workers save.

The NengoDL route trains on one device: ``nengo_dl.Simulator`` has no ``tf.distribute``
support (it builds its own graph and session loop around one device), so its sweeps and
evaluations scale out as Ray tasks instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

from nengo_actions.errors import ConfigError
from nengo_actions.config.schema import STRATEGIES

NENGO_DL_ONE_DEVICE = (
    "trains with NengoDL, which runs on one device (nengo_dl.Simulator has no tf.distribute support); "
    "use train.distribute \"none\" for it, and scale its sweeps out through Ray"
)


def tf_config():
    """``TF_CONFIG`` as a dict (``{}`` when unset); :class:`ConfigError` when malformed."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
        workers = value["cluster"]["worker"]
        task = value["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"TF_CONFIG: not a TensorFlow cluster description ({e}); see TensorFlow's multi-worker guide") from e
    if not isinstance(workers, list) or not workers:
        raise ConfigError("TF_CONFIG: cluster.worker must be a list of host:port addresses")
    n = len(value["cluster"].get(kind, ())) if kind in ("worker", "chief") else 0
    if not 0 <= index < n:
        raise ConfigError(f"TF_CONFIG: task {kind} {index} is not in the cluster's {kind} list")
    return value


def workers(setting):
    """The number of worker processes of a run with ``train.distribute = setting``."""
    if setting != "multi_worker":
        return 1
    cluster = tf_config().get("cluster", {})
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ())) or 1


def is_chief(setting):
    """Whether this process writes the run folder: always, unless it is a multi-worker
    run's worker other than the chief (the ``chief`` task, else worker 0)."""
    if setting != "multi_worker":
        return True
    config = tf_config()
    if not config:
        return True
    task = config["task"]
    if "chief" in config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and int(task["index"]) == 0


def check(cfg, trains_directly):
    """Before any work: ``train.distribute`` is set once per run, only for directly trained
    models, and ``multi_worker`` has its ``TF_CONFIG``. ``trains_directly(type)`` says which
    model types train with Keras through time."""
    setting = cfg.train.distribute
    for name, override in (cfg.train.models or {}).items():
        if isinstance(override, dict) and "distribute" in override:
            raise ConfigError(f"train.models.{name}.distribute: train.distribute is set once for the whole run")
    if setting == "none":
        return
    for model_type in cfg.model.types:
        if not trains_directly(model_type):
            raise ConfigError(f"train.distribute {setting!r}: model {model_type!r} {NENGO_DL_ONE_DEVICE}")
    if setting == "multi_worker" and not tf_config():
        raise ConfigError(
            "train.distribute 'multi_worker' needs TF_CONFIG (the cluster's workers and this one's index); "
            "--workers N starts N workers on this machine with it"
        )


@functools.lru_cache(maxsize=None)
def strategy(setting):
    """The process's ``tf.distribute`` strategy for ``setting``, or ``None`` for ``"none"``.

    Made once per process: ``MultiWorkerMirroredStrategy`` configures TensorFlow's
    collective ops, which can be done only before the first operation runs, so the
    train command makes it before it loads any data.
    """
    if setting == "none":
        return None
    from nengo_actions.compat import tf

    if setting == "mirrored":
        return tf.distribute.MirroredStrategy()
    tf_config()  # a readable message rather than TensorFlow's for a malformed one
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING
    )
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


@contextlib.contextmanager
def scratch_run(cfg, run_dir):
    """``(cfg, run_dir)`` for a worker other than the chief: the run is written into a
    temporary folder, removed afterwards, and a resumed run folder is copied there first,
    so that only the chief writes the real one. The worker trains in step with the chief
    and leaves the spiking evaluation to it."""
    scratch = Path(tempfile.mkdtemp(prefix="nengo_actions-worker-"))
    try:
        if run_dir is not None:
            run_dir = shutil.copytree(run_dir, scratch / Path(run_dir).name)
        evaluate = cfg.evaluate.replace(spiking=False, simulators=("nengo_dl",))
        yield cfg.replace(save_dir=str(scratch), evaluate=evaluate), run_dir
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def replicas(strategy_):
    """Replicas training in step: 1 without a strategy."""
    return 1 if strategy_ is None else int(strategy_.num_replicas_in_sync)


__all__ = ["STRATEGIES", "tf_config", "workers", "is_chief", "check", "strategy", "scratch_run", "replicas"]
