"""Trained parameters into the network the GUI shows: NengoDL values -> plain Nengo values.

The parameters are loaded by the engine that trained them
(:meth:`nengo_actions.engine.simulator.Engine.load_params`, which checks the file against the
network's signature and shapes) and read back per object with NengoDL's
``Simulator.get_nengo_params`` (what ``Simulator.freeze_params`` writes into a network).
The values are stored by *structural key* (an object's network path and index), so the
first ensembles of a reduced copy take the leading blocks of the full model's values.
"""

from __future__ import annotations

import dataclasses

import nengo
import numpy as np
from nengo.solvers import NoSolver

from nengo_actions.errors import ParamsError
from nengo_actions.params import read_params_header
from nengo_actions.experiment import params_for
from nengo_actions.gui.build import MAX_NEURONS, GuiError, unpack

#: The two parameter file formats that load: the train command's (``param_<i>`` and a
#: ``header`` with the network's signature) and ``nengo_dl.Simulator.save_params``'s
#: (``arr_0``, ``arr_1``, ...: every Keras weight of the simulator).
ENGINE_FORMAT, NENGO_DL_FORMAT = "engine", "nengo_dl"


# ---------------------------------------------------------------------------------------
# Structural keys


def _net_keys(net, prefix=""):
    """Structural keys of every ensemble, node and network: stable under reduction.

    An object's key is its network path and its index in that network's list, so the
    first k ensembles of an EnsembleArray have the same keys in the full model and in a
    reduced copy with fewer ensembles.
    """
    keys = {net: prefix or "model"}
    for kind in ("ensembles", "nodes"):
        for i, obj in enumerate(getattr(net, kind)):
            keys[obj] = f"{prefix}{kind}[{i}]"
    for i, sub in enumerate(net.networks):
        keys.update(_net_keys(sub, f"{prefix}networks[{i}]."))
    return keys


def _obj_key(keys, obj):
    """The key of a connection's end: an object, its neurons or a slice of either."""
    if isinstance(obj, nengo.ensemble.Neurons):
        return keys[obj.ensemble] + ".neurons"
    if isinstance(obj, nengo.base.ObjView):
        return f"{_obj_key(keys, obj.obj)}[{obj.slice}]"
    return keys[obj]


def connection_keys(net):
    """``{connection: key}``: pre, post and the count of earlier equal pairs."""
    keys, out, seen = _net_keys(net), {}, {}
    for conn in net.all_connections:
        base = f"{_obj_key(keys, conn.pre)}->{_obj_key(keys, conn.post)}"
        seen[base] = seen.get(base, -1) + 1
        out[conn] = f"{base}#{seen[base]}"
    return out


def ensemble_keys(net):
    """``{ensemble: key}`` for every ensemble of ``net`` (see :func:`_net_keys`)."""
    keys = _net_keys(net)
    return {ens: keys[ens] for ens in net.all_ensembles}


# ---------------------------------------------------------------------------------------
# Reading the trained values


def params_file(params, model_type):
    """The parameter file ``--params`` names, by the train command's rule
    (:func:`nengo_actions.experiment.params_for`): a file, or a run folder holding
    ``<model_type>/params_best.npz``."""
    path = params_for(params, model_type)
    if not path.is_file():
        where = "" if str(path) == str(params) else f" ({path})"
        raise GuiError(f"--params {params}: no such file{where}")
    return path


def saved_format(path):
    """:data:`ENGINE_FORMAT` or :data:`NENGO_DL_FORMAT`; :class:`GuiError` for a file
    that is neither. Reads only the archive's index, so it is cheap on any model."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            files = set(saved.files)
    except (OSError, ValueError, KeyError) as e:
        raise GuiError(f"--params {path}: not a readable .npz file ({e})") from None
    if "header" in files:
        return ENGINE_FORMAT
    if files == {f"arr_{i}" for i in range(len(files))}:
        return NENGO_DL_FORMAT
    raise GuiError(
        f"--params {path}: neither a parameter file of the train command "
        "nor one of nengo_dl.Simulator.save_params"
    )


def _load_nengo_dl_file(engine, path):
    """Set every Keras weight of ``engine``'s simulator from a ``Simulator.save_params``
    file, after checking the arrays' number and shapes against them."""
    from nengo_actions.compat import tf  # TensorFlow: only when a file is loaded

    try:
        with np.load(path, allow_pickle=False) as saved:
            arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, KeyError) as e:
        raise GuiError(f"--params {path}: not a readable .npz file ({e})") from None
    variables = list(engine.sim.keras_model.weights)
    if len(variables) != len(arrays):
        raise GuiError(
            f"--params {path}: holds {len(arrays)} arrays but the configured model "
            f"has {len(variables)} parameter variables; it was saved from another model"
        )
    for i, (var, value) in enumerate(zip(variables, arrays)):
        if tuple(var.shape) != value.shape:
            raise GuiError(
                f"--params {path}: array {i} has shape {value.shape} but the "
                f"configured model's variable {var.name} has shape {tuple(var.shape)}; "
                "it was saved from another model or config"
            )
    tf.keras.backend.batch_set_value(zip(variables, arrays))


def frozen_params(built, params_path):
    """Trained values of every ensemble and weighted connection, as plain arrays.

    Parameters
    ----------
    built : BuiltNetwork or tuple
        A builder's result (:func:`~nengo_actions.gui.build.unpack`). Its probe helpers
        (``instrumentation``) get no values.
    params_path : path
        A parameter file of the train command, checked against ``built.signature`` and
        the variables' shapes (without a signature, the shapes only); or one of
        ``nengo_dl.Simulator.save_params``, checked against the shapes.

    Returns
    -------
    dict
        ``"<ensemble key>/encoders" | "/gain" | "/bias"``; for a connection
        ``"<key>/weights"`` and ``"<key>/kind"`` (0: dense transform, 1: decoders of a
        decoded connection, 2: sparse transform, with ``"<key>/indices"`` and
        ``"<key>/shape"``) -> arrays.

    Raises
    ------
    GuiError
        The file is missing or unreadable, or was saved from another model.
    """
    # the engine imports TensorFlow: only a command with --params pays for it
    from nengo_actions.engine.simulator import Engine

    built = unpack(built)
    fmt = saved_format(params_path)
    net = built.network
    try:
        if fmt == ENGINE_FORMAT and getattr(built, "signature", None) is None:
            # a builder's tuple states no signature: take the file's, so that only the
            # shapes of the variables are compared
            built = dataclasses.replace(built, signature=read_params_header(params_path).get("signature", {}))
        n_neurons = sum(e.n_neurons for e in net.all_ensembles)
        if n_neurons > MAX_NEURONS:
            print(f"building the full model ({n_neurons:,} neurons) in NengoDL to read its parameters", flush=True)
        engine = Engine(built, minibatch_size=1)
        try:
            if fmt == ENGINE_FORMAT:
                engine.load_params(params_path)
            else:
                _load_nengo_dl_file(engine, params_path)
            helpers = set(getattr(built, "instrumentation", ()))
            ensembles = [
                e for e in net.all_ensembles if not isinstance(e.neuron_type, nengo.Direct) and e not in helpers
            ]
            conns = [c for c in net.all_connections if c.has_weights and c not in helpers]
            values = engine.sim.get_nengo_params(ensembles + conns)
        finally:
            engine.close()
    except ParamsError as e:
        raise GuiError(f"--params {e}") from None
    return _as_arrays(net, ensembles, conns, values)


def _as_arrays(net, ensembles, conns, values):
    """``get_nengo_params`` output as the arrays of :func:`frozen_params`."""
    ens_keys, conn_keys = ensemble_keys(net), connection_keys(net)
    out = {}
    for ens, p in zip(ensembles, values[: len(ensembles)]):
        for name in ("encoders", "gain", "bias"):
            out[f"{ens_keys[ens]}/{name}"] = np.asarray(p[name], dtype=np.float64)
    for conn, p in zip(conns, values[len(ensembles):]):
        key, transform = conn_keys[conn], p.get("transform")
        if "solver" in p:
            out[f"{key}/weights"] = np.asarray(p["solver"].values.T, dtype=np.float64)
            out[f"{key}/kind"] = np.array(1)
        elif isinstance(transform, nengo.transforms.Sparse):
            init = transform.init
            out[f"{key}/weights"] = np.asarray(init.data, dtype=np.float64)
            out[f"{key}/indices"] = np.asarray(init.indices, dtype=np.int64)
            out[f"{key}/shape"] = np.asarray(init.shape, dtype=np.int64)
            out[f"{key}/kind"] = np.array(2)
        elif isinstance(transform, np.ndarray) or np.isscalar(transform):
            out[f"{key}/weights"] = np.asarray(transform, dtype=np.float64)
            out[f"{key}/kind"] = np.array(0)
        else:
            raise GuiError(
                f"connection {conn}: its {type(transform).__name__} transform cannot be shown with "
                "trained values in the GUI"
            )
    return out


def restrict_params(values, net):
    """The frozen values for ``net``, a copy of the model with possibly fewer ensembles.

    Every object of ``net`` takes the values stored under its key (its network path and
    index, see :func:`_net_keys`); :func:`apply_params` cuts them to the object's size.
    """
    keys = set(ensemble_keys(net).values()) | set(connection_keys(net).values())
    return {name: value for name, value in values.items() if name.rsplit("/", 1)[0] in keys}


def apply_params(net, values):
    """Set frozen values on the objects of ``net`` (matched by structural key).

    Where ``net`` is a reduced copy (fewer ensembles), each array is cut to its leading
    block (dense) or to its entries inside the smaller shape (sparse), which are the
    values of the first ensembles and of the weights to and from them. An array smaller
    than its object is an error naming the object.

    Returns
    -------
    int
        The number of ensembles and connections set.
    """
    n = 0

    def fit(name, value, shape):
        if value.ndim != len(shape) or any(v < s for v, s in zip(value.shape, shape)):
            raise GuiError(f"frozen parameter {name} has shape {value.shape}; the model needs {shape}")
        return value[tuple(slice(0, s) for s in shape)]

    for ens, key in ensemble_keys(net).items():
        if f"{key}/encoders" not in values:
            continue
        ens.encoders = fit(f"{key}/encoders", values[f"{key}/encoders"], (ens.n_neurons, ens.dimensions))
        ens.normalize_encoders = False
        ens.gain = fit(f"{key}/gain", values[f"{key}/gain"], (ens.n_neurons,))
        ens.bias = fit(f"{key}/bias", values[f"{key}/bias"], (ens.n_neurons,))
        n += 1
    for conn, key in connection_keys(net).items():
        if f"{key}/weights" not in values:
            continue
        w, kind = values[f"{key}/weights"], int(values[f"{key}/kind"])
        if kind == 1:
            w = fit(f"{key}/weights", w, (conn.size_out, conn.pre_obj.n_neurons))
            conn.solver = NoSolver(w.T, weights=False)
            conn.function = _Zeros(w.shape[0])
            conn.transform = None
        elif kind == 2:
            own = conn.transform
            if not isinstance(own, nengo.transforms.Sparse):
                raise GuiError(f"frozen parameter {key}: sparse values for a {type(own).__name__} transform")
            indices = values[f"{key}/indices"]
            keep = np.all(indices < np.asarray(own.shape)[None, :], axis=1)
            if keep.sum() != len(own.init.indices):
                raise GuiError(
                    f"frozen parameter {key}: {keep.sum()} sparse entries fit the shape "
                    f"{own.shape}, the model has {len(own.init.indices)}"
                )
            conn.transform = nengo.transforms.Sparse(own.shape, indices=indices[keep], init=w[keep])
        else:
            if w.ndim == 2:
                w = fit(f"{key}/weights", w, (conn.size_out, conn.size_mid))
            conn.transform = w
        n += 1
    return n


@dataclasses.dataclass(frozen=True)
class _Zeros:
    """The function of a frozen decoded connection (its decoders carry the values)."""

    size: int

    def __call__(self, x):
        return np.zeros(self.size)
