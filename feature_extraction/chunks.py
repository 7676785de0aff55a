"""Chunk files of an extraction and the store assembled from them: the manifest, chunk reads, clip counts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch

from nengo_actions.config import ConfigError, settings, write_json_atomic
from nengo_actions.store import load_split, save_split, split_path

CHUNK_DIR = "chunks"
MANIFEST = "manifest.json"


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


def _chunk_done(job, k):
    return job.chunk_path(k).exists()


def _store_fingerprint(job):
    """The fingerprint recorded in an existing complete store, or ``None``."""
    try:
        return load_split(split_path(job.store_dir, "train"), mmap=True).metadata.get("fingerprint")
    except Exception:
        return None


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
