import numpy as np
import pytest

from nengo_actions import splits, store


@pytest.fixture
def split_file(tmp_path):
    rng = np.random.RandomState(0)
    features = rng.randn(6, 4, 3).astype(np.float16)
    path = store.save_split(
        tmp_path / "train.npz",
        features,
        labels=[0, 1, 2, 0, 1, 2],
        clip_ids=[f"C/v_C_g0{g}_c01" for g in range(1, 7)],
        groups=[1, 2, 3, 4, 5, 6],
        metadata={"class_names": ["a", "b", "c"], "backbone": "resnet18"},
    )
    return path, features


@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip(split_file, mmap):
    path, features = split_file
    s = store.load_split(path, mmap=mmap)
    assert isinstance(s.features, np.memmap) == mmap
    assert s.features.dtype == np.float16 and s.features.shape == (6, 4, 3)
    np.testing.assert_array_equal(np.asarray(s.features), features)
    assert s.labels.dtype == np.int64 and s.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert s.clip_ids[0] == "C/v_C_g01_c01"
    assert s.class_names == ["a", "b", "c"] and s.metadata["backbone"] == "resnet18"
    sub = s.subset(s.labels == 1)
    assert len(sub) == 2 and sub.groups.tolist() == [2, 5]


def test_loads_without_pickle(split_file):
    path, _ = split_file
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"features", "labels", "clip_ids", "groups", "metadata"}


def test_write_is_atomic(tmp_path, monkeypatch, split_file):
    path, features = split_file
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(RuntimeError):
        store.save_split(path, features * 2, [0] * 6, ["x"] * 6, [1] * 6, {})
    assert path.read_bytes() == before


def test_bad_files(tmp_path):
    with pytest.raises(store.StoreError, match="not found.*missing.npz"):
        store.load_split(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(store.StoreError, match="junk.npz"):
        store.load_split(junk)
    other = tmp_path / "other.npz"
    np.savez(other, features=np.zeros((2, 1, 1)))
    with pytest.raises(store.StoreError, match="missing"):
        store.load_split(other)
    with pytest.raises(store.StoreError, match=r"\(clips, steps, dim\)"):
        store.save_split(tmp_path / "x.npz", np.zeros((2, 3)), [0, 1], ["a", "b"], [1, 1], {})


def test_group_leak_check():
    splits.check_group_leak([1, 2, 3], [4, 5])
    with pytest.raises(splits.SplitLeakError, match=r"groups \[3\]"):
        splits.check_group_leak([1, 2, 3], [3, 4])


def test_validation_split_by_group():
    groups = np.repeat(np.arange(1, 11), 5)  # 10 groups of 5 clips
    train, val = splits.split_by_group(groups, 0.2, seed=3)
    assert val.sum() == 10 and train.sum() == 40
    splits.check_group_leak(groups[train], groups[val])
    # deterministic for a seed, different for another
    assert (splits.split_by_group(groups, 0.2, seed=3)[1] == val).all()
    assert not all(
        (splits.split_by_group(groups, 0.2, seed=s)[1] == val).all() for s in range(4, 9)
    )
    # never takes every group
    assert splits.split_by_group(np.array([1, 1, 2]), 0.99)[0].any()
    assert not splits.split_by_group(groups, 0.0)[1].any()
    with pytest.raises(ValueError, match="1 group"):
        splits.validation_groups([1, 1, 1], 0.2)


def test_the_validation_carve_of_both_clip_sources():
    """feature_data and event_data carve validation with one function: whole groups, none
    for a fraction of 0, and an error naming the data when the groups cannot be split."""
    from nengo_actions.errors import DataError

    groups = np.repeat(np.arange(1, 11), 5)
    for got, expected in zip(splits.carve_validation(groups, 0.2, 3, "here"), splits.split_by_group(groups, 0.2, 3)):
        assert got.dtype == bool and np.array_equal(got, expected)
    train, val = splits.carve_validation(groups, 0.0, 3, "here")
    assert train.dtype == val.dtype == bool and train.all() and not val.any()
    with pytest.raises(DataError, match=r"^data/train.npz: cannot carve a validation split by group from 1 group"):
        splits.carve_validation([4, 4], 0.2, 0, "data/train.npz")
