"""Gathering the chunks of sharded extraction runs into one feature store.

Each machine runs ``--shard i/n`` into its own store folder; copied to one machine, the
folders are named after ``--merge`` and their chunks (made with the same settings, as
their manifests say) are copied beside this config's own, then the store is assembled
as an unsharded run would have written it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nengo_actions.config import ConfigError, write_json_atomic
from nengo_actions.io import atomic_path
from nengo_actions.config.schema import Config

from .chunks import CHUNK_DIR, MANIFEST, _check_manifest, _chunk_done, assemble
from .extract import SUMMARY, prepare
from .summary import Summary


def merge(cfg: Config, sources=(), progress=True):
    """Gather the chunks of sharded runs and assemble the store.

    Parameters
    ----------
    sources : iterable of path
        Store folders of other shards (on other machines, copied here); their chunks are
        copied into this config's store folder when their manifest matches.
    """
    job = prepare(cfg, progress)
    job.chunk_dir.mkdir(parents=True, exist_ok=True)
    _check_manifest(job)
    for source in sources:
        source = Path(source)
        chunk_dir = source / CHUNK_DIR if (source / CHUNK_DIR).is_dir() else source
        manifest = chunk_dir / MANIFEST
        if not manifest.is_file():
            raise ConfigError(f"--merge {source}: no chunk manifest at {manifest}")
        found = json.loads(manifest.read_text())
        if found.get("fingerprint") != job.fingerprint:
            raise ConfigError(f"--merge {source}: its chunks were made with other settings than this config")
        if chunk_dir.resolve() == job.chunk_dir.resolve():
            continue
        for path in sorted(chunk_dir.glob("chunk_*.npz")):
            target = job.chunk_dir / path.name
            if not target.exists():
                with atomic_path(target) as tmp:
                    shutil.copyfile(path, tmp)
    missing = [k for k in range(job.n_chunks) if not _chunk_done(job, k)]
    if missing:
        shown = ", ".join(str(k) for k in missing[:10])
        raise ConfigError(
            f"{job.chunk_dir}: {len(missing)} of {job.n_chunks} chunks are missing "
            f"(e.g. {shown}); run the shards that make them, or name their folders after --merge"
        )
    summary = Summary(job.store_dir, clips_total=len(job.clips), chunks_total=job.n_chunks,
                      allow_failures=cfg.features.allow_failures, warnings=list(job.encoder.warnings))
    summary.note = "merged the chunks of all shards"
    assemble(job, summary)
    write_json_atomic(job.store_dir / SUMMARY, summary.to_json())
    return summary


__all__ = ["merge"]
