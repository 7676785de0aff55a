"""The training loop: epochs, model selection on validation, checkpoints, resume.

:func:`train` runs the epochs of any trainer (:class:`nengo_actions.engine.trainer.Trainer`:
:class:`~nengo_actions.engine.simulator.Engine`, :class:`~nengo_actions.engine.direct.DirectEngine`): a
shuffled pass over the training clips, then the validation clips (never the test set)
scored per clip, the best epoch's parameters kept (``params_best.npz``), early
stopping, parameters and optimizer state saved after every epoch (``checkpoint.npz``)
so that ``resume=True`` continues exactly where an interrupted run stopped,
``history.csv`` and TensorBoard logs.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from pathlib import Path

from tqdm import tqdm

from nengo_actions.compat import tf
from nengo_actions.errors import DivergedError, ParamsError
from nengo_actions.io import remove_stale_temp_files, write_text_atomic
from nengo_actions.clips.metrics import evaluate_as_configured
# names of this module, so that tests can kill a run inside a checkpoint's write
from nengo_actions.params import load_checkpoint as _load_checkpoint
from nengo_actions.params import save_checkpoint as _save_checkpoint

#: The per-epoch figures written to TensorBoard; history.csv holds them between the epoch
#: and its seconds.
SCALAR_FIELDS = ("train_loss", "val_loss", "val_clip_accuracy", "val_step_accuracy", "learning_rate")
HISTORY_FIELDS = ("epoch", *SCALAR_FIELDS, "seconds")


@dataclasses.dataclass
class TrainResult:
    history: list
    best_epoch: int
    best_val_clip_accuracy: float
    train_seconds: float
    initial_val_clip_accuracy: float
    params_path: Path
    stopped_early: bool = False
    resumed_from_epoch: int = 0


def evaluate_split(engine, x, y, settings_eval, loss_kind, loss_steps):
    """Rate outputs and metrics on one split: ``(outputs, metrics, loss)``."""
    outputs = engine.predict(x)
    metrics = evaluate_as_configured(outputs, y, engine.n_classes, settings_eval)
    return outputs, metrics, engine.numpy_loss(outputs, y, loss_kind, loss_steps)


def _write_history(path, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_FIELDS})
    write_text_atomic(path, buf.getvalue())


def train(
    engine,
    x_train,
    y_train,
    x_val,
    y_val,
    settings,
    eval_settings,
    out_dir,
    *,
    resume=False,
    seed=0,
    log=print,
    on_epoch_end=None,
):
    """Train ``engine`` and keep the epoch with the best validation per-clip accuracy.

    Writes into ``out_dir``: ``params_best.npz`` (the selected epoch), ``params_last.npz``
    and ``checkpoint.npz`` (after every epoch; parameters, optimizer state, history),
    ``history.csv`` and ``tensorboard/``. With ``resume=True`` training continues from
    ``checkpoint.npz``.

    Parameters
    ----------
    settings : TrainConfig
        The model's training settings (``cfg.train.for_model(model_type)``).
    eval_settings : EvaluateConfig
        The ``evaluate`` section (clip_method, last_k, top_k).
    on_epoch_end : callable or None
        Called as ``on_epoch_end(epoch, row)`` after each epoch's checkpoint is written.

    Returns
    -------
    TrainResult
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine.check_arrays(x_train, y_train, "training split")
    has_val = x_val is not None and len(x_val) > 0
    if has_val:
        engine.check_arrays(x_val, y_val, "validation split")
    engine.compile(settings, len(x_train))
    loss_kind, loss_steps = settings.loss, settings.loss_steps
    checkpoint = out_dir / "checkpoint.npz"
    remove_stale_temp_files(out_dir)  # half-written files of a killed run
    best_path = out_dir / "params_best.npz"

    history, start_epoch, best, best_epoch, since_best = [], 0, (-1.0, math.inf), 0, 0
    initial = float("nan")
    resumed_from = 0
    if resume and checkpoint.exists():
        state = _load_checkpoint(checkpoint, engine)
        history, start_epoch = state["history"], state["epoch"]
        best, best_epoch = tuple(state["best"]), state["best_epoch"]
        since_best, initial = state["since_best"], state["initial_val_clip_accuracy"]
        resumed_from = start_epoch
        log(f"resuming from epoch {start_epoch} ({checkpoint})")
    elif resume:
        log(f"no checkpoint in {out_dir}; starting from the beginning")
    elif settings.initial_accuracy and has_val:
        _, m, _ = evaluate_split(engine, x_val, y_val, eval_settings, loss_kind, loss_steps)
        initial = m["clip_accuracy"]
        chance = 1.0 / engine.n_classes
        log(f"untrained validation clip accuracy: {initial:.2%} (chance {chance:.2%})")
        if initial > chance + 0.25:
            log(
                "warning: the untrained network is far above chance; check that labels "
                "do not leak into the features"
            )

    writer = tf.summary.create_file_writer(str(out_dir / "tensorboard")) if settings.tensorboard else None
    epochs = settings.epochs
    patience = settings.early_stopping
    stopped = False
    seconds = sum(float(r.get("seconds", 0)) for r in history)
    bar = tqdm(total=epochs, initial=start_epoch, desc="epochs", unit="epoch", leave=False, dynamic_ncols=True)
    try:
        for epoch in range(start_epoch, epochs):
            if patience and since_best >= patience:
                stopped = True
                break
            t0 = time.perf_counter()
            train_loss = engine.fit_epoch(x_train, y_train, epoch, seed)
            if not math.isfinite(train_loss):
                raise DivergedError(
                    f"{out_dir}: epoch {epoch + 1}: the training loss is {train_loss}; the run stops here "
                    f"(epochs before it are kept; try a lower train.learning_rate)"
                )
            row = {"epoch": epoch + 1, "train_loss": train_loss, "learning_rate": engine.learning_rate()}
            if has_val:
                _, m, val_loss = evaluate_split(engine, x_val, y_val, eval_settings, loss_kind, loss_steps)
                row.update(val_loss=val_loss, val_clip_accuracy=m["clip_accuracy"], val_step_accuracy=m["step_accuracy"])
                score = (m["clip_accuracy"], val_loss)
            else:
                score = (float(epoch), -train_loss)  # no validation: keep the last epoch
            row["seconds"] = time.perf_counter() - t0
            seconds += row["seconds"]
            history.append(row)
            improved = score[0] > best[0] or (score[0] == best[0] and score[1] < best[1])
            if improved:
                best, best_epoch, since_best = score, epoch + 1, 0
                engine.save_params(best_path, {"epoch": epoch + 1})
            else:
                since_best += 1
            engine.save_params(out_dir / "params_last.npz", {"epoch": epoch + 1})
            _save_checkpoint(
                checkpoint,
                engine,
                {
                    "epoch": epoch + 1,
                    "history": history,
                    "best": list(best),
                    "best_epoch": best_epoch,
                    "since_best": since_best,
                    "initial_val_clip_accuracy": initial,
                },
            )
            _write_history(out_dir / "history.csv", history)
            if writer is not None:
                with writer.as_default():
                    for key in SCALAR_FIELDS:
                        if key in row:
                            tf.summary.scalar(key, row[key], step=epoch + 1)
                writer.flush()
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
            bar.update(1)
            bar.set_postfix(
                loss=f"{train_loss:.3f}",
                val=f"{row.get('val_clip_accuracy', float('nan')):.3f}",
            )
    finally:
        bar.close()
    if patience and since_best >= patience and len(history) < epochs:
        stopped = True
    if not best_path.exists():
        raise ParamsError(f"training stopped before any epoch finished; no {best_path}")
    return TrainResult(
        history=history,
        best_epoch=best_epoch,
        best_val_clip_accuracy=best[0] if has_val else float("nan"),
        train_seconds=seconds,
        initial_val_clip_accuracy=initial,
        params_path=best_path,
        stopped_early=stopped,
        resumed_from_epoch=resumed_from,
    )


__all__ = ["TrainResult", "evaluate_split", "train", "HISTORY_FIELDS", "SCALAR_FIELDS"]
