"""Per-frame feature extractors built on torchvision ResNets.

A :class:`FrameEncoder` takes a batch of ``uint8`` RGB frames ``(batch, height, width, 3)``
and returns ``(batch, dim)`` float32 features:

* normalisation: ``(x / 255 - mean) / std`` per channel (ImageNet statistics by default);
* the ResNet trunk (``conv1`` .. ``layer4``) of resnet18/34/50/101/152;
* pooling: ``pool_grid=1`` is torchvision's global average pool (``dim`` = 512 or 2048);
  ``pool_grid=G`` keeps a ``G x G`` adaptive-average grid, flattened channel-major
  (``dim = channels * G * G``), so the features keep where things are in the frame;
* optionally the seed's trained head (``output="seed_head"``): Linear 2048->1024, BN, ReLU,
  Linear 1024->768, BN, ReLU, Linear 768->512.

Weights come only from local files: a torchvision ResNet state dict, or the seed's
encoder checkpoint (``cnn_encoder_epoch63_singleGPU.pth``, a ``ResCNNEncoder`` whose
``resnet`` is ``nn.Sequential(*list(resnet152.children())[:-1])`` followed by
``fc1/bn1/fc2/bn2/fc3``). Files are read with ``torch.load(..., weights_only=True)``.
Nothing is ever downloaded; without a file the network is randomly initialised and
:attr:`FrameEncoder.warnings` says so.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
import torchvision
from torch import nn

from nengo_actions.config import ConfigError
from nengo_actions.config.schema import BACKBONES, FEATURE_OUTPUTS
#: Blocks per stage, and whether the blocks are bottlenecks (``conv3`` present).
ARCHITECTURES = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "resnet101": ((3, 4, 23, 3), True),
    "resnet152": ((3, 8, 36, 3), True),
}
#: Multiply-accumulates per 224x224 frame of the trunk (torchvision's "GFLOPS" figures
#: count multiply-accumulates); they scale with the pixel count.
GMACS_224 = {"resnet18": 1.814, "resnet34": 3.664, "resnet50": 4.089, "resnet101": 7.801, "resnet152": 11.514}
# The seed encoder's Sequential indices -> torchvision module names.
SEED_TRUNK = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
SEED_HEAD_SIZES = (1024, 768, 512)


class WeightsError(ConfigError):
    """A weights file cannot be read or does not fit the backbone; names the file."""


def sha256_file(path, block=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SeedHead(nn.Module):
    """The seed's trained head: 2048 -> 1024 -> 768 -> 512 (Linear, BatchNorm, ReLU)."""

    def __init__(self, in_features=2048, sizes=SEED_HEAD_SIZES):
        super().__init__()
        h1, h2, out = sizes
        self.fc1 = nn.Linear(in_features, h1)
        self.bn1 = nn.BatchNorm1d(h1, momentum=0.01)
        self.fc2 = nn.Linear(h1, h2)
        self.bn2 = nn.BatchNorm1d(h2, momentum=0.01)
        self.fc3 = nn.Linear(h2, out)

    def forward(self, x):
        x = torch.relu(self.bn1(self.fc1(x)))
        x = torch.relu(self.bn2(self.fc2(x)))
        return self.fc3(x)


class FrameEncoder(nn.Module):
    """ResNet features of single frames.

    Parameters
    ----------
    backbone : str
        One of :data:`BACKBONES`.
    pool_grid : int
        1 for global average pooling; ``G > 1`` keeps a ``G x G`` grid.
    output : str
        ``"pool"`` (pooled trunk features) or ``"seed_head"`` (the 512-d seed head).
    mean, std : sequence of 3 floats
        Per-channel normalisation of ``x / 255``.

    Input ``(batch, height, width, 3)`` ``uint8``; output ``(batch, feature_dim)`` float32.
    """

    def __init__(self, backbone="resnet152", pool_grid=1, output="pool",
                 mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        super().__init__()
        if backbone not in BACKBONES:
            raise ConfigError(f"key 'features.backbone' must be one of {', '.join(BACKBONES)}; got {backbone!r}")
        if pool_grid < 1:
            raise ConfigError(f"key 'features.pool_grid' must be at least 1, got {pool_grid}")
        if output == "seed_head" and pool_grid != 1:
            raise ConfigError("features.output='seed_head' needs features.pool_grid=1 (the head takes 2048 values)")
        self.backbone, self.pool_grid, self.output = backbone, pool_grid, output
        resnet = getattr(torchvision.models, backbone)(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        self.channels = resnet.fc.in_features
        self.pool = nn.AdaptiveAvgPool2d(pool_grid)
        if output == "seed_head":
            if self.channels != 2048:
                raise ConfigError(f"features.output='seed_head' needs a 2048-channel backbone (resnet50/101/152), not {backbone}")
            self.head = SeedHead(self.channels)
        elif output == "pool":
            self.head = None
        else:
            raise ConfigError(f"key 'features.output' must be {' or '.join(map(repr, FEATURE_OUTPUTS))}, got {output!r}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255)
        self.register_buffer("inv_std", 1 / (torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255))
        self.weights_path = None
        self.weights_sha256 = None
        self.random_init = True
        self.warnings = []
        self.folded = False

    @property
    def feature_dim(self):
        if self.head is not None:
            return self.head.fc3.out_features
        return self.channels * self.pool_grid**2

    def trunk(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, frames):
        # (B, H, W, 3) uint8 viewed as NCHW is already channels-last in memory
        x = frames.permute(0, 3, 1, 2).float()
        x = (x - self.mean) * self.inv_std
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.contiguous()
        x = self.pool(self.trunk(x)).flatten(1)
        if self.head is not None:
            x = self.head(x)
        return x

    def gmacs_per_frame(self, height, width):
        """Multiply-accumulates (10^9) per frame of the trunk at ``height x width``."""
        return GMACS_224[self.backbone] * height * width / 224**2


def _unwrap(state, path):
    """The state dict inside a checkpoint: plain, or under 'state_dict'/'model'."""
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}


def detect_architecture(state):
    """The torchvision ResNet a trunk state dict fits, e.g. ``"resnet152"``, or ``None``."""
    blocks = []
    for layer in range(1, 5):
        indices = {int(m.group(1)) for k in state for m in [re.match(rf"layer{layer}\.(\d+)\.", k)] if m}
        blocks.append(max(indices) + 1 if indices else 0)
    bottleneck = any(".conv3." in k for k in state)
    for name, (counts, is_bottleneck) in ARCHITECTURES.items():
        if tuple(blocks) == counts and bottleneck == is_bottleneck:
            return name
    return None


def _seed_to_torchvision(state):
    """Map a seed ``ResCNNEncoder`` state dict to ``(trunk, head)`` state dicts."""
    trunk, head = {}, {}
    for key, value in state.items():
        if key.startswith("resnet."):
            index, rest = key[len("resnet."):].split(".", 1)
            if index in SEED_TRUNK:
                trunk[f"{SEED_TRUNK[index]}.{rest}"] = value
        elif key.split(".")[0] in ("fc1", "bn1", "fc2", "bn2", "fc3"):
            head[key] = value
    return trunk, head


def _load_strict(module, state, path, what):
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = []
        if wrong:
            k, got, want = wrong[0]
            detail.append(f"{k} has shape {got}, the model needs {want}")
        if missing:
            detail.append(f"{len(missing)} missing tensor(s), e.g. {missing[0]}")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}")
        raise WeightsError(f"{path}: does not fit the {what}: " + "; ".join(detail))
    module.load_state_dict(state, strict=True)


def load_weights(encoder, path):
    """Load a local weights file into ``encoder`` (in place); raise :class:`WeightsError`.

    Accepts a torchvision ResNet state dict (its ``fc`` is ignored) or the seed's encoder
    checkpoint. The file is hashed (sha256) into ``encoder.weights_sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"key 'features.weights': weights file not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated zip files, non-tensor objects
        raise WeightsError(f"{path}: cannot be read as a weights-only PyTorch file: {e}") from None
    state = _unwrap(raw, path)
    seed_format = any(k.startswith("resnet.") for k in state) and "fc1.weight" in state
    head_state = {}
    if seed_format:
        trunk_state, head_state = _seed_to_torchvision(state)
    else:
        trunk_state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    found = detect_architecture(trunk_state)
    if found is not None and found != encoder.backbone:
        raise WeightsError(
            f"{path}: holds {found} weights, but features.backbone is {encoder.backbone}"
        )
    trunk_modules = nn.ModuleDict({name: getattr(encoder, name) for name in
                                   ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")})
    # ModuleDict keys equal the attribute names, so its state dict keys match torchvision's
    _load_strict(trunk_modules, trunk_state, path, f"{encoder.backbone} trunk")
    if encoder.head is not None:
        if not head_state:
            raise WeightsError(
                f"{path}: has no seed head (fc1, bn1, fc2, bn2, fc3); features.output='seed_head' "
                "needs the seed's encoder checkpoint"
            )
        _load_strict(encoder.head, head_state, path, "seed head (2048->1024->768->512)")
    encoder.weights_path = str(path)
    encoder.weights_sha256 = sha256_file(path)
    encoder.random_init = False
    encoder.warnings = []
    return encoder


def fold_batch_norm(encoder):
    """Fold every eval-mode BatchNorm into the layer before it (in place); returns ``encoder``.

    A BatchNorm at inference is an affine map per channel, so it can live in the
    preceding convolution's (or linear layer's) weights and bias: one memory pass less
    per layer, the same function up to float rounding.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    if encoder.training:
        raise ValueError("fold_batch_norm needs an encoder in eval mode")
    encoder.conv1 = fuse_conv_bn_eval(encoder.conv1, encoder.bn1)
    encoder.bn1 = nn.Identity()
    for layer in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4):
        for block in layer:
            for i in (1, 2, 3):
                conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
                if conv is not None and isinstance(bn, nn.BatchNorm2d):
                    setattr(block, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                    setattr(block, f"bn{i}", nn.Identity())
            if block.downsample is not None:
                conv, bn = block.downsample[0], block.downsample[1]
                block.downsample = nn.Sequential(fuse_conv_bn_eval(conv, bn))
    if encoder.head is not None:
        head = encoder.head
        head.fc1, head.bn1 = fuse_linear_bn_eval(head.fc1, head.bn1), nn.Identity()
        head.fc2, head.bn2 = fuse_linear_bn_eval(head.fc2, head.bn2), nn.Identity()
    encoder.folded = True
    return encoder


def build_encoder(backbone="resnet152", weights=None, pool_grid=1, output="pool",
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), seed=0):
    """A :class:`FrameEncoder` in eval mode, with weights from ``weights`` or random.

    Random initialisation uses ``seed`` so that every run (and every shard) computes
    the same features.
    """
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        encoder = FrameEncoder(backbone, pool_grid, output, mean, std)
    finally:
        torch.random.set_rng_state(generator_state)
    if weights:
        load_weights(encoder, weights)
    else:
        what = "the seed head and the trunk are" if output == "seed_head" else "the trunk is"
        encoder.warnings.append(
            f"RANDOM WEIGHTS: no features.weights file was given, so {what} randomly "
            f"initialised (seed {seed}); the features are random projections, not "
            f"ImageNet features. Set features.weights to a local {backbone} state dict "
            "for real features."
        )
    return encoder.eval()


def resolve_device(name="auto"):
    """``"auto"`` -> CUDA when present, else CPU; other names are passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"key 'features.device' is {name!r}, but no CUDA device is available")
    return device
