"""Property-based fuzzing of every reader of a user's file.

Each reader gets a valid file made by the project's own writers, then hypothesis
damages it: truncations, overwritten and inserted bytes, random bytes, and (for text
and JSON files) fields replaced by awkward values. Whatever the damage, a reader
either returns or raises one of the project's errors (:class:`UserError`), whose
message is one line naming the file; anything else (an ``IndexError``, an
``OverflowError``, a NumPy or h5py error) would reach the user as a traceback.

The default run tries a few dozen cases per reader; ``-m slow`` tries many more.
"""

import contextlib
import io
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nengo_actions.data import make_events, write_aedat2, write_aedat31
from nengo_actions.errors import UserError

BUDGETS = [pytest.param(40, id="small"), pytest.param(1000, id="large", marks=pytest.mark.slow)]

#: Cell values that break careless parsing: empty, signs, huge and non-finite numbers,
#: non-ASCII digits, control characters.
AWKWARD = st.one_of(
    st.sampled_from(["", " ", "-1", "0", "1.5", "1e400", "nan", "inf", "-inf", "9" * 30, "²", "١٢",
                     "\x00", "é", ",", "\"", "0x10", "+3", "NaN", "null", "[]", "{}"]),
    st.integers(-2**70, 2**70).map(str),
    st.text(max_size=12),
)


def mutations(base: bytes):
    """Damaged versions of ``base``."""
    n = len(base)

    def overwrite(edits):
        data = bytearray(base)
        for position, value in edits:
            data[position % n] = value
        return bytes(data)

    return st.one_of(
        st.integers(0, n - 1).map(lambda i: base[:i]),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=12).map(overwrite),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=64)).map(
            lambda t: base[:t[0]] + t[1] + base[t[0]:]),
        st.tuples(st.integers(0, n - 1), st.integers(1, 256)).map(lambda t: base[:t[0]] + base[t[0] + t[1]:]),
        st.binary(max_size=600),
    )


def text_mutations(base: str):
    """Damaged versions of a comma- or space-separated text file ``base``."""
    lines = base.splitlines()

    def replace_cell(args):
        line, cell, value = args
        out = list(lines)
        sep = "," if "," in out[line % len(out)] else " "
        cells = out[line % len(out)].split(sep)
        cells[cell % len(cells)] = value
        out[line % len(out)] = sep.join(cells)
        return "\n".join(out).encode("utf-8", "surrogatepass")

    cells = st.tuples(st.integers(0, 1000), st.integers(0, 10), AWKWARD).map(replace_cell)
    lines_gone = st.integers(0, len(lines)).map(lambda k: "\n".join(lines[:k]).encode())
    return st.one_of(cells, lines_gone, mutations(base.encode()))


def fuzz(budget, strategy):
    """``@fuzz(budget, strategy)`` on ``check(data)``: run it on ``budget`` examples."""

    def decorate(check):
        runner = settings(max_examples=budget, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))(given(strategy)(check))
        runner()

    return decorate


def only_user_errors(read, path, data):
    """Write ``data`` to ``path`` and read it: it returns, or raises a one-line UserError
    naming the file."""
    path.write_bytes(data)
    try:
        read(path)
    except UserError as e:
        message = str(e)
        assert path.name in message, message
        assert len(" ".join(message.split("\n"))) < 2000, message


@contextlib.contextmanager
def quiet():
    """Silence the warnings readers print for recoverable damage."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def sample_events(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                       np.sort(rng.integers(0, 10_000, n)))


def file_bytes(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    return path.read_bytes()


# ---------------------------------------------------------------------------------------
# Event recordings


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("version", ["3.1", "2.0"])
@pytest.mark.parametrize("allow_truncated", [False, True])
def test_aedat(tmp_path, budget, version, allow_truncated):
    from nengo_actions.data import read_aedat

    if version == "3.1":
        base = file_bytes(tmp_path, "base.aedat", lambda p: write_aedat31(p, sample_events(), packet_events=20))
    else:
        base = file_bytes(tmp_path, "base.aedat", lambda p: write_aedat2(p, sample_events()))

    @fuzz(budget, mutations(base))
    def check(data):
        with quiet():
            only_user_errors(lambda p: read_aedat(p, allow_truncated=allow_truncated), tmp_path / "rec.aedat", data)


def test_aedat31_cut_inside_a_packets_unused_capacity(tmp_path):
    """Found by the fuzzer: a packet whose capacity exceeds its event count, with the
    file ending inside the unused capacity, keeps the events it counts."""
    from nengo_actions.data import read_aedat
    from nengo_actions.data.aedat import PACKET_HEADER

    events = sample_events()
    path = tmp_path / "rec.aedat"
    write_aedat31(path, events, packet_events=20)
    data = bytearray(path.read_bytes())
    last = len(data) - PACKET_HEADER.size - 20 * 8  # the last packet's header
    # eventCapacity 70, eventNumber and eventValid 10: the file ends after 20 of 70 slots
    data[last + 16:last + 28] = np.array([70, 10, 10], "<i4").tobytes()
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="truncated packet"):
        got = read_aedat(path, allow_truncated=True)
    np.testing.assert_array_equal(got["t"], events["t"][:50])


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("suffix", [".aedat4", ".dat", ".raw", ".bin", ".txt"])
def test_other_event_files(tmp_path, budget, suffix):
    from nengo_actions.data.formats import read_events

    @fuzz(budget, st.binary(max_size=400))
    def check(data):
        with quiet():
            only_user_errors(read_events, tmp_path / f"rec{suffix}", data)


# ---------------------------------------------------------------------------------------
# Dataset lists and label files

GESTURE_LABELS = "class,startTime_usec,endTime_usec\n1,100,900\n2,1000,2000\n11,3000,3500\n"
SL_TAGS = "class,startTime_ev,endTime_ev\n1,0,40\n2,40,80\n19,80,120\n"
SL_DEFINITIONS = "class,class Def\n1,cat\n2,dog\n3,camel\n"
GESTURE_MAPPING = "action,label\nhand_clapping,1\nright_hand_wave,2\n"
TRIALS = "user01_fluorescent.aedat\nuser02_led.aedat\n"
CLASS_INDEX = "1 ApplyEyeMakeup\n2 Archery\n"
TRAIN_LIST = "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g09_c02.avi 2\n"
TEST_LIST = "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nArchery/v_Archery_g02_c03.avi\n"


def _gesture_mapping(path):
    from nengo_actions.data.gesture import read_class_names

    folder = path.parent / "DvsGesture"
    folder.mkdir(exist_ok=True)
    os.replace(path, folder / "gesture_mapping.csv")
    try:
        read_class_names(folder)
    except UserError as e:
        raise type(e)(str(e).replace("gesture_mapping.csv", path.name)) from None


def _readers():
    from feature_extraction.ucf101 import read_class_index, read_split_list
    from nengo_actions.data.gesture import read_labels_csv, read_trial_list
    from nengo_actions.data.sl_animals import read_definitions, read_tags_csv

    names = ["ApplyEyeMakeup", "Archery"]
    return {
        "gesture_labels": (GESTURE_LABELS, read_labels_csv),
        "gesture_trials": (TRIALS, read_trial_list),
        "gesture_mapping": (GESTURE_MAPPING, _gesture_mapping),
        "sl_tags": (SL_TAGS, lambda p: read_tags_csv(p, 19)),
        "sl_definitions": (SL_DEFINITIONS, read_definitions),
        "ucf_class_index": (CLASS_INDEX, read_class_index),
        "ucf_train_list": (TRAIN_LIST, lambda p: read_split_list(p, names, labelled=True)),
        "ucf_test_list": (TEST_LIST, lambda p: read_split_list(p, names, labelled=False)),
    }


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("reader", ["gesture_labels", "gesture_trials", "gesture_mapping", "sl_tags",
                                    "sl_definitions", "ucf_class_index", "ucf_train_list", "ucf_test_list"])
def test_text_files(tmp_path, budget, reader):
    base, read = _readers()[reader]
    read(_write(tmp_path / "valid.txt", base.encode()))  # the unharmed file reads

    @fuzz(budget, text_mutations(base))
    def check(data):
        only_user_errors(read, tmp_path / f"{reader}.csv", data)


def _write(path, data):
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------
# Feature stores, parameter files, configs


def _store_bytes(tmp_path):
    from nengo_actions.store import save_split

    rng = np.random.default_rng(0)
    path = tmp_path / "base.npz"
    save_split(path, rng.normal(size=(3, 4, 5)).astype(np.float16), [0, 1, 0], ["a/x", "b/y", "a/z"], [1, 2, 3],
               {"class_names": ["a", "b"]})
    return path.read_bytes()


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("mmap", [False, True])
def test_feature_store(tmp_path, budget, mmap):
    from nengo_actions.store import load_split

    def read(path):
        split = load_split(path, mmap=mmap)
        np.asarray(split.features).sum()  # a mapped member reads its bytes only here
        del split

    @fuzz(budget, mutations(_store_bytes(tmp_path)))
    def check(data):
        only_user_errors(read, tmp_path / "train.npz", data)


def _params_bytes(tmp_path):
    from nengo_actions.io import save_npz_atomic
    from nengo_actions.params import PARAMS_FORMAT

    header = {"format": PARAMS_FORMAT, "signature": {"model": "lmu", "n_features": 5},
              "params": [{"name": "w", "shape": [2, 3]}, {"name": "b", "shape": [3]}]}
    path = save_npz_atomic(tmp_path / "params.npz", param_0=np.ones((2, 3), np.float32),
                           param_1=np.zeros(3, np.float32), header=np.asarray(json.dumps(header)))
    return path.read_bytes(), header


@pytest.mark.parametrize("budget", BUDGETS)
def test_parameter_files(tmp_path, budget):
    from nengo_actions.io import save_npz_atomic
    from nengo_actions.params import check_signature, read_params

    base, header = _params_bytes(tmp_path)

    def read(path):
        values, found = read_params(path)
        check_signature(path, found, header["signature"], header["params"])

    @fuzz(budget, mutations(base))
    def check(data):
        only_user_errors(read, tmp_path / "params_best.npz", data)

    def with_header(value):
        return save_npz_atomic(tmp_path / "h.npz", param_0=np.ones((2, 3), np.float32),
                               header=np.asarray(value)).read_bytes()

    @fuzz(budget, st.one_of(json_values().map(json.dumps), st.text(max_size=40)).map(with_header))
    def check_header(data):
        only_user_errors(read, tmp_path / "params_best.npz", data)


def json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=10))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=12)


def _config_keys():
    from nengo_actions.config import load_config, settings

    return [key for key, _ in _flat(settings(load_config()))]


def _flat(obj, prefix=""):
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.parametrize("budget", BUDGETS)
def test_configs(tmp_path, budget):
    from nengo_actions.config import PROJECT_ROOT, load_config

    base = (PROJECT_ROOT / "configs" / "config.json").read_text()
    keys = _config_keys()

    def set_key(args):
        key, value = args
        cfg = json.loads(base)
        node = cfg
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[last] = value
        return json.dumps(cfg).encode()

    values = st.tuples(st.sampled_from(keys), st.one_of(json_values(), AWKWARD))
    strategy = st.one_of(values.map(set_key), mutations(base.encode()))

    @fuzz(budget, strategy)
    def check(data):
        only_user_errors(load_config, tmp_path / "config.json", data)

    @fuzz(budget, st.tuples(st.sampled_from(keys), st.one_of(json_values().map(json.dumps), AWKWARD)))
    def check_overrides(args):
        key, text = args
        try:
            load_config(PROJECT_ROOT / "configs" / "config.json", [f"{key}={text}"])
        except UserError as e:
            assert key in str(e) or "--set" in str(e), str(e)


@pytest.mark.parametrize("budget", BUDGETS)
def test_sweep_configs(tmp_path, budget):
    from nengo_actions.config import PROJECT_ROOT
    from nengo_actions.sweep import load_sweep_config, prepare

    base = (PROJECT_ROOT / "configs" / "sweep_neurons.json").read_text()
    keys = list(json.loads(base)) + ["retries", "timeout", "jobs", "backend", "repeats", "grid", "base"]

    def set_key(args):
        key, value = args
        return json.dumps(dict(json.loads(base), **{key: value})).encode()

    strategy = st.one_of(st.tuples(st.sampled_from(keys), st.one_of(json_values(), AWKWARD)).map(set_key),
                         mutations(base.encode()))

    @fuzz(budget, strategy)
    def check(data):
        only_user_errors(lambda p: prepare(load_sweep_config(p), write=False), tmp_path / "sweep.json", data)


# ---------------------------------------------------------------------------------------
# NIR files


def _nir_bytes(tmp_path):
    import nir

    from nengo_actions.deploy.nir_export import write_graph

    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 4, 4])}),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(size=(3, 2, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.zeros(3)),
        "lif": nir.LIF(tau=np.full((3, 4, 4), 2e-4), r=np.ones((3, 4, 4)), v_leak=np.zeros((3, 4, 4)),
                       v_threshold=np.ones((3, 4, 4)), v_reset=np.zeros((3, 4, 4))),
        "flat": nir.Flatten(input_type={"input": np.array([3, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(size=(2, 48)), bias=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "output")]
    return write_graph(nir.NIRGraph(nodes=nodes, edges=edges), tmp_path / "base.nir").read_bytes()


@pytest.mark.parametrize("budget", BUDGETS)
def test_nir_files(tmp_path, budget):
    from nengo_actions.deploy.nir_import import frame_model, read_graph

    def read(path):
        frame_model(read_graph(path), where=str(path))

    base = _nir_bytes(tmp_path)
    read(_write(tmp_path / "valid.nir", base))

    @fuzz(budget, mutations(base))
    def check(data):
        only_user_errors(read, tmp_path / "graph.nir", data)


@pytest.mark.parametrize("budget", BUDGETS)
def test_nir_graphs_with_mutated_fields(tmp_path, budget):
    """Valid HDF5, wrong content: every array of every node replaced in turn."""
    from nengo_actions.deploy.nir_export import write_graph
    from nengo_actions.deploy.nir_import import frame_model, read_graph

    graph = read_graph(_write(tmp_path / "base.nir", _nir_bytes(tmp_path)))
    fields = [(name, key) for name, node in graph.nodes.items() for key, value in vars(node).items()
              if isinstance(value, (np.ndarray, int, float, tuple, dict))]
    arrays = st.one_of(
        st.integers(-3, 70).map(np.int64),
        st.lists(st.integers(-3, 70), max_size=5).map(np.array),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(np.array),
        st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)).map(lambda s: np.ones(s)),
    )

    @fuzz(budget, st.tuples(st.sampled_from(fields), arrays))
    def check(args):
        (name, key), value = args
        mutated = read_graph(tmp_path / "base.nir")
        node = mutated.nodes[name]
        if isinstance(getattr(node, key), dict):
            value = {k: value for k in getattr(node, key)}
        setattr(node, key, value)
        path = tmp_path / "mutated.nir"
        try:
            write_graph(mutated, path)
        except Exception:  # NIR itself refuses to write it: nothing for the reader to see
            return
        only_user_errors(lambda p: frame_model(read_graph(p), where=str(p)), path, path.read_bytes())


# ---------------------------------------------------------------------------------------
# Backbone weights (PyTorch, loaded weights-only)


@pytest.mark.parametrize("budget", BUDGETS)
def test_backbone_weights(tmp_path, budget):
    torch = pytest.importorskip("torch")
    from feature_extraction.backbones import build_encoder, load_weights

    encoder = build_encoder("resnet18")
    buf = io.BytesIO()
    torch.save({k: v for k, v in list(encoder.state_dict().items())[:4]}, buf)
    base = buf.getvalue()

    @fuzz(budget, mutations(base))
    def check(data):
        only_user_errors(lambda p: load_weights(encoder, p), tmp_path / "weights.pth", data)

