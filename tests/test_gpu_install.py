"""The GPU install (the ``gpu`` extra) and device selection, checked on the CPU."""

import configparser
import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def requirements(text):
    return [Requirement(line.strip()) for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_gpu_extra_names_tensorflow_with_cuda_and_leaves_the_cpu_install_alone():
    cfg = setup_cfg()
    gpu = requirements(cfg["options.extras_require"]["gpu"])
    assert [(r.name, r.extras, str(r.specifier)) for r in gpu] == [("tensorflow", {"and-cuda"}, "==2.15.1")]
    base = {r.name: r for r in requirements(cfg["options"]["install_requires"])}
    assert str(base["tensorflow"].specifier) == "==2.15.1" and not base["tensorflow"].extras
    assert "nvidia" not in cfg["options"]["install_requires"]


def _names(reqs, extra=None):
    names = {}
    for text in reqs or []:
        r = Requirement(text)
        if r.marker is None or r.marker.evaluate({"extra": extra or "", "platform_system": "Linux", "python_version": "3.11"}):
            names[r.name.lower().replace("_", "-")] = str(r.specifier)
    return names


def test_tensorflows_cuda_wheels_and_torchs_are_different_packages():
    """What pip resolves for ``.[gpu]``: TensorFlow 2.15.1's ``and-cuda`` extra pins the CUDA 12
    wheels, torch's CUDA build pins its own; no package is pinned by both."""
    try:
        tf_reqs = importlib.metadata.requires("tensorflow")
        torch_reqs = importlib.metadata.requires("torch")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tensorflow or torch is not installed")
    cuda = {n: s for n, s in _names(tf_reqs, "and-cuda").items() if n not in _names(tf_reqs)}
    assert cuda and all(re.fullmatch(r"nvidia-[a-z-]+-cu12", n) for n in cuda), cuda
    assert all(s.startswith("==") for s in cuda.values())
    torch_cuda = {n for n in _names(torch_reqs) if n.startswith(("nvidia-", "cuda-"))}
    assert not set(cuda) & torch_cuda


def test_tensorflow_device_selection(monkeypatch):
    from nengo_actions.compat import tf
    from nengo_actions.engine.trainer import select_device
    from nengo_actions.clips.feature_data import DataError

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert select_device("auto") == select_device("cpu") == "/cpu:0"
    with pytest.raises(DataError, match="train.device is 'gpu' but TensorFlow sees no GPU"):
        select_device("gpu")
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [gpu] if kind in (None, "GPU") else [])
    assert select_device("auto") == select_device("gpu") == "/gpu:0"
    assert select_device("cpu") == "/cpu:0"


def test_torch_device_selection(monkeypatch):
    torch = pytest.importorskip("torch")
    from feature_extraction.backbones import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(Exception, match="features.device.*no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda:1")
