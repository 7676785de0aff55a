"""``--backend ray``: shards as Ray tasks give the single-process store byte for byte,
resume from the chunks an interrupted run left, and refuse what does not go with them."""

import contextlib
import io
import shutil
import sys

import pytest

from feature_extraction.cli import main
from feature_extraction.ray_backend import RAY_MISSING
from nengo_actions.cluster import ray_session
from test_extract import data_root, write_config  # noqa: F401 (data_root is a fixture)

ray = pytest.importorskip("ray")
SIDES = ("train.npz", "test.npz")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: its workers stay warm from one run to the next."""
    with ray_session(num_cpus=2):
        yield


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_root):  # noqa: F811
    """A single-process run: its config file, its store, the store's bytes, its closing
    summary lines and a copy of its chunks.

    The Ray runs use the same config file (the store records the config, store folder
    included), each after the store folder was emptied."""
    folder = tmp_path_factory.mktemp("ray_reference")
    path = write_config(folder, data__root=str(data_root), features__store_dir=str(folder / "store"),
                        features__keep_chunks=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["-c", str(path), "--no-progress"]) == 0
    store = folder / "store"
    shutil.copytree(store / "chunks", folder / "chunks")
    return path, store, {name: (store / name).read_bytes() for name in SIDES}, summary_lines(out.getvalue())


def ray_run(path, *argv):
    return main(["-c", str(path), "--backend", "ray", "--jobs", "2", "--no-progress", *argv])


def summary_lines(out):
    return [line for line in out.splitlines() if line.startswith(("  clips:", "  store:", "  WARNING"))]


def test_two_ray_tasks_write_the_single_process_store_byte_for_byte(local_ray, reference, capsys):
    path, store, expected, local = reference
    shutil.rmtree(store)
    assert ray_run(path) == 0
    out = capsys.readouterr().out
    assert "extracted in 2 Ray tasks, then merged" in out and "speed: 192 frames" in out
    assert summary_lines(out) == local  # the closing lines of a local run
    assert {name: (store / name).read_bytes() for name in SIDES} == expected
    assert ray.is_initialized()  # a Ray it did not start is left running


def test_a_rerun_reuses_the_chunks_left_and_completes_the_store(local_ray, reference, capsys):
    path, store, expected, _ = reference
    shutil.rmtree(store)
    shutil.copytree(store.parent / "chunks", store / "chunks")
    # an interrupted run: no merged store, chunks 1, 4 and 6 not written
    for k in (1, 4, 6):
        (store / "chunks" / f"chunk_{k:06d}.npz").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (store / "chunks").glob("chunk_*.npz")}
    assert ray_run(path) == 0
    assert "32 done (12 in this run)" in capsys.readouterr().out  # 5 + 5 + 2 clips
    assert {name: (store / name).read_bytes() for name in SIDES} == expected
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # not written again
    # complete: nothing to do, and no Ray task started
    assert ray_run(path) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--shard", "1/2"], ["--merge"]])
def test_shard_or_merge_with_the_ray_backend_exit_2(tmp_path, data_root, capsys, argv):  # noqa: F811
    path = write_config(tmp_path, data__root=str(data_root), features__store_dir=str(tmp_path / "store"))
    with pytest.raises(SystemExit) as e:
        ray_run(path, *argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --backend ray runs and merges the shards itself; leave out --shard and --merge\n"
    assert not (tmp_path / "store").exists()


def test_without_ray_one_line_says_how_to_install_it(tmp_path, data_root, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" raises ImportError
    path = write_config(tmp_path, data__root=str(data_root), features__store_dir=str(tmp_path / "store"))
    with pytest.raises(SystemExit) as e:
        ray_run(path)
    assert e.value.code == 2
    assert capsys.readouterr().err == f"error: {RAY_MISSING}\n"
    assert RAY_MISSING == '--backend ray needs Ray: pip install -e ".[cluster]"'
    assert not (tmp_path / "store").exists()
