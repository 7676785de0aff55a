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
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from nengo_actions.config import ConfigError, settings, write_json_atomic
from nengo_actions.config.schema import Config, DataConfig
from nengo_actions.io import remove_stale_temp_files, save_npz_atomic
from nengo_actions.store import load_split, save_split, split_path

from nengo_actions.config import paths
from .backbones import build_encoder, fold_batch_norm, resolve_device
from .progress import Progress
from .seed_pickles import import_seed_pickles
from .frames import FrameSampler, Resize, ShortClipError, VideoReadError, load_clip
from .synthetic import SyntheticSpec, ensure_synthetic
from .ucf101 import DatasetError, VideoLocator, frame_folder, read_split
from .summary import Summary

CHUNK_DIR = "chunks"
MANIFEST = "manifest.json"
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


def _check_manifest(job):
    """Create the chunk manifest, or refuse chunks made with other settings."""
    path = job.chunk_dir / MANIFEST
    manifest = {"fingerprint": job.fingerprint, "n_chunks": job.n_chunks, "n_clips": len(job.clips)}
    if path.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: unreadable chunk manifest ({e}); delete {job.chunk_dir}") from None
        if found != manifest:
            old = found.get("fingerprint", {})
            changed = sorted(k for k in set(old) | set(job.fingerprint) if old.get(k) != job.fingerprint.get(k))
            raise ConfigError(
                f"{job.chunk_dir} holds chunks made with other settings (changed: "
                f"{', '.join(changed) or 'clip count'}); delete that folder, rerun with "
                "--force, or set features.store_dir"
            )
    else:
        write_json_atomic(path, manifest)


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


def _chunk_done(job, k):
    return job.chunk_path(k).exists()


def _store_fingerprint(job):
    """The fingerprint recorded in an existing complete store, or ``None``."""
    try:
        return load_split(split_path(job.store_dir, "train"), mmap=True).metadata.get("fingerprint")
    except Exception:
        return None


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


def _read_chunk(job, k, keys=None):
    """A chunk's arrays (all, or ``keys`` plus ``clip_ids``), checked against the clip list."""
    path = job.chunk_path(k)
    try:
        with np.load(path, allow_pickle=False) as data:
            wanted = data.files if keys is None else [*keys, "clip_ids"]
            chunk = {key: data[key] for key in wanted}
    except Exception as e:
        raise ConfigError(f"{path}: unreadable chunk ({e}); delete it and rerun") from None
    expected = [c.clip_id for _, c in job.chunk_clips(k)]
    if chunk["clip_ids"].tolist() != expected:
        raise ConfigError(f"{path}: holds other clips than chunk {k} of this clip list; delete it and rerun")
    return chunk


def usable(status):
    """Whether a clip of this chunk status has features (done, or damaged but allowed)."""
    return not status or status.startswith("damaged: ")


def _record(summary, clip_id, status, available, sampler):
    if status.startswith("failed: "):
        summary.clips_failed[clip_id] = status[len("failed: "):]
    elif status.startswith("skipped: "):
        summary.clips_skipped[clip_id] = status[len("skipped: "):]
    else:
        if status.startswith("damaged: "):
            summary.clips_damaged[clip_id] = status[len("damaged: "):]
        summary.clips_done += 1
        if sampler.policy != "all" and available < sampler.n_frames:
            summary.clips_padded[clip_id] = int(available)


def _count_chunks(job, done, summary):
    for k in done:
        chunk = _read_chunk(job, k, keys=("status", "available"))
        for (_, clip), status, available in zip(job.chunk_clips(k), chunk["status"], chunk["available"]):
            _record(summary, clip.clip_id, str(status), available, job.sampler)


def assemble(job, summary):
    """Join all chunks into ``train.npz`` and ``test.npz`` (atomically); fill ``summary``."""
    dim = job.encoder.feature_dim
    dtype = np.dtype(job.cfg.features.dtype)
    per_side = {"train": [], "test": []}
    for k in range(job.n_chunks):
        chunk = _read_chunk(job, k)
        offsets = np.concatenate([[0], np.cumsum(chunk["lengths"])])
        for j, (side, clip) in enumerate(job.chunk_clips(k)):
            status = str(chunk["status"][j])
            _record(summary, clip.clip_id, status, chunk["available"][j], job.sampler)
            if usable(status):
                per_side[side].append((clip, chunk["features"][offsets[j]:offsets[j + 1]]))
    lengths_all = [len(f) for items in per_side.values() for _, f in items]
    steps = max(lengths_all) if lengths_all else (job.sampler.n_frames if job.sampler.policy != "all" else 0)
    for side, items in per_side.items():
        features = np.zeros((len(items), steps, dim), dtype)
        for row, (_, f) in enumerate(items):
            features[row, :len(f)] = f
            features[row, len(f):] = f[-1]  # "all": shorter clips repeat their last step
        clips = [c for c, _ in items]
        side_ids = {c.clip_id for s, c in job.clips if s == side}
        metadata = _metadata(job, side, steps, dim, summary, side_ids)
        if job.sampler.policy == "all":
            metadata["lengths"] = [len(f) for _, f in items]
        save_split(
            split_path(job.store_dir, side), features,
            [c.label for c in clips], [c.clip_id for c in clips], [c.group for c in clips], metadata,
        )
        summary.sides[side] = len(items)
    summary.shape, summary.dtype, summary.complete = (steps, dim), dtype.name, True
    summary.chunks_done = job.n_chunks
    if not job.cfg.features.keep_chunks:
        shutil.rmtree(job.chunk_dir, ignore_errors=True)
    return summary


def _metadata(job, side, steps, dim, summary, side_ids):
    cfg, encoder = job.cfg, job.encoder
    return {
        "split": side,
        "official_split": cfg.data.split,
        "dataset": cfg.data.dataset,
        "class_names": list(job.dataset.class_names),
        "backbone": encoder.backbone,
        "output": encoder.output,
        "pool_grid": encoder.pool_grid,
        "weights": encoder.weights_path,
        "weights_sha256": encoder.weights_sha256,
        "random_init": encoder.random_init,
        "sampling": {
            "policy": job.sampler.policy,
            "n_frames": job.sampler.n_frames,
            "short_clips": job.sampler.short_clips,
        },
        "resize": [job.resize.height, job.resize.width],
        "mean": list(cfg.frames.mean),
        "std": list(cfg.frames.std),
        "feature_dim": dim,
        "steps": steps,
        "dtype": cfg.features.dtype,
        "warnings": list(encoder.warnings),
        "config": settings(cfg),
        "clips_skipped": {k: v for k, v in summary.clips_skipped.items() if k in side_ids},
        "clips_failed": {k: v for k, v in summary.clips_failed.items() if k in side_ids},
        "clips_padded": {k: v for k, v in summary.clips_padded.items() if k in side_ids},
        "clips_damaged": {k: v for k, v in summary.clips_damaged.items() if k in side_ids},
        "fingerprint": job.fingerprint,
        "torch": torch.__version__,
    }


def _summarize_store(job, summary):
    for side in ("train", "test"):
        split = load_split(split_path(job.store_dir, side), mmap=True)
        summary.sides[side] = len(split)
        summary.clips_done += len(split)
        summary.clips_failed.update(split.metadata.get("clips_failed", {}))
        summary.clips_skipped.update(split.metadata.get("clips_skipped", {}))
        summary.clips_padded.update(split.metadata.get("clips_padded", {}))
        summary.clips_damaged.update(split.metadata.get("clips_damaged", {}))
        summary.shape, summary.dtype = split.features.shape[1:], str(split.features.dtype)
    summary.complete = True
    summary.chunks_done = summary.chunks_total
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
