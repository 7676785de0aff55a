"""Sliced samples cached on disk, and the dataset object the readers return.

A recording is sliced once; each sample is saved as ``<cache>/<sample id>.npz`` (arrays
``events`` and ``label``) and then the recording's manifest ``<cache>/<recording>.json``
is written, naming its samples and the fingerprints (size, mtime) of the source files and
reader settings it was made from. Every file is written atomically, and the manifest
last, so a killed run leaves only complete samples, and a recording without a matching
manifest is sliced again. A changed source file or setting makes the manifest stale.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..io import read_json, remove_stale_temp_files, save_npz_atomic, write_json_atomic
from .cache import load_npz
from .events import EventDataError

#: Bumped when the cached sample format or slicing rules change.
CACHE_VERSION = 1


class SliceCache:
    """Per-recording sample files plus a manifest, under one directory."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.directory)

    def manifest_path(self, recording):
        return self.directory / f"{recording}.json"

    def load(self, recording, key):
        """The cached sample entries of ``recording`` when they were made with ``key``
        and all their files exist; otherwise ``None``."""
        manifest = read_json(self.manifest_path(recording))
        if not manifest or manifest.get("key") != {**key, "cache_version": CACHE_VERSION}:
            return None
        samples = manifest.get("samples", [])
        if not all((self.directory / entry["file"]).is_file() for entry in samples):
            return None
        return samples

    def store(self, recording, key, samples):
        """Save ``samples`` (dicts with ``id``, ``events``, ``label`` and any JSON-able
        extras) and then the manifest; return the manifest's entries."""
        entries = []
        for sample in samples:
            sample = dict(sample)
            events = sample.pop("events")
            label = int(sample.pop("label"))
            file = f"{sample['id']}.npz"
            save_npz_atomic(self.directory / file, events=events, label=np.int64(label))
            t = events["t"]
            entries.append(
                {
                    **sample,
                    "file": file,
                    "label": label,
                    "n_events": int(events.shape[0]),
                    "t_first": int(t.min()) if t.shape[0] else None,
                    "t_last": int(t.max()) if t.shape[0] else None,
                }
            )
        write_json_atomic(
            self.manifest_path(recording),
            {"key": {**key, "cache_version": CACHE_VERSION}, "samples": entries},
        )
        return entries

    def read(self, entry):
        """``(events, label)`` of a cached sample."""
        data = load_npz(self.directory / entry["file"])
        return data["events"], int(data["label"])


@dataclasses.dataclass
class EventDataset:
    """Labelled event samples from a :class:`SliceCache`.

    ``dataset[i]`` is ``(events, label)``, or ``(transform(events), label)`` with a
    transform. Attributes: ``classes`` (names, label ``k`` is ``classes[k]``),
    ``sensor_size`` ``(width, height, 2)``, ``samples`` (manifest entries: ``id``,
    ``label``, ``recording``, ``group``, ``n_events``, ``t_first``, ``t_last`` ...).
    """

    name: str
    classes: tuple
    sensor_size: tuple
    samples: list
    cache: SliceCache
    transform: object = None

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        events, label = self.cache.read(self.samples[index])
        if self.transform is not None:
            events = self.transform(events)
        return events, label

    def events(self, index):
        """The untransformed events of sample ``index``."""
        return self.cache.read(self.samples[index])[0]

    @property
    def labels(self):
        return np.array([entry["label"] for entry in self.samples], dtype=np.int64)

    @property
    def ids(self):
        return [entry["id"] for entry in self.samples]

    @property
    def recordings(self):
        return np.array([entry["recording"] for entry in self.samples])

    @property
    def groups(self):
        """Per sample, the group its recording belongs to (user or lighting set)."""
        return np.array([entry["group"] for entry in self.samples])

    def subset(self, indices, name=None):
        """The samples at ``indices`` (same cache and transform)."""
        chosen = [self.samples[int(i)] for i in np.asarray(indices).reshape(-1)]
        return dataclasses.replace(self, samples=chosen, name=name or self.name)

    def with_transform(self, transform):
        return dataclasses.replace(self, transform=transform)


def load_arrays(dataset, progress=False, desc=None):
    """Stack ``dataset[i]`` for all samples: ``(inputs, labels)``.

    The transform must give equal-shaped arrays (e.g. :class:`~.transforms.ToFrames`).
    """
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=desc or f"loading {dataset.name}", unit="sample")
    inputs, labels = [], []
    for i in indices:
        x, y = dataset[i]
        inputs.append(x)
        labels.append(y)
    if not inputs:
        raise EventDataError(f"{dataset.name}: no samples to load")
    return np.stack(inputs), np.asarray(labels, dtype=np.int64)
