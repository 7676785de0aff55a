"""``--backend ray``: the shards of an extraction as Ray tasks, then the merge.

The driver checks the config, the data and the weights first (:func:`extract.prepare`,
which also generates a missing synthetic set once, before any task could race to), then
starts ``n`` tasks; task ``i`` runs :func:`extract.extract` with ``shard=(i, n)``, the
same call as ``--shard i/n``, and :func:`merge.merge` assembles the store. Since every
chunk is the same whichever shard wrote it and the store is assembled in chunk order,
the store is byte for byte that of a single-process run.

The tasks write their chunks into the store folder, so every node must see that folder
at the same path (one machine, or a shared file system). A rerun skips the chunks that
exist, so an interrupted run resumes.
"""

from __future__ import annotations

import shutil
import time

import numpy as np

from nengo_actions import cluster
from nengo_actions.config import ConfigError
from nengo_actions.errors import ExtractionError, UserError
from nengo_actions.io import remove_stale_temp_files, write_json_atomic

from nengo_actions.config import paths
from .progress import Progress

RAY_MISSING = "--backend ray " + cluster.RAY_MISSING

#: Ray reruns a task whose worker died (a kill, the out-of-memory killer, a lost node) up
#: to this many times; a task that raised is not rerun, its error would only repeat.
RETRIES = 2

#: Seconds between looks at the chunk folder for the progress bar.
POLL_S = 1.0


def run_shard(cfg, shard):
    """One Ray task: what ``--shard i/n`` does."""
    from . import extract

    extract.extract(cfg, shard, progress=False)


def default_jobs(resources):
    """One shard per GPU of the cluster, else one per CPU."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    return max(1, gpus or cpus)


def extract_on_ray(cfg, jobs=None, address=None, progress=True, force=False):
    """Extract the store of ``cfg`` with ``jobs`` shards as Ray tasks, then merge them.

    Parameters
    ----------
    jobs : int or None
        Shards (tasks); ``None``: the cluster's GPUs, or its CPUs if it has none. Each
        task takes one GPU where the cluster has GPUs, else one CPU.
    address : str or None
        An existing Ray cluster; ``None`` starts a local Ray and shuts it down afterwards.
    force : bool
        Delete the existing store and chunks first.

    Returns
    -------
    Summary
        The merged store's, with this run's clips, frames and seconds.
    """
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: at least 1 task is needed")
    cluster.import_ray(RAY_MISSING)  # before any work: without Ray nothing is generated or deleted
    from . import chunks, extract
    from .merge import merge

    if cfg.features.seed_pickles:  # an import, not an extraction: nothing to spread
        return extract.extract(cfg, progress=progress)
    job = extract.prepare(cfg, progress)
    if force:
        for name in ("train.npz", "test.npz", extract.SUMMARY):
            (job.store_dir / name).unlink(missing_ok=True)
        shutil.rmtree(job.chunk_dir, ignore_errors=True)
    if paths.store_complete(cfg):
        # the local run says "nothing to do", or refuses a store of other settings
        return extract.run(job, (1, 1), progress)
    job.chunk_dir.mkdir(parents=True, exist_ok=True)
    chunks._check_manifest(job)  # other settings' chunks are refused here, not in n tasks
    pending = [k for k in range(job.n_chunks) if not job.chunk_path(k).exists()]
    start = time.perf_counter()
    n = _run_tasks(job, cfg, jobs, address, pending, progress) if pending else 0
    seconds = time.perf_counter() - start
    remove_stale_temp_files(job.store_dir)  # the writes of workers killed and retried
    # counted from the chunks, not from the tasks: a killed attempt's chunks were written
    # in this run too, and its retry skips them
    clips = sum(len(job.chunk_clips(k)) for k in pending)
    frames = sum(_frames_in_chunk(job.chunk_path(k)) for k in pending)
    summary = merge(cfg, (), progress)
    summary.clips_this_run, summary.frames_this_run, summary.seconds = clips, frames, seconds
    summary.note = (f"extracted in {n} Ray tasks, then merged" if n
                    else "all chunks were there; merged them")
    if job.generated:
        summary.note += f"; generated the synthetic action set in {paths.data_root(cfg.data)}"
    write_json_atomic(job.store_dir / extract.SUMMARY, summary.to_json())
    return summary


def _frames_in_chunk(path):
    with np.load(path, allow_pickle=False) as data:
        return int(data["lengths"].sum())


def _run_tasks(job, cfg, jobs, address, pending, progress):
    """Run the shards as tasks until all have ended; returns their number."""
    with cluster.ray_session(address, missing=RAY_MISSING) as ray:
        resources = ray.cluster_resources()
        n = min(jobs or default_jobs(resources), job.n_chunks)
        gpu = {"num_gpus": 1} if resources.get("GPU", 0) >= 1 else {}
        task = ray.remote(num_cpus=1, max_retries=RETRIES, **gpu)(run_shard)
        refs = {task.remote(cfg, (i, n)): i for i in range(1, n + 1)}
        left = set(pending)
        bar = Progress(sum(len(job.chunk_clips(k)) for k in pending),
                       f"extracting in {n} Ray tasks", "clip", progress)
        errors = []
        while refs:
            done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_S)
            for ref in done:
                i = refs.pop(ref)
                try:
                    ray.get(ref)
                except Exception as e:  # the other shards go on: their chunks count on a rerun
                    errors.append((i, e))
            written = {k for k in left if job.chunk_path(k).exists()}
            left -= written
            bar.update(sum(len(job.chunk_clips(k)) for k in written), shards=f"{n - len(refs)}/{n}")
        bar.close()
    if errors:
        _raise(ray, n, *errors[0])
    return n


def _raise(ray, n, i, error):
    cause = getattr(error, "cause", None)
    if isinstance(cause, UserError):
        raise cause from None
    if isinstance(error, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                          ray.exceptions.ObjectLostError)):
        raise ExtractionError(
            f"shard {i}/{n}: its Ray worker died in each of {RETRIES + 1} attempts "
            f"({type(error).__name__}); rerun to go on from the chunks written"
        ) from None
    raise error


__all__ = ["extract_on_ray", "default_jobs", "RAY_MISSING"]
