"""Parameter files: the trained values of a network and the signature of the network.

An ``.npz`` (never pickled) with ``param_0 .. param_{n-1}`` (the trainable tensors in the
order of the NengoDL build) and ``header``, a JSON string: ``format``
(:data:`PARAMS_FORMAT`), ``signature`` (the model type and the settings that shape the
network) and ``params`` (name and shape of each tensor). Checkpoints add the optimizer
state (``opt_*``) and the training state to the same layout. Reading a file checks
it without TensorFlow, so a bad ``--params`` is refused before any work.

Every parameter file and checkpoint is written and read here, from and into a trainer
(:class:`nengo_actions.engine.trainer.Trainer`: its arrays, its network's signature and
:func:`describe` of its tensors).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from nengo_actions.errors import ParamsError, cause
from nengo_actions.io import ARCHIVE_ERRORS, save_npz_atomic

#: Version 2: parameters in the order of networks built with ``unmerged_ops``; version 1
#: files hold the same values in another order and cannot be loaded.
PARAMS_FORMAT = "nengo_actions.params/2"


def describe(tensors):
    """The ``params`` entries of a header: the name and shape of each tensor."""
    return [{"name": w.name, "shape": list(w.shape)} for w in tensors]


def save_params(path, trainer, extra=None):
    """Write the parameters of ``trainer`` (a :class:`~nengo_actions.engine.trainer.Trainer`)
    and its network's signature to ``path`` (atomically); ``extra`` joins the header.
    Returns the path."""
    header = {"format": PARAMS_FORMAT, "signature": trainer.signature, "params": trainer.describe_params()}
    header.update(extra or {})
    _write(path, trainer.get_params(), (), header)
    return Path(path)


def load_params(path, trainer):
    """Set the parameters of ``trainer`` from a file saved from the same network; returns
    the file's header, or raises :class:`ParamsError` naming the file."""
    values, header = read_checked(path, trainer.signature, trainer.describe_params())
    trainer.set_params(values)
    return header


def save_checkpoint(path, trainer, state):
    """Write a checkpoint (atomically): a parameter file with the optimizer's arrays
    (``opt_*``) and the training ``state`` in its header."""
    optimizer = trainer.optimizer_state()
    header = dict(state, format=PARAMS_FORMAT, signature=trainer.signature, params=trainer.describe_params())
    header["n_optimizer"] = len(optimizer)
    _write(path, trainer.get_params(), optimizer, header)


def load_checkpoint(path, trainer):
    """Set the parameters and optimizer state of ``trainer`` from a checkpoint, checked as
    :func:`load_params`; returns its header (the training state)."""
    values, header = read_checked(path, trainer.signature, trainer.describe_params())
    try:
        with np.load(path, allow_pickle=False) as data:
            optimizer = [data[f"opt_{i}"] for i in range(header.get("n_optimizer", 0))]
    except ARCHIVE_ERRORS as e:
        raise ParamsError(f"{path}: cannot read parameter file: {cause(e)}") from None
    trainer.set_params(values)
    trainer.set_optimizer_state(optimizer)
    return header


def _write(path, values, optimizer, header):
    arrays = {f"param_{i}": v for i, v in enumerate(values)}
    arrays.update({f"opt_{i}": v for i, v in enumerate(optimizer)})
    arrays["header"] = np.asarray(json.dumps(header))
    save_npz_atomic(path, **arrays)


def read_checked(path, signature, described):
    """``(values, header)`` of a parameter file saved from the network of ``signature``
    and ``described`` tensors (:func:`describe`); :class:`ParamsError` naming the file
    otherwise."""
    values, header = read_params(path)
    check_signature(path, header, signature, described)
    return values, header


def read_params(path):
    """``(values, header)`` of a parameter file, or :class:`ParamsError` naming it."""
    return _read(path, with_values=True)


def read_params_header(path):
    """The header of a parameter file, checked as :func:`read_params` checks it; the
    parameter arrays are not read."""
    return _read(path, with_values=False)[1]


def _read(path, with_values):
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"parameter file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ParamsError(f"{path}: not a parameter file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:  # members are read when indexed
            if "header" not in data.files:
                raise ParamsError(f"{path}: not a parameter file written by nengo_actions")
            header = json.loads(str(data["header"]))
            if not _header_is_valid(header):
                raise ParamsError(f"{path}: the header is not a parameter file's")
            n = len(header.get("params", [])) if with_values else 0
            values = [data[f"param_{i}"] for i in range(n)]
    except ParamsError:
        raise
    except ARCHIVE_ERRORS as e:
        raise ParamsError(f"{path}: cannot read parameter file: {cause(e)}") from None
    if header.get("format") == "nengo_actions.params/1":
        raise ParamsError(
            f"{path}: written by an earlier nengo_actions, whose NengoDL build ordered the "
            "parameters differently; train the model again"
        )
    if header.get("format") != PARAMS_FORMAT:
        raise ParamsError(f"{path}: unknown parameter file format {header.get('format')!r}")
    return values, header


def _header_is_valid(header):
    """The header's parts that readers index: a ``signature`` object and a ``params``
    list of ``{"shape": [...]}`` entries."""
    return (
        isinstance(header, dict)
        and isinstance(header.get("signature", {}), dict)
        and isinstance(header.get("params", []), list)
        and all(isinstance(p, dict) and isinstance(p.get("shape"), list) for p in header.get("params", []))
    )


def _by_dotted_key(signature, prefix=""):
    """A signature's values by dotted key: the settings of a builder's sections nest
    (``{"lmu": {"order": 2}}`` -> ``{"lmu.order": 2}``)."""
    flat = {}
    for key, value in signature.items():
        if isinstance(value, dict) and value:
            flat.update(_by_dotted_key(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def check_signature(path, header, signature, described):
    """Raise :class:`ParamsError` unless ``header`` was saved from this network; the
    message names each differing setting by its dotted key."""
    saved = header.get("signature", {})
    current = json.loads(json.dumps(signature))
    if saved != current:
        saved, current = _by_dotted_key(saved), _by_dotted_key(current)
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        detail = ", ".join(f"{k}: file {saved.get(k)!r} vs model {current.get(k)!r}" for k in diff)
        raise ParamsError(f"{path}: parameters of a different model ({detail})")
    shapes = [p["shape"] for p in header.get("params", [])]
    expected = [p["shape"] for p in described]
    if shapes != expected:
        raise ParamsError(
            f"{path}: parameter shapes {shapes} do not match the model's {expected}"
        )


__all__ = ["PARAMS_FORMAT", "describe", "save_params", "load_params", "save_checkpoint", "load_checkpoint", "read_params",
           "read_params_header", "read_checked", "check_signature"]
