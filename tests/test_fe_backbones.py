"""Frame encoders: against torchvision itself, grid pooling, local weights, the seed head."""

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from feature_extraction.backbones import (
    ARCHITECTURES,
    BACKBONES,
    GMACS_224,
    FrameEncoder,
    WeightsError,
    build_encoder,
    detect_architecture,
    load_weights,
    sha256_file,
)
from nengo_actions.config import schema
from nengo_actions.config import IMAGENET_MEAN, IMAGENET_STD, ConfigError


def frames(n=3, h=64, w=64, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))


def reference_input(x):
    """The seed's preprocessing done by hand: RGB in [0, 1], ImageNet mean and std."""
    x = x.permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def test_pooled_features_equal_torchvision_without_fc(tmp_path):
    reference = torchvision.models.resnet18(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "r18.pth")  # fc included: it is ignored
    encoder = build_encoder("resnet18", tmp_path / "r18.pth")
    reference.fc = nn.Identity()
    x = frames()
    with torch.inference_mode():
        got, want = encoder(x), reference(reference_input(x))
    assert got.shape == (3, 512) and encoder.feature_dim == 512
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert not encoder.random_init and encoder.warnings == []
    assert encoder.weights_sha256 == sha256_file(tmp_path / "r18.pth")


def test_channels_last_gives_the_same_features():
    encoder = build_encoder("resnet18", seed=1)
    x = frames(2)
    with torch.inference_mode():
        plain = encoder(x)
        fast = encoder.to(memory_format=torch.channels_last)(x)
    torch.testing.assert_close(plain, fast, rtol=1e-4, atol=1e-4)


def test_pool_grid_keeps_a_grid_of_positions():
    encoder = build_encoder("resnet18", pool_grid=2, seed=0)
    x = frames(2, 96, 96)
    with torch.inference_mode():
        got = encoder(x)
        trunk = encoder.trunk(reference_input(x))  # (2, 512, 3, 3)
    assert got.shape == (2, 512 * 4) and encoder.feature_dim == 2048
    # adaptive average pool over overlapping halves, flattened channel-major
    top_left = trunk[:, :, :2, :2].mean((2, 3))
    bottom_right = trunk[:, :, 1:, 1:].mean((2, 3))
    grid = got.view(2, 512, 2, 2)
    torch.testing.assert_close(grid[:, :, 0, 0], top_left, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grid[:, :, 1, 1], bottom_right, rtol=1e-4, atol=1e-5)
    # the grid's mean is the global average pool of a 2x2 map
    with torch.inference_mode():
        pooled = build_encoder("resnet18", pool_grid=1, seed=0)(frames(2, 64, 64))
        grid64 = encoder(frames(2, 64, 64)).view(2, 512, 4).mean(2)
    torch.testing.assert_close(pooled, grid64, rtol=1e-4, atol=1e-5)


def test_random_init_is_seeded_and_loud():
    a, b = build_encoder("resnet18", seed=0), build_encoder("resnet18", seed=0)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, build_encoder("resnet18", seed=1).conv1.weight)
    assert a.random_init and a.weights_sha256 is None
    assert a.warnings and a.warnings[0].startswith("RANDOM WEIGHTS")


def test_weights_of_another_depth_are_refused_naming_the_file(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(WeightsError, match=r"r18.pth: holds resnet18 weights, but features.backbone is resnet34"):
        build_encoder("resnet34", tmp_path / "r18.pth")
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"bad.pth: does not fit the resnet18 trunk: layer1.0.conv1.weight has shape"):
        build_encoder("resnet18", tmp_path / "bad.pth")
    assert isinstance(WeightsError("x"), ConfigError)  # the command exits 2


def test_unreadable_or_pickled_weights_are_refused(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="junk.pth: cannot be read"):
        build_encoder("resnet18", tmp_path / "junk.pth")
    # a full pickled module needs unpickling of arbitrary classes: weights_only refuses it
    torch.save(torchvision.models.resnet18(weights=None), tmp_path / "module.pth")
    with pytest.raises(WeightsError, match="module.pth: cannot be read as a weights-only"):
        build_encoder("resnet18", tmp_path / "module.pth")
    with pytest.raises(WeightsError, match="weights file not found"):
        build_encoder("resnet18", tmp_path / "absent.pth")


class SeedEncoder(nn.Module):
    """The seed's ResCNNEncoder layout (resnet children[:-1] as a Sequential, then the head)."""

    def __init__(self, resnet):
        super().__init__()
        self.resnet = nn.Sequential(*list(resnet.children())[:-1])
        self.fc1 = nn.Linear(2048, 1024)
        self.bn1 = nn.BatchNorm1d(1024, momentum=0.01)
        self.fc2 = nn.Linear(1024, 768)
        self.bn2 = nn.BatchNorm1d(768, momentum=0.01)
        self.fc3 = nn.Linear(768, 512)

    def forward(self, x):
        x = self.resnet(x).flatten(1)
        x = torch.relu(self.bn1(self.fc1(x)))
        x = torch.relu(self.bn2(self.fc2(x)))
        return self.fc3(x)


def test_seed_encoder_checkpoint_gives_the_seed_head_features(tmp_path):
    # the seed used resnet152; the key layout is the same for every bottleneck ResNet,
    # and resnet50 keeps the file small
    torch.manual_seed(5)
    seed = SeedEncoder(torchvision.models.resnet50(weights=None))
    for bn in (seed.bn1, seed.bn2):  # trained-looking running statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    seed.eval()
    path = tmp_path / "cnn_encoder_epoch63_singleGPU.pth"
    torch.save({f"module.{k}": v for k, v in seed.state_dict().items()}, path)  # DataParallel prefix
    encoder = build_encoder("resnet50", path, output="seed_head")
    x = frames(2)
    with torch.inference_mode():
        got, want = encoder(x), seed(reference_input(x))
    assert got.shape == (2, 512) and encoder.feature_dim == 512
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)
    # the same file gives the trunk's pooled 2048-d features
    pooled = build_encoder("resnet50", path, output="pool")
    with torch.inference_mode():
        torch.testing.assert_close(pooled(x), seed.resnet(reference_input(x)).flatten(1), rtol=1e-3, atol=1e-4)
    # a torchvision file has no head
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(WeightsError, match="has no seed head"):
        build_encoder("resnet50", tmp_path / "r50.pth", output="seed_head")
    with pytest.raises(WeightsError, match="holds resnet50 weights, but features.backbone is resnet152"):
        build_encoder("resnet152", path, output="seed_head")


def test_every_backbone_of_the_schema_has_its_architecture_and_cost():
    assert BACKBONES is schema.BACKBONES
    assert tuple(ARCHITECTURES) == tuple(GMACS_224) == BACKBONES


def test_detect_architecture_of_every_depth():
    for name in BACKBONES:
        keys = getattr(torchvision.models, name)(weights=None).state_dict()
        assert detect_architecture(keys) == name


def test_invalid_encoder_settings():
    with pytest.raises(ConfigError, match="pool_grid=1"):
        FrameEncoder("resnet50", pool_grid=2, output="seed_head")
    with pytest.raises(ConfigError, match="2048-channel"):
        FrameEncoder("resnet18", output="seed_head")
    with pytest.raises(ConfigError, match="features.backbone"):
        FrameEncoder("vgg16")
    with pytest.raises(ConfigError, match="features.pool_grid"):
        FrameEncoder("resnet18", pool_grid=0)
    with pytest.raises(ConfigError, match="key 'features.output' must be 'pool' or 'seed_head', got 'fc'"):
        FrameEncoder("resnet18", output="fc")
    encoder = build_encoder("resnet18")
    with pytest.raises(WeightsError):
        load_weights(encoder, "/nonexistent/weights.pth")
