"""The extraction pipeline: clips -> frames -> per-frame features -> the feature store.

The clips of both sides of the official split (train first, then test, in list order)
are cut into chunks of ``features.chunk_size`` clips. Each chunk is decoded (in
background threads), run through the backbone in batches of ``features.batch_size``
frames under :func:`torch.inference_mode`, and written atomically to
``<store_dir>/chunks/chunk_NNNNNN.npz``. A rerun skips the chunks that exist, and since a
chunk's batches never mix with another chunk's, the assembled store is identical to an
uninterrupted run. ``shard=(i, n)`` processes chunks ``k`` with ``k % n == i - 1`` only,
for several machines; :func:`feature_extraction.merge.merge` gathers their chunks and assembles the store.

Once every chunk exists, ``<store_dir>/train.npz`` and ``<store_dir>/test.npz`` are
written with :func:`nengo_actions.store.save_split` (see there for the format) and the
chunks are removed unless ``features.keep_chunks``.

A missing or undecodable video is recorded with its reason (``clips_failed``) and the run
goes on; short clips are padded or skipped (``frames.short_clips``). Missing split files,
a wrong data path or a weights file that does not fit raise a
:class:`~nengo_actions.config.ConfigError` before any work starts.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from nengo_actions.config import ConfigError, write_json_atomic
from nengo_actions.config.schema import Config, DataConfig
from nengo_actions.io import remove_stale_temp_files, save_npz_atomic

from nengo_actions.config import paths
from .backbones import build_encoder, fold_batch_norm, resolve_device
from .chunks import (
    CHUNK_DIR, _check_manifest, _chunk_done, _count_chunks, _store_fingerprint, _summarize_store, assemble,
)
from .progress import Progress
from .seed_pickles import import_seed_pickles
from .frames import FrameSampler, Resize, ShortClipError, VideoReadError, load_clip
from .synthetic import SyntheticSpec, ensure_synthetic
from .ucf101 import DatasetError, VideoLocator, frame_folder, read_split
from .summary import Summary

SUMMARY = "extraction_summary.json"
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclasses.dataclass
class Job:
    """Everything an extraction run needs, checked before any work starts."""

    cfg: Config
    dataset: object  # ucf101.Dataset
    clips: list  # [(side, Clip)] train then test
    encoder: torch.nn.Module
    device: torch.device
    sampler: FrameSampler
    resize: Resize
    store_dir: Path
    fingerprint: dict
    locate: VideoLocator
    generated: bool = False

    @property
    def chunk_size(self):
        return self.cfg.features.chunk_size

    @property
    def n_chunks(self):
        return -(-len(self.clips) // self.chunk_size)

    def chunk_clips(self, k):
        return self.clips[k * self.chunk_size:(k + 1) * self.chunk_size]

    @property
    def resize_shape(self):
        return (self.resize.height, self.resize.width)

    @property
    def chunk_dir(self):
        return self.store_dir / CHUNK_DIR

    def chunk_path(self, k):
        return self.chunk_dir / f"chunk_{k:06d}.npz"


# ---------------------------------------------------------------------------------------
# Preparation: every check that can fail runs here, before any work


def parse_shard(text):
    """``"2/4"`` -> ``(2, 4)``; shards are numbered ``1..n``."""
    try:
        i, n = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ConfigError(f"--shard {text!r}: shards are numbered 1..n (got {i} of {n})")
    return i, n


def load_dataset(data: DataConfig, progress=True):
    """Generate the synthetic set if needed and read the split lists.

    Returns ``(dataset, generated)``.
    """
    generated = False
    if data.dataset == "synthetic_actions":
        spec = SyntheticSpec.from_config(data.synthetic)
        generated = ensure_synthetic(paths.data_root(data), spec, data.generate, progress)
    elif data.dataset != "ucf101":
        raise ConfigError(
            f"key 'data.dataset' is {data.dataset!r}: the feature extraction reads "
            "'ucf101' or 'synthetic_actions' videos"
        )
    if data.videos_dir is None and data.splits_dir is None:
        root = paths.data_root(data)
        if not root.is_dir():
            raise DatasetError(f"key 'data.root': data folder not found: {root}")
    dataset = read_split(paths.splits_dir(data), data.split)
    source = paths.frames_dir(data) or paths.videos_dir(data)
    if not source.is_dir():
        key = "data.frames_dir" if paths.frames_dir(data) else "data.videos_dir"
        raise DatasetError(f"key '{key}': video folder not found: {source}")
    return dataset, generated


def _clip_list_hash(clips):
    text = "\n".join(f"{side} {c.clip_id} {c.label} {c.group}" for side, c in clips)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare(cfg: Config, progress=True):
    """Check the config, the data and the weights; build the network. No extraction yet."""
    frames_cfg, features_cfg = cfg.frames, cfg.features
    dataset, generated = load_dataset(cfg.data, progress)
    clips = [("train", c) for c in dataset.train] + [("test", c) for c in dataset.test]
    if not clips:
        raise DatasetError(f"{paths.splits_dir(cfg.data)}: the split lists name no clips")
    try:
        sampler = FrameSampler(frames_cfg.policy, frames_cfg.n_frames, frames_cfg.short_clips)
    except ValueError as e:
        raise ConfigError(f"frames: {e}") from None
    resize = frames_cfg.resize
    if len(resize) != 2 or any(int(v) < 16 for v in resize):
        raise ConfigError(f"key 'frames.resize' must be [height, width] of at least 16, got {list(resize)}")
    weights = paths.resolve_path(features_cfg.weights) if features_cfg.weights else None
    encoder = build_encoder(
        features_cfg.backbone, weights, features_cfg.pool_grid, features_cfg.output,
        frames_cfg.mean, frames_cfg.std, seed=cfg.seed,
    )
    # inference only: BatchNorm folded into the convolutions (about 10-20% faster on CPU)
    encoder = fold_batch_norm(encoder)
    device = resolve_device(features_cfg.device)
    if features_cfg.threads > 0:
        torch.set_num_threads(features_cfg.threads)
    encoder = encoder.to(device)
    if features_cfg.channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
    fingerprint = dict(
        paths.feature_settings(cfg),
        **{
            "features.weights_sha256": encoder.weights_sha256,
            "features.chunk_size": features_cfg.chunk_size,
            "frames.allow_short_reads": frames_cfg.allow_short_reads,
            "clips": _clip_list_hash(clips),
            "seed": cfg.seed if encoder.random_init else None,
        },
    )
    return Job(cfg, dataset, clips, encoder, device, sampler, Resize(*map(int, resize)),
               paths.store_dir(cfg), fingerprint, VideoLocator(paths.videos_dir(cfg.data)), generated)


# ---------------------------------------------------------------------------------------
# Work


def _decode(job, clip):
    """``(frames uint8 (steps, H, W, 3) or None, n_available, status)`` of one clip."""
    frames_dir = paths.frames_dir(job.cfg.data)
    try:
        if frames_dir is not None:
            source, from_folder = frame_folder(frames_dir, clip), True
        else:
            source, from_folder = job.locate(clip), False
        frames, available, damage = load_clip(
            source, job.sampler, job.resize, from_folder, job.cfg.frames.allow_short_reads
        )
        return frames, available, damage
    except ShortClipError as e:
        return None, 0, f"skipped: {e}"
    except VideoReadError as e:
        return None, 0, f"failed: {e}"
    except Exception as e:  # a decoder crash on one file must not end the run
        return None, 0, f"failed: undecodable: {type(e).__name__}: {e}"


def _encode(job, frames):
    """Features ``(frames, dim)`` float32 of ``uint8`` frames, in batches."""
    out = []
    batch = job.cfg.features.batch_size
    with torch.inference_mode():
        for start in range(0, len(frames), batch):
            x = torch.from_numpy(frames[start:start + batch]).to(job.device, non_blocking=True)
            out.append(job.encoder(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, job.encoder.feature_dim), np.float32)


def _write_chunk(job, k, decoded):
    """Encode one chunk's decoded clips and write the chunk file atomically."""
    clips = job.chunk_clips(k)
    lengths = np.array([0 if f is None else len(f) for f, _, _ in decoded], dtype=np.int64)
    ok = [f for f, _, _ in decoded if f is not None]
    frames = np.concatenate(ok) if ok else np.zeros((0, *job.resize_shape, 3), np.uint8)
    features = _encode(job, frames)
    dtype = np.dtype(job.cfg.features.dtype)
    if dtype == np.float16 and features.size and np.abs(features).max() > FLOAT16_MAX:
        raise ConfigError(
            f"features reach {np.abs(features).max():.3g}, beyond float16's range; "
            "set features.dtype to float32"
        )
    arrays = dict(
        features=features.astype(dtype),
        lengths=lengths,
        available=np.array([a for _, a, _ in decoded], dtype=np.int64),
        status=np.array([s for _, _, s in decoded], dtype=str),
        clip_ids=np.array([c.clip_id for _, c in clips], dtype=str),
    )
    save_npz_atomic(job.chunk_path(k), **arrays)
    return len(frames)


def run(job, shard=(1, 1), progress=True, on_chunk=None, force=False):
    """Extract the chunks of ``shard`` that are not done yet; assemble the store if all are.

    Parameters
    ----------
    job : Job
        From :func:`prepare`.
    shard : (int, int)
        ``(i, n)``: this run does chunks ``k`` with ``k % n == i - 1``. Only an unsharded
        run (``n == 1``) assembles the store; sharded runs leave that to :func:`merge`.
    on_chunk : callable or None
        Called with the chunk index after each chunk is written.
    force : bool
        Delete the existing store and chunks first.

    Returns
    -------
    Summary
    """
    i, n = shard
    features_cfg = job.cfg.features
    summary = Summary(job.store_dir, clips_total=len(job.clips), chunks_total=job.n_chunks,
                      allow_failures=features_cfg.allow_failures, warnings=list(job.encoder.warnings))
    if job.generated:
        summary.note = f"generated the synthetic action set in {paths.data_root(job.cfg.data)}"
    if force:
        for name in ("train.npz", "test.npz", SUMMARY):
            (job.store_dir / name).unlink(missing_ok=True)
        shutil.rmtree(job.chunk_dir, ignore_errors=True)
    if paths.store_complete(job.cfg):
        if _store_fingerprint(job) == job.fingerprint:
            summary.note = "the store is complete; nothing to do (--force extracts again)"
            return _summarize_store(job, summary)
        raise ConfigError(
            f"{job.store_dir} holds a feature store made with other settings; delete it, "
            "rerun with --force, or set features.store_dir"
        )
    job.chunk_dir.mkdir(parents=True, exist_ok=True)
    if n == 1:  # shards may share the folder from other machines, whose writers are unknown here
        remove_stale_temp_files(job.store_dir)
    _check_manifest(job)
    mine = [k for k in range(job.n_chunks) if k % n == i - 1]
    pending = [k for k in mine if not _chunk_done(job, k)]
    n_pending_clips = sum(len(job.chunk_clips(k)) for k in pending)
    bar = Progress(n_pending_clips, f"extracting{'' if n == 1 else f' shard {i}/{n}'}", "clip", progress)
    start = time.perf_counter()
    workers = features_cfg.decode_workers
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        def submit(k):
            return [pool.submit(_decode, job, clip) for _, clip in job.chunk_clips(k)]

        queued = {pending[0]: submit(pending[0])} if pending else {}
        for index, k in enumerate(pending):
            if index + 1 < len(pending):  # decode the next chunk while this one runs
                queued[pending[index + 1]] = submit(pending[index + 1])
            decoded = [f.result() for f in queued.pop(k)]
            summary.frames_this_run += _write_chunk(job, k, decoded)
            summary.clips_this_run += len(decoded)
            elapsed = time.perf_counter() - start
            bar.update(len(decoded), frames_per_s=f"{summary.frames_this_run / max(elapsed, 1e-9):.0f}")
            if on_chunk is not None:
                on_chunk(k)
    bar.close()
    summary.seconds = time.perf_counter() - start
    done = [k for k in range(job.n_chunks) if _chunk_done(job, k)]
    if n == 1 and len(done) == job.n_chunks:
        assemble(job, summary)
    else:
        summary.chunks_done = len(done)
        _count_chunks(job, done, summary)
    write_json_atomic(job.store_dir / SUMMARY, summary.to_json())
    return summary


# ---------------------------------------------------------------------------------------
# Entry points


def extract(cfg: Config, shard=(1, 1), progress=True, on_chunk=None, force=False):
    """Prepare and run an extraction (or a seed-pickle import when configured).

    Returns a :class:`Summary`; its ``exit_code`` is what the command exits with.
    """
    if cfg.features.seed_pickles:
        return import_seed_pickles(cfg)
    job = prepare(cfg, progress)
    return run(job, shard, progress, on_chunk, force)
