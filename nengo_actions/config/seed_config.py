"""Configs written for the seed project (``pickle_locations``, ``SNN_trainer`` ...),
mapped onto the current keys with a note for every key whose meaning changed.
Standard library only.
"""

from __future__ import annotations

from pathlib import Path

#: seed key -> (new key, note or None). A note says how the meaning changed.
SEED_KEYS = {
    "name": ("name", None),
    "seed": ("seed", None),
    "save_dir": ("save_dir", None),
    "data_path": (
        "data.root",
        "data_path pointed at the video folder itself; data.root is the folder that "
        "holds UCF-101/ and ucfTrainTestlist/, and data.videos_dir is set to data_path",
    ),
    "use_cuda": (
        "features.device",
        "use_cuda=true becomes features.device='auto' (CUDA when present, else CPU "
        "instead of an error); use_cuda=false becomes 'cpu'",
    ),
    "SNN.minibatch_size": ("train.minibatch_size", None),
    "SNN_trainer.epochs": (
        "train.epochs",
        "the seed picked the epoch on the test set; epochs are now picked on a "
        "validation split carved from training by group",
    ),
    "SNN_trainer.get_initial_testing_accuracy": (
        "train.initial_accuracy",
        "the initial check now runs on the validation split, not the test set",
    ),
    "dataloader.batch_size": (
        "features.batch_size",
        "dataloader.batch_size counted clips; features.batch_size counts frames",
    ),
    "pickle_locations.CNN_weights": ("features.weights", None),
}
#: Seed keys that have no counterpart; each is dropped with this note.
SEED_DROPPED = {
    "SNN_trainer.import_CNN_forward_data": "features are read from the feature store "
    "(and extracted when missing); importing the seed's pickles needs allow_pickle=true",
    "SNN_trainer.do_SNN_training": "use the train command to train and --params to "
    "evaluate saved parameters",
    "pickle_locations.SNN_weights": "parameters are saved in each run's folder",
    "dataloader.num_workers": "decoding runs in the extraction process",
    "dataloader.shuffle": "training shuffles every epoch",
    "n_gpu": "TensorFlow and PyTorch use a GPU when they see one",
}
SEED_MARKERS = ("pickle_locations", "SNN_trainer", "dataloader", "use_cuda", "data_path")
SEED_PICKLES = ("train_data", "test_data", "train_labels", "test_labels")


def flatten(tree, prefix=""):
    """``(dotted key, value)`` for every leaf of a nested dict."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten(value, path + ".")
        else:
            yield path, value


def set_path(tree, dotted, value):
    """Set ``tree[a][b][c] = value`` for ``dotted`` = ``"a.b.c"``, making the dicts."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def map_seed_config(raw):
    """Map a seed-style config onto the current keys.

    Returns ``(config, notes)``: the mapped partial config and one note per key whose
    meaning changed or that was dropped.
    """
    mapped, notes = {}, []
    for key, value in flatten(raw):
        if key.startswith("pickle_locations.") and key.split(".", 1)[1] in SEED_PICKLES:
            set_path(mapped, f"features.seed_pickles.{key.split('.', 1)[1]}", value)
            continue
        if key == "dataloader.img_x" or key == "dataloader.img_y":
            continue  # handled below as frames.resize
        if key in SEED_KEYS:
            new_key, note = SEED_KEYS[key]
            if key == "use_cuda":
                value = "auto" if value else "cpu"
            if key == "data_path":
                set_path(mapped, "data.videos_dir", value)
                set_path(mapped, "data.dataset", "ucf101")
                value = str(Path(value).parent)
            set_path(mapped, new_key, value)
            if note:
                notes.append(f"{key} -> {new_key}: {note}")
        elif key in SEED_DROPPED:
            notes.append(f"{key} dropped: {SEED_DROPPED[key]}")
        else:
            notes.append(f"{key} dropped: no counterpart")
    loader = raw.get("dataloader", {})
    if "img_x" in loader or "img_y" in loader:
        size = [loader.get("img_y", 224), loader.get("img_x", 224)]
        set_path(mapped, "frames.resize", size)
        notes.append("dataloader.img_x/img_y -> frames.resize [height, width]")
    if "seed_pickles" in mapped.get("features", {}):
        notes.append(
            "pickle_locations.{train,test}_{data,labels} -> features.seed_pickles: read "
            "only when allow_pickle is true (unpickling runs code from the file)"
        )
    return mapped, notes
